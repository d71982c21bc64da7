"""Loading a synthetic frame into a new version table, inside the publish's transaction: PostgreSQL ``COPY FROM
STDIN`` in chunks (the next chunk's CSV rendered while the server parses the current one), other warehouses
multi-row INSERTs."""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor
from typing import IO, Protocol, cast

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from synthgate.warehouse.engine import quoted

#: Rows per COPY (or INSERT batch): bounds the memory of the CSV buffer.
LOAD_CHUNK_ROWS = 100_000
_NULL = "\\N"


class _CopyCursor(Protocol):
    """What the PostgreSQL load uses of psycopg2's cursor: SQLAlchemy types the DB-API cursor without
    ``copy_expert`` or the context manager psycopg2's has, and psycopg2 ships no types."""

    def __enter__(self) -> _CopyCursor: ...

    def __exit__(self, *exc_info: object) -> None: ...

    def copy_expert(self, sql: str, file: IO[str]) -> None: ...


def load_frame(conn: Connection, table: sa.Table, frame: pd.DataFrame, chunk_rows: int = LOAD_CHUNK_ROWS) -> None:
    """Load ``frame`` into the (new, empty) ``table`` inside the caller's transaction.

    PostgreSQL: ``COPY FROM STDIN`` chunk by chunk, the next chunk's CSV rendered in a thread while the
    server parses the current one. Other warehouses: multi-row INSERTs through pandas.
    """
    dates = [c.name for c in table.columns if isinstance(c.type, sa.Date) and not isinstance(c.type, sa.DateTime)]
    if dates and conn.dialect.name != "postgresql":  # dates (COPY's text casts to them): SQLite kept the time
        frame = frame.assign(**{name: frame[name].dt.date for name in dates})
    chunks = [frame.iloc[start : start + chunk_rows] for start in range(0, len(frame), chunk_rows)]
    if conn.dialect.name != "postgresql":
        for chunk in chunks:
            chunk.to_sql(
                table.name,
                conn,
                schema=table.schema,
                index=False,
                if_exists="append",
                method=None if conn.dialect.name == "sqlite" else "multi",
                chunksize=1000,
            )
        return
    columns = ", ".join(quoted(conn, c) for c in frame.columns)
    name = quoted(conn, table.name, table.schema)
    statement = f"COPY {name} ({columns}) FROM STDIN WITH (FORMAT csv, NULL {sql_literal(_NULL)})"
    with ThreadPoolExecutor(max_workers=1) as render, cast(_CopyCursor, conn.connection.cursor()) as cursor:
        pending = render.submit(csv_text, chunks[0]) if chunks else None
        for following in [*chunks[1:], None]:
            if pending is None:  # an empty frame: nothing to copy
                break
            text = pending.result()
            pending = render.submit(csv_text, following) if following is not None else None
            cursor.copy_expert(statement, io.StringIO(text))


_NEEDS_QUOTES = r'[,"\r\n\\]'


def csv_text(chunk: pd.DataFrame) -> str:
    r"""The chunk as CSV for ``COPY ... (FORMAT csv, NULL '\N')``, column by column with vectorised formatting.

    Nulls are the unquoted marker ``\N``; a text value is quoted when it holds a comma, a quote, a line
    break or a backslash (so a text ``\N`` is quoted and stays text). About twice as fast as
    ``DataFrame.to_csv``, which formats value by value (datetimes above all).
    """
    if chunk.empty:
        return ""
    columns = [_csv_column(chunk[name]) for name in chunk.columns]
    return "\n".join(",".join(row) for row in zip(*columns, strict=True)) + "\n"


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
        values = (series.dt.tz_convert("UTC").dt.tz_localize(None) if aware else series).to_numpy(
            dtype="datetime64[us]"
        )
        text = np.datetime_as_string(values, unit="us").tolist()
        if aware:
            text = [v + "+00:00" for v in text]
    else:
        text = series.astype(str).tolist()
        quote = np.flatnonzero(
            pd.Series(text, dtype=object).str.contains(_NEEDS_QUOTES, regex=True).to_numpy(dtype=bool)
        )
        for i in quote:
            text[i] = '"' + text[i].replace('"', '""') + '"'
    for i in np.flatnonzero(series.isna().to_numpy()):
        text[i] = _NULL
    return text


def sql_literal(text: str) -> str:
    """``text`` as a quoted SQL string literal (quotes doubled), for statements that take no bound parameter."""
    return "'" + text.replace("'", "''") + "'"
