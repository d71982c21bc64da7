"""Column kinds, read from the warehouse's declared types (structure, not data)."""

from __future__ import annotations

import datetime as dt
import decimal
from dataclasses import dataclass
from enum import StrEnum

import sqlalchemy as sa


class ColumnKind(StrEnum):
    INTEGER = "integer"
    FLOAT = "float"
    CATEGORICAL = "categorical"
    BOOLEAN = "boolean"
    DATETIME = "datetime"

    @property
    def is_numeric(self) -> bool:
        return self in (ColumnKind.INTEGER, ColumnKind.FLOAT, ColumnKind.DATETIME)


@dataclass(frozen=True)
class Column:
    name: str
    kind: ColumnKind
    sql_type: str
    timezone: bool = False


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


def column_from_sql(name: str, sql_type: sa.types.TypeEngine) -> Column:
    timezone = bool(getattr(sql_type, "timezone", False))
    return Column(name=name, kind=kind_of(sql_type), sql_type=str(sql_type.compile()) if _compilable(sql_type) else type(sql_type).__name__, timezone=timezone)


def _compilable(sql_type: sa.types.TypeEngine) -> bool:
    try:
        sql_type.compile()
        return True
    except Exception:  # noqa: BLE001 - dialect-specific types need their dialect to compile
        return False
