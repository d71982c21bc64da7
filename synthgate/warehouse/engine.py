"""Engines and identifiers: every table name goes through SQLAlchemy's quoting."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError

from synthgate.errors import MissingTableError, WarehouseError
from synthgate.spec import WarehouseTable, redact_url, scrub


@lru_cache(maxsize=32)
def engine_for(url: str) -> Engine:
    """One pooled engine per URL; connections are checked before use (dead ones are replaced)."""
    return sa.create_engine(url, pool_pre_ping=True, future=True)


#: Connection failures that waiting cannot heal, as drivers word them: an unknown role or database, refused
#: credentials, a host name that does not resolve, a SQLite file that cannot be opened.
_PERMANENT_CONNECT = re.compile(
    r"does not exist|authentication failed|no pg_hba\.conf entry|Access denied|Unknown database|"
    r"Name or service not known|nodename nor servname|Unknown MySQL server host|unable to open database file",
    re.IGNORECASE,
)
#: MySQL/MariaDB error codes of the same: access denied (1044, 1045), unknown database (1049), unknown host (2005).
_PERMANENT_MYSQL_CODES = frozenset({1044, 1045, 1049, 2005})


def is_transient(exc: BaseException) -> bool:
    """Whether a database error may go away when the call is tried again: a refused, dropped or timed-out
    connection. A wrong role, password, database or host, a missing schema or privilege (a ``ProgrammingError``),
    or a missing driver is permanent: retrying only delays the error."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if not isinstance(exc, (OperationalError, InterfaceError)):
        return False
    cause = getattr(exc, "orig", None) or exc
    code = cause.args[0] if getattr(cause, "args", None) else None
    if isinstance(code, int) and code in _PERMANENT_MYSQL_CODES:
        return False
    return _PERMANENT_CONNECT.search(first_line(exc)) is None


def check_connection(url: str) -> Engine:
    """A working engine for ``url``, or :class:`WarehouseError` with the URL redacted (and the driver's message
    scrubbed of the URL's secrets: libpq and others can echo parts of their DSN), marked transient or not."""
    try:
        engine = engine_for(url)
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except (SQLAlchemyError, ImportError) as exc:
        cause = getattr(exc, "orig", None) or exc
        detail = first_line(exc) if isinstance(exc, SQLAlchemyError) else str(exc).strip().splitlines()[0][:300]
        raise WarehouseError(
            f"cannot connect to warehouse {redact_url(url)}: {type(cause).__name__}: "
            f"{scrub(detail, url)}. Check the URL, the server and the credentials in the environment",
            transient=is_transient(exc),
        ) from None
    return engine


def governed_engine(table: WarehouseTable, *, read_only: bool = False) -> Engine:
    """An engine whose governance tables (catalog, ledger) live in ``table``'s schema. ``read_only``: for a command
    that only reads them (``budget``, ``audit``), a SQLite file that does not exist yet is an empty database, not
    created (connecting would create it)."""
    if read_only and missing_sqlite_file(table.url):
        return sa.create_engine("sqlite://")
    engine = check_connection(table.url)
    return engine.execution_options(schema_translate_map={None: table.db_schema}) if table.db_schema else engine


def reflect(table: WarehouseTable, role: str = "source") -> sa.Table:
    """The table's structure as the warehouse declares it, or :class:`MissingTableError` naming the spec section
    (``role``: ``source``, ``holdout.table``) whose ``table`` to check. A SQLite file that does not exist is
    refused here (connecting would create it, empty)."""
    if missing := missing_sqlite_file(table.url):
        raise MissingTableError(f"SQLite database {missing!r} does not exist: check {role}.url in the spec")
    engine = check_connection(table.url)
    try:
        inspector = sa.inspect(engine)
        if not inspector.has_table(table.table, schema=table.db_schema):
            raise MissingTableError(
                f"table {qualified(table)!r} does not exist in {table.display_url}: check {role}.table in the spec"
            )
        # the columns only (all Synthgate reads): a full reflection also asks for constraints and indexes, which
        # some dialects cannot answer (DuckDB's engine sends PostgreSQL catalog queries it does not support)
        described = inspector.get_columns(table.table, schema=table.db_schema)
        if engine.dialect.name == "duckdb":
            described = _with_duckdb_time_zones(engine, table, described)
    except SQLAlchemyError as exc:
        raise WarehouseError(
            f"cannot read the columns of {qualified(table)!r} in {table.display_url}: {driver_error(exc)}",
            transient=is_transient(exc),
        ) from None
    columns = [sa.Column(c["name"], c["type"], nullable=c.get("nullable", True)) for c in described]
    return sa.Table(table.table, sa.MetaData(), *columns, schema=table.db_schema)


def _with_duckdb_time_zones(engine: Engine, table: WarehouseTable, described: list[Any]) -> list[Any]:
    """DuckDB's engine reflects ``TIMESTAMP WITH TIME ZONE`` as ``TIMESTAMP``: its catalog tells them apart."""
    query = sa.text(
        "SELECT column_name FROM information_schema.columns WHERE table_name = :table AND table_schema = :schema "
        "AND data_type = 'TIMESTAMP WITH TIME ZONE'"
    )
    with engine.connect() as conn:
        zoned = set(conn.execute(query, {"table": table.table, "schema": table.db_schema or "main"}).scalars())
    return [{**c, "type": sa.TIMESTAMP(timezone=True)} if c["name"] in zoned else c for c in described]


def missing_sqlite_file(url: str) -> str | None:
    """The file of a SQLite URL when it does not exist (connecting would create it, empty); else None."""
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return None if Path(parsed.database).exists() else parsed.database


def qualified(table: WarehouseTable) -> str:
    """``schema.table`` when the table names a schema, else the table name alone (for messages, unquoted)."""
    return f"{table.db_schema}.{table.table}" if table.db_schema else table.table


def quoted(bind: Engine | Connection, name: str, schema: str | None = None) -> str:
    """``name`` (in ``schema``) quoted as an identifier of ``bind``'s dialect: the one quoting helper."""
    prep = bind.dialect.identifier_preparer
    return f"{prep.quote_schema(schema)}.{prep.quote(name)}" if schema else prep.quote(name)


def driver_error(exc: BaseException) -> str:
    """The class and code of a database error (``UniqueViolation, SQLSTATE 23505``), never its message.

    For errors raised while writing or reading rows: a driver's message can quote a value (the duplicate key, the
    value that does not fit its column, the failing COPY line), and such values are synthetic or real rows.
    """
    cause = getattr(exc, "orig", None) or exc
    name = type(cause).__name__
    code = getattr(cause, "pgcode", None) or getattr(cause, "sqlstate", None)
    if code:
        return f"{name}, SQLSTATE {code}"
    if errname := getattr(cause, "sqlite_errorname", None):
        return f"{name}, {errname}"
    args = getattr(cause, "args", ())
    if args and isinstance(args[0], int):  # MySQL/MariaDB: (code, message)
        return f"{name}, error {args[0]}"
    return name


def first_line(exc: SQLAlchemyError) -> str:
    """The first line of the driver's message (of ``exc`` itself when no driver error is attached), cut to 300
    characters."""
    orig = getattr(exc, "orig", None)
    text = str(orig) if orig is not None else str(exc)
    return text.strip().splitlines()[0][:300] if text.strip() else "no detail"
