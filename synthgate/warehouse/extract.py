"""Extract a table in chunks, with a keyed fingerprint of the snapshot for lineage and change detection."""

from __future__ import annotations

import hashlib
import json
import logging
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, cast

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from synthgate import hashing
from synthgate.columns import joined
from synthgate.errors import DataValidationError, SpecError, WarehouseError
from synthgate.keys import keyed_digest, row_hash_key
from synthgate.schema import Column, ColumnKind, column_from_sql, is_supported, sql_type_name
from synthgate.spec import ColumnPolicy, WarehouseTable
from synthgate.warehouse.engine import driver_error, engine_for, is_transient, qualified, reflect

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Fingerprint:
    """What identifies a snapshot without revealing it: a keyed digest (HMAC) of schema, rows and content.

    Equal snapshots (any row order, any chunking) give equal digests under the same key; without the key
    the digest cannot be tested against candidate tables. No row count: that is real data too.
    """

    digest: str
    schema_hash: str  # the column names and SQL types: metadata, not data
    columns: dict[str, str]
    extracted_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    @property
    def short(self) -> str:
        """The digest's first 12 hex digits, for display."""
        return self.digest[:12]

    def as_dict(self) -> dict:
        """The fingerprint as recorded in lineage and the catalog, naming the keyed hash."""
        return {
            "digest": self.digest,
            "keyed": "hmac-sha256",
            "schema_hash": self.schema_hash,
            "columns": self.columns,
            "extracted_at": self.extracted_at,
        }


@dataclass(frozen=True)
class Extract:
    """One snapshot of a table: its rows, its columns, its fingerprint and a keyed hash per row."""

    frame: pd.DataFrame
    columns: list[Column]
    fingerprint: Fingerprint
    row_hashes: np.ndarray  # keyed 64-bit hash of each row's content, in frame order (for the holdout split)

    def without_rows(self) -> Extract:
        """This snapshot's columns and fingerprint without its rows: once validated and split, a source's rows live
        on in its training and holdout frames, and a second copy of a 10M-row table is gigabytes."""
        return replace(self, frame=self.frame.iloc[:0].copy(), row_hashes=self.row_hashes[:0].copy())


def extract_table(
    table: WarehouseTable,
    chunk_size: int = 50_000,
    progress: Callable[[int], None] | None = None,
    *,
    key: bytes | None = None,
    policies: Mapping[str, ColumnPolicy] | None = None,
    role: str = "source",
) -> Extract:
    """Read ``table`` chunk by chunk. Raises :class:`MissingTableError` or :class:`WarehouseError`.

    ``key``: the secret fingerprint key (default: :func:`synthgate.keys.fingerprint_key` of the settings).
    ``policies``: the spec's declared column policies (``spec.columns``). A column declared ``policy: drop`` is never
    read: it stays in ``columns`` (it is part of the table's schema) and its values in ``frame`` are all null.
    Columns of unsupported SQL types (see :func:`synthgate.schema.is_supported`) are never read either; undeclared,
    they are left out of ``columns`` and ``frame`` with a one-line log naming the column and its type, and declared
    with any policy other than ``drop`` they are refused (:class:`SpecError`) before a row is read.
    ``role``: the spec section naming ``table`` (``source``, ``holdout.table``), for the message of a missing table.
    """
    if key is None:
        from synthgate.keys import fingerprint_key
        from synthgate.settings import get_settings

        key = fingerprint_key(get_settings())
    hash_key = row_hash_key(key)
    reflected = reflect(table, role)
    names = [c.name for c in reflected.columns]
    if len(set(names)) != len(names):
        raise DataValidationError(f"table {qualified(table)!r} has duplicate column names")
    selected, columns = read_plan(table, reflected, policies)
    names = [c.name for c in columns]
    pieces: dict[str, list[pd.Series]] = {n: [] for n in names}  # each column's chunks
    hashes: list[np.ndarray] = []
    read = 0
    engine = engine_for(table.url)
    try:
        with engine.connect().execution_options(stream_results=True, max_row_buffer=chunk_size) as conn:
            result = conn.execute(sa.select(*selected))
            while batch := _fetched(result, chunk_size, table):
                # a Row is a named tuple to pandas; SQLAlchemy types its __getitem__ on int where pandas-stubs ask for
                # SupportsIndex, so the rows are typed as the tuples they are
                chunk = pd.DataFrame.from_records(cast("Sequence[tuple[Any, ...]]", batch), columns=names)
                del batch
                chunk = _normalise_dtypes(chunk, columns)
                hashes.append(hashing.row_hashes(chunk, columns, hash_key))
                for name in names:  # each column apart: a text column of the chunk is a view of the 2-D object array
                    pieces[name].append(_compact(chunk[name]))  # of every Python object the driver made
                read += len(chunk)
                del chunk
                if progress:
                    progress(read)
    except SQLAlchemyError as exc:  # a dropped connection is retried; a missing privilege (42501) is not
        raise WarehouseError(
            f"reading {qualified(table)!r} from {table.display_url} failed: {driver_error(exc)}",
            transient=is_transient(exc),
        ) from exc
    # chunks typed apart may join as objects: typed once more
    frame = _normalise_dtypes(pd.DataFrame(joined(pieces), copy=False), columns)
    schema = {c.name: c.sql_type for c in columns}
    schema_hash = hashlib.sha256(json.dumps(schema, sort_keys=True).encode()).hexdigest()
    row_hashes = np.concatenate(hashes) if hashes else np.zeros(0, dtype=np.uint64)
    with np.errstate(over="ignore"):
        order_free = int(row_hashes.sum(dtype=np.uint64))  # the same for any row order and any chunking
    digest = keyed_digest(key, f"{schema_hash}:{len(frame)}:{order_free}")
    return Extract(frame, columns, Fingerprint(digest, schema_hash, schema), row_hashes)


