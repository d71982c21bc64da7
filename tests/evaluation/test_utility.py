import numpy as np
import pytest

from synthgate.evaluation.utility import tstr


def test_real_rows_as_synthetic_equal_trtr_and_shuffled_labels_lose(thirds, columns):
    train, holdout, _ = thirds
    same = tstr(train, train, holdout, columns, "churned")
    assert same.metric == "roc_auc"
    assert same.tstr == pytest.approx(same.trtr) and same.tstr_linear == pytest.approx(same.trtr_linear)
    assert same.trtr > 0.6 and same.trtr_linear > 0.6 and same.gap == pytest.approx(0.0)
    shuffled = train.assign(churned=np.random.default_rng(0).permutation(train["churned"].to_numpy()))
    lost = tstr(train, shuffled, holdout, columns, "churned")
    assert lost.tstr < same.tstr - 0.05 and lost.tstr_linear < same.tstr_linear - 0.05
    assert lost.gap > 0.05


def test_numeric_target_uses_r2_for_both_models(thirds, columns):
    train, holdout, _ = thirds
    result = tstr(train, train, holdout, columns, "income")
    assert result.metric == "r2"
    assert result.tstr == pytest.approx(result.trtr)
    assert result.tstr_linear == pytest.approx(result.trtr_linear) and result.trtr_linear > 0.05
    shuffled = train.assign(income=np.random.default_rng(0).permutation(train["income"].to_numpy()))
    assert tstr(train, shuffled, holdout, columns, "income").tstr_linear < result.tstr_linear - 0.05
