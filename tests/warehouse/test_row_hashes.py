"""Row hashes (fingerprint and holdout split) depend on a row's values alone, never on how rows fall into chunks.

pandas types each chunk from what it holds: an integer chunk holding a NULL is float, one holding a value past the
int64 range unsigned, a text column holding numbers is int, float or object. Each row here is hashed in one chunk
with every other row and alone, as the driver would hand it over."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pandas as pd
import pytest

from synthgate.errors import DataValidationError
from synthgate.hashing import row_hashes
from synthgate.schema import Column, ColumnKind
from synthgate.splitting import split_holdout
from synthgate.warehouse.extract import _normalise_dtypes

KEY = "0123456789abcdef"
UTC2 = dt.timezone(dt.timedelta(hours=2))

CASES = {
    "bigint with NULL and past the mantissa": (ColumnKind.INTEGER, [5, None, 2**53 + 1, 2**62 + 5, -7]),
    "numeric": (ColumnKind.FLOAT, [Decimal("1.25"), None, Decimal("3"), Decimal("3.00"), 2.5]),
    "untyped text holding numbers": (ColumnKind.CATEGORICAL, [5, None, 5.0, "a", True, 2**60]),
    "text": (ColumnKind.CATEGORICAL, ["x", None, "y", "None", ""]),
    "boolean as 0/1": (ColumnKind.BOOLEAN, [1, None, 0, 1, 0]),
    "timestamptz": (
        ColumnKind.DATETIME,
        [dt.datetime(2021, 1, 1, 12, tzinfo=UTC2), None, dt.datetime(2021, 6, 1, tzinfo=dt.UTC), None, None],
    ),
    "date": (ColumnKind.DATETIME, [dt.date(2021, 1, 1), None, dt.date(1999, 12, 31), None, None]),
}


def hashes(column: Column, values: list[object]) -> list[int]:
    frame = _normalise_dtypes(pd.DataFrame.from_records([(v,) for v in values], columns=[column.name]), [column])
    return [int(h) for h in row_hashes(frame, [column], KEY)]


@pytest.mark.parametrize("case", CASES)
def test_a_rows_hash_is_the_same_in_any_chunk(case):
    kind, values = CASES[case]
    column = Column("c", kind, "T", timezone=case == "timestamptz")
    together = hashes(column, values)
    alone = [hashes(column, [v])[0] for v in values]
    assert together == alone


def test_null_and_values_that_print_alike_hash_apart():
    text = Column("c", ColumnKind.CATEGORICAL, "TEXT")
    null, none, empty, five, five_float = hashes(text, [None, "None", "", 5, 5.0])
    assert len({null, none, empty, five}) == 4
    assert five == five_float  # one number, whichever type the driver gave it
    number = Column("n", ColumnKind.FLOAT, "NUMERIC(10, 2)")
    assert hashes(number, [Decimal("3"), Decimal("3.00"), None, 0]) == [
        *hashes(number, [3.0, 3.0]),
        *hashes(number, [None, 0]),
    ]


def test_numbers_past_the_mantissa_hash_as_float64_rounds_them():
    column = Column("c", ColumnKind.INTEGER, "BIGINT")  # (past a signed BIGINT, the extract refuses the column)
    assert hashes(column, [2**60 + 1])[0] == hashes(column, [2**60 + 2])[0]  # one float64 value
    assert hashes(column, [2**52 + 1])[0] != hashes(column, [2**52 + 2])[0]  # exact below 2**53


def test_a_unit_keeps_its_holdout_side_when_a_row_with_a_null_unit_turns_the_key_column_float():
    rows = pd.DataFrame({"customer_id": pd.Series(range(1000), dtype="int64"), "x": 1.0})
    with_null = pd.DataFrame({"customer_id": [*range(1000), None], "x": [1.0] * 1000 + [2.0]})
    assert with_null["customer_id"].dtype == "float64"
    hashes_of = row_hashes(
        with_null, [Column("customer_id", ColumnKind.INTEGER, "INT"), Column("x", ColumnKind.FLOAT, "REAL")], KEY
    )
    split = [
        split_holdout(frame, hashes_of[: len(frame)], 0.2, unit="customer_id", hash_key=KEY)
        for frame in (rows, with_null)
    ]
    (_, held), (_, held_with_null) = split
    assert 100 < len(held) < 300
    assert set(held["customer_id"]) == set(held_with_null["customer_id"].dropna().astype(int))


def test_a_uuid_column_is_read_as_text():
    # the driver's uuid.UUID objects: a model holding them as categories could not be saved (JSON)
    import uuid

    column = Column("u", ColumnKind.CATEGORICAL, "UUID")
    value = uuid.UUID("12345678-1234-5678-1234-567812345678")
    frame = _normalise_dtypes(pd.DataFrame.from_records([(value,), (None,)], columns=["u"]), [column])
    assert frame["u"].tolist() == ["12345678-1234-5678-1234-567812345678", None]


@pytest.mark.parametrize(
    ("declared", "postgresql", "mysql"),
    [
        ("NUMERIC", "NUMERIC", "DOUBLE"),  # unconstrained: exact on PostgreSQL, MySQL's would be DECIMAL(10, 0)
        ("NUMERIC(40, 35)", "NUMERIC(40, 35)", "DOUBLE"),  # past MySQL's DECIMAL, within PostgreSQL's
        ("NUMERIC(12, 2)", "NUMERIC(12, 2)", "NUMERIC(12, 2)"),
    ],
)
def test_a_numeric_column_keeps_its_type_where_the_warehouse_can_hold_it(declared, postgresql, mysql):
    from sqlalchemy.dialects import mysql as mysql_dialect
    from sqlalchemy.dialects import postgresql as postgresql_dialect

    from synthgate.columns import sql_types

    published = sql_types([Column("x", ColumnKind.FLOAT, declared)], pd.DataFrame({"x": [1.5, 2.25]}))["x"]
    assert str(published.compile(dialect=postgresql_dialect.dialect())) == postgresql
    assert str(published.compile(dialect=mysql_dialect.dialect())) == mysql


def test_bigint_s_own_extremes_with_nulls_are_read_and_values_past_them_refused():
    # with NULLs the column reads as float64, where 2**63 - 1 is 2**63: the sentinel stays, a value far past is refused
    column = Column("c", ColumnKind.INTEGER, "BIGINT")
    hashes(column, [2**63 - 1, None, -(2**63)])
    with pytest.raises(DataValidationError, match=r"column 'c' .* holds integers past a signed BIGINT's range"):
        hashes(column, [2**64 - 1, None])
