"""Prefect flows: the refresh pipeline, stage by stage, and the deployments that run it (deploy.py)."""
