"""Prefect flows: the refresh pipeline, stage by stage."""
