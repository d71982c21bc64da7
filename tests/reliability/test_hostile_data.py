"""Hostile and unusual input: each case stops before the budget with a clear one-line error that holds no value
from a row, or runs and publishes faithful values.

Unsupported SQL types (bytea, json/jsonb, arrays) are never SELECTed; a 100 kB category cannot blow up the report's
plots; target names too long for the warehouse's identifiers and a target role that cannot create tables are refused
by pre-flight checks; a one-column table is not rejected by an undefined ("nan") gate; NUMERIC values of 1e25, dates
before 1900 and MariaDB doubles come out at their scale and precision.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql

from synthgate.columns import sql_types
from synthgate.errors import DataValidationError, SpecError, WarehouseError
from synthgate.evaluation.scorecard import evaluate
from synthgate.gates import evaluate_gates
from synthgate.generator.codecs import CategoricalCodec
from synthgate.profiling import effective_policies, policies_from_schema
from synthgate.report import MAX_LABEL, column_plots, plot_label
from synthgate.schema import Column, ColumnKind
from synthgate.spec import Gates, WarehouseTable
from synthgate.validation import validate_source
from synthgate.warehouse import extract as extract_module
from synthgate.warehouse.engine import engine_for
from synthgate.warehouse.extract import extract_table
from synthgate.warehouse.ownership import check_target_names, check_target_privileges
from synthgate.warehouse.publish import publish
from tests.conftest import PG_URL, login_role
from tests.reliability import conftest as reliability
from tests.reliability.conftest import core_refresh, make_spec

pytestmark = pytest.mark.integration

N = 300
CANARY = "canary-7f3e"  # in every hostile value: no message or log line may hold it
MARIADB_URL = "mysql+pymysql://root@127.0.0.1:3306/test"
# Ranges are DP releases over 30-day (or 1/20-decade) bins: 55 years of dates or 3.6 decades of values need a
# few rows a bin to clear the noise, hence more rows and a large epsilon for the faithful-value cases.
DENSE = 3000
DENSE_PRIVACY = {"epsilon": 50.0, "delta": 1e-5}


def assert_one_clear_line(error: Exception, *names: str) -> None:
    text = str(error)
    assert "\n" not in text and "Traceback" not in text, text
    assert CANARY not in text and "\\x" not in text, text
    for name in names:
        assert name in text, f"{name!r} not in: {text}"


@pytest.fixture
def declared_policies(monkeypatch: pytest.MonkeyPatch) -> None:
    """core_refresh extracts as the flow does: with the spec's declared policies (tasks/extract.py passes them)."""

    def with_policies(table, *args, **kwargs):
        kwargs.setdefault("policies", with_policies.spec_columns)
        return extract_table(table, *args, **kwargs)

    with_policies.spec_columns = {}
    monkeypatch.setattr(reliability, "extract_table", with_policies)
    return with_policies


def refresh(spec, expectations: Path, declared_policies, rows: int = 200):
    declared_policies.spec_columns = spec.columns
    return core_refresh(spec, expectations, rows=rows)


@pytest.fixture
def mariadb() -> sa.Engine:
    pytest.importorskip("pymysql")
    engine = sa.create_engine(MARIADB_URL)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError:
        pytest.skip("MariaDB not reachable on 127.0.0.1:3306")
    return engine


def statements_on(url: str) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    engine = engine_for(url)
    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)


@pytest.fixture
def pg_statements() -> Iterator[list[str]]:
    yield from statements_on(PG_URL)


def hostile_table(pg_engine: sa.Engine, schema: str) -> None:
    """a, b learnable; blob bytea, doc jsonb, tags int[] and j json with a canary in every value."""
    rng = np.random.default_rng(0)
    with pg_engine.begin() as conn:
        conn.execute(
            sa.text(f'CREATE TABLE "{schema}".src (a integer, b text, blob bytea, doc jsonb, tags integer[], j json)')
        )
        conn.execute(
            sa.text(
                f'INSERT INTO "{schema}".src VALUES (:a, :b, :blob, CAST(:doc AS jsonb), :tags, CAST(:doc AS json))'
            ),
            [
                {
                    "a": int(rng.integers(0, 50)),
                    "b": str(rng.choice(["x", "y", "z"])),
                    "blob": f"\x00\xff{CANARY}".encode("latin-1"),
                    "doc": f'{{"k": "{CANARY}"}}',
                    "tags": [1, 2, 3],
                }
                for _ in range(N)
            ],
        )


