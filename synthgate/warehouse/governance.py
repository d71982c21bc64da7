"""The catalog of published versions and the privacy-budget ledger, in the target warehouse.

Ledger rows are written *before* training (status ``started``), so a run that crashes still
counts: it touched the real data. They end as ``published``, ``rejected`` (a gate failed) or
``failed``. Every ledger row names its MLflow run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

METADATA = sa.MetaData()

LEDGER = sa.Table(
    "synthgate_ledger",
    METADATA,
    sa.Column("run_id", sa.String(64), primary_key=True),
    sa.Column("spec_name", sa.String(200), nullable=False, index=True),
    sa.Column("source_table", sa.String(400), nullable=False),
    sa.Column("source_fingerprint", sa.String(64)),
    sa.Column("epsilon_budget", sa.Float, nullable=False),
    sa.Column("epsilon_spent", sa.Float, nullable=False),
    sa.Column("delta", sa.Float, nullable=False),
    sa.Column("accounting", sa.String(16)),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("detail", sa.Text),
    sa.Column("mlflow_run_id", sa.String(64), nullable=False),
    sa.Column("trigger", sa.String(32)),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
)

CATALOG = sa.Table(
    "synthgate_catalog",
    METADATA,
    sa.Column("run_id", sa.String(64), primary_key=True),
    sa.Column("spec_name", sa.String(200), nullable=False, index=True),
    sa.Column("published_table", sa.String(400), nullable=False),
    sa.Column("rows", sa.BigInteger, nullable=False),
    sa.Column("source_table", sa.String(400), nullable=False),
    sa.Column("source_fingerprint", sa.String(64), nullable=False),
    sa.Column("epsilon", sa.Float, nullable=False),
    sa.Column("delta", sa.Float, nullable=False),
    sa.Column("gates", sa.Text, nullable=False),
    sa.Column("scores", sa.Text, nullable=False),
    sa.Column("mlflow_run_id", sa.String(64), nullable=False),
    sa.Column("model_name", sa.String(200)),
    sa.Column("model_version", sa.String(32)),
    sa.Column("trigger", sa.String(32)),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)


def ensure_governance_tables(engine: Engine) -> None:
    METADATA.create_all(engine, checkfirst=True)


def now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class LedgerEntry:
    run_id: str
    spec_name: str
    source_table: str
    epsilon_budget: float
    delta: float
    mlflow_run_id: str
    trigger: str


def open_spend(engine: Engine, entry: LedgerEntry, fingerprint: str | None) -> None:
    """Record the spend before the real data is used; the full budget counts until the run says less."""
    ensure_governance_tables(engine)
    with engine.begin() as conn:
        conn.execute(
            LEDGER.insert().values(
                run_id=entry.run_id,
                spec_name=entry.spec_name,
                source_table=entry.source_table,
                source_fingerprint=fingerprint,
                epsilon_budget=entry.epsilon_budget,
                epsilon_spent=entry.epsilon_budget,
                delta=entry.delta,
                status="started",
                mlflow_run_id=entry.mlflow_run_id,
                trigger=entry.trigger,
                started_at=now(),
            )
        )


def close_spend(
    conn_or_engine: Engine | Connection,
    run_id: str,
    status: str,
    epsilon_spent: float | None = None,
    accounting: str | None = None,
    detail: str | None = None,
) -> None:
    values: dict[str, Any] = {"status": status, "finished_at": now(), "detail": detail}
    if epsilon_spent is not None:
        values["epsilon_spent"] = epsilon_spent
    if accounting is not None:
        values["accounting"] = accounting
    statement = LEDGER.update().where(LEDGER.c.run_id == run_id).values(**values)
    if isinstance(conn_or_engine, Engine):
        with conn_or_engine.begin() as conn:
            conn.execute(statement)
    else:
        conn_or_engine.execute(statement)


def catalog_row(conn: Connection, **values: Any) -> None:
    for key in ("gates", "scores"):
        if not isinstance(values.get(key), str):
            values[key] = json.dumps(values.get(key), sort_keys=True)
    conn.execute(CATALOG.insert().values(created_at=now(), **values))


def _exists(engine: Engine, table: sa.Table) -> bool:
    schema = (engine.get_execution_options().get("schema_translate_map") or {}).get(None)
    return sa.inspect(engine).has_table(table.name, schema=schema)


def ledger_rows(engine: Engine, spec_name: str | None = None) -> list[dict[str, Any]]:
    if not _exists(engine, LEDGER):
        return []
    query = sa.select(LEDGER).order_by(LEDGER.c.started_at)
    if spec_name:
        query = query.where(LEDGER.c.spec_name == spec_name)
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query)]


def catalog_rows(engine: Engine, spec_name: str | None = None) -> list[dict[str, Any]]:
    if not _exists(engine, CATALOG):
        return []
    query = sa.select(CATALOG).order_by(CATALOG.c.created_at)
    if spec_name:
        query = query.where(CATALOG.c.spec_name == spec_name)
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query)]
