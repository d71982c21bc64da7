"""Versioned, atomic publishing: every publish is a new table ``<target>__v<N>``; the name users query is a view.

Why a view, not a table swap: moving a view is one catalog change that PostgreSQL, SQLite and
DuckDB make inside a transaction (``CREATE OR REPLACE VIEW``, or ``DROP VIEW`` + ``CREATE VIEW`` when
the columns changed), and MySQL/MariaDB make atomically on their own (``CREATE OR REPLACE VIEW``).
The version tables are never renamed, so a rollback is the same move pointed at an older
version, nothing is copied, and a reader whose query already started keeps reading the version
it began with. Grants and comments on the view survive ``CREATE OR REPLACE``.

One publish is one transaction: create ``<target>__v<N>`` and load it (PostgreSQL ``COPY``, in
chunks), point the view at it, comment both with the lineage, write the event row and, through
``in_transaction``, the catalog row and the ledger update. Readers see the previous version or the
new one, never a missing or half table: a reader that reaches the view while the move is
uncommitted waits for it and then reads the new definition (PostgreSQL looks the name up again
after the lock). A process killed anywhere in the transaction leaves nothing: the transaction rolls back.
On MySQL/MariaDB, where DDL commits implicitly, a killed publish can leave an unreferenced version
table; the next publish drops it (versions without a ``publish`` event are orphans).

A user-facing *table* from an older release is renamed to the next version (a ``migrate`` event, and
its catalog row gets the number) in the same transaction, then replaced by the view.
After the commit, versions beyond the newest ``keep_versions`` are dropped (the current one always stays).
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from synthgate.errors import PublishError
from synthgate.schema import Column, ColumnKind
from synthgate.spec import WarehouseTable
from synthgate.warehouse import governance
from synthgate.warehouse.engine import first_line, governed_engine, qualified

log = logging.getLogger(__name__)

#: Rows per COPY (or INSERT batch): bounds the memory of the CSV buffer.
LOAD_CHUNK_ROWS = 100_000
_NULL = "\\N"
_LEGACY_LEFTOVERS = ("__staging_", "__previous_")  # names an older release used for its swap


@dataclass(frozen=True)
class Published:
    """Where a publish or rollback left the user-facing name."""

    name: str  # the qualified user-facing name (a view)
    version: int
    version_table: str
    previous_version: int | None
    pruned: tuple[int, ...] = ()


def version_table_name(table: str, version: int) -> str:
    return f"{table}__v{version}"


def sql_types(columns: list[Column], frame: pd.DataFrame) -> dict[str, sa.types.TypeEngine]:
    by_name = {c.name: c for c in columns}
    types: dict[str, sa.types.TypeEngine] = {}
    for name in frame.columns:
        column = by_name.get(name)
        kind = column.kind if column else None
        if kind is ColumnKind.INTEGER or pd.api.types.is_integer_dtype(frame[name]):
            types[name] = sa.BigInteger()
        elif kind is ColumnKind.FLOAT:
            types[name] = sa.Float()
        elif kind is ColumnKind.BOOLEAN:
            types[name] = sa.Boolean()
        elif kind is ColumnKind.DATETIME:
            types[name] = sa.DateTime(timezone=bool(column and column.timezone))
        else:
            types[name] = sa.Text()
    return types


def _q(conn: Connection, name: str, schema: str | None = None) -> str:
    prep = conn.dialect.identifier_preparer
    return f"{prep.quote_schema(schema)}.{prep.quote(name)}" if schema else prep.quote(name)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# --- loading ---------------------------------------------------------------------------------------


def load_frame(conn: Connection, table: sa.Table, frame: pd.DataFrame, chunk_rows: int = LOAD_CHUNK_ROWS) -> None:
    """Load ``frame`` into the (new, empty) ``table`` inside the caller's transaction.

    PostgreSQL: ``COPY FROM STDIN`` chunk by chunk, the next chunk's CSV rendered in a thread while the
    server parses the current one. Other warehouses: multi-row INSERTs through pandas.
    """
    chunks = [frame.iloc[start : start + chunk_rows] for start in range(0, len(frame), chunk_rows)]
    if conn.dialect.name != "postgresql":
        for chunk in chunks:
            chunk.to_sql(table.name, conn, schema=table.schema, index=False, if_exists="append",
                         method=None if conn.dialect.name == "sqlite" else "multi", chunksize=1000)
        return
    columns = ", ".join(conn.dialect.identifier_preparer.quote(c) for c in frame.columns)
    statement = f"COPY {_q(conn, table.name, table.schema)} ({columns}) FROM STDIN WITH (FORMAT csv, NULL {_literal(_NULL)})"
    with ThreadPoolExecutor(max_workers=1) as render, conn.connection.cursor() as cursor:
        pending = render.submit(csv_text, chunks[0]) if chunks else None
        for following in [*chunks[1:], None]:
            text = pending.result()
            pending = render.submit(csv_text, following) if following is not None else None
            cursor.copy_expert(statement, io.StringIO(text))


_NEEDS_QUOTES = r'[,"\r\n\\]'


def csv_text(chunk: pd.DataFrame) -> str:
    """The chunk as CSV for ``COPY ... (FORMAT csv, NULL '\\N')``, column by column with vectorised formatting.

    Nulls are the unquoted marker ``\\N``; a text value is quoted when it holds a comma, a quote, a line
    break or a backslash (so a text ``\\N`` is quoted and stays text). About twice as fast as
    ``DataFrame.to_csv``, which formats value by value (datetimes above all).
    """
    if chunk.empty:
        return ""
    columns = [_csv_column(chunk[name]) for name in chunk.columns]
    return "\n".join(",".join(row) for row in zip(*columns)) + "\n"


def _csv_column(series: pd.Series) -> list[str]:
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        text = np.where(series.to_numpy(dtype=bool, na_value=False), "t", "f").tolist()
    elif pd.api.types.is_integer_dtype(dtype):
        text = series.to_numpy(dtype="int64", na_value=0).astype(str).tolist()
    elif pd.api.types.is_float_dtype(dtype):
        text = series.to_numpy(dtype="float64", na_value=np.nan).astype(str).tolist()
    elif pd.api.types.is_datetime64_any_dtype(dtype):
        aware = getattr(dtype, "tz", None) is not None
        values = (series.dt.tz_convert("UTC").dt.tz_localize(None) if aware else series).to_numpy(dtype="datetime64[us]")
        text = np.datetime_as_string(values, unit="us").tolist()
        if aware:
            text = [v + "+00:00" for v in text]
    else:
        text = series.astype(str).tolist()
        quote = np.flatnonzero(pd.Series(text, dtype=object).str.contains(_NEEDS_QUOTES, regex=True).to_numpy(dtype=bool))
        for i in quote:
            text[i] = '"' + text[i].replace('"', '""') + '"'
    for i in np.flatnonzero(series.isna().to_numpy()):
        text[i] = _NULL
    return text


# --- the user-facing view -------------------------------------------------------------------------


def _kind_of(conn: Connection, name: str, schema: str | None) -> str | None:
    """'view', 'table' or None for the user-facing name."""
    inspector = sa.inspect(conn)
    if name in inspector.get_view_names(schema=schema):
        return "view"
    if inspector.has_table(name, schema=schema):
        return "table"
    return None


def _point_view(conn: Connection, target: WarehouseTable, version: int) -> None:
    schema, dialect = target.db_schema, conn.dialect.name
    view = _q(conn, target.table, schema)
    # SQLite views may not name another schema: the version table sits next to the view anyway.
    source = _q(conn, version_table_name(target.table, version), None if dialect == "sqlite" else schema)
    body = f"AS SELECT * FROM {source}"
    if dialect == "sqlite":
        conn.execute(sa.text(f"DROP VIEW IF EXISTS {view}"))
        conn.execute(sa.text(f"CREATE VIEW {view} {body}"))
        return
    if dialect != "postgresql":  # DuckDB, MySQL/MariaDB: replaces whatever the columns are
        conn.execute(sa.text(f"CREATE OR REPLACE VIEW {view} {body}"))
        return
    savepoint = conn.begin_nested()
    try:
        conn.execute(sa.text(f"CREATE OR REPLACE VIEW {view} {body}"))
        savepoint.commit()
    except SQLAlchemyError:  # the columns changed: PostgreSQL replaces a view only with the same leading columns
        savepoint.rollback()
        conn.execute(sa.text(f"DROP VIEW IF EXISTS {view}"))
        conn.execute(sa.text(f"CREATE VIEW {view} {body}"))


def _comment(conn: Connection, target: WarehouseTable, version: int | None, text: str | None) -> None:
    """The lineage as a comment on the version table (when ``version`` is given) and on the view (PostgreSQL)."""
    if not text or conn.dialect.name != "postgresql":  # SQLite has no comments; MySQL's views have none
        return
    if version is not None:
        table = _q(conn, version_table_name(target.table, version), target.db_schema)
        conn.execute(sa.text(f"COMMENT ON TABLE {table} IS {_literal(text)}"))
    conn.execute(sa.text(f"COMMENT ON VIEW {_q(conn, target.table, target.db_schema)} IS {_literal(text)}"))


def _version_tables(conn: Connection, target: WarehouseTable) -> dict[int, str]:
    pattern = re.compile(re.escape(target.table) + r"__v(\d+)$")
    names = sa.inspect(conn).get_table_names(schema=target.db_schema)
    return {int(m.group(1)): name for name in names if (m := pattern.match(name))}


def _begin(conn: Connection) -> None:
    """SQLite's driver opens transactions only before DML: begin explicitly so DDL is inside (and take the write lock)."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def _lock_key(target: WarehouseTable) -> str:
    return f"synthgate:publish:{qualified(target)}"