# -- unsupported SQL types -------------------------------------------------------------------------------------


def test_unsupported_types_are_never_read_and_refresh_twice(
    pg_engine, pg_schema, expectations, declared_policies, pg_statements, caplog
) -> None:
    hostile_table(pg_engine, pg_schema)
    spec = make_spec(pg_schema, columns={"j": {"policy": "drop"}})
    with caplog.at_level(logging.WARNING, logger=extract_module.__name__):
        run = refresh(spec, expectations, declared_policies)
    # bytea, jsonb and the array are left out; the declared-drop json column stays in the schema, never read
    assert [c.name for c in run.extract.columns] == ["a", "b", "j"]
    assert list(run.extract.frame.columns) == ["a", "b", "j"] and run.extract.frame["j"].isna().all()
    assert list(run.synthetic.columns) == ["a", "b"]
    reads = [s for s in pg_statements if s.startswith("SELECT") and s.rstrip().endswith(f"FROM {pg_schema}.src")]
    assert reads and all("NULL AS j" in s for s in reads), reads
    assert not [s for s in pg_statements if "blob" in s or "doc" in s or "tags" in s]  # never selected
    logged = [r.getMessage() for r in caplog.records]
    for name, type_name in (("blob", "BYTEA"), ("doc", "JSONB"), ("tags", "ARRAY")):
        line = next(m for m in logged if f"'{name}'" in m)
        assert type_name in line and CANARY not in line and "\n" not in line
    with pg_engine.connect() as conn:
        published = [
            r[0]
            for r in conn.execute(
                sa.text(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_schema = :s AND table_name = 'src_synthetic' ORDER BY ordinal_position"
                ),
                {"s": pg_schema},
            )
        ]
    assert published == ["a", "b"]
    # the next refresh: the saved suite's columns are the extract's again (no schema drift error)
    again = extract_table(spec.source, policies=spec.columns)
    policies = effective_policies(policies_from_schema(spec, again.columns))
    validate_source(expectations, spec, again.frame, again.columns, policies)
    assert again.columns == run.extract.columns


def test_unsupported_type_with_a_learning_policy_is_refused_before_reading(
    pg_engine, pg_schema, expectations, declared_policies, pg_statements
) -> None:
    hostile_table(pg_engine, pg_schema)
    spec = make_spec(pg_schema, columns={"blob": {"policy": "categorical"}})
    with pytest.raises(SpecError) as error:
        refresh(spec, expectations, declared_policies)
    assert_one_clear_line(error.value, "'blob'", "BYTEA", "policy: drop")
    assert not [s for s in pg_statements if s.startswith("SELECT") and s.rstrip().endswith(f"FROM {pg_schema}.src")]


def test_only_unsupported_columns_is_a_clear_error(pg_engine, pg_schema) -> None:
    with pg_engine.begin() as conn:
        conn.execute(sa.text(f'CREATE TABLE "{pg_schema}".src (blob bytea, doc jsonb)'))
        conn.execute(sa.text(f"""INSERT INTO "{pg_schema}".src VALUES ('\\x00ff', '{{"k": "{CANARY}"}}')"""))
    with pytest.raises(DataValidationError) as error:
        extract_table(WarehouseTable(url=PG_URL, table="src", schema=pg_schema))
    assert_one_clear_line(error.value, "['blob', 'doc']", "unsupported SQL types")


