"""SDMetrics' Column Pair Trends, computed on integer codes: the same scores, 7 to 60 times faster.

SDMetrics 0.32 (``ColumnPairTrends``) scores every pair of columns: two numbers (or dates) by the difference of their
Pearson correlations (``CorrelationSimilarity``), any other pair by the total variation distance of their joint
distribution (``ContingencySimilarity``), a number then cut into the 10 bins of ``np.histogram_bin_edges`` over each
table's own values (``np.digitize``: NULL and the maximum share the bin past the last). With its default thresholds
only pairs whose real correlation (above 0.5) or Cramer's V (above 0.3) is strong count. It builds two pandas frames
and groups them for every pair, and finds Cramer's V through a dense chi-squared table: the 1,770 pairs of a
60-column table of 10,000 rows (``benchmarks/scale.py``'s shapes, a 10,000-value code among them) took 65 s, 1.0 s
here; credit's 1,485 pairs 4.2 s, 0.6 s here. Every column is coded once, a pair's joint counts are one
``np.bincount``, the correlations come from the SciPy function SDMetrics calls, Cramer's V from the non-empty cells.
``tests/evaluation/test_pair_trends.py`` checks the scores against SDMetrics' own, pair by pair. (SDMetrics draws a
random subsample of a pair past 50,000 rows; ``fidelity`` scores at most 20,000, where it draws none.)
"""

from __future__ import annotations

import itertools
import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import pearsonr

from synthgate.schema import Column, ColumnKind

#: SDMetrics' defaults (``sdmetrics.reports.utils``): a pair counts when its real data relate at least this much.
CORRELATION_THRESHOLD = 0.5
ASSOCIATION_THRESHOLD = 0.3
_CONTINUOUS = (ColumnKind.INTEGER, ColumnKind.FLOAT, ColumnKind.DATETIME)
_DENSE_CELLS = 1 << 16  # a pair's joint counts as a dense grid up to this many cells


@dataclass(frozen=True)
class PairTrends:
    """Each pair's score, whether SDMetrics scores it at all, and whether its real data relate strongly enough to count
    (SDMetrics' thresholds)."""

    unthresholded: dict[tuple[str, str], float]  # the score whatever the real strength (NaN where SDMetrics gives none)
    scorable: dict[tuple[str, str], bool]
    clears: dict[tuple[str, str], bool]

    @property
    def counted(self) -> dict[tuple[str, str], bool]:
        """Whether each pair counts towards the property."""
        return {pair: scored and self.clears[pair] for pair, scored in self.scorable.items()}

    @property
    def scores(self) -> dict[tuple[str, str], float]:
        """Each pair's score, NaN where it does not count."""
        counted = self.counted
        return {pair: score if counted[pair] else math.nan for pair, score in self.unthresholded.items()}

    @property
    def score(self) -> float:
        """The property: the mean score of the pairs that count (NaN when none does)."""
        kept = [s for s in self.scores.values() if not math.isnan(s)]
        return float(np.mean(kept)) if kept else math.nan

    def every_pair(self) -> PairTrends:
        """The same pairs with thresholds of 0: every pair SDMetrics can score counts (no pair computed again)."""
        return PairTrends(self.unthresholded, self.scorable, dict.fromkeys(self.clears, True))


#: A column as codes of both tables on one scale: (real codes, synthetic codes, number of codes).
Coded = tuple[np.ndarray, np.ndarray, int]


def pair_trends(
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    columns: list[Column],
    *,
    correlation_threshold: float = CORRELATION_THRESHOLD,
    association_threshold: float = ASSOCIATION_THRESHOLD,
) -> PairTrends:
    """Every pair's score of ``real`` against ``synthetic``, prepared as for SDMetrics (``fidelity._prepare``)."""
    numbers = {c.name: (_numbers(real[c.name]), _numbers(synthetic[c.name])) for c in columns if c.kind in _CONTINUOUS}
    coded = {name: _binned(r, s) for name, (r, s) in numbers.items()}
    coded |= {c.name: _codes(real[c.name], synthetic[c.name]) for c in columns if c.kind not in _CONTINUOUS}
    unthresholded: dict[tuple[str, str], float] = {}
    scorable: dict[tuple[str, str], bool] = {}
    clears: dict[tuple[str, str], bool] = {}
    for pair in itertools.combinations([c.name for c in columns], 2):
        if pair[0] in numbers and pair[1] in numbers:
            found = _correlation(numbers[pair[0]], numbers[pair[1]], correlation_threshold)
        else:
            found = _contingency(coded[pair[0]], coded[pair[1]], association_threshold)
        unthresholded[pair], scorable[pair], clears[pair] = found
    return PairTrends(unthresholded, scorable, clears)


