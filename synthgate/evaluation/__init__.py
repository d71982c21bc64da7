"""Fidelity, utility and privacy metrics of a synthetic table against real training and holdout rows."""
