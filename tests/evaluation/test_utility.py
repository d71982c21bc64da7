import numpy as np
import pandas as pd
import pytest

from synthgate.evaluation.utility import tstr


def test_real_rows_as_synthetic_equal_trtr_and_shuffled_labels_lose(thirds, columns):
    train, holdout, _ = thirds
    same = tstr(train=train, holdout=holdout, synthetic=train, columns=columns, target="churned")
    assert same.metric == "roc_auc"
    assert same.tstr == pytest.approx(same.trtr) and same.tstr_linear == pytest.approx(same.trtr_linear)
    assert same.trtr > 0.6 and same.trtr_linear > 0.6 and same.gap == pytest.approx(0.0)
    shuffled = train.assign(churned=np.random.default_rng(0).permutation(train["churned"].to_numpy()))
    lost = tstr(train=train, holdout=holdout, synthetic=shuffled, columns=columns, target="churned")
    assert lost.tstr < same.tstr - 0.05 and lost.tstr_linear < same.tstr_linear - 0.05
    assert lost.gap > 0.05


def test_numeric_target_uses_r2_for_both_models(thirds, columns):
    train, holdout, _ = thirds
    result = tstr(train=train, holdout=holdout, synthetic=train, columns=columns, target="income")
    assert result.metric == "r2"
    assert result.tstr == pytest.approx(result.trtr)
    assert result.tstr_linear == pytest.approx(result.trtr_linear) and result.trtr_linear > 0.05
    shuffled = train.assign(income=np.random.default_rng(0).permutation(train["income"].to_numpy()))
    assert (
        tstr(train=train, holdout=holdout, synthetic=shuffled, columns=columns, target="income").tstr_linear
        < result.tstr_linear - 0.05
    )


@pytest.mark.parametrize("target", ["churned", "income"])
def test_an_all_null_synthetic_column_is_left_out_not_a_crash(thirds, columns, target):
    train, holdout, _ = thirds
    numeric = next(c.name for c in columns if c.kind.is_numeric and c.name != target)
    lost = train.assign(**{numeric: np.nan})
    result = tstr(train=train, holdout=holdout, synthetic=lost, columns=columns, target=target)
    assert np.isfinite(result.tstr) and np.isfinite(result.tstr_linear)
    assert (
        result.tstr <= tstr(train=train, holdout=holdout, synthetic=train, columns=columns, target=target).tstr + 0.02
    )


def test_a_target_of_several_classes_is_scored_class_by_class_against_the_rest():
    # hi/lo follow x; a class of 0.2% of the rows that a DP generator folds into RARE: scored as the rarest class
    # against the rest, both models read 0.5 and the gates refused a table that keeps hi/lo whole
    from synthgate.schema import Column, ColumnKind

    rng = np.random.default_rng(0)

    def frame(n: int, rare: str) -> pd.DataFrame:
        x = rng.normal(size=n)
        y = np.where(x > 0, "hi", "lo").astype(object)
        y[rng.random(n) < 0.002] = rare
        return pd.DataFrame({"x": x, "y": y})

    columns = [Column("x", ColumnKind.FLOAT, "FLOAT"), Column("y", ColumnKind.CATEGORICAL, "TEXT")]
    result = tstr(
        train=frame(20_000, "other"),
        holdout=frame(20_000, "other"),
        synthetic=frame(20_000, "_RARE_"),
        columns=columns,
        target="y",
    )
    assert result.metric == "roc_auc" and result.trtr > 0.7 and result.tstr > 0.65  # hi and lo near 1, other 0.5