# --- publish, prune, rollback ---------------------------------------------------------------------


def publish(
    target: WarehouseTable,
    frame: pd.DataFrame,
    columns: list[Column],
    run_id: str,
    in_transaction: Callable[[Connection, int], None],
    keep_versions: int = 3,
    comment: Callable[[int], str] | None = None,
    trigger: str | None = None,
) -> Published:
    """Publish ``frame`` as the next version of ``target`` and point the name at it, all in one transaction.

    ``in_transaction(conn, version)`` writes the catalog row and the ledger update in the same commit;
    ``comment(version)`` is the lineage comment for the version table and the view.
    """
    engine = governed_engine(target)
    governance.ensure_governance_tables(engine)
    try:
        with engine.connect() as lock_conn, governance.advisory_lock(lock_conn, _lock_key(target)):
            _drop_leftovers(engine, target)
            with engine.connect() as conn:
                with conn.begin():
                    _begin(conn)
                    previous = _migrate_legacy_table(conn, target)
                    previous = governance.current_version(conn, target.table) if previous is None else previous
                    version = _next_version(conn, target)
                    name = version_table_name(target.table, version)
                    table = sa.Table(
                        name, sa.MetaData(), *(sa.Column(c, t) for c, t in sql_types(columns, frame).items()),
                        schema=target.db_schema,
                    )
                    table.create(conn)
                    load_frame(conn, table, frame)
                    _point_view(conn, target, version)
                    _comment(conn, target, version, comment(version) if comment else None)
                    governance.record_event(conn, target.table, "publish", version, previous, run_id, trigger)
                    in_transaction(conn, version)
            pruned = prune_versions(engine, target, keep_versions)
    except (SQLAlchemyError, getattr(engine.dialect.dbapi, "Error", SQLAlchemyError)) as exc:  # COPY raises the driver's
        raise PublishError(
            f"publishing {qualified(target)!r} failed ({type(getattr(exc, 'orig', None) or exc).__name__}: {first_line(exc)}); "
            "the previous version is unchanged and still published"
        ) from exc
    log.info("published %s version %d (%d rows)", qualified(target), version, len(frame))
    return Published(qualified(target), version, name, previous, pruned)


