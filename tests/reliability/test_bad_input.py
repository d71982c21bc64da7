"""The bad-input matrix: every case ends in a clear SynthgateError naming the problem, or a correct run.

Spec errors, data shapes, schema drift and a table read in chunks, on the real PostgreSQL (and SQLite, whose
untyped columns can hold mixed types). Most cases run the plain-Python core end to end (extract, profile, validate,
train two epochs, sample, check the synthetic suite, publish); the ones that must leave the ledger consistent and
publish nothing run the Prefect flow.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from synthgate.errors import (
    DataValidationError,
    PrivacyBudgetError,
    SpecError,
    SynthgateError,
    UnexpectedError,
    WarehouseError,
    one_line,
)
from synthgate.evaluation.scorecard import evaluate
from synthgate.gates import evaluate_gates
from synthgate.generator.codecs import RARE_LABEL
from synthgate.profiling import effective_policies, propose
from synthgate.schema import Column, ColumnKind
from synthgate.spec import load_spec, spec_from_dict
from synthgate.validation import load_or_create_source_suite, validate_source
from synthgate.warehouse import governance
from synthgate.warehouse.extract import _normalise_dtypes, extract_table
from tests.reliability.conftest import (
    core_refresh,
    governed,
    load_frame,
    make_spec,
    spec_dict,
    tables_in,
    write_spec,
)

pytestmark = pytest.mark.integration

N = 300
UTC_PLUS_2 = timezone(timedelta(hours=2))


def small(seed: int = 0, n: int = N) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"a": rng.integers(0, 50, n), "b": rng.choice(["x", "y", "z"], n, p=[0.5, 0.3, 0.2])})


def assert_clear(error: SynthgateError, *names: str) -> None:
    """A message that names the problem, on one line of ours (not a library traceback's last line)."""
    text = str(error)
    for name in names:
        assert name in text, f"{name!r} not named in: {text}"
    assert "Traceback" not in text


# -- spec errors -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"colums": {}}, "colums: unknown key"),
        ({"privacy": {"epsilon": 1.0, "delta": 1e-5, "epsilom": 2}}, "privacy.epsilom: unknown key"),
        ({"privacy": {"epsilon": "lots", "delta": 1e-5}}, "privacy.epsilon"),
        ({"training": {"epochs": "ten"}}, "training.epochs"),
        ({"columns": ["a", "b"]}, "columns"),
        ({"privacy": {"epsilon": -1.0, "delta": 1e-5}}, "privacy.epsilon: Input should be greater than 0"),
        ({"privacy": {"epsilon": 0, "delta": 1e-5}}, "privacy.epsilon"),
        ({"privacy": {"epsilon": 1.0, "delta": 0.5}}, "privacy.delta"),
        ({"privacy": {"epsilon": 1.0, "delta": -1e-5}}, "privacy.delta"),
        ({"target_column": "a", "columns": {"a": {"policy": "drop"}}}, "cannot be dropped or faked"),
        ({"columns": {"a": {"min": 5, "max": 1}}}, "must be below max"),
        ({"name": "x; DROP TABLE y"}, "name"),
    ],
    ids=[
        "unknown-key",
        "unknown-nested-key",
        "wrong-type-epsilon",
        "wrong-type-epochs",
        "wrong-type-columns",
        "negative-epsilon",
        "zero-epsilon",
        "delta-too-large",
        "negative-delta",
        "dropped-target",
        "inverted-bounds",
        "hostile-spec-name",
    ],
)
def test_spec_errors_are_named(tmp_path: Path, change: dict, named: str) -> None:
    with pytest.raises(SpecError) as error:
        load_spec(write_spec(tmp_path, spec_dict("public", **change)))
    assert_clear(error.value, named)


