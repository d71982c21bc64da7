"""Each metric on a case with a known answer, so that a broken metric fails."""

import numpy as np
import pandas as pd
import pytest

from synthgate.evaluation.fidelity import quality
from synthgate.evaluation.privacy import dcr
from synthgate.evaluation.utility import tstr
from synthgate.gates import Scores, enforce, evaluate_gates
from synthgate.errors import GateFailedError
from synthgate.schema import Column, ColumnKind
from synthgate.spec import Gates

COLUMNS = [
    Column("age", ColumnKind.INTEGER, ""),
    Column("income", ColumnKind.FLOAT, ""),
    Column("plan", ColumnKind.CATEGORICAL, ""),
    Column("churned", ColumnKind.BOOLEAN, ""),
]


@pytest.fixture(scope="module")
def halves(people):
    table = people[[c.name for c in COLUMNS]]
    return table.iloc[:1000].reset_index(drop=True), table.iloc[1000:].reset_index(drop=True)


def test_identical_tables_score_full_quality(halves):
    train, _ = halves
    assert quality(train, train, COLUMNS).quality > 0.99


def test_a_shifted_column_loses_its_shape(halves):
    train, holdout = halves
    shifted = holdout.assign(age=holdout["age"] + 30)
    fid = quality(train, shifted, COLUMNS)
    assert fid.per_column["age"] < 0.6
    assert fid.per_column["income"] > 0.9


def test_copies_of_training_rows_are_caught(halves):
    train, holdout = halves
    result = dcr(train, holdout, train.sample(500, random_state=0), COLUMNS)
    assert result.share_closer_to_training > 0.95
    assert result.exact_copies_training == pytest.approx(1.0)


def test_fresh_rows_from_the_same_distribution_sit_at_one_half(people):
    table = people[[c.name for c in COLUMNS]]
    train, holdout, fresh = table.iloc[:600], table.iloc[600:1200], table.iloc[1200:1800]
    result = dcr(train, holdout, fresh, COLUMNS)
    assert 0.4 < result.share_closer_to_training < 0.6


def test_tstr_on_real_rows_equals_trtr_and_shuffled_labels_lose(halves):
    train, holdout = halves
    same = tstr(train, train, holdout, COLUMNS, "churned")
    assert same.metric == "roc_auc"
    assert same.tstr == pytest.approx(same.trtr)
    assert same.trtr > 0.6
    shuffled = train.assign(churned=np.random.default_rng(0).permutation(train["churned"].to_numpy()))
    assert tstr(train, shuffled, holdout, COLUMNS, "churned").tstr < same.tstr - 0.05


def test_numeric_target_uses_r2(halves):
    train, holdout = halves
    result = tstr(train, train, holdout, COLUMNS, "income")
    assert result.metric == "r2"
    assert result.tstr == pytest.approx(result.trtr) and result.trtr > 0.0


def scores(**overrides) -> Scores:
    base = dict(quality=0.9, column_shapes=0.95, column_pair_trends=0.85, dcr_share=0.5, exact_copies_training=0.0,
                exact_copies_holdout=0.0, synthetic_suite_passed=True, utility_metric="roc_auc", tstr=0.85, trtr=0.9)
    return Scores(**(base | overrides))


def test_gates_pass_and_fail_with_the_gap_named():
    assert all(v.passed for v in evaluate_gates(Gates(), scores()))
    verdicts = evaluate_gates(Gates(min_quality=0.95), scores())
    with pytest.raises(GateFailedError, match=r"quality FAILED: measured 0.9000, required >= 0.9500 \(off by 0.0500\)"):
        enforce(verdicts)


def test_suite_failures_are_named_in_the_gate():
    verdicts = evaluate_gates(Gates(), scores(synthetic_suite_passed=False, synthetic_suite_failures=("expect_x(age)",)))
    with pytest.raises(GateFailedError, match=r"expect_x\(age\)"):
        enforce(verdicts)