def _next_version(conn: Connection, target: WarehouseTable) -> int:
    """One above every number ever used: recorded versions (even pruned ones) and tables on disk."""
    used = governance.recorded_versions(conn, target.table) | set(_version_tables(conn, target))
    return max(used, default=0) + 1


def _migrate_legacy_table(conn: Connection, target: WarehouseTable) -> int | None:
    """A user-facing *table* (an older release swapped tables) becomes a version; returns its number."""
    if _kind_of(conn, target.table, target.db_schema) != "table":
        return None
    version = _next_version(conn, target)
    new_name = version_table_name(target.table, version)
    if conn.dialect.name in ("mysql", "mariadb"):
        conn.execute(sa.text(f"RENAME TABLE {_q(conn, target.table, target.db_schema)} TO {_q(conn, new_name, target.db_schema)}"))
    else:
        conn.execute(sa.text(f"ALTER TABLE {_q(conn, target.table, target.db_schema)} RENAME TO {_q(conn, new_name)}"))
    latest = conn.execute(
        sa.select(governance.CATALOG.c.run_id)
        .where(governance.CATALOG.c.published_table == target.table, governance.CATALOG.c.version.is_(None))
        .order_by(governance.CATALOG.c.created_at.desc())
        .limit(1)
    ).scalar_one_or_none()
    if latest is not None:
        conn.execute(
            governance.CATALOG.update()
            .where(governance.CATALOG.c.run_id == latest)
            .values(version=version, version_table=new_name)
        )
    governance.record_event(
        conn, target.table, "migrate", version, run_id=latest,
        detail="a table published by an older release became a version behind the view",
    )
    return version