def test_literal_password_and_unset_env_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    literal = spec_dict("public")
    literal["source"]["url"] = "postgresql+psycopg2://etl:Sup3rSecret@127.0.0.1:5432/test"
    with pytest.raises(SpecError) as error:
        load_spec(write_spec(tmp_path, literal))
    assert_clear(error.value, "literal password")
    assert "Sup3rSecret" not in str(error.value)

    monkeypatch.delenv("SG_REL_UNSET", raising=False)
    unset = spec_dict("public")
    unset["source"]["url"] = "postgresql+psycopg2://etl:${SG_REL_UNSET}@127.0.0.1:5432/test"
    with pytest.raises(SpecError) as error:
        load_spec(write_spec(tmp_path, unset))
    assert_clear(error.value, "SG_REL_UNSET is not set")


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("postgresql+psycopg2://postgres:${SG_REL_PW}@127.0.0.1:1/test", "cannot connect"),
        ("postgresql+psycopg2://postgres:${SG_REL_PW}@no-such-host.invalid:5432/test", "cannot connect"),
        (
            "postgresql+psycopg2://sg_no_such_role:${SG_REL_PW}@127.0.0.1:5432/test",
            'role "sg_no_such_role" does not exist',
        ),
        (
            "postgresql+psycopg2://postgres:${SG_REL_PW}@127.0.0.1:5432/sg_no_such_db",
            'database "sg_no_such_db" does not exist',
        ),
        ("mysql+pymysql://sg_no_such_user:${SG_REL_PW}@127.0.0.1:3306/test", "Access denied"),
    ],
    ids=["closed-port", "unknown-host", "wrong-role", "wrong-database", "wrong-credentials-mariadb"],
)
def test_unreachable_or_refused_warehouse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str, named: str
) -> None:
    if url.startswith("mysql"):
        pytest.importorskip("pymysql")
    monkeypatch.setenv("SG_REL_PW", "pw-8c1f-canary")
    data = spec_dict("public")
    data["source"]["url"] = url
    spec = load_spec(write_spec(tmp_path, data))
    with pytest.raises(WarehouseError) as error:
        extract_table(spec.source)
    if "no-such-host" in url or "sg_no_such_user" in url:  # the MariaDB may be absent on some machines
        assert "cannot connect" in str(error.value)
    else:
        assert_clear(error.value, named)
    assert "pw-8c1f-canary" not in str(error.value)
    assert "***" in str(error.value)  # the URL is shown, its password masked


# -- the flow: these must publish nothing and leave the ledger consistent ----------------------------------------


@pytest.fixture(scope="module")
def flow_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One Synthgate home and MLflow store for the module's flow runs (a new store per run costs its migrations)."""
    home = tmp_path_factory.mktemp("flowhome")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SYNTHGATE_HOME", str(home / "home"))
        patch.setenv("SYNTHGATE_EXPECTATIONS_DIR", str(home / "expectations"))
        patch.setenv("SYNTHGATE_MLFLOW_TRACKING_URI", f"sqlite:///{home / 'mlflow.db'}")
        yield home


def run_flow_expecting(error_type: type[Exception], spec_path: Path) -> Exception:
    from synthgate.flows.refresh import refresh_table

    with pytest.raises(error_type) as error:
        refresh_table(str(spec_path), trigger="test")
    return error.value


@pytest.mark.parametrize(
    ("case", "error_type", "named", "ledger"),
    [
        ("missing-target-column", SpecError, "target_column 'no_such_column' is not a column", []),
        ("unknown-declared-column", SpecError, "['ghost']", []),
        ("empty-table", DataValidationError, "expect_table_row_count_to_be_between", ["failed"]),
        ("all-null-column", DataValidationError, "expect_column_values_to_not_be_null(b)", ["failed"]),
        ("one-row", DataValidationError, "at least 50 are needed", ["failed"]),
        ("delta-at-or-above-1-over-rows", PrivacyBudgetError, "is not below 1/rows", ["failed"]),
    ],
)
def test_flow_fails_cleanly_publishes_nothing(
    prefect_harness, flow_env: Path, pg_engine: sa.Engine, pg_schema: str, case: str, error_type, named: str, ledger
) -> None:
    frame = small()
    overrides: dict = {"name": f"rel-{case}"}
    if case == "missing-target-column":
        overrides["target_column"] = "no_such_column"
    elif case == "unknown-declared-column":
        overrides["columns"] = {"ghost": {"policy": "drop"}}
    elif case == "empty-table":
        frame = frame.head(0)
    elif case == "all-null-column":
        frame = frame.assign(b=pd.Series([None] * len(frame), dtype=object))
    elif case == "one-row":
        frame = frame.head(1)
    elif case == "delta-at-or-above-1-over-rows":
        overrides["privacy"] = {"epsilon": 4.0, "delta": 0.009}  # 300 rows: 1/rows is 0.0033
    load_frame(pg_engine, pg_schema, "src", frame, dtype={"b": sa.Text()})
    error = run_flow_expecting(error_type, write_spec(flow_env, spec_dict(pg_schema, **overrides), f"{case}.yaml"))
    assert_clear(error, named)
    assert "src_synthetic" not in tables_in(pg_engine, pg_schema)
    assert not [t for t in tables_in(pg_engine, pg_schema) if "__staging_" in t or "__v" in t]
    rows = governance.ledger_rows(governed(pg_engine, pg_schema))
    assert [r["status"] for r in rows] == ledger
    no_mechanism = case in ("empty-table", "all-null-column")  # the source suite stops it before any DP release
    for row in rows:  # a run whose DP mechanisms started counts its whole asked budget; each says why it failed
        spent = 0.0 if no_mechanism else row["epsilon_budget"]
        assert row["epsilon_spent"] == pytest.approx(spent) and row["finished_at"] is not None
        assert named.split(" ")[0] in (row["detail"] or "")
    assert governance.catalog_rows(governed(pg_engine, pg_schema)) == []


