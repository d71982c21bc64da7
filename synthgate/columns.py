"""Column values as numbers: the one float view of a numeric column that the generator, the evaluation and the
report share (datetimes as seconds since the epoch, nulls as NaN), and its inverse; a table's columns joined from
the chunks they were read or sampled in."""

from __future__ import annotations

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from synthgate.schema import Column, ColumnKind, numeric_precision

# The largest double an int64 holds: decoded integers are clipped to it and its negative (a bin edge may lie beyond
# 2**63; symmetric, so abs() of a decoded value still fits a BIGINT).
_INT64_HIGH = float(np.nextafter(2.0**63, 0))
_INT64_LOW = -_INT64_HIGH


def to_numeric(series: pd.Series, column: Column) -> np.ndarray:
    """Float view of a numeric column; datetimes as seconds since the epoch; nulls as NaN."""
    if column.kind is ColumnKind.DATETIME:
        stamps = pd.to_datetime(series, utc=column.timezone, errors="coerce")
        if column.timezone:
            stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
        seconds = stamps.dt.as_unit("ns").astype("int64").to_numpy(dtype=float) / 1e9  # whatever the resolution
        return np.where(stamps.isna().to_numpy(), np.nan, seconds)
    values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    return np.where(np.isfinite(values), values, np.nan)


def joined(pieces: dict[str, list[pd.Series]]) -> dict[str, pd.Series]:
    """Each column's chunks joined, one column at a time, its chunks let go once joined: the peak is about the table
    and one column, not the chunks and the table side by side (a DataFrame of chunks joined at once is a second copy
    of a 10M-row table). Empties ``pieces``; the columns keep its order."""
    columns: dict[str, pd.Series] = {}
    for name in list(pieces):
        parts = pieces.pop(name)
        columns[name] = pd.concat(parts, ignore_index=True) if parts else pd.Series(dtype=object)
        del parts
    return columns


_DAY = 86_400.0  # seconds
#: Published text: MySQL/MariaDB's TEXT holds 65,535 bytes, and a longer category failed the whole publish.
_TEXT = sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")


def from_numeric(values: np.ndarray, column: Column) -> pd.Series:
    """Values of ``column``'s type from floats (the inverse of :func:`to_numeric`): datetimes in whole seconds (in UTC
    for a time zone), dates in whole days (the day a value falls in), integers rounded, NUMERIC(p, s) rounded to its
    scale."""
    if column.kind is ColumnKind.DATETIME:
        seconds = np.floor(values / _DAY) * _DAY if column.is_date else np.round(values)
        # Whole seconds as nullable integers: pandas' float path can overflow on NaN.
        stamps = pd.to_datetime(pd.Series(seconds).astype("Int64"), unit="s", errors="coerce")
        stamps = stamps.astype("datetime64[ns]")  # the resolution readers and SDMetrics expect (to_datetime gives [s])
        return stamps.dt.tz_localize("UTC") if column.timezone else stamps
    if column.kind is ColumnKind.INTEGER:
        null = np.isnan(values)
        whole = np.clip(np.round(np.where(null, 0, values)), _INT64_LOW, _INT64_HIGH)
        return pd.Series(pd.arrays.IntegerArray(whole.astype(np.int64), null))
    declared = numeric_precision(column.sql_type)
    if declared is not None:  # NUMERIC(p, s): values at the source's scale (an amount has cents, not 15 decimals)
        values = np.round(values, declared[1])
    return pd.Series(values, dtype=float)


def sql_types(columns: list[Column], frame: pd.DataFrame) -> dict[str, sa.types.TypeEngine]:
    """The SQL type each column of ``frame`` is published (and described in lineage) as, from its column kind."""
    by_name = {c.name: c for c in columns}
    types: dict[str, sa.types.TypeEngine] = {}
    for name in frame.columns:
        column = by_name.get(name)
        kind = column.kind if column else None
        if kind is not ColumnKind.CATEGORICAL and pd.api.types.infer_dtype(frame[name], skipna=True) == "string":
            types[name] = _TEXT  # a faked column (uuid) of a non-text source column holds strings
        elif kind is ColumnKind.INTEGER or pd.api.types.is_integer_dtype(frame[name]):
            types[name] = sa.BigInteger()
        elif kind is ColumnKind.FLOAT:
            types[name] = _float_type(column, frame[name])
        elif kind is ColumnKind.BOOLEAN:
            types[name] = sa.Boolean()
        elif kind is ColumnKind.DATETIME and column is not None and column.is_date:
            types[name] = sa.Date()
        elif kind is ColumnKind.DATETIME:
            types[name] = sa.DateTime(timezone=bool(column and column.timezone))
        else:
            types[name] = _TEXT
    return types


#: MySQL/MariaDB's DECIMAL holds at most 65 digits, 30 of them after the point.
_MAX_PRECISION, _MAX_SCALE = 65, 30


def _float_type(column: Column | None, values: pd.Series) -> sa.types.TypeEngine:
    """A FLOAT column: 8-byte DOUBLE (never MySQL's 4-byte FLOAT), or ``NUMERIC(p, s)`` where the source declared one.

    The declared precision is widened when the synthetic values need more digits before the point (a DP range may
    reach past the source's largest value); past 65 digits or a scale of 30 (MySQL/MariaDB's limits) the column is a
    DOUBLE there and stays NUMERIC on PostgreSQL, as does an unconstrained ``NUMERIC``.
    """
    declared = numeric_precision(column.sql_type) if column is not None else None
    if declared is None:
        unconstrained = column is not None and column.sql_type.strip().upper() in ("NUMERIC", "DECIMAL")
        return sa.Double().with_variant(sa.Numeric(), "postgresql") if unconstrained else sa.Double()
    precision, scale = declared
    finite = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    finite = np.abs(finite[np.isfinite(finite)])
    largest = float(finite.max()) if finite.size else 0.0
    digits = int(np.floor(np.log10(largest))) + 1 if largest >= 1 else 1
    precision = max(precision, scale + digits)
    if precision > _MAX_PRECISION or scale > _MAX_SCALE:  # past MySQL/MariaDB's DECIMAL: PostgreSQL's holds 1,000
        return sa.Double().with_variant(sa.Numeric(precision, scale), "postgresql")
    return sa.Numeric(precision, scale)
