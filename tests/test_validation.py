import json

import numpy as np
import pandas as pd
import pytest

from synthgate.errors import DataValidationError, SpecError
from synthgate.schema import Column, ColumnKind
from synthgate.spec import ColumnPolicy, spec_from_dict
from synthgate.validation import build_synthetic_suite, check_spec_columns, suite_path, validate, validate_source

SPEC = spec_from_dict(
    {
        "name": "people",
        "source": {"url": "sqlite://", "table": "people"},
        "target": {"url": "sqlite://", "table": "people_synthetic"},
        "privacy": {"epsilon": 1, "delta": 1e-5},
        "columns": {
            "plan": {"policy": "categorical", "categories": ["basic", "plus", "premium"]},
            "age": {"min": 0, "max": 120},
        },
    }
)
COLUMNS = [
    Column("age", ColumnKind.INTEGER, "BIGINT"),
    Column("income", ColumnKind.FLOAT, "FLOAT"),
    Column("plan", ColumnKind.CATEGORICAL, "TEXT"),
    Column("signup", ColumnKind.DATETIME, "DATETIME"),
    Column("churned", ColumnKind.BOOLEAN, "BOOLEAN"),
]
POLICIES = {name: SPEC.policy(name) for name in ("plan", "age")}


def frame(n=50) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "age": rng.integers(18, 90, n),
            "income": rng.random(n) * 1000,
            "plan": rng.choice(["basic", "plus"], n),
            "signup": pd.date_range("2021-01-01", periods=n, freq="D"),
            "churned": rng.random(n) < 0.5,
        }
    )


def test_first_run_creates_the_suite_and_passes(tmp_path):
    outcome = validate_source(tmp_path, SPEC, frame(), COLUMNS, POLICIES)
    assert outcome.success and outcome.created_suite
    saved = json.loads(suite_path(tmp_path, SPEC, "source").read_text())
    assert saved["meta"]["column_kinds"]["age"] == "integer"
    assert not validate_source(tmp_path, SPEC, frame(), COLUMNS, POLICIES).created_suite


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        (COLUMNS[:-1], "'churned' was removed"),
        ([*COLUMNS, Column("extra", ColumnKind.FLOAT, "FLOAT")], "'extra' was added"),
        ([Column("age", ColumnKind.CATEGORICAL, "TEXT"), *COLUMNS[1:]], "'age' changed from integer to categorical"),
    ],
)
def test_schema_drift_stops_the_run(tmp_path, columns, message):
    validate_source(tmp_path, SPEC, frame(), COLUMNS, POLICIES)
    data = frame().reindex(columns=[c.name for c in columns])
    with pytest.raises(DataValidationError, match=message):
        validate_source(tmp_path, SPEC, data, columns, POLICIES)


def test_all_null_column_fails(tmp_path):
    data = frame().assign(income=np.nan)
    with pytest.raises(DataValidationError, match=r"expect_column_values_to_not_be_null\(income\)"):
        validate_source(tmp_path, SPEC, data, COLUMNS, POLICIES)


def test_empty_table_fails(tmp_path):
    with pytest.raises(DataValidationError, match="expect_table_row_count_to_be_between"):
        validate_source(tmp_path, SPEC, frame().head(0), COLUMNS, POLICIES)


def test_results_never_carry_real_values(tmp_path):
    data = frame().astype({"plan": object})
    data.loc[3, "plan"] = "CANARY-7f3a9"  # outside the declared domain
    data.loc[4, "age"] = 4242  # outside the declared range
    with pytest.raises(DataValidationError) as error:
        validate_source(tmp_path, SPEC, data, COLUMNS, POLICIES)
    assert "CANARY" not in str(error.value) and "4242" not in str(error.value)
    outcome = validate(data, json.loads(suite_path(tmp_path, SPEC, "source").read_text()))
    text = json.dumps(outcome.result)
    assert not outcome.success
    assert "CANARY-7f3a9" not in text and "4242" not in text


@pytest.mark.parametrize("real_rows", [True, False])
def test_an_expectation_that_raises_keeps_no_message_or_traceback(real_rows):
    # a user's suite may call any expectation, and a library's message can quote a value: GX keeps the exception's
    # message and traceback in the result (BOOLEAN_ONLY too), which goes to MLflow
    frame = pd.DataFrame({"n": pd.Series([1, "Bob-7f3a9", 3.5], dtype=object)})  # text among numbers: it raises
    between = {"column": "n", "min_value": 0, "max_value": 10}
    suite = {
        "name": "t",
        "meta": {},
        "expectations": [{"type": "expect_column_values_to_be_between", "kwargs": between}],
    }
    outcome = validate(frame, suite, real_rows=real_rows)
    infos = [info for r in outcome.result["results"] for info in r["exception_info"].values()]
    assert infos and all(info["raised_exception"] for info in infos)
    assert "Traceback" not in json.dumps(outcome.result) and "exception_traceback" not in json.dumps(outcome.result)