def _numbers(series: pd.Series) -> np.ndarray:
    """A number or date column as floats (dates as integers in their own unit, as SDMetrics converts them: a date in
    year 9999 would wrap round in nanoseconds), NULL as NaN."""
    if pd.api.types.is_datetime64_any_dtype(series):
        values = pd.to_numeric(series).to_numpy(dtype=float)
        return np.where(series.isna().to_numpy(), np.nan, values)
    return pd.to_numeric(series, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def _binned(real: np.ndarray, synthetic: np.ndarray) -> Coded | None:
    """Each table's values in the 10 bins of its own range (``np.digitize``: NULL and the maximum in the bin past the
    last, code 11); None where SDMetrics' discretization fails (an infinite value)."""
    try:
        edges = [np.histogram_bin_edges(values[~np.isnan(values)]) for values in (real, synthetic)]
    except ValueError:
        return None
    return np.digitize(real, bins=edges[0]), np.digitize(synthetic, bins=edges[1]), len(edges[0]) + 1


def _codes(real: pd.Series, synthetic: pd.Series) -> Coded:
    """Categories (and booleans) of both tables as shared integer codes, NULL one of them."""
    codes, uniques = pd.factorize(pd.concat([real, synthetic], ignore_index=True), use_na_sentinel=False)
    return codes[: len(real)], codes[len(real) :], len(uniques)


def _contingency(first: Coded | None, second: Coded | None, threshold: float) -> tuple[float, bool, bool]:
    """``ContingencySimilarity``: 1 - TVD of the two tables' joint distributions; (the score, whether SDMetrics scores
    the pair, whether the real Cramer's V is above ``threshold`` (always, with 0))."""
    if first is None or second is None:
        return math.nan, False, False  # a failed discretization: SDMetrics reports an error for the pair
    real_keys = first[0].astype(np.int64) * second[2] + second[0]
    synthetic_keys = first[1].astype(np.int64) * second[2] + second[1]
    if first[2] * second[2] <= _DENSE_CELLS:  # every cell of the grid, most of them empty
        cells = np.arange(first[2] * second[2])
        real, synthetic = (
            np.bincount(real_keys, minlength=cells.size),
            np.bincount(synthetic_keys, minlength=cells.size),
        )
    else:  # only the cells either table holds
        cells, inverse = np.unique(np.concatenate([real_keys, synthetic_keys]), return_inverse=True)
        real = np.bincount(inverse[: len(real_keys)], minlength=len(cells))
        synthetic = np.bincount(inverse[len(real_keys) :], minlength=len(cells))
    clears = threshold <= 0 or _cramers_v(cells, real, second[2], threshold=threshold) > threshold
    score = 1.0 - float(np.abs(real / max(real.sum(), 1) - synthetic / max(synthetic.sum(), 1)).sum()) / 2.0
    return score, True, clears


def _cramers_v(cells: np.ndarray, counts: np.ndarray, width: int, *, threshold: float) -> float:
    """Cramer's V of the real joint counts (``cells`` coded ``row * width + column``), as
    ``scipy.stats.contingency.association`` gives it on the dense table of the values the real data hold, from its
    non-empty cells only: chi2 / n = sum(O^2 / (row total * column total)) - 1; within 1e-9 of ``threshold``, SciPy's
    own figure on the dense table, so that a V at the threshold falls on the same side to the last bit. NaN where that
    table has fewer than two rows or columns (SDMetrics then gives no score)."""
    held = counts > 0
    observed = counts[held].astype(float)
    rows, row_index = np.unique(cells[held] // width, return_inverse=True)
    columns, column_index = np.unique(cells[held] % width, return_inverse=True)
    if observed.sum() == 0 or min(len(rows), len(columns)) < 2:
        return math.nan
    row_totals, column_totals = np.bincount(row_index, observed), np.bincount(column_index, observed)
    phi2 = max(float((observed**2 / (row_totals[row_index] * column_totals[column_index])).sum()) - 1.0, 0.0)
    strength = math.sqrt(phi2 / (min(len(rows), len(columns)) - 1))
    if abs(strength - threshold) < 1e-9:
        from scipy.stats.contingency import association

        table = np.zeros((len(rows), len(columns)), dtype=np.int64)
        table[row_index, column_index] = counts[held]
        strength = float(association(table, method="cramer"))
    return strength


def _correlation(
    first: tuple[np.ndarray, np.ndarray], second: tuple[np.ndarray, np.ndarray], threshold: float
) -> tuple[float, bool, bool]:
    """``CorrelationSimilarity``: 1 - |Pearson's r real - synthetic| / 2 over the rows where both are set; (the score,
    NaN where a column is constant (SDMetrics' error) or a correlation is undefined; whether SDMetrics scores the pair;
    whether the real |r| is above ``threshold`` (always, with 0))."""
    real, synthetic = _correlation_of(first[0], second[0]), _correlation_of(first[1], second[1])
    if real is None or synthetic is None:
        return math.nan, False, False
    clears = threshold <= 0 or abs(real) > threshold
    if math.isnan(real) or math.isnan(synthetic):
        return math.nan, True, clears
    return 1.0 - abs(real - synthetic) / 2.0, True, clears


def _correlation_of(a: np.ndarray, b: np.ndarray) -> float | None:
    """Pearson's r of the rows where both are set (NaN for a constant column, where SDMetrics raises); None where
    fewer than two rows are."""
    both = ~(np.isnan(a) | np.isnan(b))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SciPy warns of a constant column, and gives NaN
            return float(pearsonr(a[both], b[both])[0])
    except ValueError:
        return None