def table_columns(
    table: WarehouseTable, policies: Mapping[str, ColumnPolicy] | None = None, role: str = "source"
) -> list[Column]:
    """The columns an extract of ``table`` reports, from its metadata alone (no row is read): see :func:`read_plan`.
    The extract's SELECT is run once with a condition no row meets, so a missing privilege is told now, by name,
    not after the spend is reserved."""
    selected, columns = read_plan(table, reflect(table, role), policies)
    try:
        with engine_for(table.url).connect() as conn:
            conn.execute(sa.select(*selected).where(sa.false())).close()
    except SQLAlchemyError as exc:
        raise WarehouseError(
            f"cannot read {qualified(table)!r} in {table.display_url} ({driver_error(exc)}): grant the source role "
            f"SELECT on it, or check {role}.table in the spec",
            transient=is_transient(exc),
        ) from None
    return columns


def read_plan(
    table: WarehouseTable, reflected: sa.Table, policies: Mapping[str, ColumnPolicy] | None = None
) -> tuple[list[sa.ColumnElement[Any]], list[Column]]:
    """What the extract SELECTs, and the columns it reports: decided from the declared types and the spec alone.

    Declared ``drop`` columns are selected as ``NULL`` (their values never leave the warehouse); unsupported types
    are left out (or refused when the spec declares a policy other than ``drop`` for them). Messages name columns
    and SQL types only.
    """
    policies = policies or {}
    dialect = sa.make_url(table.url).get_backend_name()
    selected: list[sa.ColumnElement[Any]] = []
    columns: list[Column] = []
    unsupported: list[str] = []
    for c in reflected.columns:
        declared = policies.get(c.name)
        dropped = declared is not None and declared.policy == "drop"
        if not is_supported(c.type, dialect):
            type_name = sql_type_name(c.type)
            if declared is not None and not dropped:
                raise SpecError(
                    f"column {c.name!r} of {qualified(table)!r} has SQL type {type_name}, which Synthgate cannot read, "
                    "learn or publish: declare it 'policy: drop' (or cast it in a view) instead of "
                    f"{declared.policy or 'a domain'!r}"
                )
            if not dropped:
                log.warning(
                    "column %r of %s has unsupported SQL type %s: left out (never read); declare 'policy: drop' to "
                    "silence this",
                    c.name,
                    qualified(table),
                    type_name,
                )
                unsupported.append(c.name)
                continue
        columns.append(column_from_sql(c.name, c.type, nullable=bool(c.nullable)))
        selected.append(sa.null().label(c.name) if dropped else _as_read(c))
    if not columns:
        why = f"its columns {unsupported} all have unsupported SQL types" if unsupported else "it has no columns"
        raise DataValidationError(f"no column of {qualified(table)!r} can be read: {why}")
    return selected, columns


def _as_read(column: sa.Column[Any]) -> sa.ColumnElement[Any]:
    """The column as the extract selects it: an ENUM's labels as text (SQLAlchemy checks each value against the
    labels it reflected, and DuckDB's engine reflects none: every row failed, quoting its value)."""
    return sa.type_coerce(column, sa.String()).label(column.name) if isinstance(column.type, sa.Enum) else column


def _fetched(result: sa.CursorResult[Any], size: int, table: WarehouseTable) -> Sequence[sa.Row[Any]]:
    """The next rows, or :class:`DataValidationError` where the driver's reading of a value fails (never quoting it):
    SQLite keeps any value under any declared type, and a column declared TIMESTAMPTZ reads as NUMERIC, whose
    reader fails on text."""
    try:
        return result.fetchmany(size)
    except (TypeError, ValueError, ArithmeticError) as exc:
        raise DataValidationError(
            f"reading {qualified(table)!r} failed ({type(exc).__name__}): a column holds values its declared SQL type "
            "cannot read (SQLite keeps any value under any type); cast the columns to their types in a view, or "
            "declare such a column `policy: drop`"
        ) from None