def test_synthetic_suite_checks_row_count_and_unique_ids():
    policies = POLICIES | {"age": ColumnPolicy(policy="fake", fake="id")}
    suite = build_synthetic_suite(SPEC, COLUMNS, policies, rows=50)
    assert validate(frame().assign(age=range(50)), suite).success
    outcome = validate(frame().assign(age=1), suite)
    assert "expect_column_values_to_be_unique(age)" in outcome.failed


def test_a_run_validates_against_the_stored_suite_and_never_rewrites_it(tmp_path):
    from synthgate.validation import validate_synthetic

    first = validate_synthetic(tmp_path, SPEC, frame(50), COLUMNS, POLICIES)
    path = suite_path(tmp_path, SPEC, "synthetic")
    stored = path.read_bytes()
    assert first.created_suite and first.success
    assert "row_count" not in stored.decode(), "a run's (noisy) row count must not reach the reviewed suite"
    second = validate_synthetic(tmp_path, SPEC, frame(80), COLUMNS, POLICIES)  # another run, another row count
    assert not second.created_suite and second.success and second.evaluated == first.evaluated
    assert path.read_bytes() == stored
    assert any(r["expectation_config"]["type"] == "expect_table_row_count_to_equal" for r in second.result["results"])


def test_a_synthetic_suite_that_no_longer_matches_the_spec_is_refused(tmp_path):
    from synthgate.validation import load_or_create_synthetic_suite, suite_differences, write_suites

    load_or_create_synthetic_suite(tmp_path, SPEC, COLUMNS, POLICIES)
    dropped = POLICIES | {"income": ColumnPolicy(policy="drop")}
    with pytest.raises(DataValidationError, match="synthgate suites SPEC --write"):
        load_or_create_synthetic_suite(tmp_path, SPEC, COLUMNS, dropped)
    assert suite_differences(tmp_path, SPEC, COLUMNS, dropped)[suite_path(tmp_path, SPEC, "synthetic")] == [
        "column 'income' was removed"
    ]
    write_suites(tmp_path, SPEC, COLUMNS, dropped)  # a reviewed change, on purpose
    assert load_or_create_synthetic_suite(tmp_path, SPEC, COLUMNS, dropped)[1] is False


def test_the_committed_suites_hold_no_row_count_of_a_run():
    from tests.conftest import ROOT

    for path in (ROOT / "expectations").glob("*.synthetic.json"):
        kinds = [e["type"] for e in json.loads(path.read_text())["expectations"]]
        assert "expect_table_row_count_to_equal" not in kinds, path


def test_a_column_the_budget_could_not_locate_is_waived_from_not_null_only(tmp_path):
    from synthgate.validation import validate_synthetic

    empty = frame(50).assign(income=np.nan)  # the generator samples an unlocatable figure as NULL
    refused = validate_synthetic(tmp_path, SPEC, empty, COLUMNS, POLICIES)
    assert not refused.success and "expect_column_values_to_not_be_null(income)" in refused.failed
    waived = validate_synthetic(tmp_path, SPEC, empty, COLUMNS, POLICIES, unreleased=["income"])
    assert waived.success and waived.evaluated == refused.evaluated - 1
    still = validate_synthetic(tmp_path, SPEC, empty.assign(plan=np.nan), COLUMNS, POLICIES, unreleased=["income"])
    assert "expect_column_values_to_not_be_null(plan)" in still.failed  # only the named column is waived


