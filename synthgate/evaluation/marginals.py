"""Fidelity: total variation distance of 1-, 2- and 3-way marginals over discretised columns.

Each synthetic score sits beside a same-sized holdout's score against training: the distance that
sampling alone gives, i.e. the best a generator can be expected to reach.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from synthgate.columns import to_numeric
from synthgate.evaluation.features import category_text
from synthgate.schema import Column

_TOP_CATEGORIES = 20
_ENUMERATE = 200_000  # column subsets listed before drawing (every triple of up to 107 columns)
_Measured = dict[tuple[int, ...], tuple[float, float]]  # column indexes -> (synthetic TVD, holdout TVD)


@dataclass(frozen=True)
class OrderTVD:
    """Mean and worst TVD of every (or a seeded sample of) k-way marginal, synthetic and holdout."""

    order: int
    marginals: int  # how many k-way marginals were measured
    synthetic_mean: float
    synthetic_max: float
    holdout_mean: float  # the natural ceiling: a same-sized real sample never trained on
    holdout_max: float


@dataclass(frozen=True)
class MarginalTVD:
    """TVD per order of marginal, with each column's and each pair's synthetic and holdout TVD."""

    orders: dict[int, OrderTVD]
    per_column: dict[str, tuple[float, float]]  # column -> (synthetic TVD, holdout TVD)
    per_pair: dict[tuple[str, str], tuple[float, float]]


class Discretiser:
    """Codes 0..k-1 per column: quantile bins of training for numerics, top categories (+ other) otherwise.

    Nulls get a code of their own. Bin edges come from training rows and stay inside this module.
    """

    def __init__(self, train: pd.DataFrame, columns: list[Column], bins: int = 10) -> None:
        self.columns = columns
        self.edges: dict[str, np.ndarray] = {}
        self.categories: dict[str, list[str]] = {}
        for c in columns:
            if c.kind.is_numeric:
                values = to_numeric(train[c.name], c)
                values = values[~np.isnan(values)]
                edges = (
                    np.unique(np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1])) if values.size else np.array([])
                )
                self.edges[c.name] = edges
            else:
                counts = category_text(train[c.name]).dropna().value_counts()
                self.categories[c.name] = list(counts.index[:_TOP_CATEGORIES])

    def cardinality(self, column: Column) -> int:
        """How many codes ``column`` can take."""
        if column.kind.is_numeric:
            return len(self.edges[column.name]) + 2  # bins + null
        return len(self.categories[column.name]) + 2  # categories + other + null

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """The code matrix of ``frame``: one row per row, one column per column."""
        codes = np.empty((len(frame), len(self.columns)), dtype=np.int64)
        for j, c in enumerate(self.columns):
            if c.kind.is_numeric:
                values = to_numeric(frame[c.name], c)
                null = np.isnan(values)
                code = np.searchsorted(self.edges[c.name], np.where(null, 0.0, values), side="right")
                codes[:, j] = np.where(null, len(self.edges[c.name]) + 1, code)
            else:
                lookup = {cat: i for i, cat in enumerate(self.categories[c.name])}
                other = len(lookup)
                raw = frame[c.name]
                mapped = category_text(raw).map(lookup).fillna(other).to_numpy(dtype=np.int64)
                codes[:, j] = np.where(raw.isna().to_numpy(), other + 1, mapped)
        return codes


def _tvd(a: np.ndarray, b: np.ndarray, radices: np.ndarray) -> float:
    """TVD between the empirical joint distributions of code matrices ``a`` and ``b`` (same columns)."""
    weights = np.cumprod(np.concatenate([[1], radices[:-1]]))
    size = int(np.prod(radices))
    pa = np.bincount(a @ weights, minlength=size) / max(len(a), 1)
    pb = np.bincount(b @ weights, minlength=size) / max(len(b), 1)
    return float(0.5 * np.abs(pa - pb).sum())


def marginal_tvd(
    *,
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    synthetic: pd.DataFrame,
    columns: list[Column],
    bins: int = 10,
    max_pairs: int = 2_016,
    max_triples: int = 60,
    max_rows: int = 20_000,
    seed: int = 0,
) -> MarginalTVD:
    """TVD of all 1-way marginals, of all 2-way marginals up to ``max_pairs`` (every pair of 64 columns; a seeded
    sample of pairs beyond) and of ``max_triples`` seeded 3-way marginals.

    Synthetic and holdout are compared with training at the same size (the smaller of the two,
    at most ``max_rows``), so the holdout's score is a fair ceiling for the synthetic one.
    """
    rng = np.random.default_rng(seed)
    size = min(len(holdout), len(synthetic), max_rows)
    train = (
        train.iloc[rng.choice(len(train), min(len(train), 2 * max_rows), replace=False)]
        if len(train) > 2 * max_rows
        else train
    )
    holdout = holdout.iloc[rng.choice(len(holdout), size, replace=False)]
    synthetic = synthetic.iloc[rng.choice(len(synthetic), size, replace=False)]
    disc = Discretiser(train, columns, bins)
    codes = {
        name: disc.transform(frame)
        for name, frame in (("train", train), ("holdout", holdout), ("synthetic", synthetic))
    }
    radices = np.array([disc.cardinality(c) for c in columns], dtype=np.int64)

    def measure(index: tuple[int, ...]) -> tuple[float, float]:
        cols = list(index)
        ref = codes["train"][:, cols]
        return (
            _tvd(codes["synthetic"][:, cols], ref, radices[cols]),
            _tvd(codes["holdout"][:, cols], ref, radices[cols]),
        )

    n = len(columns)
    singles: _Measured = {(j,): measure((j,)) for j in range(n)}
    pairs: _Measured = {p: measure(p) for p in _combinations(n, 2, max_pairs, rng)}
    triples: _Measured = {t: measure(t) for t in _combinations(n, 3, max_triples, rng)}
    orders = {k: _summarise(k, found) for k, found in ((1, singles), (2, pairs), (3, triples)) if found}
    return MarginalTVD(
        orders=orders,
        per_column={columns[j].name: v for (j,), v in singles.items()},
        per_pair={(columns[a].name, columns[b].name): v for (a, b), v in pairs.items()},
    )


def _combinations(n: int, k: int, most: int, rng: np.random.Generator) -> list[tuple[int, ...]]:
    """Every ``k``-subset of ``n`` columns when there are at most ``most``, else ``most`` of them drawn at random
    (sorted). Up to :data:`_ENUMERATE` subsets are listed and drawn from; beyond that, drawn directly, since a wide
    table's triples (20 million for 500 columns) do not fit in memory."""
    if math.comb(n, k) <= _ENUMERATE:
        every = list(itertools.combinations(range(n), k))
        if len(every) <= most:
            return every
        return [every[i] for i in sorted(rng.choice(len(every), most, replace=False))]
    chosen: set[tuple[int, ...]] = set()
    while len(chosen) < most:
        chosen.add(tuple(sorted(int(i) for i in rng.choice(n, k, replace=False))))
    return sorted(chosen)


def _summarise(order: int, found: _Measured) -> OrderTVD:
    synth = np.array([v[0] for v in found.values()])
    hold = np.array([v[1] for v in found.values()])
    return OrderTVD(order, len(found), float(synth.mean()), float(synth.max()), float(hold.mean()), float(hold.max()))