def _compact(series: pd.Series) -> pd.Series:
    """A chunk's column copied apart, a text column's repeated values as one Python object each.

    The driver makes a new ``str`` for every value it reads: a category held by a million rows is a million objects
    of about 60 bytes, where one object and a million pointers hold the same column in an eighth of the memory."""
    if series.dtype != object or pd.api.types.infer_dtype(series, skipna=True) != "string":
        return series.copy()
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    values = np.asarray(uniques, dtype=object)[codes]  # a NULL's code is -1: put back below
    null = codes < 0
    values[null] = series.to_numpy()[null]
    return pd.Series(values, name=series.name)


# a time of day followed by a UTC offset, Z, UTC or GMT (with an offset of its own), as drivers that hand back text
# write one
_OFFSET = re.compile(r"\d:\d{2}(:\d{2}(\.\d+)?)?\s*(Z|UTC|GMT|[+-]\d{2}(:?\d{2})?)([+-]\d{1,2}(:?\d{2})?)?\s*$")


def _has_offsets(series: pd.Series) -> bool:
    """Whether any value of a datetime column is zoned: a ``datetime`` with a ``tzinfo``, or text ending in one (each
    distinct value looked at once: a DATE column's chunk of a million rows holds a few thousand dates)."""
    distinct = pd.Series(pd.unique(series.dropna()), dtype=object)
    return bool(
        distinct.map(lambda v: v.tzinfo is not None if isinstance(v, datetime) else bool(_OFFSET.search(str(v)))).any()
    )


def _normalise_dtypes(frame: pd.DataFrame, columns: list[Column]) -> pd.DataFrame:
    """Driver-specific objects (Decimal, date, bool-as-int) to the pandas dtype of the column's kind."""
    for c in columns:
        series = frame[c.name]
        if c.kind in (ColumnKind.FLOAT, ColumnKind.INTEGER):
            if series.dtype == object:
                frame[c.name] = series = pd.to_numeric(series, errors="coerce")
            if c.kind is ColumnKind.INTEGER and _past_bigint(series):
                raise DataValidationError(
                    f"column {c.name!r} ({c.sql_type}) holds integers past a signed BIGINT's range, which are learned "
                    "and published as BIGINT: cast it to NUMERIC(20, 0) (or DOUBLE) in a view, or declare it "
                    "`policy: drop`"
                )
        elif c.kind is ColumnKind.DATETIME:
            frame[c.name] = _instants(series, c)
        elif c.kind is ColumnKind.BOOLEAN and series.dtype != bool:
            frame[c.name] = series.astype("boolean")
        elif c.kind is ColumnKind.CATEGORICAL and series.dtype == object and _holds_uuids(series):
            frame[c.name] = series.map(lambda v: str(v) if isinstance(v, uuid.UUID) else v)  # text, as the rest
    return frame


def _past_bigint(series: pd.Series) -> bool:
    """Whether an integer column holds a value a signed 64-bit integer cannot (an unsigned BIGINT's upper half, a
    128-bit integer): read as integers, such values were clipped to 2**63, every row of a column of large keys alike."""
    if series.dtype.kind == "u":
        return bool((series > np.iinfo(np.int64).max).any())
    if series.dtype.kind == "f":  # NULLs made it float: BIGINT's largest, 2**63 - 1, reads as 2**63 and stays
        return bool((series.abs() > 2.0**63).any())
    return False


def _holds_uuids(series: pd.Series) -> bool:
    """Whether a column's first value is a ``uuid.UUID`` (a driver's UUID type): learned, saved, published as text."""
    first = series.first_valid_index()
    return first is not None and isinstance(series[first], uuid.UUID)


def _instants(series: pd.Series, column: Column) -> pd.Series:
    """A DATETIME column's values as pandas instants: in UTC with a time zone, naive without one.

    A column whose SQL type has no time zone but whose values carry UTC offsets (zoned ``datetime``s, or text ending
    in an offset) is refused: learned in UTC and published as naive times they would shift. Text is read as ISO 8601
    only: a format guessed from its values read 01/02/2020 as January and 13/02/2020 as February in one column."""
    if pd.api.types.is_datetime64_any_dtype(series) and series.dt.tz is None:
        return series
    if isinstance(series.dtype, pd.DatetimeTZDtype) and column.timezone:  # a driver's session offset: to UTC
        return series.dt.tz_convert("UTC")
    if not column.timezone and (isinstance(series.dtype, pd.DatetimeTZDtype) or _has_offsets(series)):
        raise DataValidationError(
            f"column {column.name!r} has a SQL type without a time zone ({column.sql_type}) but holds values with "
            "UTC offsets: cast it in a view to a type with a time zone (or to local times without one)"
        )
    stamps = pd.to_datetime(series, errors="coerce", utc=column.timezone, format="ISO8601")
    if bool((stamps.isna() & series.notna()).any()):  # never turn values into NULL silently
        raise DataValidationError(
            f"column {column.name!r} holds dates outside 1677-09-22 .. 2262-04-11 (e.g. 9999-12-31 sentinels) or text "
            "that reads as no ISO 8601 date or time, which cannot be learned: map them to NULL (or cast them) in a "
            "view, or declare the column `policy: drop`"
        )
    return stamps
