"""Stage 7: publish atomically with the catalog row, or hold back and say why."""

from __future__ import annotations

import pandas as pd
from prefect import get_run_logger, task
from sqlalchemy.engine import Connection

from synthgate.gates import GateVerdict, Scores
from synthgate.schema import Column
from synthgate.spec import TableSpec
from synthgate.warehouse import governance
from synthgate.warehouse.extract import Fingerprint
from synthgate.warehouse.publish import publish
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
) -> str:
    def record(conn: Connection) -> None:
        governance.catalog_row(
            conn,
            run_id=run_id,
            spec_name=spec.name,
            published_table=spec.target.table,
            rows=len(synthetic),
            source_table=spec.source.table,
            source_fingerprint=fingerprint.content_hash,
            epsilon=epsilon_spent,
            delta=spec.privacy.delta,
            gates={v.name: v.passed for v in verdicts},
            scores={k: round(v, 6) for k, v in scores.as_metrics().items()},
            mlflow_run_id=run_id,
            model_name=model_name,
            model_version=model_version,
            trigger=trigger,
        )
        governance.close_spend(conn, run_id, "published", epsilon_spent, accounting)

    published = publish(spec.target, synthetic, columns, run_id, record)
    get_run_logger().info("published %s: %d rows", published, len(synthetic))
    return published

