"""Column kinds, read from the warehouse's declared types (structure, not data)."""

from __future__ import annotations

import datetime as dt
import decimal
import re
from dataclasses import dataclass
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.dialects import mysql


class ColumnKind(StrEnum):
    """What the generator models a column as, from its declared SQL type."""

    INTEGER = "integer"
    FLOAT = "float"
    CATEGORICAL = "categorical"
    BOOLEAN = "boolean"
    DATETIME = "datetime"

    @property
    def is_numeric(self) -> bool:
        """Whether the kind is modelled on a numeric axis (datetimes as seconds since the epoch)."""
        return self in (ColumnKind.INTEGER, ColumnKind.FLOAT, ColumnKind.DATETIME)


@dataclass(frozen=True)
class Column:
    """A source column's structure: name, kind, declared SQL type, whether a datetime carries a time zone, and whether
    the column may hold NULL (a NOT NULL column's codec has no NULL token: the noise never invents one)."""

    name: str
    kind: ColumnKind
    sql_type: str
    timezone: bool = False
    nullable: bool = True

    @property
    def is_date(self) -> bool:
        """A calendar date (SQL ``DATE``): learned as a datetime, decoded and published as whole days."""
        return self.kind is ColumnKind.DATETIME and self.sql_type.strip().upper() == "DATE"


def kind_of(sql_type: sa.types.TypeEngine) -> ColumnKind:
    """Map a reflected SQL type to the kind the generator models."""
    if isinstance(sql_type, sa.Boolean):
        return ColumnKind.BOOLEAN
    if isinstance(sql_type, (sa.DateTime, sa.Date)):
        return ColumnKind.DATETIME
    if isinstance(sql_type, sa.Integer):
        return ColumnKind.INTEGER
    if isinstance(sql_type, (sa.Float, sa.Numeric)):
        return ColumnKind.FLOAT
    try:
        python_type = sql_type.python_type
    except NotImplementedError:
        return ColumnKind.CATEGORICAL
    if python_type is bool:
        return ColumnKind.BOOLEAN
    if python_type is int:
        return ColumnKind.INTEGER
    if python_type in (float, decimal.Decimal):
        return ColumnKind.FLOAT
    if python_type in (dt.datetime, dt.date):
        return ColumnKind.DATETIME
    return ColumnKind.CATEGORICAL


#: The SQL types Synthgate can read, learn and publish. Every other type (binary, JSON, arrays, ranges, network,
#: geometric, interval, time of day, bit strings, types the driver does not know) is *unsupported*: the extract
#: never selects such a column, whose values could not be learned and could reach a log in an error message.
SUPPORTED_TYPES: tuple[type[sa.types.TypeEngine], ...] = (
    sa.Boolean,
    sa.Date,
    sa.DateTime,
    sa.Integer,
    sa.Float,
    sa.Numeric,
    sa.String,
    sa.Uuid,
)


def sql_type_name(sql_type: sa.types.TypeEngine) -> str:
    """The declared type as text (``NUMERIC(38, 6)``, ``BYTEA``): structure, never a value."""
    return str(sql_type.compile()) if _compilable(sql_type) else type(sql_type).__name__


def is_supported(sql_type: sa.types.TypeEngine, dialect: str | None = None) -> bool:
    """Whether a column of this reflected type can be read and learned (see :data:`SUPPORTED_TYPES`).

    A SQLite column declared without a type (``NullType``) is read as categorical: SQLite columns are commonly
    untyped, and the source suite checks their values' types one by one (a mixed or binary column fails it by name).
    """
    if isinstance(sql_type, sa.types.NullType):
        return dialect == "sqlite"
    if isinstance(sql_type, (sa.JSON, sa.ARRAY, sa.Interval, sa.LargeBinary, mysql.SET)):  # SET: a set per value
        return False
    return isinstance(sql_type, SUPPORTED_TYPES)


def column_from_sql(name: str, sql_type: sa.types.TypeEngine, *, nullable: bool = True) -> Column:
    """The :class:`Column` of a reflected column: its kind, its type as text, its time zone flag and whether it is
    nullable (``NOT NULL`` in its declaration: structure, not data)."""
    timezone = bool(getattr(sql_type, "timezone", False))
    return Column(
        name=name, kind=kind_of(sql_type), sql_type=sql_type_name(sql_type), timezone=timezone, nullable=nullable
    )


def numeric_precision(sql_type: str) -> tuple[int, int] | None:
    """(precision, scale) of a declared ``NUMERIC(p, s)`` / ``DECIMAL(p, s)`` type name, else None."""
    match = _NUMERIC.match(sql_type.strip())
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2) or 0)


_NUMERIC = re.compile(r"^(?:NUMERIC|DECIMAL)\s*\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\)", re.IGNORECASE)


def _compilable(sql_type: sa.types.TypeEngine) -> bool:
    try:
        sql_type.compile()
        return True
    except Exception:  # noqa: BLE001 - dialect-specific types need their dialect to compile
        return False
