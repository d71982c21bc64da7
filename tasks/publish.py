"""Stage 7: publish a new version atomically with the catalog row, or hold back and say why."""

from __future__ import annotations

import pandas as pd
from prefect import get_run_logger, task
from sqlalchemy.engine import Connection

from synthgate import tracking
from synthgate.gates import GateVerdict, Scores
from synthgate.schema import Column
from synthgate.spec import TableSpec
from synthgate.warehouse import governance
from synthgate.warehouse.extract import Fingerprint
from synthgate.warehouse.publish import Published, publish, version_table_name
from tasks import PRIVATE
from tasks.retry import transient_warehouse_error


@task(name="publish-table", retries=2, retry_delay_seconds=[2, 10], retry_condition_fn=transient_warehouse_error, **PRIVATE)
def publish_table(
    spec: TableSpec,
    run_id: str,
    synthetic: pd.DataFrame,
    columns: list[Column],
    fingerprint: Fingerprint,
    epsilon_spent: float,
    accounting: str,
    scores: Scores,
    verdicts: list[GateVerdict],
    model_version: str | None,
    model_name: str,
    trigger: str,
) -> Published:
    catalog = {
        "run_id": run_id,
        "spec_name": spec.name,
        "published_table": spec.target.table,
        "rows": len(synthetic),
        "source_table": spec.source.table,
        "source_fingerprint": fingerprint.content_hash,
        "epsilon": epsilon_spent,
        "delta": spec.privacy.delta,
        "gates": {v.name: v.passed for v in verdicts},
        "scores": {k: round(v, 6) for k, v in scores.as_metrics().items()},
        "mlflow_run_id": run_id,
        "model_name": model_name,
        "model_version": model_version,
        "trigger": trigger,
    }

    def record(conn: Connection, version: int) -> None:
        governance.catalog_row(conn, **catalog, version=version, version_table=version_table_name(spec.target.table, version))
        governance.close_spend(conn, run_id, "published", epsilon_spent, accounting)

    published = publish(
        spec.target, synthetic, columns, run_id, record, keep_versions=spec.publishing.keep_versions,
        comment=lambda version: governance.lineage_comment(version, catalog), trigger=trigger,
    )
    logger = get_run_logger()
    logger.info("published %s version %d: %d rows", published.name, published.version, len(synthetic))
    if published.pruned:
        logger.info("dropped versions %s (keep_versions=%d)", list(published.pruned), spec.publishing.keep_versions)
    if model_version is not None:
        tracking.set_production_alias(model_name, model_version)
    return published