def test_a_bug_in_a_task_reaches_prefect_without_its_message(
    prefect_harness, flow_env: Path, pg_engine: sa.Engine, pg_schema: str, monkeypatch
) -> None:
    # a library error quoting a row, in a task: Prefect writes a failed task's exception message into its state and
    # its log, and the flow's state and ledger would pass it on
    from prefect import get_client
    from prefect.client.schemas.sorting import TaskRunSort

    import synthgate.tasks.validate

    secret = "Alice Smith 1984-02-03"

    def broken(*args: object, **kwargs: object) -> None:
        raise ValueError(f"could not convert {secret!r} to float")

    monkeypatch.setattr(synthgate.tasks.validate.validation, "validate_source", broken)
    load_frame(pg_engine, pg_schema, "src", small(), dtype={"b": sa.Text()})
    error = run_flow_expecting(UnexpectedError, write_spec(flow_env, spec_dict(pg_schema, name="rel-bug"), "bug.yaml"))
    assert_clear(error, "unexpected ValueError in validate_source")
    assert isinstance(error.original, ValueError)  # kept in this process: `synthgate --debug` prints it
    deadline = time.monotonic() + 180
    with get_client(sync_client=True) as client:
        while True:
            # the newest first: the session's server holds every earlier test's task runs, past one page of them;
            # the server records a task's states from its events, later (a minute later when its SQLite was locked)
            runs = client.read_task_runs(sort=TaskRunSort.EXPECTED_START_TIME_DESC, limit=200)
            states = [run.state.message or "" for run in runs if run.state is not None]
            if any("unexpected ValueError in validate_source" in m for m in states) or time.monotonic() > deadline:
                break
            time.sleep(2)
        logs = [log.message for log in client.read_logs()]
    assert any("unexpected ValueError in validate_source" in m for m in states)
    assert not [m for m in [*states, *logs] if "Alice" in m]
    assert [r["detail"] for r in governance.ledger_rows(governed(pg_engine, pg_schema))] == [one_line(error)]


# -- data shapes: the core end to end ----------------------------------------------------------------------------


def test_one_column_table_runs_and_publishes_nulls(pg_engine, pg_schema, expectations) -> None:
    load_frame(pg_engine, pg_schema, "src", small()[["a"]])
    run = core_refresh(make_spec(pg_schema), expectations, rows=300)
    with pg_engine.connect() as conn:
        count = conn.execute(sa.text(f'SELECT count(*) FROM "{pg_schema}".src_synthetic')).scalar()
    assert count == 300 and list(run.synthetic.columns) == ["a"]
    # no column pair: the pair-trends gate is not applicable (it was "measured nan" and rejected the table)
    train, holdout = run.extract.frame.iloc[:240], run.extract.frame.iloc[240:]
    scores = evaluate(
        train=train,
        holdout=holdout,
        synthetic=run.synthetic,
        columns=run.synthesizer.learned,
        target=None,
        synthetic_suite_failures=[],
        attacks=50,
    ).scores
    verdicts = {v.name: v for v in evaluate_gates(spec_from_dict(spec_dict(pg_schema)).gates, scores)}
    assert verdicts["column_pair_trends"].passed and "not applicable" in verdicts["column_pair_trends"].detail
    assert not [v.describe() for v in verdicts.values() if not v.measurable and not v.passed]


