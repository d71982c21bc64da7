"""A numeric column's range: the coarse release on the public grid (:func:`dp_range`), then a zoom inside one
grid bin (:func:`zoom_range`) or the DP selection of point masses (:func:`select_points`), as :func:`release_range`
picks."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from synthgate.generator.accounting import PrivacyAccountant
from synthgate.generator.releases.counts import EDGE_REACH, corrected_threshold, extend_edge, selection_threshold
from synthgate.generator.releases.grid import (
    CALENDAR_BINS,
    CALENDAR_START,
    CALENDAR_STEP,
    GRID_SIDE,
    calendar_bounds,
    grid_bounds,
    grid_index,
)
from synthgate.generator.releases.weights import RANGE_WEIGHT, unit_weights
from synthgate.schema import Column, ColumnKind

_MAX_INTEGER_BINS = 512
MAX_EXACT_TOKENS = 128
_ZOOM_BINS = 256
_LONE_FALSE_RATE = 1e-6  # chance over all bins that an empty one clears the threshold a lone core bin must clear
_LONE_GAP = EDGE_REACH  # bins between a core bin and the next beyond which it is lone: past extend_edge's reach
_MISSING_Z = 1.5  # a zoom's core grows while its coarse bin counted this many sigmas (of the difference) more
_MAX_POINTS = 16  # point masses a column keeps, the largest first
_INTEGER_SPIKE_SHARE = 0.04  # an integer's point mass holds at least this share of its values (noisy)
ZOOMED_KINDS = (ColumnKind.FLOAT, ColumnKind.DATETIME)  # continuous: their range gets a second, finer release


@dataclass(frozen=True)
class DPRange:
    """A released range: its ends, the core that cleared the threshold, and the noisy count of each grid bin inside.

    ``inner_low`` and ``inner_high`` are the inner bounds of the outermost core bins: the release saw clear mass
    everywhere from ``core_low`` to ``inner_low`` and from ``inner_high`` to ``core_high``, so a finer look may narrow
    the range only inside those two bins.
    """

    low: float
    high: float
    counts: list[tuple[float, float, float]]  # (low, high, noisy count) of each grid bin inside the range
    core_low: float
    core_high: float
    inner_low: float
    inner_high: float
    located: bool = True  # False: no bin nor sum of bins cleared its threshold, the values' place is unknown
    mass: float = math.inf  # noisy sum of the bins inside the range: about the column's non-null rows
    sigma: float = 0.0  # the noise of the counts
    grid: np.ndarray | None = None  # every grid bin's noisy count (an earlier release to combine with, for a refit)
    zoom: list[tuple[float, float, float]] = field(default_factory=list)  # a zoom's bins in the core, as ``counts``
    zoom_sigma: float = 0.0  # the noise of the zoom's counts


def dp_range(
    column: Column,
    values: np.ndarray,
    sigma: float,
    accountant: PrivacyAccountant,
    units: np.ndarray | None = None,
    earlier: tuple[np.ndarray, float] | None = None,
) -> DPRange:
    """DP range of ``values`` from a noisy histogram on a fixed, public grid.

    Numbers use the signed log grid (two bins a decade: wide bins gather thin mass, so a column whose values are
    spread over a decade, or held by a few percent of the rows, still clears the threshold); datetimes a grid of
    30-day bins from 1700 to 2261. The core runs from the first to the last bin that clears a threshold corrected
    for the number of bins, so every clear bin is inside the range and a spike cannot hide the rest of the
    distribution; it grows over thin tails (:func:`extend_edge`); its bins' counts are kept for the fine histogram.
    ``earlier``: an earlier release of the same grid (counts, noise), combined with this one by their precisions (a
    refit: as if one release of both weights had been made).
    """
    if column.kind is ColumnKind.DATETIME:
        index = np.clip(((values - CALENDAR_START) // CALENDAR_STEP).astype(np.int64), 0, CALENDAR_BINS - 1)
        counts = np.bincount(index, weights=unit_weights(index, units), minlength=CALENDAR_BINS).astype(float)
        bounds = calendar_bounds
    else:
        index = grid_index(values)
        counts = np.bincount(index, weights=unit_weights(index, units), minlength=2 * GRID_SIDE + 1).astype(float)
        bounds = grid_bounds
    noisy = accountant.gaussian(f"range:{column.name}", counts, sigma)
    if earlier is not None:
        noisy, sigma = _combined(noisy, sigma, *earlier)
    # Below 2 the log grid's bins are narrower than 1: an integer column cannot have values in some of them.
    integer = column.kind is ColumnKind.INTEGER
    empty = [integer and math.ceil(lo) >= hi and lo != hi for lo, hi in map(bounds, range(noisy.size))]
    # A false core bin far out would stretch the range over decades of nothing: 0.1% chance over all bins, and
    # less again for a lone one (:func:`_without_lone_ends`)
    kept = np.flatnonzero(noisy > corrected_threshold(noisy.size, sigma, 4.0, false_rate=1e-3))
    strict = corrected_threshold(noisy.size, sigma, 4.0, false_rate=_LONE_FALSE_RATE)
    kept = _without_lone_ends(kept, noisy, strict, np.cumsum(~np.asarray(empty, dtype=bool)))
    pooled = (int(kept[0]), int(kept[-1])) if kept.size else _pooled_core(noisy, sigma)
    located = pooled is not None
    core_first, core_last = pooled if pooled is not None else (int(np.argmax(noisy)),) * 2
    first, last = extend_edge(noisy, core_first, -1, sigma, empty), extend_edge(noisy, core_last, 1, sigma, empty)
    return DPRange(
        bounds(first)[0],
        bounds(last)[1],
        [(*bounds(i), float(noisy[i])) for i in range(first, last + 1) if not empty[i]],
        core_low=bounds(core_first)[0],
        core_high=bounds(core_last)[1],
        inner_low=bounds(core_first)[1],
        inner_high=bounds(core_last)[0],
        located=located,
        mass=max(float(noisy[first : last + 1].sum()), 0.0),
        sigma=sigma,
        grid=noisy,
    )


def _without_lone_ends(kept: np.ndarray, noisy: np.ndarray, strict: float, place: np.ndarray) -> np.ndarray:
    """The core's clear bins (``kept``, indices) less an outermost one that lies more than :data:`_LONE_GAP` bins
    from the next and whose count is under ``strict`` (post-processing). ``place``: each bin's place among the bins
    that can hold a value (an integer's zeros lie next to its ones across the log grid's bins below 1).

    One empty bin among the 6,744 months of the calendar grid clears the core's threshold in about one fit in a
    thousand; alone and far out, it set the range: 300 dates of 2021 came out spread from 2020 to 2078 in one fine
    bin. A lone bin must clear the strict threshold (a default date that a few percent of rows hold still does).
    Nearer than the gap, a bin stays: the zeros of a zero-inflated figure lie a few dozen bins from its values (4%
    of a 55-column table's bankcard limits, 5.5 sigma), and a real tail beside the core is found by
    :func:`extend_edge` within the same reach."""
    bins = [int(i) for i in kept]
    while len(bins) > 1:
        if place[bins[-1]] - place[bins[-2]] > _LONE_GAP and noisy[bins[-1]] <= strict:
            bins.pop()
        elif place[bins[1]] - place[bins[0]] > _LONE_GAP and noisy[bins[0]] <= strict:
            bins.pop(0)
        else:
            break
    return np.asarray(bins, dtype=np.int64)


def _combined(noisy: np.ndarray, sigma: float, earlier: np.ndarray, earlier_sigma: float) -> tuple[np.ndarray, float]:
    """Two noisy releases of the same counts as one: their precision-weighted mean and its noise."""
    precision, earlier_precision = sigma**-2, earlier_sigma**-2
    total = precision + earlier_precision
    return (noisy * precision + earlier * earlier_precision) / total, total**-0.5


def _pooled_core(noisy: np.ndarray, sigma: float) -> tuple[int, int] | None:
    """The core when no single bin clears the threshold: sums of 2, 4, 8, ... adjacent bins (post-processing of the
    same release, each sum's noise is sigma * sqrt(width)), the first width at which a sum clears its threshold.

    Data spread thin over many bins (300 dates over 55 years) is found where it is, instead of at the largest of
    thousands of noisy empty bins; with no clear sum at any width, None: the values cannot be located (the
    largest of a thousand noisy bins would put them anywhere, at 1e283 for a figure of 16,000 to 582,000).
    """
    width, levels = 2, max(int(noisy.size - 1).bit_length(), 1)  # the 1% chance of a false core spread over levels
    while width < noisy.size:
        starts = np.arange(0, noisy.size, width)
        sums = np.add.reduceat(noisy, starts)
        clear = np.flatnonzero(sums > corrected_threshold(sums.size * levels, sigma * math.sqrt(width), 4.0))
        if clear.size:
            return int(starts[clear[0]]), int(min(starts[clear[-1]] + width, noisy.size) - 1)
        width *= 2
    return None


def zoom_range(
    column: Column,
    values: np.ndarray,
    coarse: DPRange,
    sigma: float,
    accountant: PrivacyAccountant,
    units: np.ndarray | None = None,
) -> DPRange:
    """A second look at a continuous column's range: a noisy histogram of 256 bins across its core, which one coarse
    bin holds (the zoom is made only then).

    The coarse grid's bins are wide (a factor of 3.2; 30 days for datetimes), so coordinates (offset 45, spread
    0.2) or the stamps of one week fill a sliver of it. The zoom narrows the core to the zoom bins from the first
    to the last that clears a threshold corrected for the number of bins, grown outwards over the stretches that
    hold mass of their own at 4 sigma (:func:`extend_edge`): fewer of a credit score's tail rows (a fifth beyond the
    clear bins at epsilon 4) are clipped to the range's ends. An end where the coarse release found
    a thin tail beyond the core is kept, so heavy tails stay whole, while the core still narrows: a false tail bin
    far out no longer leaves coordinates spread over a bin of 0.5 degrees.
    """
    edges = spaced_edges(coarse.core_low, coarse.core_high, _ZOOM_BINS, log=column.kind is not ColumnKind.DATETIME)
    counts = _histogram(values, edges, units)  # a tail's values count in the end bins: the core reaches them
    noisy = accountant.gaussian(f"zoom:{column.name}", counts, sigma)
    # One false bin far out would undo the zoom (coordinates spread over 3 degrees): a 0.1% chance over all bins
    threshold = corrected_threshold(noisy.size, sigma, 3.0, false_rate=1e-3)
    clear = np.flatnonzero(noisy >= threshold)
    if not clear.size:
        return coarse
    first, last = (
        extend_edge(noisy, int(clear[0]), -1, sigma, z=4.0),
        extend_edge(noisy, int(clear[-1]), 1, sigma, z=4.0),
    )
    first, last = _covering(noisy, first, last, coarse, sigma)
    core_low, core_high = float(edges[first]), float(edges[last + 1])
    inside = noisy[first : last + 1].sum()
    # Too few rows to tell a stretch that holds them from a false clear bin; or one that does not hold them
    if coarse.mass < 2.0 * threshold or inside < 0.5 * coarse.mass:
        return coarse
    low = core_low if coarse.low >= coarse.core_low else coarse.low  # a thin tail the coarse release found stays
    high = core_high if coarse.high <= coarse.core_high else coarse.high
    return DPRange(
        low,
        high,
        coarse.counts,
        core_low,
        core_high,
        inner_low=core_high,  # one bin (the zoomed core) holds the whole core, as before the zoom
        inner_high=core_low,
        located=coarse.located,
        mass=coarse.mass,
        sigma=coarse.sigma,
        grid=coarse.grid,
        # an end bin where the coarse release kept a tail beyond the core also counts the tail's values (clipped into
        # it): the fine bins already hold them further out, and that bin would look as if it had lost them
        zoom=[
            (float(edges[i]), float(edges[i + 1]), float(noisy[i]))
            for i in range(first, last + 1)
            if not (i == 0 and low < coarse.core_low) and not (i == noisy.size - 1 and high > coarse.core_high)
        ],
        zoom_sigma=sigma,
    )


def _covering(noisy: np.ndarray, first: int, last: int, coarse: DPRange, sigma: float) -> tuple[int, int]:
    """The zoom's core from ``first`` to ``last`` grown, one zoom bin at a time on the side whose next bin holds more,
    while it clearly holds less than the coarse core bin it zooms into (post-processing of both releases).

    The zoom's bins are 256 times narrower than the coarse bin, so at high noise only the densest clears: a table of
    2,637 aircraft (noise 142) kept the zoom bin of 1997-2005 and clipped the 40% of the aircraft built before or
    after to its ends (synthetic years 2000-2008 against 1956-2013). The coarse bin counted them all, at its own
    noise: mass it saw and the zoomed core lacks is mass the zoom would clip.
    """
    at = [count for low, _, count in coarse.counts if low == coarse.core_low]
    if not at:
        return first, last
    expected = at[0]
    while first > 0 or last < noisy.size - 1:
        missing = expected - float(noisy[first : last + 1].sum())
        if missing <= _MISSING_Z * math.hypot(coarse.sigma, sigma * math.sqrt(last - first + 1)):
            break
        below = noisy[first - 1] if first > 0 else -math.inf
        above = noisy[last + 1] if last < noisy.size - 1 else -math.inf
        first, last = (first - 1, last) if below > above else (first, last + 1)
    return first, last


def bin_index(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """The bin of each value as ``np.histogram`` counts it (values clipped into the edges; the last bin closed)."""
    index = np.searchsorted(edges, np.clip(values, edges[0], edges[-1]), side="right") - 1
    return np.clip(index, 0, len(edges) - 2).astype(np.int64)


def _histogram(values: np.ndarray, edges: np.ndarray, units: np.ndarray | None) -> np.ndarray:
    """Counts of ``values`` (clipped into the edges) in the bins, each unit's counts scaled to norm 1 with units."""
    index = bin_index(values, edges)
    return np.bincount(index, weights=unit_weights(index, units), minlength=len(edges) - 1).astype(float)


