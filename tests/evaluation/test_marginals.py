import numpy as np
import pandas as pd
import pytest

from synthgate.evaluation.marginals import marginal_tvd
from synthgate.schema import Column, ColumnKind


def test_identical_tables_have_zero_distance(thirds, columns):
    train, _, _ = thirds
    result = marginal_tvd(train=train, holdout=train, synthetic=train, columns=columns)
    for order in (1, 2, 3):
        assert result.orders[order].synthetic_mean == pytest.approx(0.0)
        assert result.orders[order].holdout_mean == pytest.approx(0.0)


def test_an_independent_sample_scores_like_the_holdout(thirds, columns):
    train, holdout, fresh = thirds
    result = marginal_tvd(train=train, holdout=holdout, synthetic=fresh, columns=columns)
    for order in (1, 2, 3):
        o = result.orders[order]
        assert 0 < o.synthetic_mean < 0.5
        assert o.synthetic_mean == pytest.approx(o.holdout_mean, rel=0.35)
    assert result.orders[1].synthetic_mean < result.orders[2].synthetic_mean < result.orders[3].synthetic_mean


def test_a_shifted_column_shows_in_its_own_marginals_only(thirds, columns):
    train, holdout, fresh = thirds
    result = marginal_tvd(train=train, holdout=holdout, synthetic=fresh.assign(age=fresh["age"] + 30), columns=columns)
    synth, hold = result.per_column["age"]
    assert synth > 0.4 and hold < 0.15
    assert result.per_column["plan"][0] < 0.1
    assert result.per_pair[("age", "plan")][0] > 0.4 > result.per_pair[("income", "plan")][0]


def test_shuffling_columns_apart_keeps_the_marginals_and_loses_the_joint():
    rng = np.random.default_rng(0)
    columns = [
        Column("a", ColumnKind.CATEGORICAL, ""),
        Column("b", ColumnKind.CATEGORICAL, ""),
        Column("x", ColumnKind.FLOAT, ""),
    ]

    def table(n):
        a = rng.choice(["p", "q", "r", "s"], n)
        return pd.DataFrame({"a": a, "b": a, "x": rng.normal(size=n)})  # b copies a: a perfect dependency

    train, holdout, fresh = table(2000), table(1000), table(1000)
    shuffled = fresh.assign(b=rng.permutation(fresh["b"].to_numpy()))
    result = marginal_tvd(train=train, holdout=holdout, synthetic=shuffled, columns=columns)
    assert result.per_column["b"][0] < 0.06 and result.per_column["b"][1] < 0.06
    synth, hold = result.per_pair[("a", "b")]
    assert synth == pytest.approx(0.75, abs=0.05) and hold < 0.06  # independent a, b: 3/4 of the mass moves
    assert result.per_pair[("a", "x")][0] < 0.15


def test_triples_are_sampled_with_a_seed(thirds, columns):
    train, holdout, fresh = thirds
    a = marginal_tvd(train=train, holdout=holdout, synthetic=fresh, columns=columns, max_triples=5, seed=3)
    b = marginal_tvd(train=train, holdout=holdout, synthetic=fresh, columns=columns, max_triples=5, seed=3)
    assert a.orders[3].marginals == 5 and a.orders[3] == b.orders[3]