def test_hundred_kilobyte_categories_plot_with_short_labels(tmp_path: Path) -> None:
    values = [f"{c}{CANARY}" + c * 100_000 for c in "pqr"]
    column = Column("c", ColumnKind.CATEGORICAL, "TEXT")
    codec = CategoricalCodec(column, values, public=True)
    frame = pd.DataFrame({"c": np.random.default_rng(0).choice(values, 200)})
    plots = column_plots(frame, frame, SimpleNamespace(learned=[column], codecs=[codec]))
    assert set(plots) == {"c"} and len(plots["c"]) < 200_000
    label = plot_label(values[0])
    assert len(label) == MAX_LABEL and label.endswith("…")
    assert plot_label("costs $5 to $10") == r"costs \$5 to \$10"  # no mathtext parse error


# -- checks before the budget is spent -------------------------------------------------------------------------


def test_target_name_too_long_for_postgresql_version_tables(pg_engine) -> None:
    target = WarehouseTable(url=PG_URL, table="t" * 63, schema="public")
    with pytest.raises(SpecError) as error:
        check_target_names(target, pg_engine)
    assert_one_clear_line(error.value, "target.table", "63 bytes", "PostgreSQL allows 63", "at most 56")
    check_target_names(WarehouseTable(url=PG_URL, table="t" * 56), pg_engine)
    with pytest.raises(SpecError, match="bytes"):  # PostgreSQL counts bytes: 30 two-byte letters are 60
        check_target_names(WarehouseTable(url=PG_URL, table="é" * 30), pg_engine)


def test_target_name_too_long_for_mariadb_version_tables(mariadb) -> None:
    with pytest.raises(SpecError) as error:
        check_target_names(WarehouseTable(url=MARIADB_URL, table="t" * 63), mariadb)
    assert_one_clear_line(error.value, "MySQL/MariaDB allows 64", "at most 57 characters")
    check_target_names(WarehouseTable(url=MARIADB_URL, table="t" * 57), mariadb)


@pytest.fixture
def select_only_role(pg_engine, pg_schema) -> Iterator[str]:
    with login_role(
        pg_engine,
        pg_schema,
        'GRANT SELECT ON ALL TABLES IN SCHEMA "{schema}" TO "{role}"',
        'REVOKE CREATE ON SCHEMA public FROM "{role}"',
    ) as role:
        yield role


def test_select_only_target_role_is_refused_without_writing(pg_engine, pg_schema, select_only_role) -> None:
    url = sa.make_url(PG_URL).set(username=select_only_role).render_as_string(hide_password=False)
    target = WarehouseTable(url=url, table="src_synthetic", schema=pg_schema)
    with pytest.raises(WarehouseError) as error:
        check_target_privileges(target, sa.create_engine(url))
    assert_one_clear_line(error.value, f"schema {pg_schema!r}", "CREATE")
    check_target_privileges(WarehouseTable(url=PG_URL, table="src_synthetic", schema=pg_schema), pg_engine)
    with pytest.raises(WarehouseError, match="'no_such_schema'"):
        check_target_privileges(WarehouseTable(url=PG_URL, table="x", schema="no_such_schema"), pg_engine)
    assert not sa.inspect(pg_engine).get_table_names(schema=pg_schema)  # the check wrote nothing


def test_select_only_target_role_is_refused_on_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    sa.create_engine(f"sqlite:///{path}").connect().close()
    path.chmod(0o444)
    url = f"sqlite:///{path}"
    try:
        if os.access(path, os.W_OK):
            pytest.skip("running as a user that may write read-only files (root)")
        with pytest.raises(WarehouseError, match="'main'"):
            check_target_privileges(WarehouseTable(url=url, table="t"), sa.create_engine(url))
    finally:
        path.chmod(0o644)


def test_one_column_table_gates_are_defined_or_not_applicable() -> None:
    rng = np.random.default_rng(0)
    columns = [Column("a", ColumnKind.INTEGER, "BIGINT")]
    train, holdout, synthetic = (pd.DataFrame({"a": rng.integers(0, 50, n)}) for n in (240, 60, 300))
    evaluation = evaluate(
        train=train,
        holdout=holdout,
        synthetic=synthetic,
        columns=columns,
        target=None,
        synthetic_suite_failures=[],
        attacks=50,
    )
    verdicts = evaluate_gates(Gates(max_exact_copy_excess=1.0), evaluation.scores)
    pair = next(v for v in verdicts if v.name == "column_pair_trends")
    assert pair.passed and "not applicable" in pair.detail and "nan" not in pair.describe().lower()
    assert all(v.passed for v in verdicts), [v.describe() for v in verdicts if not v.passed]
    assert all(math.isfinite(v) for v in evaluation.scores.as_metrics().values())  # the catalog never stores NaN


