"""Column Pair Trends on integer codes give SDMetrics' own scores, pair by pair, on every kind of column and edge."""

import math

import numpy as np
import pandas as pd
import pytest
from sdmetrics.reports.single_table._properties import ColumnPairTrends

from synthgate.evaluation import fidelity
from synthgate.evaluation.pair_trends import pair_trends
from synthgate.schema import Column, ColumnKind

COLUMNS = [
    Column("age", ColumnKind.INTEGER, ""),
    Column("income", ColumnKind.FLOAT, ""),  # tied to age, a fifth NULL
    Column("joined", ColumnKind.DATETIME, ""),  # tied to age, some NaT
    Column("grade", ColumnKind.CATEGORICAL, ""),  # tied to income
    Column("state", ColumnKind.CATEGORICAL, ""),  # 50 values, independent
    Column("code", ColumnKind.CATEGORICAL, ""),  # a value per row (Cramer's V near 1 with anything)
    Column("member", ColumnKind.BOOLEAN, ""),  # with NULLs
    Column("constant", ColumnKind.INTEGER, ""),  # one value: SDMetrics' correlation raises
    Column("sparse", ColumnKind.FLOAT, ""),  # NULL but for three rows
]


def table(rows: int, seed: int, *, drift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 90, rows)
    income = np.where(rng.random(rows) < 0.2, np.nan, age * 900 + rng.normal(0, 8000 + drift * 20000, rows))
    joined = pd.to_datetime("2020-01-01") + pd.to_timedelta(age * 3 + rng.integers(0, 40, rows), unit="D")
    grade = np.where(np.nan_to_num(income) > 50_000, "high", np.where(rng.random(rows) < 0.5 + drift, "low", "mid"))
    sparse = np.full(rows, np.nan)
    sparse[:3] = [1.0, 2.0, 5.0 + drift]
    return pd.DataFrame(
        {
            "age": age,
            "income": income,
            "joined": pd.Series(joined).where(rng.random(rows) > 0.05),
            "grade": grade,
            "state": rng.choice([f"s{i}" for i in range(50)], rows),
            "code": [f"c{seed}-{i}" for i in range(rows)],
            "member": pd.array(np.where(rng.random(rows) < 0.1, None, rng.random(rows) < 0.4 + drift), "boolean"),
            "constant": np.full(rows, 7),
            "sparse": sparse,
        }
    )


def scored_as_sdmetrics_scores(real, synthetic, columns, thresholds):
    """Our pair trends, asserted equal to SDMetrics' ``ColumnPairTrends`` pair by pair and as a whole."""
    reference = ColumnPairTrends()
    reference.real_correlation_threshold, reference.real_association_threshold = thresholds
    expected = reference.get_score(real, synthetic, fidelity.sdmetrics_metadata(columns))
    ours = pair_trends(
        real, synthetic, columns, correlation_threshold=thresholds[0], association_threshold=thresholds[1]
    )
    details = reference.details.set_index(["Column 1", "Column 2"])["Score"]
    assert len(ours.scores) == len(details)
    for pair, score in details.items():
        assert (math.isnan(ours.scores[pair]), ours.scores[pair]) == pytest.approx((pd.isna(score), score), nan_ok=True)
    assert ours.score == pytest.approx(expected, nan_ok=True)
    return ours


@pytest.mark.parametrize("thresholds", [(0.5, 0.3), (0.0, 0.0)], ids=["sdmetrics-defaults", "every-pair"])
def test_every_pair_scores_as_sdmetrics_scores_it(thresholds):
    real = fidelity._prepare(table(3000, 0), COLUMNS, 20_000, 0)
    synthetic = fidelity._prepare(table(2500, 1, drift=0.2), COLUMNS, 20_000, 0)
    ours = scored_as_sdmetrics_scores(real, synthetic, COLUMNS, thresholds)
    assert len(ours.scores) == 36
    scored = [s for s in ours.scores.values() if not math.isnan(s)]
    assert 5 < len(scored) < 36 and min(scored) < 0.5 < max(scored)  # some pairs drop out, scores spread


def test_dates_past_2262_and_a_cramers_v_at_the_threshold_score_as_in_sdmetrics():
    # a year-9999 sentinel does not fit in nanoseconds; real counts [[1, 1], [4, 1]] have Cramer's V of exactly 0.3
    columns = [
        Column("t", ColumnKind.DATETIME, ""),
        Column("x", ColumnKind.FLOAT, ""),
        Column("a", ColumnKind.CATEGORICAL, ""),
        Column("b", ColumnKind.CATEGORICAL, ""),
    ]
    days = ["2020-01-01", "2020-06-01", "2021-03-01", "2022-01-01", "2023-01-01", "2024-05-01", "9999-12-31"]
    dates = np.array(days, dtype="datetime64[s]")
    real = pd.DataFrame(
        {"t": dates, "x": [1.0, 2.0, 3.0, 5.0, 4.0, 6.0, 9.0], "a": list("ppqqqqq"), "b": list("uvuuuuv")}
    )
    synthetic = pd.DataFrame(
        {"t": dates[::-1], "x": [2.0, 1.0, 3.0, 4.0, 5.0, 7.0, 6.0], "a": list("pqqpqqp"), "b": list("vuvuuvu")}
    )
    for thresholds in ((0.5, 0.3), (0.0, 0.0)):
        scored_as_sdmetrics_scores(real, synthetic, columns, thresholds)
    assert math.isnan(pair_trends(real, synthetic, columns).scores[("a", "b")])  # V = 0.3 is not above 0.3


def test_every_pair_is_the_thresholds_of_zero_without_scoring_again():
    real = fidelity._prepare(table(3000, 0), COLUMNS, 20_000, 0)
    synthetic = fidelity._prepare(table(2500, 1, drift=0.2), COLUMNS, 20_000, 0)
    every = pair_trends(real, synthetic, COLUMNS).every_pair()
    zero = pair_trends(real, synthetic, COLUMNS, correlation_threshold=0.0, association_threshold=0.0)
    assert every.counted == zero.counted and not all(pair_trends(real, synthetic, COLUMNS).counted.values())
    assert list(every.scores) == list(zero.scores)
    assert [every.scores[p] for p in zero.scores] == pytest.approx(list(zero.scores.values()), nan_ok=True)
    assert every.score == pytest.approx(zero.score)
