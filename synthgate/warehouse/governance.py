"""The catalog of published versions, the privacy-budget ledger and the audit events, in the target warehouse.

Ledger rows are written *before* training (status ``started``), so a run that crashes still
counts: it touched the real data. They end as ``published``, ``rejected`` (a gate failed) or
``failed``; a row left ``started`` by a killed process keeps counting. Every ledger row names
its MLflow run. Catalog rows (one per published version) carry the lineage of that version;
event rows record what moved the user-facing name: ``publish``, ``migrate`` (a table from an
older release became a version), ``rollback`` and ``prune`` (a version dropped past ``keep_versions``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from synthgate.errors import PrivacyBudgetError

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
    sa.Column("version", sa.Integer),
    sa.Column("version_table", sa.String(400)),
)

EVENTS = sa.Table(
    "synthgate_events",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("published_table", sa.String(400), nullable=False, index=True),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("previous_version", sa.Integer),
    sa.Column("run_id", sa.String(64)),
    sa.Column("trigger", sa.String(32)),
    sa.Column("detail", sa.Text),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
)

#: Event actions that point the user-facing name at a version.
POINTING_ACTIONS = ("publish", "migrate", "rollback")


def ensure_governance_tables(engine: Engine) -> None:
    """Create the governance tables, and add columns a catalog from an older release lacks."""
    METADATA.create_all(engine, checkfirst=True)
    schema = _schema_of(engine)
    present = {c["name"] for c in sa.inspect(engine).get_columns(CATALOG.name, schema=schema)}
    missing = [c for c in CATALOG.columns if c.name not in present]
    if missing:
        prep = engine.dialect.identifier_preparer
        name = f"{prep.quote_schema(schema)}.{prep.quote(CATALOG.name)}" if schema else prep.quote(CATALOG.name)
        with engine.begin() as conn:
            for column in missing:
                kind = column.type.compile(dialect=engine.dialect)
                conn.execute(sa.text(f"ALTER TABLE {name} ADD COLUMN {prep.quote(column.name)} {kind}"))


def _schema_of(engine: Engine | Connection) -> str | None:
    return (engine.get_execution_options().get("schema_translate_map") or {}).get(None)


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


def open_spend(engine: Engine, entry: LedgerEntry, fingerprint: str | None, cap: float | None = None) -> None:
    """Record the spend before the real data is used; the full budget counts until the run says less.

    With a ``cap``, the refresh is refused (:class:`PrivacyBudgetError`) when the table's earlier
    spends plus this one would exceed it. Spends compose by basic sequential composition: each
    refresh's (epsilon, delta) is already a composed figure at its own delta, and summing them is
    valid for any mix of mechanisms (tighter composition would need every run's full history).
    The check and the insert are one transaction under a per-table lock, so two refreshes of the
    same table at once cannot both pass (PostgreSQL: advisory lock; MySQL: GET_LOCK; SQLite: the
    insert takes the database's write lock before the check reads).
    """
    ensure_governance_tables(engine)
    with engine.connect() as conn, advisory_lock(conn, f"synthgate:{entry.spec_name}"), conn.begin():
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
        if cap is not None:
            spent = conn.execute(
                sa.select(sa.func.coalesce(sa.func.sum(LEDGER.c.epsilon_spent), 0.0)).where(
                    LEDGER.c.spec_name == entry.spec_name, LEDGER.c.run_id != entry.run_id
                )
            ).scalar_one()
            if spent + entry.epsilon_budget > cap + 1e-12:  # leaving the block rolls the insert back
                raise PrivacyBudgetError(
                    f"refresh of {entry.spec_name!r} refused before training: epsilon spent {spent:.4g} + asked "
                    f"{entry.epsilon_budget:.4g} exceeds the cap {cap:.4g}. Raise privacy.cap in the spec (a policy "
                    "decision), or lower privacy.epsilon"
                )


@contextmanager
def advisory_lock(conn: Connection, key: str) -> Iterator[None]:
    """Serialise work on one table across processes (session-level lock, released on exit or when the
    process dies: its connection closes). SQLite has none: its write lock serialises the transactions."""
    dialect = conn.dialect.name
    if dialect == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_lock(hashtext(:key))"), {"key": key})
        conn.commit()
        try:
            yield
        finally:
            conn.execute(sa.text("SELECT pg_advisory_unlock(hashtext(:key))"), {"key": key})
            conn.commit()
    elif dialect in ("mysql", "mariadb"):
        conn.execute(sa.text("SELECT GET_LOCK(:key, 60)"), {"key": key[:64]})
        conn.commit()
        try:
            yield
        finally:
            conn.execute(sa.text("SELECT RELEASE_LOCK(:key)"), {"key": key[:64]})
            conn.commit()
    else:
        yield


def budget_summary(engine: Engine, spec_name: str, cap: float | None) -> dict[str, Any]:
    rows = ledger_rows(engine, spec_name)
    spent = sum(r["epsilon_spent"] for r in rows)
    return {
        "table": spec_name,
        "epsilon_spent": round(spent, 6),
        "delta_spent": sum(r["delta"] for r in rows),
        "cap": cap,
        "remaining": None if cap is None else round(max(cap - spent, 0.0), 6),
        "refreshes": len(rows),
        "history": [
            {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in r.items() if k != "detail"} for r in rows
        ],
    }


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
    return sa.inspect(engine).has_table(table.name, schema=_schema_of(engine))


def record_event(
    conn: Connection,
    published_table: str,
    action: str,
    version: int,
    previous_version: int | None = None,
    run_id: str | None = None,
    trigger: str | None = None,
    detail: str | None = None,
) -> None:
    conn.execute(
        EVENTS.insert().values(
            published_table=published_table, action=action, version=version, previous_version=previous_version,
            run_id=run_id, trigger=trigger, detail=detail, at=now(),
        )
    )


def current_version(conn: Connection, published_table: str) -> int | None:
    """The version the user-facing name points at, from the last publish, migrate or rollback event."""
    return conn.execute(
        sa.select(EVENTS.c.version)
        .where(EVENTS.c.published_table == published_table, EVENTS.c.action.in_(POINTING_ACTIONS))
        .order_by(EVENTS.c.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def recorded_versions(conn: Connection, published_table: str) -> set[int]:
    """Versions a publish or a migration created (a table named like a version without one is an orphan)."""
    rows = conn.execute(
        sa.select(EVENTS.c.version).where(
            EVENTS.c.published_table == published_table, EVENTS.c.action.in_(("publish", "migrate"))
        )
    )
    return {r[0] for r in rows}


def _rows(engine: Engine, table: sa.Table, order: sa.Column, key: sa.Column, value: str | None) -> list[dict[str, Any]]:
    """Every row of a governance table (those whose ``key`` is ``value``, when given), oldest first."""
    if not _exists(engine, table):
        return []
    query = sa.select(table).order_by(order)
    if value:
        query = query.where(key == value)
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query)]


def event_rows(engine: Engine, published_table: str | None = None) -> list[dict[str, Any]]:
    return _rows(engine, EVENTS, EVENTS.c.id, EVENTS.c.published_table, published_table)


def ledger_rows(engine: Engine, spec_name: str | None = None) -> list[dict[str, Any]]:
    return _rows(engine, LEDGER, LEDGER.c.started_at, LEDGER.c.spec_name, spec_name)


def catalog_rows(engine: Engine, spec_name: str | None = None) -> list[dict[str, Any]]:
    return _rows(engine, CATALOG, CATALOG.c.created_at, CATALOG.c.spec_name, spec_name)


def lineage_comment(version: int, catalog: dict[str, Any]) -> str:
    """The table comment of a published version: where it came from, under what budget, who started it."""
    gates = catalog.get("gates") or {}
    verdict = "passed" if gates and all(gates.values()) else "see catalog"
    return (
        f"synthgate version {version}: synthetic copy of {catalog['source_table']} "
        f"(snapshot fingerprint {str(catalog['source_fingerprint'])[:16]}), epsilon {catalog['epsilon']:.4g}, "
        f"delta {catalog['delta']:.2g}, gates {verdict} ({', '.join(sorted(gates))}), {catalog['rows']} rows, "
        f"run {catalog['run_id']}, model {catalog.get('model_name')} v{catalog.get('model_version')}, "
        f"trigger {catalog.get('trigger')}, created {now().isoformat(timespec='seconds')}"
    )
