"""Column codecs: real values <-> the discrete tokens the network models.

Everything a codec learns from the real data (numeric bounds, bins, category lists) is a
released DP statistic recorded on the :class:`PrivacyAccountant`, unless the spec declares
it public. A codec's token set is the released bins or categories plus one NULL token
(and one RARE token for DP-selected categories).

Numeric columns (integers, floats, datetimes as seconds) are released in two or three steps:

1. *range*: a noisy histogram over a fixed, data-independent grid (numbers: 20 log bins a
   decade, both signs, 1e-6 to 1e307; datetimes: 30-day bins from 1700 to 2261,
   about all that pandas' nanosecond timestamps hold). Its core is the
   bins that clear a threshold corrected for the number of bins; the range grows bin by bin
   over thin tails. Outliers beyond it are clipped: no single record moves the range.
2. *zoom* (floats and datetimes): 256 noisy bins across that range narrow it where the data
   fills a sliver of it (a large offset, a small spread).
3. *bins*: a noisy histogram over a fine grid inside the range (one bin per integer for
   short integer ranges; otherwise uniform in linear or log space), plus a NULL bin. The
   model predicts a coarse quantile bin of it; sampling then draws the fine bin from the
   noisy fine histogram and a value uniformly inside it, so column shapes follow the DP
   histogram.

Every release goes through :meth:`PrivacyAccountant.gaussian`: noise from OS entropy (never a seed),
released counts rounded to integers (see :mod:`synthgate.generator.noise`). Decoding (sampling
synthetic values from the released histograms) takes the caller's seeded generator: it is
post-processing and needs no secrecy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm

from synthgate.generator.accounting import PrivacyAccountant
from synthgate.schema import Column, ColumnKind

RARE_LABEL = "_RARE_"

# Data-independent grid for the bounds release: bin k covers |x| in [10^(k/20), 10^((k+1)/20)).
_GRID_PER_DECADE = 20
# Up to 1e307, so NUMERIC columns of 1e25 and floats of 1e300 keep their scale (a range from -1e307 to 1e307 still
# has a finite width; larger doubles fall in the top bin). The wider grid costs no epsilon, only a higher threshold
# for the core: 4.8 sigma rather than 4.2 with the old 1e15 grid.
_GRID_MIN_EXP, _GRID_MAX_EXP = -6 * _GRID_PER_DECADE, 307 * _GRID_PER_DECADE
_GRID_SIDE = _GRID_MAX_EXP - _GRID_MIN_EXP
# 30-day bins from 1700-01-01 (seconds since 1970) to 2261: pandas' nanosecond timestamps end in April 2262.
# 6842 bins (the 1900-2100 grid had 2435): the core threshold is 4.7 sigma rather than 4.5.
_CALENDAR_START = -8_520_336_000.0  # 1700-01-01T00:00:00
_CALENDAR_STEP = 30 * 86400.0
_CALENDAR_BINS = int((9_214_646_400.0 - _CALENDAR_START) // _CALENDAR_STEP)  # up to 2262-01-01
# The largest doubles an int64 holds: decoded integers are clipped to them (a bin edge may lie beyond 2**63).
_INT64_LOW, _INT64_HIGH = -(2.0**63), float(np.nextafter(2.0**63, 0))
_MAX_INTEGER_BINS = 512
_MAX_EXACT_TOKENS = 128
_MAX_FINE_BINS = 400
_MIN_FINE_BINS = 16
_ZOOM_BINS = 256
ZOOMED_KINDS = (ColumnKind.FLOAT, ColumnKind.DATETIME)  # continuous: their range gets a second, finer release


def _grid_index(values: np.ndarray) -> np.ndarray:
    """Signed log-grid bin of each value: 0 .. 2*_GRID_SIDE, the middle one holds |x| < 1e-6."""
    mag = np.abs(values)
    small = mag < 10.0 ** (_GRID_MIN_EXP / _GRID_PER_DECADE)
    with np.errstate(divide="ignore"):
        k = np.floor(np.log10(np.where(small, 1.0, mag)) * _GRID_PER_DECADE).astype(np.int64)
    k = np.clip(k - _GRID_MIN_EXP + 1, 1, _GRID_SIDE)
    return np.where(small, 0, np.sign(values).astype(np.int64) * k) + _GRID_SIDE


def _grid_bounds(index: int) -> tuple[float, float]:
    signed = index - _GRID_SIDE
    if signed == 0:  # the zero bin: its values are (within 1e-6) exactly zero
        return 0.0, 0.0
    k = abs(signed) + _GRID_MIN_EXP - 1
    low, high = 10.0 ** (k / _GRID_PER_DECADE), 10.0 ** ((k + 1) / _GRID_PER_DECADE)
    return (low, high) if signed > 0 else (-high, -low)


@dataclass
class NumericCodec:
    """Integer, float or datetime column as coarse quantile bins over a DP fine histogram."""

    column: Column
    fine_edges: np.ndarray
    fine_probs: np.ndarray
    coarse_starts: np.ndarray  # indices into fine bins, first 0, last len(fine_probs)
    unit_bins: bool = False  # one fine bin per integer: decoded values are exact integers
    has_nulls: bool = True  # False: the released NULL count is indistinguishable from zero: never sample NULL
    _keys: np.ndarray = field(init=False, repr=False)

    @property
    def n_tokens(self) -> int:
        return len(self.coarse_starts)  # n_coarse value tokens + 1 NULL token

    @property
    def null_token(self) -> int:
        return len(self.coarse_starts) - 1

    @property
    def forbidden_tokens(self) -> list[int]:
        return [] if self.has_nulls else [self.null_token]

    def encode(self, series: pd.Series) -> np.ndarray:
        values = to_numeric(series, self.column)
        null = np.isnan(values)
        clipped = np.clip(np.where(null, self.fine_edges[0], values), self.fine_edges[0], self.fine_edges[-1])
        fine = np.clip(np.searchsorted(self.fine_edges, clipped, side="right") - 1, 0, len(self.fine_probs) - 1)
        coarse = np.searchsorted(self.coarse_starts, fine, side="right") - 1
        return np.where(null, self.null_token, coarse).astype(np.int64)

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
        null = tokens >= self.null_token
        coarse = np.where(null, 0, tokens)
        fine = np.searchsorted(self._keys, coarse + rng.random(len(tokens)), side="right")
        fine = np.minimum(fine, self.coarse_starts[coarse + 1] - 1)
        low, high = self.fine_edges[fine], self.fine_edges[fine + 1]
        values = low + (high - low) * rng.random(len(tokens))
        return from_numeric(np.where(null, np.nan, values), self.column, self.unit_bins)

    def to_state(self) -> dict[str, Any]:
        return {
            "type": "numeric",
            "fine_edges": self.fine_edges.tolist(),
            "fine_probs": self.fine_probs.tolist(),
            "coarse_starts": self.coarse_starts.tolist(),
            "unit_bins": self.unit_bins,
            "has_nulls": self.has_nulls,
        }


@dataclass
class CategoricalCodec:
    """Categorical or boolean column: released categories, then RARE, then NULL."""

    column: Column
    categories: list[Any]
    public: bool = False
    has_nulls: bool = True  # False: the released NULL count is indistinguishable from zero
    _index: dict[Any, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._index = {value: i for i, value in enumerate(self.categories)}

    @property
    def n_tokens(self) -> int:
        return len(self.categories) + 2

    @property
    def rare_token(self) -> int:
        return len(self.categories)

    @property
    def forbidden_tokens(self) -> list[int]:
        """A public domain is complete: RARE is never sampled; nor is NULL in a column released without nulls."""
        return ([self.rare_token] if self.public else []) + ([] if self.has_nulls else [self.null_token])

    @property
    def null_token(self) -> int:
        return len(self.categories) + 1

    def encode(self, series: pd.Series) -> np.ndarray:
        null = series.isna().to_numpy()
        keys = series.map(_category_key)
        codes = keys.map(self._index).to_numpy(dtype=float, na_value=np.nan)
        codes = np.where(np.isnan(codes), self.rare_token, codes)
        return np.where(null, self.null_token, codes).astype(np.int64)

    def decode(self, tokens: np.ndarray, rng: np.random.Generator) -> pd.Series:
        if self.column.kind is ColumnKind.BOOLEAN:
            values = np.array(self.categories + [None, None], dtype=object)[tokens]
            return pd.Series(values, dtype="boolean")
        rare: Any = RARE_LABEL if all(isinstance(c, str) for c in self.categories) else None
        values = np.array(self.categories + [rare, None], dtype=object)[tokens]
        return pd.Series(values, dtype=object)

    def to_state(self) -> dict[str, Any]:
        return {
            "type": "categorical",
            "categories": self.categories,
            "public": self.public,
            "has_nulls": self.has_nulls,
        }


Codec = NumericCodec | CategoricalCodec


def _category_key(value: Any) -> Any:
    """Categories are compared as Python scalars (numpy ints, bools and strings alike)."""
    if isinstance(value, np.generic):
        return value.item()
    return value


def to_numeric(series: pd.Series, column: Column) -> np.ndarray:
    """Float view of a numeric column; datetimes as seconds since the epoch; nulls as NaN."""
    if column.kind is ColumnKind.DATETIME:
        stamps = pd.to_datetime(series, utc=column.timezone, errors="coerce")
        if column.timezone:
            stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
        seconds = stamps.dt.as_unit("ns").astype("int64").to_numpy(dtype=float) / 1e9  # whatever the resolution
        return np.where(stamps.isna().to_numpy(), np.nan, seconds)
    values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    return np.where(np.isfinite(values), values, np.nan)


def from_numeric(values: np.ndarray, column: Column, unit_bins: bool) -> pd.Series:
    if column.kind is ColumnKind.DATETIME:
        # Whole seconds as nullable integers: pandas' float path can overflow on NaN.
        stamps = pd.to_datetime(pd.Series(np.round(values)).astype("Int64"), unit="s", errors="coerce")
        stamps = stamps.astype("datetime64[ns]")  # the resolution readers and SDMetrics expect (to_datetime gives [s])
        return stamps.dt.tz_localize("UTC") if column.timezone else stamps
    if column.kind is ColumnKind.INTEGER:
        null = np.isnan(values)
        whole = np.clip(np.round(np.where(null, 0, values)), _INT64_LOW, _INT64_HIGH)
        return pd.Series(pd.arrays.IntegerArray(whole.astype(np.int64), null))
    return pd.Series(values, dtype=float)


@dataclass(frozen=True)
class DPRange:
    """A released range, and the range release's thin-tail bins beyond its core: (low, high, noisy count)."""

    low: float
    high: float
    tails: list[tuple[float, float, float]]
    core_low: float  # where the bins that clear the corrected threshold begin and end
    core_high: float


