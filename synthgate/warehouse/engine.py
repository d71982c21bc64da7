"""Engines and identifiers: every table name goes through SQLAlchemy's quoting."""

from __future__ import annotations

from functools import lru_cache

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from synthgate.errors import MissingTableError, WarehouseError
from synthgate.spec import WarehouseTable, redact_url, scrub


@lru_cache(maxsize=32)
def engine_for(url: str) -> Engine:
    """One pooled engine per URL; connections are checked before use (dead ones are replaced)."""
    return sa.create_engine(url, pool_pre_ping=True, future=True)


def check_connection(url: str) -> Engine:
    """A working engine for ``url``, or :class:`WarehouseError` with the URL redacted (and the driver's message
    scrubbed of the URL's secrets: libpq and others can echo parts of their DSN)."""
    try:
        engine = engine_for(url)
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except (SQLAlchemyError, ImportError) as exc:
        cause = getattr(exc, "orig", None) or exc
        detail = first_line(exc) if isinstance(exc, SQLAlchemyError) else str(exc).strip().splitlines()[0][:300]
        raise WarehouseError(
            f"cannot connect to warehouse {redact_url(url)}: {type(cause).__name__}: "
            f"{scrub(detail, url)}. Check the URL, the server and the credentials in the environment"
        ) from None
    return engine


def governed_engine(table: WarehouseTable) -> Engine:
    """An engine whose governance tables (catalog, ledger) live in ``table``'s schema."""
    engine = check_connection(table.url)
    return engine.execution_options(schema_translate_map={None: table.db_schema}) if table.db_schema else engine


def reflect(table: WarehouseTable) -> sa.Table:
    """The table's structure as the warehouse declares it, or :class:`MissingTableError`."""
    engine = check_connection(table.url)
    if not sa.inspect(engine).has_table(table.table, schema=table.db_schema):
        raise MissingTableError(
            f"table {qualified(table)!r} does not exist in {table.display_url}: check source.table in the spec"
        )
    return sa.Table(table.table, sa.MetaData(), schema=table.db_schema, autoload_with=engine)


def qualified(table: WarehouseTable) -> str:
    return f"{table.db_schema}.{table.table}" if table.db_schema else table.table


def quoted(engine: Engine, name: str, schema: str | None = None) -> str:
    prep = engine.dialect.identifier_preparer
    return f"{prep.quote_schema(schema)}.{prep.quote(name)}" if schema else prep.quote(name)


def first_line(exc: SQLAlchemyError) -> str:
    text = str(exc.orig) if getattr(exc, "orig", None) is not None else str(exc)
    return text.strip().splitlines()[0][:300] if text.strip() else "no detail"
