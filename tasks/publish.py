"""Stage 7: publish a new version atomically with the catalog row, or hold back and say why."""

from __future__ import annotations

import pandas as pd
from prefect import get_run_logger, task
from sqlalchemy.engine import Connection

from synthgate import tracking
from synthgate.gates import GateVerdict, Scores
from synthgate.outcome import RunPrivacy
from synthgate.schema import Column
from synthgate.spec import TableSpec
from synthgate.warehouse import governance
from synthgate.warehouse.publish import Published, publish, version_table_name
from tasks import PRIVATE
from tasks.retry import transient_warehouse_error


@task(name="publish-table", retries=2, retry_delay_seconds=[2, 10], retry_condition_fn=transient_warehouse_error, **PRIVATE)
def publish_table(
    spec: TableSpec,
    run_id: str,
    synthetic: pd.DataFrame,
    columns: list[Column],
    fingerprint: str,
    privacy: RunPrivacy,
    scores: Scores,
    verdicts: list[GateVerdict],
    model_version: str | None,
    trigger: str,
) -> Published:
    """Publish the next version with its catalog row; the ledger row closes ``published`` in the same commit."""
    model_name = tracking.model_name(spec.name)
    catalog = governance.catalog_values(
        spec, run_id, rows=len(synthetic), fingerprint=fingerprint, privacy=privacy, scores=scores, verdicts=verdicts,
        model_name=model_name, model_version=model_version, trigger=trigger,
    )

    def record(conn: Connection, version: int) -> None:
        governance.catalog_row(conn, **catalog, version=version, version_table=version_table_name(spec.target.table, version))
        governance.close_spend(conn, run_id, "published", privacy.spent, privacy.accounting)

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
