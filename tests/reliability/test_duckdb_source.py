"""A DuckDB source end to end (extract, validate, train, publish to SQLite): every column comes back in its type."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import pytest
import sqlalchemy as sa

from synthgate.errors import DataValidationError, WarehouseError
from synthgate.generator.codecs import RARE_LABEL
from synthgate.spec import WarehouseTable, spec_from_dict
from synthgate.warehouse.extract import extract_table
from tests.reliability.conftest import core_refresh, spec_dict

ROWS = 400


def duckdb_source(path: Path) -> str:
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')")
        con.execute(
            "CREATE TABLE visits (n INTEGER, amount DECIMAL(10, 2), label VARCHAR, seen TIMESTAMPTZ, day DATE, "
            "paid BOOLEAN, mood mood, small UBIGINT)"
        )
        con.execute(
            "INSERT INTO visits SELECT i % 37, (i / 3.0)::DECIMAL(10, 2), 'c' || (i % 4), "
            "TIMESTAMPTZ '2024-03-01 00:00:00+00' + to_hours(i), DATE '2024-01-01' + (i % 90)::INTEGER, i % 2 = 0, "
            f"(['sad', 'ok', 'happy'])[i % 3 + 1]::mood, i * 1000 FROM range({ROWS}) r(i)"
        )
    return f"duckdb:///{path}"


def test_a_duckdb_table_of_every_kind_is_read_learned_and_published(tmp_path, expectations) -> None:
    # DuckDB's engine answered a full reflection with an error (it sends PostgreSQL catalog queries), reflected
    # TIMESTAMPTZ without its time zone and an ENUM with no labels (every row failed, quoting its value)
    url = duckdb_source(tmp_path / "source.duckdb")
    target = f"sqlite:///{tmp_path / 'target.db'}"
    spec = spec_from_dict(
        spec_dict("main")
        | {"source": {"url": url, "table": "visits"}, "target": {"url": target, "table": "visit_copy"}}
    )
    run = core_refresh(spec, expectations, rows=300)
    kinds = {c.name: (c.kind.value, c.timezone) for c in run.extract.columns}
    assert kinds["seen"] == ("datetime", True) and kinds["small"] == ("integer", False)
    synthetic = run.synthetic
    assert list(synthetic.columns) == ["n", "amount", "label", "seen", "day", "paid", "mood", "small"]
    assert str(synthetic["seen"].dtype) == "datetime64[ns, UTC]"
    moods = set(synthetic["mood"].dropna())
    assert moods & {"sad", "ok", "happy"} and moods <= {"sad", "ok", "happy", RARE_LABEL}
    with sa.create_engine(target).connect() as conn:
        published = pd.read_sql(sa.text("SELECT * FROM visit_copy"), conn)
    assert len(published) == 300 and list(published.columns) == list(synthetic.columns)


@pytest.mark.parametrize("sql_type", ["UBIGINT", "HUGEINT"])
def test_integers_past_a_bigint_are_refused_naming_the_column(tmp_path, sql_type) -> None:
    # read as integers, values past 2**63 were clipped to it: every row of a column of large keys came out alike
    path = tmp_path / "wide.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute(f"CREATE TABLE wide (k {sql_type}, x INTEGER)")
        con.execute("INSERT INTO wide SELECT 9223372036854775807::UBIGINT + i, i FROM range(1, 50) r(i)")
    with pytest.raises(DataValidationError, match=r"column 'k' .* holds integers past a signed BIGINT's range"):
        extract_table(WarehouseTable(url=f"duckdb:///{path}", table="wide"), key=b"k" * 32)


def test_a_duckdb_table_whose_columns_cannot_be_read_is_one_warehouse_error(tmp_path) -> None:
    url = duckdb_source(tmp_path / "source.duckdb")
    with duckdb.connect(str(tmp_path / "source.duckdb")) as con:
        con.execute("CREATE VIEW broken AS SELECT * FROM visits")
        con.execute("DROP TABLE visits")  # the view stays, naming a table that is gone
    with pytest.raises(WarehouseError, match=r"'broken'.*CatalogException"):  # named by class, one error
        extract_table(WarehouseTable(url=url, table="broken"), key=b"k" * 32)
