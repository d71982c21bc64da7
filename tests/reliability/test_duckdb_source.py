"""A DuckDB source end to end (extract, validate, train, publish to SQLite): every column comes back in its type."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import pytest
import sqlalchemy as sa

from synthgate.errors import WarehouseError
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
            "paid BOOLEAN, mood mood, big UBIGINT, huge HUGEINT)"
        )
        con.execute(
            "INSERT INTO visits SELECT i % 37, (i / 3.0)::DECIMAL(10, 2), 'c' || (i % 4), "
            "TIMESTAMPTZ '2024-03-01 00:00:00+00' + to_hours(i), DATE '2024-01-01' + (i % 90)::INTEGER, i % 2 = 0, "
            "(['sad', 'ok', 'happy'])[i % 3 + 1]::mood, 18446744073709000000 + i * 1000, "
            f"170141183460469231731687303715884105000 - i FROM range({ROWS}) r(i)"
        )
    return f"duckdb:///{path}"


def test_a_duckdb_table_of_every_kind_is_read_learned_and_published(tmp_path, expectations) -> None:
    # DuckDB's engine answered a full reflection with an error (it sends PostgreSQL catalog queries), reflected
    # TIMESTAMPTZ without its time zone and an ENUM with no labels (every row failed, quoting its value); unsigned
    # and 128-bit integers were clipped to 2**63
    url = duckdb_source(tmp_path / "source.duckdb")
    target = f"sqlite:///{tmp_path / 'target.db'}"
    spec = spec_from_dict(
        spec_dict("main")
        | {
            "source": {"url": url, "table": "visits"},
            "target": {"url": target, "table": "visit_copy"},
            "columns": {"big": {"policy": "keep"}, "huge": {"policy": "keep"}},  # unique: SDV would call them keys
        }
    )
    run = core_refresh(spec, expectations, rows=300)
    kinds = {c.name: (c.kind.value, c.sql_type, c.timezone) for c in run.extract.columns}
    assert kinds["seen"] == ("datetime", "TIMESTAMP", True)
    assert kinds["big"] == ("float", "NUMERIC(20, 0)", False) and kinds["huge"] == ("float", "NUMERIC(39, 0)", False)
    synthetic = run.synthetic
    assert list(synthetic.columns) == ["n", "amount", "label", "seen", "day", "paid", "mood", "big", "huge"]
    assert str(synthetic["seen"].dtype) == "datetime64[ns, UTC]"
    assert {"sad", "ok", "happy"} & set(synthetic["mood"]) and set(synthetic["mood"].dropna()) <= {
        "sad",
        "ok",
        "happy",
        RARE_LABEL,
    }
    assert synthetic["big"].dropna().between(1.8e19, 1.85e19).all() and synthetic["big"].notna().any()
    assert synthetic["huge"].dropna().between(1.7e38, 1.71e38).all()
    with sa.create_engine(target).connect() as conn:
        published = pd.read_sql(sa.text("SELECT * FROM visit_copy"), conn)
    assert len(published) == 300 and list(published.columns) == list(synthetic.columns)


def test_a_duckdb_table_whose_columns_cannot_be_read_is_one_warehouse_error(tmp_path) -> None:
    url = duckdb_source(tmp_path / "source.duckdb")
    with duckdb.connect(str(tmp_path / "source.duckdb")) as con:
        con.execute("CREATE VIEW broken AS SELECT * FROM visits")
        con.execute("DROP TABLE visits")  # the view stays, naming a table that is gone
    with pytest.raises(WarehouseError, match=r"'broken'.*CatalogException"):  # named by class, one error
        extract_table(WarehouseTable(url=url, table="broken"), key=b"k" * 32)