def test_a_faked_key_the_dp_count_shows_repeating_is_waived_from_uniqueness_only(tmp_path):
    from synthgate.validation import validate_synthetic

    columns = [Column("case_id", ColumnKind.INTEGER, "BIGINT"), *COLUMNS]
    policies = POLICIES | {"case_id": ColumnPolicy(policy="fake", fake="id")}
    rows = frame(50)
    rows.insert(0, "case_id", np.arange(50) // 2)  # each case held by two rows, as the generator fakes it
    refused = validate_synthetic(tmp_path, SPEC, rows, columns, policies)
    assert not refused.success and "expect_column_values_to_be_unique(case_id)" in refused.failed
    waived = validate_synthetic(tmp_path, SPEC, rows, columns, policies, repeating_keys=["case_id"])
    assert waived.success and waived.evaluated == refused.evaluated - 1
    nulls = validate_synthetic(
        tmp_path, SPEC, rows.assign(case_id=np.nan), columns, policies, repeating_keys=["case_id"]
    )
    assert "expect_column_values_to_not_be_null(case_id)" in nulls.failed  # its other expectations stand


def _one_gx_batch(frame: pd.DataFrame, suite_json: dict, result_format: dict) -> dict:
    """The reference: GX validating the whole suite on the whole frame in one batch."""
    import great_expectations as gx

    context = gx.get_context(mode="ephemeral")
    suite = gx.ExpectationSuite(**{k: v for k, v in suite_json.items() if k != "id"})
    batch = (
        context.data_sources.add_pandas("synthgate")
        .add_dataframe_asset("table")
        .add_batch_definition_whole_dataframe("whole")
        .get_batch(batch_parameters={"dataframe": frame})
    )
    return batch.validate(suite, result_format=result_format).to_json_dict()


@pytest.mark.parametrize(("real_rows", "cells"), [(False, 2_000_000), (True, 2_000_000), (False, 180)])
def test_a_wide_suite_validated_in_column_blocks_gives_gxs_one_batch_result(real_rows, cells, monkeypatch):
    """45 columns (three blocks of 20; with a cap of 180 cells, 15 of 3), one failing, one the frame lacks, one
    expectation with a row condition over another column and one on a column's position: GX's results for the whole
    suite on the whole frame, in the suite's order."""
    import great_expectations as gx
    from great_expectations.expectations.row_conditions import Column as Condition

    from synthgate import validation

    columns = [Column(f"x{i:02d}", ColumnKind.FLOAT, "FLOAT") for i in range(45)]
    suite = build_synthetic_suite(SPEC, columns, {}, rows=60)
    extra = [
        gx.expectations.ExpectColumnValuesToBeBetween(
            column="x03", min_value=0, max_value=0.5, row_condition=Condition("x40") > 0.5
        ),
        gx.expectations.ExpectColumnToExist(column="x30", column_index=29),  # x20 is dropped below: x30 is 30th
    ]
    suite["expectations"][5:5] = [e.configuration.to_json_dict() for e in extra]
    rng = np.random.default_rng(1)
    data = pd.DataFrame({c.name: rng.random(60) for c in columns}).drop(columns="x20")
    data["x07"] = np.nan  # all null: fails not-null
    blocks = validation._column_blocks(suite["expectations"], list(data.columns), validation.COLUMNS_PER_BATCH)
    assert len(blocks) == 4 and len(blocks[0][1]) == 6  # the table's 2, the two above, x20's 2
    monkeypatch.setattr(validation, "CELLS_PER_BATCH", cells)
    batches: list[int] = []
    original = validation._column_blocks
    monkeypatch.setattr(validation, "_column_blocks", lambda *a: batches.append(len(original(*a))) or original(*a))
    fmt = validation.SOURCE_RESULT_FORMAT if real_rows else validation.RESULT_FORMAT

    blocked = validate(data, suite, real_rows=real_rows)
    reference = _one_gx_batch(data, suite, fmt)
    assert [r["expectation_config"]["type"] for r in blocked.result["results"]] == [
        e["type"] for e in suite["expectations"]
    ]  # the suite's order

    def canonical(results):
        return sorted(json.dumps(r, sort_keys=True) for r in results)

    assert canonical(blocked.result["results"]) == canonical(validation._scrub(reference)["results"])
    assert blocked.result["statistics"] == reference["statistics"] and blocked.success is reference["success"] is False
    failed = set(blocked.failed)
    assert "expect_column_values_to_not_be_null(x07)" in failed and "expect_column_to_exist(x30)" not in failed
    assert "expect_table_columns_to_match_ordered_list(table)" in failed
    assert batches == [4 if cells > 180 else 16]  # the table's batch and 3 of 20 columns, or 15 of 3 (180 / 60 rows)


@pytest.mark.parametrize(
    ("name", "declared", "message"),
    [
        ("signup", {"policy": "categorical"}, "a DATETIME column is learned as such, not as categories"),
        ("churned", {"categories": [True, False]}, "a BOOLEAN column takes no declared categories"),
        ("age", {"categories": ["x", "y"]}, "the categories of a BIGINT column are numbers"),
        ("plan", {"min": 0, "max": 5}, "`min` and `max` bound a number column, and this one is TEXT"),
        ("signup", {"min": 0, "max": 5}, "`min` and `max` bound a number column, and this one is DATETIME"),
    ],
)
def test_a_policy_that_does_not_fit_its_column_s_type_is_refused_from_the_schema(name, declared, message):
    # found later, it failed the source suite after every row was read, or was ignored (date bounds as seconds)
    spec = spec_from_dict(SPEC.model_dump(mode="json", exclude_none=True) | {"columns": {name: declared}})
    with pytest.raises(SpecError, match=rf"columns\.{name} in the spec: {message}"):
        check_spec_columns(spec, COLUMNS)
    check_spec_columns(SPEC, COLUMNS)  # the fitting ones pass