def test_constant_columns_stay_constant(pg_engine, pg_schema, expectations) -> None:
    load_frame(pg_engine, pg_schema, "src", small().assign(k=7, s="same", f=2.5))
    run = core_refresh(make_spec(pg_schema), expectations)
    # the released histograms keep a bin of pure noise beside the constant's in about 2% of fits (a tail window that
    # clears 3 sigma by chance), which then holds 6-9% of the synthetic values, and up to 29% (a local run) since a
    # model of two epochs draws its bins about evenly: the constant holds most of them
    assert (run.synthetic["k"].dropna() == 7).mean() > 0.6
    assert set(run.synthetic["s"].dropna()) <= {"same", RARE_LABEL}
    assert np.isclose(run.synthetic["f"].dropna(), 2.5, rtol=0.05).mean() > 0.6


def test_ten_thousand_categories_are_thresholded(pg_engine, pg_schema, expectations) -> None:
    n = 10_000
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"a": rng.integers(0, 50, n), "c": [f"cat-{i:05d}" for i in range(n)]})
    frame.loc[: n // 2, "c"] = "common"  # one frequent category, 5000 singletons
    load_frame(pg_engine, pg_schema, "src", frame)
    run = core_refresh(make_spec(pg_schema, columns={"c": {"policy": "categorical"}}), expectations, rows=500)
    released = set(run.synthetic["c"].dropna())
    assert released <= {"common", RARE_LABEL}, "a category held by one row was released"
    assert "common" in released


def test_unicode_and_emoji_categories_round_trip(pg_engine, pg_schema, expectations) -> None:
    rng = np.random.default_rng(2)
    values = ["café", "日本語", "😀🎉", "Zürich\u200b", "quote\"and'apostrophe", "comma, separated", "new\nline"]
    load_frame(pg_engine, pg_schema, "src", small().assign(u=rng.choice(values, N)))
    run = core_refresh(
        make_spec(pg_schema, columns={"u": {"policy": "categorical", "categories": values}}), expectations
    )
    with pg_engine.connect() as conn:
        published = {r[0] for r in conn.execute(sa.text(f'SELECT DISTINCT u FROM "{pg_schema}".src_synthetic'))}
    assert published - {None} <= set(values) and len(published - {None}) >= 3
    assert set(run.synthetic["u"].dropna()) == published - {None}


def test_nan_and_infinity_in_numerics(pg_engine, pg_schema, expectations) -> None:
    rng = np.random.default_rng(3)
    f = rng.normal(size=N)
    f[:30], f[30:60], f[60:90] = np.inf, -np.inf, np.nan
    load_frame(pg_engine, pg_schema, "src", small().assign(f=f))
    with pg_engine.begin() as conn:  # pandas writes NaN as NULL: make it PostgreSQL's own NaN
        conn.execute(sa.text(f"""UPDATE "{pg_schema}".src SET f = 'NaN' WHERE f IS NULL"""))
    with pg_engine.connect() as conn:  # PostgreSQL holds the special values themselves
        specials = conn.execute(
            sa.text(f"""SELECT count(*) FROM "{pg_schema}".src WHERE f IN ('Infinity', '-Infinity', 'NaN')""")
        ).scalar()
    assert specials == 90
    run = core_refresh(make_spec(pg_schema), expectations)
    values = run.synthetic["f"].dropna().to_numpy()
    assert np.isfinite(values).all() and np.abs(values).max() < 100


def test_extreme_magnitudes_stay_finite_and_bounded(pg_engine, pg_schema, expectations) -> None:
    rng = np.random.default_rng(4)
    frame = small().assign(
        big=rng.choice([1e300, -1e300, 1e-300, 0.0, 5.0], N),
        huge_int=rng.choice([2**62, -(2**62), 0, 1], N),
    )
    load_frame(pg_engine, pg_schema, "src", frame)
    run = core_refresh(make_spec(pg_schema), expectations)
    bounds = {"big": 1e300 * 10**0.5, "huge_int": 2.0**63}  # the public grid's bin above 1e300 (two a decade); int64
    for column, bound in bounds.items():
        values = run.synthetic[column].dropna().to_numpy(dtype=float)
        assert np.isfinite(values).all() and np.abs(values).max() <= bound
    with pg_engine.connect() as conn:  # what was published is what was sampled (no overflow, no clipping at 1e15)
        published = conn.execute(
            sa.text(f'SELECT max(abs(big)), max(abs(huge_int)) FROM "{pg_schema}".src_synthetic')
        ).one()
    assert published[0] == pytest.approx(np.abs(run.synthetic["big"]).max())
    assert published[1] == np.abs(run.synthetic["huge_int"].dropna().astype("int64")).max()


def refused_sqlite_source(
    tmp_path: Path, expectations, column: str, sql_type: str, values: list[object]
) -> tuple[DataValidationError, sa.Engine]:
    """(the error, the warehouse) of a refresh of a SQLite table of 600 rows: ``a`` INTEGER and ``column`` of
    ``sql_type`` (empty: untyped), cycling through ``values``; the refresh must fail with a
    :class:`DataValidationError`."""
    url = f"sqlite:///{tmp_path / 'source.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE TABLE src (a INTEGER, {column} {sql_type})"))
        rows = [{"a": i % 40, "m": values[i % len(values)]} for i in range(600)]
        conn.execute(sa.text("INSERT INTO src VALUES (:a, :m)"), rows)
    data = spec_dict("x")
    data["source"] = {"url": url, "table": "src"}
    data["target"] = {"url": url, "table": "src_synthetic"}
    with pytest.raises(DataValidationError) as error:
        core_refresh(spec_from_dict(data), expectations)
    return error.value, engine


