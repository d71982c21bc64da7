"""Column codecs: real values <-> the discrete tokens the network models.

A codec holds only released DP statistics (or what the spec declares public); they are fitted in
:mod:`synthgate.generator.releases`. Its tokens are the released bins or categories, then point masses (numbers)
or RARE (categories), then NULL. Decoding (sampling synthetic values from the released histograms) takes the
caller's seeded generator: it is post-processing and needs no secrecy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from synthgate.columns import from_numeric, to_numeric
from synthgate.schema import Column, ColumnKind

RARE_LABEL = "_RARE_"


@dataclass
class NumericCodec:
    """Integer, float or datetime column as coarse quantile bins over a DP fine histogram, plus point masses.

    Tokens: the coarse bins, then one token per point mass (an exact value that many rows hold, decoded exactly),
    then NULL.
    """

    column: Column
    fine_edges: np.ndarray
    fine_probs: np.ndarray
    coarse_starts: np.ndarray  # indices into fine bins, first 0, last len(fine_probs)
    unit_bins: bool = False  # one fine bin per integer: decoded values are exact integers
    has_nulls: bool = True  # False: the released NULL count is indistinguishable from zero: never sample NULL
    points: np.ndarray = field(default_factory=lambda: np.empty(0))  # DP-selected exact values, sorted
    has_values: bool = True  # False: the range release could not locate the values: the column is sampled as NULL
    prior: np.ndarray | None = None  # each token's share by the released counts (saved; None from older generators)
    unplaced: float = 0.0  # released rows with values the releases could not locate (for the refit only: not saved)
    range_grid: tuple[np.ndarray, float] | None = None  # the range release's grid counts and noise (refit; not saved)
    _keys: np.ndarray = field(init=False, repr=False)

    @property
    def n_coarse(self) -> int:
        """Coarse bins: the tokens that are ranges of values."""
        return len(self.coarse_starts) - 1

    @property
    def n_tokens(self) -> int:
        """Coarse bins, point masses and NULL."""
        return self.n_coarse + len(self.points) + 1

    @property
    def null_token(self) -> int:
        """The last token."""
        return self.n_tokens - 1

    @property
    def forbidden_tokens(self) -> list[int]:
        """Tokens never sampled: NULL for a column released without nulls; every value for one never located; the
        coarse bins of a column whose released values are all point masses (coinsurance rates of 0, 25, 50 and 95%:
        the model's noise would otherwise spread a few rows across the whole range). A single bin the releases give
        no rows stays: the denoised bins of a thin stretch (hours worked of 41-44) are zero where rows are."""
        if not self.has_values:
            return list(range(self.null_token))
        points_only = (
            self.prior is not None and self.prior[: self.n_coarse].sum() == 0 < self.prior[: self.null_token].sum()
        )
        return (list(range(self.n_coarse)) if points_only else []) + ([] if self.has_nulls else [self.null_token])

    def encode(self, series: pd.Series) -> np.ndarray:
        """Each value's token: its point mass, else its coarse bin (values beyond the range clipped), or NULL."""
        values = to_numeric(series, self.column)
        null = np.isnan(values)
        clipped = np.clip(np.where(null, self.fine_edges[0], values), self.fine_edges[0], self.fine_edges[-1])
        fine = np.clip(np.searchsorted(self.fine_edges, clipped, side="right") - 1, 0, len(self.fine_probs) - 1)
        tokens = np.searchsorted(self.coarse_starts, fine, side="right") - 1
        if len(self.points):
            at = np.clip(np.searchsorted(self.points, values), 0, len(self.points) - 1)
            tokens = np.where(self.points[at] == values, self.n_coarse + at, tokens)
        return np.where(null, self.null_token, tokens).astype(np.int64)

    def __post_init__(self) -> None:
        # Sampling keys: coarse bin c's fine bins get keys c + (their CDF within c), so one searchsorted
        # of token + uniform finds every row's fine bin at once. An empty coarse bin is uniform inside.
        keys = np.empty(len(self.fine_probs))
        for c in range(len(self.coarse_starts) - 1):
            start, stop = self.coarse_starts[c], self.coarse_starts[c + 1]
            probs = self.fine_probs[start:stop]
            total = probs.sum()
            cdf = np.cumsum(probs / total) if total > 0 else np.linspace(1 / len(probs), 1, len(probs))
            cdf[-1] = 1.0
            keys[start:stop] = c + cdf
        self._keys = keys

    def decode(self, tokens: np.ndarray, rng: np.random.Generator) -> pd.Series:
        """Values for ``tokens``: a fine bin drawn from the released histogram, a value uniform inside it; point
        masses exactly."""
        null = tokens >= self.null_token
        point = (tokens >= self.n_coarse) & ~null
        coarse = np.where(null | point, 0, tokens)
        fine = np.searchsorted(self._keys, coarse + rng.random(len(tokens)), side="right")
        fine = np.minimum(fine, self.coarse_starts[coarse + 1] - 1)
        low, high = self.fine_edges[fine], self.fine_edges[fine + 1]
        values = low + (high - low) * rng.random(len(tokens))
        if len(self.points):
            values = np.where(point, self.points[np.clip(tokens - self.n_coarse, 0, len(self.points) - 1)], values)
        return from_numeric(np.where(null, np.nan, values), self.column)

    def to_state(self) -> dict[str, Any]:
        """The codec as JSON-ready data (released statistics only), for the saved generator."""
        return {
            "type": "numeric",
            "fine_edges": self.fine_edges.tolist(),
            "fine_probs": self.fine_probs.tolist(),
            "coarse_starts": self.coarse_starts.tolist(),
            "unit_bins": self.unit_bins,
            "has_nulls": self.has_nulls,
            "points": self.points.tolist(),
            "has_values": self.has_values,
            **({} if self.prior is None else {"prior": self.prior.tolist()}),
        }


@dataclass
class CategoricalCodec:
    """Categorical or boolean column: released categories, then RARE, then NULL."""

    column: Column
    categories: list[Any]
    public: bool = False
    has_nulls: bool = True  # False: the released NULL count is indistinguishable from zero
    key_like: bool = False  # most non-null rows hold values too rare to release: a key, not a category
    has_rare: bool = True  # False: the released categories hold nearly every non-null row, RARE is never sampled
    prior: np.ndarray | None = None  # each token's share by the released counts (for training only: not saved)
    unplaced: float = 0.0  # released rows of values too rare to release, RARE (for the refit only: not saved)
    _index: dict[Any, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._index = {value: i for i, value in enumerate(self.categories)}

    @property
    def n_tokens(self) -> int:
        """Categories, RARE and NULL."""
        return len(self.categories) + 2

    @property
    def rare_token(self) -> int:
        """The token of every value not released."""
        return len(self.categories)

    @property
    def forbidden_tokens(self) -> list[int]:
        """RARE is never sampled where the domain is complete (public, or the released categories hold nearly every
        row); nor is NULL in a column released without nulls."""
        complete = self.public or not self.has_rare
        return ([self.rare_token] if complete else []) + ([] if self.has_nulls else [self.null_token])

    @property
    def null_token(self) -> int:
        """The last token."""
        return len(self.categories) + 1

    def encode(self, series: pd.Series) -> np.ndarray:
        """Each value's token: its category, RARE for one not released, or NULL."""
        null = series.isna().to_numpy()
        keys = series.map(category_key)
        codes = keys.map(self._index).to_numpy(dtype=float, na_value=np.nan)
        codes = np.where(np.isnan(codes), self.rare_token, codes)
        return np.where(null, self.null_token, codes).astype(np.int64)

    def decode(self, tokens: np.ndarray, rng: np.random.Generator) -> pd.Series:
        """Values for ``tokens`` (RARE as ``_RARE_`` among text categories, else NULL)."""
        if self.column.kind is ColumnKind.BOOLEAN:
            values = np.array([*self.categories, None, None], dtype=object)[tokens]
            return pd.Series(values, dtype="boolean")
        rare: Any = RARE_LABEL if all(isinstance(c, str) for c in self.categories) else None
        values = np.array([*self.categories, rare, None], dtype=object)[tokens]
        return pd.Series(values, dtype=object)

    def to_state(self) -> dict[str, Any]:
        """The codec as JSON-ready data, for the saved generator."""
        return {
            "type": "categorical",
            "categories": self.categories,
            "public": self.public,
            "has_nulls": self.has_nulls,
            "has_rare": self.has_rare,
        }


Codec = NumericCodec | CategoricalCodec


def token_prior(counts: np.ndarray, forbidden: list[int]) -> np.ndarray:
    """Token shares from released (noisy) counts: negative counts and tokens never sampled count zero; all zero, the
    allowed tokens share evenly. Post-processing."""
    allowed = np.ones(len(counts))
    allowed[forbidden] = 0.0
    if allowed.sum() == 0:
        allowed[:] = 1.0
    shares = np.clip(np.asarray(counts, dtype=float), 0.0, None) * allowed
    shares = shares if shares.sum() > 0 else allowed
    return shares / shares.sum()


def category_key(value: Any) -> Any:
    """Categories are compared as Python scalars (numpy ints, bools and strings alike)."""
    if isinstance(value, np.generic):
        return value.item()
    return value


def codec_from_state(column: Column, state: dict[str, Any]) -> Codec:
    """A codec from :meth:`NumericCodec.to_state` or :meth:`CategoricalCodec.to_state` data."""
    if state["type"] == "numeric":
        return NumericCodec(
            column,
            np.asarray(state["fine_edges"], dtype=float),
            np.asarray(state["fine_probs"], dtype=float),
            np.asarray(state["coarse_starts"], dtype=np.int64),
            bool(state["unit_bins"]),
            bool(state.get("has_nulls", True)),
            np.asarray(state.get("points", []), dtype=float),
            bool(state.get("has_values", True)),
            None if state.get("prior") is None else np.asarray(state["prior"], dtype=float),
        )
    return CategoricalCodec(
        column,
        list(state["categories"]),
        public=bool(state["public"]),
        has_nulls=bool(state.get("has_nulls", True)),
        has_rare=bool(state.get("has_rare", True)),
    )