def release_range(
    column: Column,
    values: np.ndarray,
    sigma: float,
    selection_delta: float,
    accountant: PrivacyAccountant,
    units: np.ndarray | None,
    earlier: tuple[np.ndarray, float] | None = None,
) -> tuple[DPRange, tuple[np.ndarray, np.ndarray], float]:
    """Steps 1 and 2 of a numeric release: the range, then a zoom, point masses or nothing (see the module
    docstring). Returns the range, the point masses with their noisy counts, and the noise left for the fine bins
    (the budget a column did not use in step 2 goes to them; an integer that needs a zoom shares the bins' budget
    with it)."""
    none = np.empty(0), np.empty(0)
    released = dp_range(column, values, sigma / math.sqrt(RANGE_WEIGHT), accountant, units, earlier)
    single_bin = released.inner_low > released.inner_high  # one coarse bin holds the whole core
    if single_bin and (column.kind in ZOOMED_KINDS or released.inner_low - released.inner_high >= _MAX_INTEGER_BINS):
        # Floats and datetimes in one coarse bin, or a year column (all 2013) in one of 2,162 integers: look closer
        return zoom_range(column, values, released, sigma, accountant, units), none, sigma
    short = column.kind is ColumnKind.INTEGER and released.high - released.low <= MAX_EXACT_TOKENS
    if column.kind is ColumnKind.DATETIME or short:  # dates over months, a few integers: the bins take the share
        return released, none, sigma / math.sqrt(2.0)
    # Spread over several coarse bins: the third release finds spikes (zeros, sentinels, loan terms of 36 or 60)
    threshold = selection_threshold(sigma, selection_delta) if selection_delta > 0 else math.inf
    # An integer's values decode exactly from integer-aligned bins; a point is worth a token only where it is a
    # spike (the zeros of months-since, a sentinel code), not for every value a few percent of rows hold
    spike = _INTEGER_SPIKE_SHARE * released.mass if column.kind is ColumnKind.INTEGER else 0.0
    return released, select_points(column, values, sigma, max(threshold, spike), accountant, units), sigma


