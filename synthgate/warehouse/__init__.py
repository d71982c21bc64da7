"""Warehouse I/O through SQLAlchemy: extract with a fingerprint, publish atomically, governance tables."""
