"""The catalog of published versions, the privacy-budget ledger and the audit events, in the target warehouse.

Ledger rows are written *before* a source row is read (status ``started``, the whole asked epsilon), so a
run that crashes still counts. They end as ``published``, ``rejected`` (a gate failed) or ``failed``
(at 0 when no DP mechanism had started); ``resampling`` marks a run re-sampling the published model of an
unchanged snapshot (0); a row left ``started`` by a killed process keeps counting. Every ledger row names
its MLflow run. Catalog rows (one per published version) carry the lineage of that version;
event rows record what moved the user-facing name: ``publish``, ``migrate`` (an existing table became a
version, on the explicit ``synthgate migrate`` command), ``rollback`` and ``prune`` (a version dropped past
``keep_versions``, or a version table a killed publish created and never published).

**The ledger follows the source.** Every ledger row carries ``source_key``, the credential-free identity of the
source table (:func:`source_key`); a cap is checked against every spend on that source, whatever the spec that
spent it is called. Rows from an older release have no key: they count for the spec of the same name and for any
source of the same table name (a conservative reading: over-counting never weakens the guarantee).

**Ownership is a recorded fact.** Synthgate drops or renames only what it recorded creating: version tables with a
``publish`` or ``migrate`` event (and not pruned since), and version tables it *claimed* in ``synthgate_claims``
(committed before ``CREATE TABLE``) but never published: the leftovers of a publish killed on a warehouse whose
DDL commits on its own (MySQL/MariaDB). A table merely named like a version is never touched.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from synthgate.errors import GateFailedError, PrivacyBudgetError, SynthgateError, WarehouseError
from synthgate.warehouse.engine import driver_error, is_transient, quoted

log = logging.getLogger(__name__)

METADATA = sa.MetaData()

LEDGER = sa.Table(
    "synthgate_ledger",
    METADATA,
    sa.Column("run_id", sa.String(64), primary_key=True),
    sa.Column("spec_name", sa.String(200), nullable=False, index=True),
    sa.Column("source_table", sa.String(400), nullable=False),
    sa.Column("source_fingerprint", sa.String(64)),
    sa.Column("source_key", sa.String(1000)),  # the source's identity (source_key()): the budget follows it
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
    sa.Column("spec_digest", sa.String(64)),  # the spec's learning settings the model was trained under
    sa.Column("resampled_from", sa.String(64)),  # run whose model this version re-sampled (no new spend)
    sa.Column("privacy_unit", sa.String(200)),  # the column whose units epsilon protects (NULL: one row each)
    sa.Column("max_rows_per_unit", sa.Integer),  # the most rows of one unit that trained
    sa.Column("parent_table", sa.String(400)),  # a child table's parent: published with it as one version
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

#: Synthgate's intent to create a version table, committed on its own *before* the ``CREATE TABLE``: a version
#: table claimed here and never published is a leftover of a killed publish, Synthgate's own to drop.
CLAIMS = sa.Table(
    "synthgate_claims",
    METADATA,
    sa.Column("published_table", sa.String(400), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("object_name", sa.String(400), nullable=False),
    sa.Column("run_id", sa.String(64)),
    sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
)

#: Event actions that point the user-facing name at a version.
POINTING_ACTIONS = ("publish", "migrate", "rollback")
#: Event actions that record a version table Synthgate owns (until a ``prune`` event for it).
OWNING_ACTIONS = ("publish", "migrate")


def ensure_governance_tables(engine: Engine) -> None:
    """Create the governance tables, and add columns a catalog or ledger from an older release lacks.

    A warehouse that refuses (a missing schema, a role without CREATE) raises :class:`WarehouseError` naming the
    schema and the driver's error class, never a traceback's worth of DDL. Runs that start together (``refresh-all``
    on a Dask cluster) may create the same table at the same moment: the one that loses sees it exist, and looks
    again, as often as there are tables and indexes to lose on (each loss is another run's progress)."""
    objects = sum(1 + len(table.indexes) for table in METADATA.tables.values())
    for attempt in range(objects + 1):
        try:
            _create_governance_tables(engine)
            return
        except SQLAlchemyError as exc:
            if attempt < objects and _created_beside(exc):
                continue
            schema = _schema_of(engine) or "the default schema"
            raise WarehouseError(
                f"cannot create Synthgate's governance tables (ledger, catalog, events) in {schema!r}: "
                f"{driver_error(exc)}. The target schema must exist and the target role needs CREATE on it",
                transient=is_transient(exc),
            ) from exc


def _created_beside(exc: SQLAlchemyError) -> bool:
    """Whether ``exc`` says another session created the table, index or upgrade column first: PostgreSQL's duplicate
    table (42P07), duplicate column (42701) or the unique violation its catalog raises for two concurrent CREATE TABLE
    (23505); MySQL's table exists (1050), duplicate column (1060) or duplicate index name (1061)."""
    orig = getattr(exc, "orig", None)
    state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    code = orig.args[0] if orig is not None and getattr(orig, "args", None) else None
    return state in ("42P07", "42701", "23505") or code in (1050, 1060, 1061)


def _create_governance_tables(engine: Engine) -> None:
    METADATA.create_all(engine, checkfirst=True)
    schema = _schema_of(engine)
    for table in (CATALOG, LEDGER):
        present = {c["name"] for c in sa.inspect(engine).get_columns(table.name, schema=schema)}
        missing = [c for c in table.columns if c.name not in present]
        if not missing:
            continue
        name = quoted(engine, table.name, schema)
        with engine.begin() as conn:
            for column in missing:
                kind = column.type.compile(dialect=engine.dialect)
                conn.execute(sa.text(f"ALTER TABLE {name} ADD COLUMN {quoted(engine, column.name)} {kind}"))


def _schema_of(engine: Engine | Connection) -> str | None:
    return (engine.get_execution_options().get("schema_translate_map") or {}).get(None)


def now() -> datetime:
    """The current time in UTC: every governance timestamp."""
    return datetime.now(UTC)


def source_key(table: Any) -> str:
    """The ledger's key of a source table: its credential-free identity (``WarehouseTable.identity()``) as text.

    The same object spelled with another driver, password or default-schema spelling gets the same key, so the
    budget follows the real table whatever the spec reading it is called.
    """
    return json.dumps(list(table.identity()), separators=(",", ":"))


def budget_lock_key(key: str | None, spec_name: str) -> str:
    """The ledger lock of one source (of the spec, for an entry without a source key): short enough for GET_LOCK."""
    if key is None:
        return f"synthgate:{spec_name}"
    return "synthgate:budget:" + hashlib.sha256(key.encode()).hexdigest()[:40]


@dataclass(frozen=True)
class LedgerEntry:
    """What a ledger row records when a run opens it (status ``started``), before a source row is read."""

    run_id: str
    spec_name: str
    source_table: str
    epsilon_budget: float
    delta: float
    mlflow_run_id: str
    trigger: str
    source_key: str | None = None  # source_key(spec.source): the cap covers every spend on that source

    @classmethod
    def for_run(cls, spec: Any, run_id: str, trigger: str) -> LedgerEntry:
        """A refresh's ledger row: the spec's full budget, keyed by its source, under the MLflow run's id."""
        return cls(
            run_id,
            spec.name,
            spec.source.table,
            spec.privacy.epsilon,
            spec.privacy.delta,
            run_id,
            trigger,
            source_key(spec.source),
        )

    @classmethod
    def for_child(cls, spec: Any, child: Any, run_id: str, trigger: str) -> LedgerEntry:
        """A linked refresh's ledger row for its child table's source: the same spend, counted against that source too
        (a spec of its own on the child table sees it), under ``<run>/<child target>`` (:func:`child_run_id`)."""
        return cls(
            child_run_id(run_id, child.target.table),
            spec.name,
            child.source.table,
            spec.privacy.epsilon,
            spec.privacy.delta,
            run_id,
            trigger,
            source_key(child.source),
        )


def child_run_id(run_id: str, table: str) -> str:
    """The ledger's and the catalog's key of a child table's rows in run ``run_id`` (the parent's rows hold the run's
    own id): ``<run>/<table>``, cut to the column's 64 characters with a hash of the table's name (a configuration
    name, not data) so that two long child names of one run keep keys of their own."""
    key = f"{run_id}/{table}"
    return key if len(key) <= 64 else f"{key[:55]}~{hashlib.sha256(table.encode()).hexdigest()[:8]}"


def _scope(spec_name: str, source_table: str | None, key: str | None) -> sa.ColumnElement[bool]:
    """The ledger rows that share one budget: every row on the same source (``key``), whatever its spec; rows an
    older release wrote without a key count when their spec name or their source table's name is the same."""
    legacy_match = [LEDGER.c.spec_name == spec_name]
    if source_table:
        legacy_match.append(LEDGER.c.source_table == source_table)
    legacy = sa.and_(LEDGER.c.source_key.is_(None), sa.or_(*legacy_match))
    return (
        sa.or_(LEDGER.c.spec_name == spec_name, legacy) if key is None else sa.or_(LEDGER.c.source_key == key, legacy)
    )


def open_spend(engine: Engine, entry: LedgerEntry, fingerprint: str | None = None, cap: float | None = None) -> None:
    """Record the spend before the real data is used; the full budget counts until the run says less.

    With a ``cap``, the refresh is refused (:class:`PrivacyBudgetError`) when the earlier spends on the
    same source (every spec reading it) plus this one would exceed it. Spends compose by basic sequential
    composition: each refresh's (epsilon, delta) is already a composed figure at its own delta, and summing
    them is valid for any mix of mechanisms (tighter composition would need every run's full history).
    The check and the insert are one transaction under a per-source lock, so two refreshes of the
    same source at once, under one spec or two, cannot both pass (PostgreSQL: advisory lock; MySQL:
    GET_LOCK; SQLite: the insert takes the database's write lock before the check reads).
    """
    ensure_governance_tables(engine)
    lock = budget_lock_key(entry.source_key, entry.spec_name)
    with engine.connect() as conn, advisory_lock(conn, lock), conn.begin():
        conn.execute(
            LEDGER.insert().values(
                run_id=entry.run_id,
                spec_name=entry.spec_name,
                source_table=entry.source_table,
                source_fingerprint=fingerprint,
                source_key=entry.source_key,
                epsilon_budget=entry.epsilon_budget,
                epsilon_spent=entry.epsilon_budget,
                delta=entry.delta,
                status="started",
                mlflow_run_id=entry.mlflow_run_id,
                trigger=entry.trigger,
                started_at=now(),
            )
        )
        if cap is not None:  # leaving the block with an error rolls the insert back
            _refuse_over_cap(
                conn,
                entry.spec_name,
                entry.source_table,
                entry.source_key,
                entry.epsilon_budget,
                cap,
                exclude_run=entry.run_id,
            )


def check_budget(
    engine: Engine, spec_name: str, epsilon: float, cap: float, source: Any = None, source_table: str | None = None
) -> None:
    """Refuse (:class:`PrivacyBudgetError`) a refresh whose ``epsilon`` no longer fits under ``cap`` given every
    spend on ``source`` (a ``WarehouseTable``; without one, the spends of ``spec_name``); reads the ledger only.
    :func:`open_spend` checks again under the source's lock when it reserves."""
    ensure_governance_tables(engine)
    key = source_key(source) if source is not None else None
    table = source.table if source is not None else source_table
    try:
        with engine.connect() as conn:
            _refuse_over_cap(conn, spec_name, table, key, epsilon, cap)
    except SQLAlchemyError as exc:  # a ledger the target role may not read (made by another role), a lost connection
        transient = is_transient(exc)
        hint = "" if transient else ". The target role needs SELECT, INSERT and UPDATE on Synthgate's governance tables"
        raise WarehouseError(
            f"cannot read Synthgate's ledger {LEDGER.name!r} in {_schema_of(engine) or 'the default schema'!r}: "
            f"{driver_error(exc)}{hint}",
            transient=transient,
        ) from None


def _refuse_over_cap(
    conn: Connection,
    spec_name: str,
    source_table: str | None,
    key: str | None,
    epsilon: float,
    cap: float,
    exclude_run: str | None = None,
) -> None:
    scope = _scope(spec_name, source_table, key)
    if exclude_run is not None:
        scope = sa.and_(scope, LEDGER.c.run_id != exclude_run)
    rows = conn.execute(
        sa.select(LEDGER.c.spec_name, sa.func.coalesce(sa.func.sum(LEDGER.c.epsilon_spent), 0.0))
        .where(scope)
        .group_by(LEDGER.c.spec_name)
    ).all()
    spent = sum(float(r[1]) for r in rows)
    if spent + epsilon > cap + 1e-12:
        others = sorted(r[0] for r in rows if r[0] != spec_name)
        shared = (
            f" (spent on source {source_table!r} also under spec name(s) {', '.join(map(repr, others))}: the budget "
            "follows the source table, whatever the spec is called)"
            if others
            else ""
        )
        raise PrivacyBudgetError(
            f"refresh of {spec_name!r} refused before reading the source: epsilon spent {spent:.4g} + asked "
            f"{epsilon:.4g} exceeds the cap {cap:.4g}{shared}. Raise privacy.cap in the spec (a policy decision), or "
            "lower privacy.epsilon"
        )


class Spend:
    """One refresh's open ledger row: reserved at the full budget before any real row is read."""

    def __init__(self, engine: Engine, run_id: str) -> None:
        self.engine = engine
        self.run_id = run_id
        self.mechanisms_started = False  # no DP mechanism has seen the data yet: a failure now spends nothing
        self.children: list[Spend] = []  # a linked refresh: the same spend on each child table's source

    def training(self) -> None:
        """The DP mechanisms start: from here a failure keeps the whole reservation counted."""
        self.mechanisms_started = True
        for child in self.children:
            child.training()

    def identify(self, fingerprint: str) -> None:
        """Record the snapshot's keyed fingerprint once it is known."""
        statement = LEDGER.update().where(LEDGER.c.run_id == self.run_id).values(source_fingerprint=fingerprint)
        ledger_write(self.engine, "recording the source's fingerprint", lambda conn: conn.execute(statement))

    def trained(self, epsilon: float, accounting: str) -> None:
        """Training is done: the ledger holds the accountant's figure from now on."""
        ledger_write(
            self.engine, "recording the spend", lambda c: close_spend(c, self.run_id, "trained", epsilon, accounting)
        )
        for child in self.children:
            child.trained(epsilon, accounting)

    def reused(self) -> None:
        """The snapshot did not change: this run re-samples a published model and spends nothing."""
        ledger_write(
            self.engine, "recording the re-sample", lambda c: close_spend(c, self.run_id, "resampling", 0.0, "none")
        )


#: Tries of one ledger write: a dropped connection is tried again after 1 and 2 seconds.
LEDGER_TRIES = 3


def ledger_write(engine: Engine, what: str, write: Callable[[Connection], object]) -> None:
    """One ledger write in its own transaction, tried again on a dropped connection (:data:`LEDGER_TRIES`); a
    failure is one :class:`WarehouseError` naming ``what`` and the driver's error class, never its message."""
    for attempt in range(LEDGER_TRIES):
        try:
            with engine.begin() as conn:
                write(conn)
            return
        except SQLAlchemyError as exc:
            if attempt + 1 < LEDGER_TRIES and is_transient(exc):
                time.sleep(2**attempt)
                continue
            raise WarehouseError(
                f"{what} in the privacy-budget ledger failed ({driver_error(exc)})", transient=is_transient(exc)
            ) from exc


@contextmanager
def reserved_spend(engine: Engine, entry: LedgerEntry, cap: float | None) -> Iterator[Spend]:
    """Reserve the run's budget (refused over the cap) and close the ledger row on every way out.

    The publish closes it as ``published`` in its own transaction; a failed gate closes it ``rejected``,
    anything else ``failed`` (the detail names the error, never a value). A run that fails before any DP mechanism
    started (extract, validation) closes at epsilon 0; after that the reservation, or the accountant's figure, stays.
    """
    open_spend(engine, entry, None, cap)
    spend = Spend(engine, entry.run_id)
    try:
        yield spend
    except BaseException as exc:
        # The run's own error is what the user acts on: a ledger that cannot be closed now (the warehouse went
        # away) is logged, and the row stays open at its full reservation, which counts against the cap
        rejected = isinstance(exc, GateFailedError)
        detail = str(exc) if isinstance(exc, SynthgateError) else type(exc).__name__
        spent = None if rejected or spend.mechanisms_started else 0.0
        status = "rejected" if rejected else "failed"
        try:
            ledger_write(
                engine, "closing the run's row", lambda c: close_spend(c, entry.run_id, status, spent, detail=detail)
            )
        except WarehouseError as closing:
            log.warning("%s; the row stays open at the run's full reservation", closing)
        raise


@contextmanager
def advisory_lock(conn: Connection, key: str) -> Iterator[None]:
    """Serialise work on one table across processes (session-level lock, released on exit or when the
    process dies: its connection closes). SQLite has none: its write lock serialises the transactions."""
    dialect = conn.dialect.name
    if dialect == "postgresql":  # waits as long as it takes
        conn.execute(sa.text("SELECT pg_advisory_lock(hashtext(:key))"), {"key": key})
        conn.commit()
        try:
            yield
        finally:
            conn.execute(sa.text("SELECT pg_advisory_unlock(hashtext(:key))"), {"key": key})
            conn.commit()
    elif dialect in ("mysql", "mariadb"):
        # GET_LOCK gives up after its timeout (returns 0): wait again, never go on without the lock.
        while conn.execute(sa.text("SELECT GET_LOCK(:key, 60)"), {"key": key[:64]}).scalar() != 1:
            conn.commit()
        conn.commit()
        try:
            yield
        finally:
            conn.execute(sa.text("SELECT RELEASE_LOCK(:key)"), {"key": key[:64]})
            conn.commit()
    else:
        yield


def budget_summary(engine: Engine, spec_name: str, cap: float | None, source: Any = None) -> dict[str, Any]:
    """The budget of ``spec_name``'s source: every spend on it, under any spec name (the cap covers them all).

    ``source`` is the spec's source table (a ``WarehouseTable``); without it, the sources ``spec_name`` spent on
    are read from the ledger.
    """
    rows = budget_rows(engine, spec_name, source)
    spent = sum(r["epsilon_spent"] for r in rows)
    return {
        "table": spec_name,
        "source": source.qualified_name if source is not None else None,
        "spec_names": sorted({r["spec_name"] for r in rows}),
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
    """End run ``run_id``'s ledger row with ``status``, and its epsilon spent and accounting when given (in its own
    transaction when handed an engine). A row closed as ``published`` stays so: its version is live, whatever fails
    after the publish."""
    values: dict[str, Any] = {"status": status, "finished_at": now(), "detail": detail}
    if epsilon_spent is not None:
        values["epsilon_spent"] = epsilon_spent
    if accounting is not None:
        values["accounting"] = accounting
    statement = LEDGER.update().where(LEDGER.c.run_id == run_id, LEDGER.c.status != "published").values(**values)
    if isinstance(conn_or_engine, Engine):
        with conn_or_engine.begin() as conn:
            conn.execute(statement)
    else:
        conn_or_engine.execute(statement)


def catalog_values(outcome: Any, model_name: str) -> dict[str, Any]:
    """The catalog row of a refresh's version about to be published (a :class:`synthgate.outcome.RefreshResult`; its
    number is added in the publish transaction).

    Aggregates only: the keyed fingerprint, the guarantee (epsilon, delta) of the rows, overall scores and gates.
    """
    spec, privacy = outcome.spec, outcome.privacy
    return {
        "run_id": outcome.run_id,
        "spec_name": spec.name,
        "published_table": spec.target.table,
        "rows": outcome.rows,
        "source_table": spec.source.table,
        "source_fingerprint": outcome.fingerprint,
        "epsilon": privacy.epsilon,
        "delta": privacy.delta,
        "gates": {v.name: v.passed for v in outcome.verdicts},
        "scores": {
            k: round(v, 6)
            for k, v in (
                outcome.scores.as_metrics() | (outcome.relations.as_metrics() if outcome.relations else {})
            ).items()
        },
        "mlflow_run_id": outcome.run_id,
        "model_name": model_name,
        "model_version": outcome.model_version,
        "trigger": outcome.trigger,
        "spec_digest": spec.learning_digest(),
        "resampled_from": privacy.resampled_from,
        "privacy_unit": privacy.unit,
        "max_rows_per_unit": privacy.max_rows_per_unit or None,
    }


def publication_record(
    catalog: dict[str, Any], privacy: Any, version_table: Callable[[int], str]
) -> Callable[[Connection, int], None]:
    """What the publish transaction of version N writes: its catalog row, and the run's ledger row closed
    ``published`` at the spend of ``privacy`` (one commit: a version is never published without both)."""

    def record(conn: Connection, version: int) -> None:
        catalog_row(conn, **catalog, version=version, version_table=version_table(version))
        close_spend(conn, catalog["run_id"], "published", privacy.spent, privacy.accounting)

    return record


def catalog_row(conn: Connection, **values: Any) -> None:
    """Insert one catalog row, its gates and scores as JSON text (as given when already text)."""
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
    """Record one event on ``published_table``'s name: ``publish``, ``migrate``, ``rollback`` or ``prune``."""
    conn.execute(
        EVENTS.insert().values(
            published_table=published_table,
            action=action,
            version=version,
            previous_version=previous_version,
            run_id=run_id,
            trigger=trigger,
            detail=detail,
            at=now(),
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


def publish_run(conn: Connection, published_table: str, version: int) -> str | None:
    """The run whose ``publish`` event recorded ``version`` of ``published_table`` (None: none did)."""
    return conn.execute(
        sa.select(EVENTS.c.run_id)
        .where(EVENTS.c.published_table == published_table, EVENTS.c.action == "publish", EVENTS.c.version == version)
        .limit(1)
    ).scalar_one_or_none()


def recorded_versions(conn: Connection, published_table: str) -> set[int]:
    """Versions a publish or a migration recorded, pruned ones included (numbers never used again)."""
    rows = conn.execute(
        sa.select(EVENTS.c.version).where(
            EVENTS.c.published_table == published_table, EVENTS.c.action.in_(OWNING_ACTIONS)
        )
    )
    return {r[0] for r in rows}


def pruned_versions(conn: Connection, published_table: str) -> set[int]:
    """Versions whose table Synthgate dropped: no longer its own, whatever holds the name now."""
    rows = conn.execute(
        sa.select(EVENTS.c.version).where(EVENTS.c.published_table == published_table, EVENTS.c.action == "prune")
    )
    return {r[0] for r in rows}


def claim_version(conn: Connection, published_table: str, version: int, object_name: str, run_id: str | None) -> None:
    """Record, before creating it, that Synthgate is about to create ``object_name`` as ``version``."""
    conn.execute(
        CLAIMS.insert().values(
            published_table=published_table, version=version, object_name=object_name, run_id=run_id, claimed_at=now()
        )
    )


def claimed_versions(conn: Connection, published_table: str) -> dict[int, str | None]:
    """Version numbers Synthgate claimed for ``published_table`` (published or not), with the claiming run."""
    rows = conn.execute(sa.select(CLAIMS.c.version, CLAIMS.c.run_id).where(CLAIMS.c.published_table == published_table))
    return {r[0]: r[1] for r in rows}


def parent_of(conn: Connection, published_table: str, version: int) -> str | None:
    """The parent table ``published_table``'s version ``version`` was published with (None: a table of its own)."""
    return conn.execute(
        sa.select(CATALOG.c.parent_table).where(
            CATALOG.c.published_table == published_table, CATALOG.c.version == version
        )
    ).scalar_one_or_none()


def children_linked_now(conn: Connection, published_table: str) -> list[str]:
    """The child tables whose current version was published with ``published_table``'s (linked to it now)."""
    rows = conn.execute(
        sa.select(CATALOG.c.published_table).where(CATALOG.c.parent_table == published_table).distinct()
    )
    children = sorted(r[0] for r in rows)
    return [
        child
        for child in children
        if (version := current_version(conn, child)) is not None and parent_of(conn, child, version) == published_table
    ]


def children_of(conn: Connection, published_table: str, versions: set[int]) -> dict[str, set[int]]:
    """The child tables published with ``published_table`` at any of ``versions``, each with those versions."""
    rows = conn.execute(
        sa.select(CATALOG.c.published_table, CATALOG.c.version).where(
            CATALOG.c.parent_table == published_table, CATALOG.c.version.in_(versions)
        )
    )
    children: dict[str, set[int]] = {}
    for name, version in rows:
        children.setdefault(name, set()).add(version)
    return children


def children_ever(engine: Engine, published_table: str) -> list[str]:
    """Every child table ever published with ``published_table`` (none before the catalog exists)."""
    if not _exists(engine, CATALOG):
        return []
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(CATALOG.c.published_table).where(CATALOG.c.parent_table == published_table).distinct()
        )
        return sorted(r[0] for r in rows)


def has_older_release_rows(conn: Connection, published_table: str) -> bool:
    """Whether an older release recorded publishing ``published_table`` as a plain table (catalog rows without a
    version): then ``synthgate migrate`` can keep that table as a version."""
    return (
        conn.execute(
            sa.select(sa.func.count())
            .select_from(CATALOG)
            .where(CATALOG.c.published_table == published_table, CATALOG.c.version.is_(None))
        ).scalar_one()
        > 0
    )


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
    """The event rows (of ``published_table`` when given), oldest first; none before the table exists."""
    return _rows(engine, EVENTS, EVENTS.c.id, EVENTS.c.published_table, published_table)


def ledger_rows(engine: Engine, spec_name: str | None = None) -> list[dict[str, Any]]:
    """The ledger rows (of ``spec_name`` when given), oldest first; none before the table exists."""
    return _rows(engine, LEDGER, LEDGER.c.started_at, LEDGER.c.spec_name, spec_name)


def budget_rows(engine: Engine, spec_name: str, source: Any = None) -> list[dict[str, Any]]:
    """The ledger rows sharing ``spec_name``'s budget: every row on its source, whatever its spec, oldest first."""
    if not _exists(engine, LEDGER):
        return []
    with engine.connect() as conn:
        if source is not None:
            scopes = [_scope(spec_name, source.table, source_key(source))]
        else:  # the sources this spec name spent on, as the ledger recorded them
            known = conn.execute(
                sa.select(LEDGER.c.source_key, LEDGER.c.source_table).where(LEDGER.c.spec_name == spec_name).distinct()
            ).all()
            scopes = [_scope(spec_name, table, key) for key, table in known] or [_scope(spec_name, None, None)]
        query = sa.select(LEDGER).where(sa.or_(*scopes)).order_by(LEDGER.c.started_at)
        return [dict(r._mapping) for r in conn.execute(query)]


def catalog_rows(engine: Engine, spec_name: str | None = None) -> list[dict[str, Any]]:
    """The catalog rows (of ``spec_name`` when given), oldest first; none before the table exists."""
    return _rows(engine, CATALOG, CATALOG.c.created_at, CATALOG.c.spec_name, spec_name)


def published_row(engine: Engine, published_table: str) -> dict[str, Any] | None:
    """The catalog row of the version the user-facing name points at now (None before the first publish)."""
    if not _exists(engine, CATALOG) or not _exists(engine, EVENTS):
        return None
    with engine.connect() as conn:
        version = current_version(conn, published_table)
        if version is None:
            return None
        row = conn.execute(
            sa.select(CATALOG).where(CATALOG.c.published_table == published_table, CATALOG.c.version == version)
        ).first()
    return dict(row._mapping) if row is not None else None


def reusable_version(engine: Engine, spec: Any, fingerprint: str) -> dict[str, Any] | None:
    """The published version whose model answers this refresh for free, or None.

    That is the current version when its snapshot had the same keyed fingerprint, its model was trained under
    the same learning settings (:meth:`TableSpec.learning_digest`) and is registered: sampling it again is
    post-processing of a DP output and spends nothing.
    """
    row = published_row(engine, spec.target.table)
    if row is None or row.get("model_version") is None or row.get("parent_table"):  # a child's model is its pair's
        return None
    if row.get("source_fingerprint") != fingerprint or row.get("spec_digest") != spec.learning_digest():
        return None
    return row


def lineage_comment(version: int, catalog: dict[str, Any]) -> str:
    """The table comment of a published version: where it came from, under what budget, who started it."""
    gates = catalog.get("gates") or {}
    verdict = "passed" if gates and all(gates.values()) else "see catalog"
    return (
        f"synthgate version {version}: synthetic copy of {catalog['source_table']} "
        f"(keyed snapshot fingerprint {str(catalog['source_fingerprint'])[:16]}), epsilon {catalog['epsilon']:.4g}"
        + (f" (re-sampled from run {catalog['resampled_from']}: no new spend)" if catalog.get("resampled_from") else "")
        + ", "
        f"delta {catalog['delta']:.2g}, gates {verdict} ({', '.join(sorted(gates))}), {catalog['rows']} rows, "
        f"run {catalog['run_id']}, model {catalog.get('model_name')} v{catalog.get('model_version')}, "
        f"trigger {catalog.get('trigger')}, created {now().isoformat(timespec='seconds')}"
    )
