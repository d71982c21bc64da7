"""Extract a table in chunks, with a fingerprint of the snapshot for lineage."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from synthgate.errors import DataValidationError, WarehouseError
from synthgate.schema import Column, ColumnKind, column_from_sql
from synthgate.spec import WarehouseTable
from synthgate.warehouse.engine import engine_for, qualified, reflect


@dataclass(frozen=True)
class Fingerprint:
    """What identifies a snapshot without revealing it: row count, schema and hashes."""

    rows: int
    schema_hash: str
    content_hash: str
    columns: dict[str, str]
    extracted_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    @property
    def short(self) -> str:
        return self.content_hash[:12]

    def as_dict(self) -> dict:
        return {
            "rows": self.rows,
            "schema_hash": self.schema_hash,
            "content_hash": self.content_hash,
            "columns": self.columns,
            "extracted_at": self.extracted_at,
        }


@dataclass(frozen=True)
class Extract:
    frame: pd.DataFrame
    columns: list[Column]
    fingerprint: Fingerprint


def extract_table(
    table: WarehouseTable, chunk_size: int = 50_000, progress: Callable[[int], None] | None = None
) -> Extract:
    """Read ``table`` chunk by chunk. Raises :class:`MissingTableError` or :class:`WarehouseError`."""
    reflected = reflect(table)
    names = [c.name for c in reflected.columns]
    if len(set(names)) != len(names):
        raise DataValidationError(f"table {qualified(table)!r} has duplicate column names")
    columns = [column_from_sql(c.name, c.type) for c in reflected.columns]
    chunks: list[pd.DataFrame] = []
    row_hash = np.uint64(0)
    engine = engine_for(table.url)
    try:
        with engine.connect().execution_options(stream_results=True, max_row_buffer=chunk_size) as conn:
            result = conn.execute(sa.select(reflected))
            while batch := result.fetchmany(chunk_size):
                chunk = pd.DataFrame.from_records(batch, columns=names)
                with np.errstate(over="ignore"):
                    row_hash = row_hash + _order_free_hash(chunk)
                chunks.append(chunk)
                if progress:
                    progress(sum(len(c) for c in chunks))
    except SQLAlchemyError as exc:
        raise WarehouseError(
            f"reading {qualified(table)!r} from {table.display_url} failed: {type(exc.orig or exc).__name__}"
        ) from exc
    frame = pd.concat(chunks, ignore_index=True) if chunks else pd.DataFrame({n: pd.Series(dtype=object) for n in names})
    frame = _normalise_dtypes(frame, columns)
    schema = {c.name: c.sql_type for c in columns}
    schema_hash = hashlib.sha256(json.dumps(schema, sort_keys=True).encode()).hexdigest()
    content = hashlib.sha256(f"{schema_hash}:{len(frame)}:{int(row_hash)}".encode()).hexdigest()
    return Extract(frame, columns, Fingerprint(len(frame), schema_hash, content, schema))


def _normalise_dtypes(frame: pd.DataFrame, columns: list[Column]) -> pd.DataFrame:
    """Driver-specific objects (Decimal, date, bool-as-int) to the pandas dtype of the column's kind."""
    for c in columns:
        series = frame[c.name]
        if c.kind in (ColumnKind.FLOAT, ColumnKind.INTEGER) and series.dtype == object:
            frame[c.name] = pd.to_numeric(series, errors="coerce")
        elif c.kind is ColumnKind.DATETIME and not pd.api.types.is_datetime64_any_dtype(series):
            frame[c.name] = pd.to_datetime(series, errors="coerce", utc=c.timezone)
        elif c.kind is ColumnKind.BOOLEAN and series.dtype != bool:
            frame[c.name] = series.astype("boolean")
    return frame


def _order_free_hash(chunk: pd.DataFrame) -> np.uint64:
    """Sum of per-row hashes (mod 2^64): the same for any row order and any chunking."""
    hashes = pd.util.hash_pandas_object(chunk.astype(str), index=False).to_numpy(dtype=np.uint64)
    with np.errstate(over="ignore"):
        return np.uint64(hashes.sum(dtype=np.uint64))