# -- faithful values -------------------------------------------------------------------------------------------


def test_numeric_1e25_keeps_its_scale_and_declared_type(pg_engine, pg_schema, expectations, declared_policies) -> None:
    rng = np.random.default_rng(1)
    big = 10 ** rng.uniform(23.42, 27, DENSE)  # 2.6e23 .. 1e27
    with pg_engine.begin() as conn:
        conn.execute(sa.text(f'CREATE TABLE "{pg_schema}".src (a integer, big numeric(30, 2), free numeric)'))
        conn.execute(
            sa.text(f'INSERT INTO "{pg_schema}".src VALUES (:a, :big, :free)'),
            [{"a": int(rng.integers(0, 50)), "big": f"{v:.2f}", "free": f"{v:.0f}"} for v in big],
        )
    spec = make_spec(pg_schema, privacy=DENSE_PRIVACY, columns={"big": {"policy": "keep"}, "free": {"policy": "keep"}})
    run = refresh(spec, expectations, declared_policies, rows=300)
    with pg_engine.connect() as conn:
        values = pd.read_sql(sa.text(f'SELECT big, free FROM "{pg_schema}".src_synthetic'), conn).astype(float)
        types = {
            r[0]: r[1:]
            for r in conn.execute(
                sa.text(
                    "SELECT column_name, data_type, numeric_scale FROM information_schema.columns "
                    "WHERE table_schema = :s AND table_name = 'src_synthetic'"
                ),
                {"s": pg_schema},
            )
        }
    for name in ("big", "free"):
        published = values[name].dropna()
        assert published.median() > 1e23 and published.max() < 1e29, (name, published.describe())
    assert types["big"] == ("numeric", 2)  # the declared scale (precision widened only if the values need it)
    assert types["free"] == ("numeric", None)  # unconstrained, as declared (it was double precision)
    assert run.synthetic["big"].dropna().median() > 1e23


def test_dates_before_1900_stay_before_1900(pg_engine, pg_schema, expectations, declared_policies) -> None:
    rng = np.random.default_rng(2)
    days = rng.integers(0, (dt.date(1904, 12, 31) - dt.date(1850, 1, 1)).days, DENSE)
    with pg_engine.begin() as conn:
        conn.execute(sa.text(f'CREATE TABLE "{pg_schema}".src (a integer, born date)'))
        conn.execute(
            sa.text(f'INSERT INTO "{pg_schema}".src VALUES (:a, :born)'),
            [{"a": int(rng.integers(0, 50)), "born": dt.date(1850, 1, 1) + dt.timedelta(days=int(d))} for d in days],
        )
    refresh(make_spec(pg_schema, privacy=DENSE_PRIVACY), expectations, declared_policies, rows=300)
    with pg_engine.connect() as conn:
        born = pd.to_datetime(
            pd.read_sql(sa.text(f'SELECT born FROM "{pg_schema}".src_synthetic'), conn)["born"]
        ).dropna()
    assert born.min() < pd.Timestamp("1870-01-01") and born.max() > pd.Timestamp("1890-01-01")
    assert born.between(pd.Timestamp("1840-01-01"), pd.Timestamp("1915-01-01")).mean() > 0.95
    assert (born < pd.Timestamp("1900-01-01")).mean() > 0.6