def select_points(
    column: Column,
    values: np.ndarray,
    sigma: float,
    threshold: float,
    accountant: PrivacyAccountant,
    units: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """DP frequent-value selection: the exact values that many rows hold (the zeros of a zero-inflated figure, a
    sentinel such as 999, a default), sorted, at most ``_MAX_POINTS``, and their noisy counts.

    The noisy count of every distinct value is released (each record adds to one: sensitivity 1) and a value is
    kept when it clears ``threshold``, so a value held by one record is kept with probability at most the
    selection delta (as category selection). Such values are decoded exactly: uniform values inside a fine bin
    would turn a column that is 0 for 90% of rows into one with no zero at all.
    """
    # No early return without values: the release is recorded all the same (an empty one), or the budget spent, and
    # the DP-SGD noise set from it, would tell an all-NULL column from one with a value
    distinct, inverse = np.unique(values, return_inverse=True)
    inverse = inverse.ravel().astype(np.int64)
    counts = np.bincount(inverse, weights=unit_weights(inverse, units), minlength=distinct.size)
    noisy = accountant.gaussian(f"points:{column.name}", counts.astype(float), sigma)
    kept = np.flatnonzero(noisy > threshold)
    kept = kept[np.argsort(-noisy[kept], kind="stable")][:_MAX_POINTS]
    kept = kept[np.argsort(distinct[kept])]
    return distinct[kept], noisy[kept]


def concentrated(coarse: DPRange) -> bool:
    """Whether the core of a range holds most of the mass the range release saw inside it (post-processing).

    Dates spread over years have a core of a month or two (the bins that cleared a threshold by the noise), and
    bins a quarter of a month beyond it hold a few dozen rows each, too few to clear the noise: holes and spikes
    across most of the range. Such dates get even bins over the whole range; a week of stamps with a thin tail of
    years keeps its fine bins on the week.
    """
    positive = [(lo, hi, max(count, 0.0)) for lo, hi, count in coarse.counts]
    total = sum(count for _, _, count in positive)
    core = sum(count for lo, hi, count in positive if hi > coarse.core_low and lo < coarse.core_high)
    return total > 0 and core >= total / 2


def spaced_edges(low: float, high: float, n_bins: int, *, log: bool = True) -> np.ndarray:
    """``n_bins`` bins from ``low`` to ``high``: uniform, or uniform in log space for a heavy tail (with ``log``; never
    for datetimes, whose seconds since 1970 are no magnitude: stamps from 1970 to 2019 would get bins of hours at one
    end and years at the other)."""
    if not log:
        return np.linspace(low, high, n_bins + 1)
    if low >= 0 and (high + 1.0) / (low + 1.0) > 50:  # heavy right tail
        return np.expm1(np.linspace(math.log1p(low), math.log1p(high), n_bins + 1))
    if high <= 0 and (1.0 - low) / (1.0 - high) > 50:  # heavy left tail
        return -np.expm1(np.linspace(math.log1p(-low), math.log1p(-high), n_bins + 1))
    return np.linspace(low, high, n_bins + 1)