def dp_range(
    column: Column,
    values: np.ndarray,
    sigma: float,
    accountant: PrivacyAccountant,
) -> DPRange:
    """DP range of ``values`` from a noisy histogram on a fixed, public grid.

    Numbers use the signed log grid; datetimes (seconds since the epoch: a large
    offset, a small spread) a grid of 30-day bins from 1700 to 2261. The core is the bins that clear
    a threshold corrected for the number of bins; it grows bin by bin over thin tails
    (:func:`_extend`), whose bins are kept for the fine histogram.
    """
    if column.kind is ColumnKind.DATETIME:
        index = np.clip(((values - _CALENDAR_START) // _CALENDAR_STEP).astype(np.int64), 0, _CALENDAR_BINS - 1)
        counts = np.bincount(index, minlength=_CALENDAR_BINS).astype(float)

        def bounds(i: int) -> tuple[float, float]:
            return _CALENDAR_START + i * _CALENDAR_STEP, _CALENDAR_START + (i + 1) * _CALENDAR_STEP

    else:
        counts = np.bincount(_grid_index(values), minlength=2 * _GRID_SIDE + 1).astype(float)
        bounds = _grid_bounds

    noisy = accountant.gaussian(f"range:{column.name}", counts, sigma)
    kept = np.flatnonzero(noisy > _corrected_threshold(noisy.size, sigma, 4.0))
    core_first, core_last = (int(kept[0]), int(kept[-1])) if kept.size else _pooled_core(noisy, sigma)
    # Below 20 the log grid's bins are narrower than 1: an integer column cannot have values in some of them.
    integer = column.kind is ColumnKind.INTEGER
    empty = [integer and math.ceil(lo) >= hi and lo != hi for lo, hi in map(bounds, range(noisy.size))]
    first, last = _extend(noisy, core_first, -1, sigma, empty), _extend(noisy, core_last, 1, sigma, empty)
    tails = [
        (*bounds(i), float(noisy[i]))
        for i in [*range(first, core_first), *range(core_last + 1, last + 1)]
        if not empty[i]
    ]
    return DPRange(bounds(first)[0], bounds(last)[1], tails, bounds(core_first)[0], bounds(core_last)[1])


def _pooled_core(noisy: np.ndarray, sigma: float) -> tuple[int, int]:
    """The core when no single bin clears the threshold: sums of 2, 4, 8, ... adjacent bins (post-processing of the
    same release, each sum's noise is sigma * sqrt(width)), the first width at which a sum clears its threshold.

    Data spread thin over many bins (300 dates over 55 years) is found where it is, instead of at the largest of
    thousands of noisy empty bins; with no clear sum at any width, the largest bin is the core.
    """
    width, levels = 2, max(int(noisy.size - 1).bit_length(), 1)  # the 1% chance of a false core spread over levels
    while width < noisy.size:
        starts = np.arange(0, noisy.size, width)
        sums = np.add.reduceat(noisy, starts)
        clear = np.flatnonzero(sums > _corrected_threshold(sums.size * levels, sigma * math.sqrt(width), 4.0))
        if clear.size:
            return int(starts[clear[0]]), int(min(starts[clear[-1]] + width, noisy.size) - 1)
        width *= 2
    return (int(np.argmax(noisy)),) * 2


def zoom_range(
    column: Column,
    values: np.ndarray,
    coarse: DPRange,
    sigma: float,
    accountant: PrivacyAccountant,
) -> DPRange:
    """A second look at a continuous column's range: a noisy histogram of 256 bins across the coarse one.

    The coarse grid's bins are 12% wide (30 days for datetimes), so coordinates (offset 45, spread
    0.2) or the stamps of one week fill a sliver of it, and the fine histogram would have a handful
    of bins across the data. The zoom narrows each end to its clear bins, except where the coarse
    release found a thin tail (its end is kept, so heavy tails stay whole).
    """
    edges = _spaced_edges(coarse.low, coarse.high, _ZOOM_BINS)
    counts, _ = np.histogram(np.clip(values, edges[0], edges[-1]), bins=edges)
    noisy = accountant.gaussian(f"zoom:{column.name}", counts.astype(float), sigma)
    kept = np.flatnonzero(noisy > _corrected_threshold(noisy.size, sigma, 4.0))
    if kept.size == 0:
        return coarse
    first, last = _extend(noisy, int(kept[0]), -1, sigma), _extend(noisy, int(kept[-1]), 1, sigma)
    low = coarse.low if coarse.low < coarse.core_low else float(edges[first])
    high = coarse.high if coarse.high > coarse.core_high else float(edges[last + 1])
    return DPRange(low, high, coarse.tails, max(low, coarse.core_low), min(high, coarse.core_high))


def _corrected_threshold(n_bins: int, sigma: float, at_least: float) -> float:
    """Count that any of ``n_bins`` empty bins exceeds by chance with probability 1% (at least ``at_least`` sigma)."""
    return sigma * max(at_least, float(norm.isf(0.01 / n_bins)))


def _extend(noisy: np.ndarray, edge: int, step: int, sigma: float, empty: list[bool] | None = None) -> int:
    """Move ``edge`` outwards bin by bin while each next bin clears 3 sigma.

    A tail that the corrected core threshold misses still sets the range, and each bin must hold
    mass of its own, so mass near the edge cannot carry the range far out. Bins that cannot hold a
    value (``empty``) are stepped over.
    """
    probe = edge + step
    while 0 <= probe < noisy.size:
        if not (empty and empty[probe]):
            if noisy[probe] < 3.0 * sigma:
                break
            edge = probe
        probe += step
    return edge


def fit_numeric(
    column: Column,
    series: pd.Series,
    *,
    public_min: float | None,
    public_max: float | None,
    n_rows: float,
    n_coarse: int,
    sigma: float,
    accountant: PrivacyAccountant,
) -> NumericCodec:
    values = to_numeric(series, column)
    n_null = float(np.isnan(values).sum())
    values = values[~np.isnan(values)]
    tails: list[tuple[float, float, float]] = []
    if public_min is not None and public_max is not None:
        low, high = float(public_min), float(public_max)
    else:
        released = dp_range(column, values, sigma, accountant)
        if column.kind in ZOOMED_KINDS:
            released = zoom_range(column, values, released, sigma, accountant)
        low = float(public_min) if public_min is not None else released.low
        high = float(public_max) if public_max is not None else released.high
        tails = released.tails
        if high <= low:
            high = low + max(abs(low) * 0.01, 1.0)
    edges, unit_bins = _fine_edges(column, low, high, n_rows, sigma)
    counts, _ = np.histogram(np.clip(values, edges[0], edges[-1]), bins=edges)
    # One release: the histogram plus a NULL bin (each record falls in exactly one of them: sensitivity 1).
    released = accountant.gaussian(f"bins:{column.name}", np.append(counts.astype(float), n_null), sigma)
    has_nulls = bool(released[-1] >= 3.0 * sigma)
    noisy = _with_tails(_denoise(released[:-1], sigma), edges, tails)
    kept = np.flatnonzero(noisy >= 0.5)
    if kept.size:  # no values where the released histogram has none: trim empty bins at both ends
        edges, noisy = edges[kept[0] : kept[-1] + 2], noisy[kept[0] : kept[-1] + 1]
    probs = noisy / noisy.sum() if noisy.sum() > 0 else np.full(len(noisy), 1.0 / len(noisy))
    if unit_bins and len(probs) <= _MAX_EXACT_TOKENS:  # few distinct integers: one token each, exact relations survive
        starts = np.arange(len(probs) + 1, dtype=np.int64)
    else:
        starts = _quantile_starts(probs, n_coarse)
    return NumericCodec(column, edges, probs, starts, unit_bins, has_nulls)


def _with_tails(counts: np.ndarray, edges: np.ndarray, tails: list[tuple[float, float, float]]) -> np.ndarray:
    """Fill the fine bins inside each thin-tail bin of the range release with that bin's count, spread evenly.

    Post-processing of two releases: a tail too thin for fine bins to show is clear in the wider
    bins of the range release, which then shape the tail (hours past 70, ages past 80).
    """
    out = counts.copy()
    centres = (edges[:-1] + edges[1:]) / 2
    for low, high, count in tails:
        inside = (centres >= low) & (centres < high)
        if inside.any() and out[inside].sum() < count:
            out[inside] = count / inside.sum()
    return out


def _denoise(noisy: np.ndarray, sigma: float) -> np.ndarray:
    """Post-process a noisy histogram (free under DP): bins below 3 sigma are empty, except in the tails.

    A bin alone below 3 sigma is indistinguishable from noise (P(noise > 3 sigma) = 0.13%); the outermost
    bins must clear a stricter threshold (1% chance of any false one over all bins). The
    tails beyond the outermost clear bins often hold real mass spread thin (ages past 70, rare
    small counts). Their noisy *sums* are far better estimates than any one bin: see :func:`_tail_mass`.
    """
    clear = noisy >= 3.0 * sigma
    # The extent comes from bins that clear a threshold corrected for the number of bins: among hundreds
    # of empty bins one clears 3 sigma by chance, and a lone spurious bin far out would set the range.
    core = np.flatnonzero(noisy >= _corrected_threshold(noisy.size, sigma, 3.0))
    kept = core if core.size else np.flatnonzero(clear)
    if kept.size == 0:
        return np.zeros_like(noisy)
    first, last = int(kept[0]), int(kept[-1])
    out = np.where(clear, noisy, 0.0)
    out[last + 1 :] = _tail_mass(noisy[last + 1 :], sigma)
    out[:first] = _tail_mass(noisy[:first][::-1], sigma)[::-1]
    return out


def _tail_mass(tail: np.ndarray, sigma: float) -> np.ndarray:
    """Mass for the bins beyond a clear edge (``tail[0]`` adjacent to it), or zeros.

    The tail reaches as far as the widest window from the edge (1, 2, 4, ... bins, or all) whose
    noisy sum clears 3 sigma sqrt(width). Inside that reach, rings of widths 1, 1, 2, 4, ... bins each
    keep their own noisy sum, spread evenly: fine near the edge, pooled (less noisy) further out.
    """
    windows = sorted({min(2**i, tail.size) for i in range(max(tail.size, 1).bit_length() + 1)})
    cleared = [w for w in windows if tail.size and tail[:w].sum() >= 3.0 * sigma * math.sqrt(w)]
    out = np.zeros(tail.size)
    reach = cleared[-1] if cleared else 0
    position = 0
    while position < reach:
        width = min(max(1, position), reach - position)
        out[position : position + width] = max(float(tail[position : position + width].sum()), 0.0) / width
        position += width
    return out


def _fine_edges(column: Column, low: float, high: float, n_rows: float, sigma: float) -> tuple[np.ndarray, bool]:
    if column.kind is ColumnKind.INTEGER and math.ceil(high) - math.floor(low) < _MAX_INTEGER_BINS:
        return np.arange(math.floor(low) - 0.5, math.ceil(high) + 1.0), True
    n_bins = int(np.clip(n_rows / (4.0 * sigma), _MIN_FINE_BINS, _MAX_FINE_BINS))
    return _spaced_edges(low, high, n_bins), False


def _spaced_edges(low: float, high: float, n_bins: int) -> np.ndarray:
    """``n_bins`` bins from ``low`` to ``high``: uniform, or uniform in log space for a heavy tail."""
    if low >= 0 and (high + 1.0) / (low + 1.0) > 50:  # heavy right tail
        return np.expm1(np.linspace(math.log1p(low), math.log1p(high), n_bins + 1))
    if high <= 0 and (1.0 - low) / (1.0 - high) > 50:  # heavy left tail
        return -np.expm1(np.linspace(math.log1p(-low), math.log1p(-high), n_bins + 1))
    return np.linspace(low, high, n_bins + 1)


def _quantile_starts(probs: np.ndarray, n_coarse: int) -> np.ndarray:
    """Fine-bin indices where coarse bins start: quantiles of the released histogram.

    A spike (a fine bin holding at least 1/n_coarse of the mass, such as the zeros of a
    capital-gain column) gets a coarse bin of its own, and the quantiles are taken over the
    rest of the mass, so the values beside a spike keep their resolution.
    """
    spikes = np.flatnonzero(probs >= 1.0 / n_coarse)
    rest = probs.copy()
    rest[spikes] = 0.0
    cuts = [0, len(probs), *spikes.tolist(), *(spikes + 1).tolist()]
    if rest.sum() > 0:
        cdf = np.cumsum(rest) / rest.sum()
        quantiles = np.linspace(0, 1, max(n_coarse - len(spikes), 1) + 1)[1:-1]
        cuts += (np.searchsorted(cdf, quantiles, side="right") + 1).tolist()
    return np.unique(np.clip(cuts, 0, len(probs))).astype(np.int64)


def selection_threshold(sigma: float, delta_per_column: float) -> float:
    """Noisy-count threshold so that a category held by one record is released with probability delta_per_column."""
    return 1.0 + sigma * float(norm.isf(delta_per_column))


def fit_categorical(
    column: Column,
    series: pd.Series,
    *,
    public_categories: list[Any] | None,
    sigma: float,
    threshold: float,
    accountant: PrivacyAccountant,
) -> CategoricalCodec:
    if column.kind is ColumnKind.BOOLEAN:
        return CategoricalCodec(column, [False, True], public=True)
    if public_categories is not None:
        return CategoricalCodec(column, list(public_categories), public=True)
    counts = series.dropna().map(_category_key).value_counts(sort=False)
    # The category counts and the NULL count in one release (each record adds to one of them).
    released = accountant.gaussian(
        f"categories:{column.name}", np.append(counts.to_numpy(dtype=float), float(series.isna().sum())), sigma
    )
    noisy, has_nulls = released[:-1], bool(released[-1] >= 3.0 * sigma)
    order = np.argsort(-noisy, kind="stable")
    kept = [counts.index[i] for i in order if noisy[i] > threshold]
    return CategoricalCodec(column, kept, public=False, has_nulls=has_nulls)


def codec_from_state(column: Column, state: dict[str, Any]) -> Codec:
    if state["type"] == "numeric":
        return NumericCodec(
            column,
            np.asarray(state["fine_edges"], dtype=float),
            np.asarray(state["fine_probs"], dtype=float),
            np.asarray(state["coarse_starts"], dtype=np.int64),
            bool(state["unit_bins"]),
            bool(state.get("has_nulls", True)),
        )
    return CategoricalCodec(
        column, list(state["categories"]), public=bool(state["public"]), has_nulls=bool(state.get("has_nulls", True))
    )