def _drop_leftovers(engine: Engine, target: WarehouseTable) -> None:
    """Staging tables an older release (or a killed process on a non-transactional-DDL warehouse) left behind."""
    with engine.connect() as conn, conn.begin():
        _begin(conn)
        for name in sa.inspect(conn).get_table_names(schema=target.db_schema):
            if any(name.startswith(target.table + marker) for marker in _LEGACY_LEFTOVERS):
                conn.execute(sa.text(f"DROP TABLE IF EXISTS {_q(conn, name, target.db_schema)}"))
                log.info("dropped leftover staging table %s", name)


def prune_versions(engine: Engine, target: WarehouseTable, keep_versions: int) -> tuple[int, ...]:
    """Drop versions past the newest ``keep_versions`` (never the current one) and orphans; returns the dropped."""
    with engine.connect() as conn, conn.begin():
        _begin(conn)
        current = governance.current_version(conn, target.table)
        recorded = governance.recorded_versions(conn, target.table)
        on_disk = _version_tables(conn, target)
        keep = set(sorted(v for v in on_disk if v in recorded)[-keep_versions:]) | {current}
        dropped = tuple(sorted(v for v in on_disk if v not in keep))
        for version in dropped:
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {_q(conn, on_disk[version], target.db_schema)}"))
            detail = f"beyond keep_versions={keep_versions}" if version in recorded else "orphan: never published"
            governance.record_event(conn, target.table, "prune", version, detail=detail)
    return dropped


def kept_versions(target: WarehouseTable) -> list[int]:
    """Version numbers whose tables still exist (rollback targets)."""
    engine = governed_engine(target)
    with engine.connect() as conn:
        return sorted(_version_tables(conn, target))


def rollback(target: WarehouseTable, to_version: int | None = None, trigger: str = "cli") -> Published:
    """Point the user-facing name at an earlier kept version (default: the newest one below the current)."""
    engine = governed_engine(target)
    governance.ensure_governance_tables(engine)
    try:
        with engine.connect() as lock_conn, governance.advisory_lock(lock_conn, _lock_key(target)):
            with engine.connect() as conn, conn.begin():
                _begin(conn)
                current = governance.current_version(conn, target.table)
                if current is None:
                    raise PublishError(f"{qualified(target)!r} has never been published as a version: nothing to roll back")
                kept = {v: n for v, n in _version_tables(conn, target).items() if v in governance.recorded_versions(conn, target.table)}
                if to_version is None:
                    earlier = [v for v in kept if v < current]
                    if not earlier:
                        raise PublishError(
                            f"{qualified(target)!r} is at version {current} and no earlier version is kept "
                            f"(kept: {sorted(kept)}); raise publishing.keep_versions to keep more"
                        )
                    to_version = max(earlier)
                if to_version not in kept:
                    raise PublishError(
                        f"version {to_version} of {qualified(target)!r} is not kept (kept: {sorted(kept)}); "
                        "pick one of those with --to"
                    )
                if to_version == current:
                    raise PublishError(f"{qualified(target)!r} already points at version {current}")
                _point_view(conn, target, to_version)
                row = conn.execute(
                    sa.select(governance.CATALOG.c.run_id).where(
                        governance.CATALOG.c.published_table == target.table, governance.CATALOG.c.version == to_version
                    )
                ).scalar_one_or_none()
                if conn.dialect.name == "postgresql":
                    source = _q(conn, kept[to_version], target.db_schema)
                    comment = conn.execute(sa.text("SELECT obj_description(CAST(:t AS regclass), 'pg_class')"), {"t": source}).scalar()
                    _comment(conn, target, None, f"{comment or ''} [rolled back from version {current}]".strip())
                governance.record_event(conn, target.table, "rollback", to_version, current, row, trigger)
    except SQLAlchemyError as exc:
        raise PublishError(
            f"rolling back {qualified(target)!r} failed ({type(exc.orig or exc).__name__}: {first_line(exc)}); "
            "the name still points at the version it did before"
        ) from exc
    log.info("rolled %s back from version %d to %d", qualified(target), current, to_version)
    return Published(qualified(target), to_version, kept[to_version], current)
