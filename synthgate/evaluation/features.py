"""A shared numeric feature view of real and synthetic rows for utility and distance metrics."""

from __future__ import annotations

from collections.abc import Callable
from typing import ParamSpec, TypeVar

import numpy as np
import pandas as pd

from synthgate.columns import to_numeric
from synthgate.hashing import as_text
from synthgate.schema import Column

_MAX_CATEGORIES = 50

P = ParamSpec("P")
R = TypeVar("R")


def category_text(values: pd.Series) -> pd.Series:
    """Each value of a category column as text, the same whatever dtype its frame gave it (:func:`as_text`: a number
    through float, ``5``, ``5.0`` and ``np.int64(5)`` all ``'5.0'``; a boolean ``True``/``False``), NULL kept as NaN.
    Every metric compares categories through it: the real rows of an INTEGER column with NULLs arrive as float64 and
    its synthetic rows as Int64, and as pandas writes them (``'1.0'`` against ``'1'``) no value matched."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    text = np.array([*(as_text(u) for u in uniques), np.nan], dtype=object)  # code -1 (NULL) takes the last
    return pd.Series(text[codes], index=values.index, dtype=object)


class FeatureSpace:
    """Numerics scaled by the reference's quantiles (robust), categoricals one-hot, nulls as indicators."""

    def __init__(self, reference: pd.DataFrame, columns: list[Column]) -> None:
        self.columns = columns
        self.scales: dict[str, tuple[float, float]] = {}
        self.categories: dict[str, list] = {}
        for c in columns:
            if c.kind.is_numeric:
                values = to_numeric(reference[c.name], c)
                values = values[~np.isnan(values)]
                lo, hi = np.quantile(values, [0.01, 0.99]) if values.size else (0.0, 1.0)
                self.scales[c.name] = (float(lo), float(hi - lo) or 1.0)
            else:
                counts = category_text(reference[c.name]).fillna("None").value_counts()
                self.categories[c.name] = list(counts.index[:_MAX_CATEGORIES])

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """The feature matrix of ``frame``'s rows: one block of columns per column, in the order given."""
        blocks: list[np.ndarray] = []
        for c in self.columns:
            if c.kind.is_numeric:
                lo, width = self.scales[c.name]
                values = (to_numeric(frame[c.name], c) - lo) / width
                null = np.isnan(values)
                blocks += [np.clip(np.where(null, 0.0, values), -3, 4)[:, None], null[:, None].astype(float)]
            else:
                text = category_text(frame[c.name]).fillna("None").to_numpy()
                blocks.append(
                    np.stack([text == cat for cat in self.categories[c.name]], axis=1).astype(float)
                    if self.categories[c.name]
                    else np.zeros((len(frame), 0))
                )
        return np.hstack(blocks) if blocks else np.zeros((len(frame), 0))


def categorical_codes(frame: pd.DataFrame, columns: list[Column]) -> pd.DataFrame:
    """Frame ready for a gradient-boosting model: numerics as floats, categoricals as pandas categories."""
    return pd.DataFrame(
        {
            c.name: to_numeric(frame[c.name], c) if c.kind.is_numeric else category_text(frame[c.name]).fillna("None")
            for c in columns
        },
        index=frame.index,
    )


def single_threaded(fn: Callable[P, R]) -> Callable[P, R]:
    """Run ``fn`` with one OpenMP and one BLAS thread.

    scikit-learn's gradient boosting spins OpenMP workers; on a busy machine with few cores a two-thread
    fit was measured 60x slower than a one-thread fit (1.9 s against 115 s for the same TSTR check).
    """
    import functools

    from threadpoolctl import threadpool_limits

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with threadpool_limits(limits=1):
            return fn(*args, **kwargs)

    return wrapper
