"""Stage 3 when the source did not change: re-sample the published version's model, spending nothing."""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task

from synthgate import tracking
from synthgate.generator import DPSynthesizer
from synthgate.spec import TableSpec
from synthgate.tasks import PRIVATE, withheld
from synthgate.warehouse import governance
from synthgate.warehouse.engine import governed_engine


@task(name="find-reusable-model", **PRIVATE)
@withheld
def reusable_model(spec: TableSpec, fingerprint: str, retrain: bool) -> dict[str, Any] | None:
    """The catalog row of the published version to re-sample, or None when this run must train."""
    if retrain:
        return None
    row = governance.reusable_version(governed_engine(spec.target), spec, fingerprint)
    if row is not None:
        get_run_logger().info(
            "the source is unchanged since version %s (same keyed fingerprint and settings): re-sampling its model "
            "%s v%s, no epsilon spent (refresh with --retrain to train anew)",
            row["version"],
            row["model_name"],
            row["model_version"],
        )
    return row


@task(name="load-generator", **PRIVATE)
@withheld
def load_generator(tracking_uri: str, catalog_row: dict[str, Any]) -> DPSynthesizer:
    """The generator of the catalog row's registered model version, from MLflow."""
    return tracking.load_generator(tracking_uri, catalog_row["model_name"], catalog_row["model_version"])


def resampling_seed(spec: TableSpec, run_id: str) -> int:
    """The sampling seed of a re-sampling run: ``training.seed`` and the run id (repeatable, no secret involved), so an
    unchanged snapshot gets new rows."""
    return (spec.training.seed + int(run_id[:8], 16)) % 2**31