def test_mixed_type_object_column_is_named(tmp_path: Path, expectations) -> None:
    # an untyped SQLite column: ints, strings and floats side by side
    error, engine = refused_sqlite_source(tmp_path, expectations, "m", "", [1, "a", 2.5, None, "b", 3])
    assert_clear(error, "expect_column_values_to_be_in_type_list(m)")
    assert "src_synthetic" not in sa.inspect(engine).get_table_names()


def test_text_under_a_type_sqlite_reads_as_numbers_is_one_line(tmp_path: Path, expectations) -> None:
    # SQLite reflects TIMESTAMPTZ as NUMERIC: its reader failed on the text with a bare TypeError and a traceback
    stamps = ["2021-03-04 05:06:07+02:00", "2021-03-05 05:06:07+02:00"]
    error, _ = refused_sqlite_source(tmp_path, expectations, "at", '"TIMESTAMP WITH TIME ZONE"', stamps)
    assert_clear(error, "reading 'src' failed (TypeError)", "cast the columns to their types in a view")
    assert "2021" not in str(error)


def test_offsets_in_a_column_without_a_time_zone_are_named(tmp_path: Path, expectations) -> None:
    # a DATETIME column (no time zone) whose text holds UTC offsets on some rows
    stamps = ["2021-03-04 05:06:07+02:00", "2021-03-04 05:06:07", None]
    error, _ = refused_sqlite_source(tmp_path, expectations, "at", "DATETIME", stamps)
    assert_clear(error, "column 'at'", "holds values with UTC offsets")
    assert "2021" not in str(error) and "outside 1677" not in str(error)


@pytest.mark.parametrize(
    "values",
    [
        [datetime(2021, 3, 1, tzinfo=timezone(timedelta(hours=1))), datetime(2021, 6, 1, tzinfo=UTC_PLUS_2), None],
        ["2021-03-01 00:00:00+01:00", "2021-06-01 00:00:00+02:00", None],  # a driver that hands back text
        ["2021-03-01 00:00:00+01:00", "2021-06-01 00:00:00", None],
        ["2021-06-01 00:00:00", "2021-03-01T00:00:00Z", None],
    ],
)
def test_offsets_are_named_whatever_form_the_driver_gives_them(values) -> None:
    naive = Column("at", ColumnKind.DATETIME, "DATETIME")
    with pytest.raises(DataValidationError, match="holds values with UTC offsets"):
        _normalise_dtypes(pd.DataFrame({"at": pd.Series(values, dtype=object)}), [naive])
    zoned = Column("at", ColumnKind.DATETIME, "TIMESTAMP WITH TIME ZONE", timezone=True)
    read = _normalise_dtypes(pd.DataFrame({"at": pd.Series(values, dtype=object)}), [zoned])["at"]
    assert str(read.dt.tz) == "UTC" and read.notna().sum() == 2  # a column with a zone reads every one, in UTC