def test_sql_types_never_lossy() -> None:
    columns = [
        Column("f", ColumnKind.FLOAT, "DOUBLE PRECISION"),
        Column("n", ColumnKind.FLOAT, "NUMERIC(12, 2)"),
        Column("w", ColumnKind.FLOAT, "NUMERIC(5, 2)"),
        Column("h", ColumnKind.FLOAT, "NUMERIC(30, 0)"),
    ]
    frame = pd.DataFrame({"f": [19467.95], "n": [19467.95], "w": [123456.7], "h": [1e70]})
    types = sql_types(columns, frame)
    compiled = {name: t.compile(dialect=mysql.dialect()) for name, t in types.items()}
    assert compiled == {"f": "DOUBLE", "n": "NUMERIC(12, 2)", "w": "NUMERIC(8, 2)", "h": "DOUBLE"}
    assert types["f"].compile(dialect=postgresql.dialect()) == "DOUBLE PRECISION"


def test_unsigned_bigints_past_2_63_are_refused_and_ordinary_ones_stay_integers(mariadb) -> None:
    # read as integers, every value past 2**63 was clipped to it (all 400 rows came back 9223372036854774784); an
    # auto-increment id is BIGINT UNSIGNED in most MySQL schemas, and stays an integer key
    name = f"sg_u64_{uuid.uuid4().hex[:8]}"
    with mariadb.begin() as conn:
        conn.execute(sa.text(f"CREATE TABLE `{name}` (account_id BIGINT UNSIGNED, balance BIGINT UNSIGNED)"))
        rows = [{"a": i, "b": 18446744073709551000 + i} for i in range(1, 201)]
        conn.execute(sa.text(f"INSERT INTO `{name}` VALUES (:a, :b)"), rows)
    table = WarehouseTable(url=MARIADB_URL, table=name)
    try:
        with pytest.raises(DataValidationError, match=r"column 'balance' .* holds integers past a signed BIGINT"):
            extract_table(table, key=b"k" * 32)
        with mariadb.begin() as conn:
            conn.execute(sa.text(f"UPDATE `{name}` SET balance = account_id * 1000"))
        extract = extract_table(table, key=b"k" * 32)
    finally:
        with mariadb.begin() as conn:
            conn.execute(sa.text(f"DROP TABLE `{name}`"))
    assert {c.name: c.kind for c in extract.columns} == {
        "account_id": ColumnKind.INTEGER,
        "balance": ColumnKind.INTEGER,
    }
    assert extract.frame["balance"].max() == 200_000
    policies = effective_policies(policies_from_schema(make_spec("x"), extract.columns))
    assert policies["account_id"].policy == "fake" and policies["account_id"].fake == "id"


def test_mariadb_target_keeps_doubles_and_decimals(mariadb) -> None:
    name = f"sg_dbl_{uuid.uuid4().hex[:8]}"
    target = WarehouseTable(url=MARIADB_URL, table=name)
    columns = [
        Column("x", ColumnKind.FLOAT, "FLOAT"),
        Column("m", ColumnKind.FLOAT, "DECIMAL(12, 2)"),
        Column("k", ColumnKind.INTEGER, "BIGINT"),
    ]
    frame = pd.DataFrame(
        {
            "x": [19467.95, 0.1, 1e25, None],
            "m": [19467.95, 0.5, 1e9, None],
            "k": pd.array([1, 2, 3, None], dtype="Int64"),
        }
    )
    try:
        publish(target, frame, columns, "r" * 32, lambda conn, version: None)
        with mariadb.connect() as conn:
            back = conn.execute(sa.text(f"SELECT x, m FROM `{name}` ORDER BY k IS NULL, k")).all()
            types = dict(
                conn.execute(
                    sa.text(
                        "SELECT column_name, column_type FROM information_schema.columns WHERE table_schema = 'test' "
                        "AND table_name = :t"
                    ),
                    {"t": f"{name}__v1"},
                ).all()
            )
        assert back[0][0] == 19467.95 and back[1][0] == 0.1 and back[2][0] == 1e25
        assert str(back[0][1]) == "19467.95" and str(back[2][1]) == "1000000000.00"
        assert types["x"] == "double" and types["m"] == "decimal(12,2)"
    finally:
        with mariadb.begin() as conn:
            conn.execute(sa.text(f"DROP VIEW IF EXISTS `{name}`"))
            conn.execute(sa.text(f"DROP TABLE IF EXISTS `{name}__v1`"))