@pytest.mark.parametrize(
    ("values", "refusal"),
    [
        # zoned datetimes of one offset: pandas types the chunk tz-aware before any check of the values
        ([datetime(2021, 3, 1, tzinfo=UTC_PLUS_2), datetime(2021, 6, 1, tzinfo=UTC_PLUS_2)], "UTC offsets"),
        (["2021-03-01 10:00:00 UTC", None], "UTC offsets"),
        (["2021-03-01 10:00:00 GMT+2", None], "UTC offsets"),
        (["2021-03-01 10:00:00+02:00 ", None], "UTC offsets"),
        (["01/02/2020", "13/02/2020"], "no ISO 8601 date"),  # a guessed format read one as January, one as February
    ],
)
def test_datetimes_a_naive_column_cannot_hold_as_they_are_are_refused(values, refusal) -> None:
    naive = Column("at", ColumnKind.DATETIME, "DATETIME")
    frame = pd.DataFrame.from_records([(v,) for v in values], columns=["at"])  # typed as the extract types a chunk
    with pytest.raises(DataValidationError, match=refusal) as error:
        _normalise_dtypes(frame, [naive])
    assert "2020" not in str(error.value) and "2021" not in str(error.value)


def test_time_zone_aware_and_naive_datetimes(pg_engine, pg_schema, expectations) -> None:
    rng = np.random.default_rng(5)
    seconds = pd.to_timedelta(rng.integers(0, 2 * 10**7, N), unit="s")
    frame = small().assign(
        naive=pd.Timestamp("2021-01-01") + seconds,
        aware=pd.Timestamp("2021-01-01", tz="Europe/Paris") + seconds,  # crosses a DST change
    )
    load_frame(pg_engine, pg_schema, "src", frame)
    run = core_refresh(make_spec(pg_schema), expectations)
    assert run.synthetic["aware"].dt.tz is not None and run.synthetic["naive"].dt.tz is None
    with pg_engine.connect() as conn:
        types = dict(
            conn.execute(
                sa.text(
                    "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = :s "
                    "AND table_name = 'src_synthetic'"
                ),
                {"s": pg_schema},
            ).all()
        )
    assert types["aware"] == "timestamp with time zone" and types["naive"] == "timestamp without time zone"
    # the naive stamps keep their place: most within two months of the real ones (Jan to Aug 2021), the median inside.
    # Not 90%: about one fit in 300 at this noise grows the range over a false stretch of months past the data
    # (README, the range release), and a model of two epochs draws its bins about evenly (a CI run: 69%)
    naive = run.synthetic["naive"].dropna()
    assert naive.between(pd.Timestamp("2020-11-01"), pd.Timestamp("2021-10-01")).mean() > 0.6
    assert pd.Timestamp("2021-01-01") < naive.median() < pd.Timestamp("2021-08-20")


def test_columns_equal_but_for_case_or_spaces_stay_apart(pg_engine, pg_schema, expectations) -> None:
    rng = np.random.default_rng(6)
    frame = pd.DataFrame(
        {"Age": rng.integers(0, 40, N), "age": rng.integers(60, 99, N), "AGE ": rng.choice(["p", "q"], N)}
    )
    load_frame(pg_engine, pg_schema, "src", frame)
    run = core_refresh(make_spec(pg_schema), expectations)
    assert list(run.synthetic.columns) == ["Age", "age", "AGE "]
    assert run.synthetic["Age"].median() < 45 < run.synthetic["age"].median()  # not swapped, not merged


def test_reserved_words_spaces_and_colons_in_names(pg_engine, pg_schema, expectations) -> None:
    rng = np.random.default_rng(7)
    frame = pd.DataFrame(
        {
            "select": rng.integers(0, 40, N),
            "from": rng.choice(["p", "q"], N),
            "user name": rng.choice(["p", "q"], N),
            "a:b": rng.integers(0, 3, N),
            "order": rng.random(N),
        }
    )
    load_frame(pg_engine, pg_schema, "select table", frame)
    run = core_refresh(make_spec(pg_schema, table="select table", target="group by:x"), expectations)
    assert list(run.synthetic.columns) == list(frame.columns)
    assert "group by:x" in tables_in(pg_engine, pg_schema)


@pytest.mark.parametrize("hostile", ["x; DROP TABLE y", 'x"; DROP TABLE y; --', "x'); DROP TABLE y; --"])
def test_hostile_table_names_do_no_harm(pg_engine, pg_schema, expectations, hostile: str) -> None:
    load_frame(pg_engine, pg_schema, "y", small().head(10))
    load_frame(pg_engine, pg_schema, hostile, small())
    run = core_refresh(make_spec(pg_schema, table=hostile, target=hostile + " synthetic"), expectations)
    assert len(run.extract.frame) == N
    assert {"y", hostile, hostile + " synthetic"} <= tables_in(pg_engine, pg_schema)
    with pg_engine.connect() as conn:
        assert conn.execute(sa.text(f'SELECT count(*) FROM "{pg_schema}".y')).scalar() == 10


# -- schema drift ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("alter", "named"),
    [
        ("ALTER TABLE {t} ADD COLUMN surprise TEXT DEFAULT 'x'", "column 'surprise' was added"),
        ("ALTER TABLE {t} DROP COLUMN b", "column 'b' was removed"),
        ("ALTER TABLE {t} ALTER COLUMN a TYPE TEXT", "column 'a' changed from integer to categorical"),
    ],
    ids=["added", "removed", "retyped"],
)
def test_schema_drift_is_named(pg_engine, pg_schema, expectations, alter: str, named: str) -> None:
    load_frame(pg_engine, pg_schema, "src", small())
    spec = make_spec(pg_schema)
    first = extract_table(spec.source)
    load_or_create_source_suite(
        expectations, spec, first.columns, effective_policies(propose(spec, first.frame, first.columns))
    )
    with pg_engine.begin() as conn:
        conn.execute(sa.text(alter.format(t=f'"{pg_schema}".src')))
    drifted = extract_table(spec.source)
    with pytest.raises(DataValidationError) as error:
        validate_source(
            expectations,
            spec,
            drifted.frame,
            drifted.columns,
            effective_policies(propose(spec, drifted.frame, drifted.columns)),
        )
    assert_clear(error.value, named, "schema drift")


# -- a table read in chunks --------------------------------------------------------------------------------------


def test_large_table_is_streamed_in_chunks(pg_engine, pg_schema) -> None:
    """The extract never asks the driver for the whole table: a server-side cursor is fetched chunk by chunk.

    While the extract runs, PostgreSQL shows its session's last statement as a ``FETCH FORWARD <chunk>``
    on a named cursor, and the rows arrive chunk_size at a time; the fingerprint does not depend on chunking.
    """
    n, chunk = 20_000, 1_000
    rng = np.random.default_rng(8)
    load_frame(
        pg_engine, pg_schema, "big", pd.DataFrame({"a": rng.integers(0, 1000, n), "t": rng.choice(["p", "q"], n)})
    )
    table = make_spec(pg_schema, table="big").source
    seen: list[int] = []
    statements: list[str] = []

    def progress(rows: int) -> None:
        seen.append(rows)
        if len(seen) == 3:
            with pg_engine.connect() as conn:
                statements.extend(
                    r[0]
                    for r in conn.execute(
                        sa.text(
                            "SELECT query FROM pg_stat_activity "
                            "WHERE pid <> pg_backend_pid() AND query ILIKE 'FETCH FORWARD%'"
                        )
                    )
                )

    streamed = extract_table(table, chunk_size=chunk, progress=progress)
    assert seen == list(range(chunk, n + 1, chunk))
    assert any(f"FETCH FORWARD {chunk}" in s for s in statements), statements
    whole = extract_table(table, chunk_size=n)
    assert streamed.fingerprint.digest == whole.fingerprint.digest
    assert streamed.frame.memory_usage(deep=True).sum() < 5 * 1024 * 1024


def test_chunk_size_below_the_floor_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as error:
        load_spec(write_spec(tmp_path, spec_dict("public", chunk_size=10)))
    assert_clear(error.value, "chunk_size")


def test_spec_as_a_list_or_garbage_yaml(tmp_path: Path) -> None:
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(SpecError, match="a YAML mapping"):
        load_spec(tmp_path / "list.yaml")
    (tmp_path / "bad.yaml").write_text("name: [unclosed\n")
    with pytest.raises(SpecError, match="not valid YAML"):
        load_spec(tmp_path / "bad.yaml")
    with pytest.raises(SpecError, match="not found"):
        load_spec(tmp_path / "missing.yaml")
