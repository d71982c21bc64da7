"""A numeric column's codec (:func:`fit_numeric`): its range (:mod:`.ranges`), then the fine bins' release inside
it, with values past the range's ends counted apart and given the stretch beside an end where that count is clear."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy.optimize import brentq

from synthgate.columns import to_numeric
from synthgate.generator.accounting import PrivacyAccountant
from synthgate.generator.codecs import NumericCodec, token_prior
from synthgate.generator.releases.counts import corrected_threshold, denoise
from synthgate.generator.releases.grid import (
    CALENDAR_BINS,
    CALENDAR_START,
    CALENDAR_STEP,
    calendar_bounds,
    grid_bounds,
    grid_index,
    grid_neighbour,
)
from synthgate.generator.releases.ranges import (
    MAX_EXACT_TOKENS,
    ZOOMED_KINDS,
    DPRange,
    bin_index,
    concentrated,
    release_range,
    spaced_edges,
)
from synthgate.generator.releases.weights import unit_weights
from synthgate.schema import Column, ColumnKind

_MAX_FINE_BINS = 400
_MIN_FINE_BINS = 4


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
    selection_delta: float = 0.0,
    units: np.ndarray | None = None,
    earlier_range: tuple[np.ndarray, float] | None = None,
) -> NumericCodec:
    """Release a numeric column's codec: range (and zoom or point masses), then the fine histogram with NULLs.

    ``sigma`` is the noise of a weight-1 release (see :func:`.weights.budget_weight`). ``selection_delta`` is the
    chance that a value held by one record is selected as a point mass (floats, and integers spread wide; see
    :func:`.ranges.select_points`); with the default, none is selected. ``earlier_range``: a first fit's range release
    (:attr:`NumericCodec.range_grid`), which a refit combines with its own.
    """
    values = to_numeric(series, column)
    null = np.isnan(values)
    null_units = None if units is None else units[null]
    values, units = values[~null], None if units is None else units[~null]
    coarse: DPRange | None = None
    points, point_counts = np.empty(0), np.empty(0)
    located = True
    values_rows = n_rows  # rows holding a value: all rows unless the range release estimates fewer
    public = public_min is not None and public_max is not None
    if public_min is not None and public_max is not None:  # declared bounds are the range, exactly: never trimmed
        low, high = float(public_min), float(public_max)
    else:
        released, (points, point_counts), sigma = release_range(
            column, values, sigma, selection_delta, accountant, units, earlier_range
        )
        located = released.located
        values_rows = min(n_rows, released.mass)
        low = float(public_min) if public_min is not None else released.low
        high = float(public_max) if public_max is not None else released.high
        coarse = released
        if high <= low:
            high = low + max(abs(low) * 0.01, 1.0)
    edges, unit_bins = _fine_edges(column, low, high, values_rows, sigma, coarse)
    binned = ~np.isin(values, points)  # a point mass is decoded exactly, not from the bins
    values, units = values[binned], None if units is None else units[binned]
    # One release: the histogram, a bin below and one above the range, and a NULL bin (each record falls in exactly
    # one of them: sensitivity 1). Values past the range are counted apart: where that count is clear they get the
    # stretch beside the end (:func:`_edges_past`, :func:`_extended`); else they stay at the end, as clipped. Piled
    # there whatever their count, the quarter of a months-since figure (0 to 9) that the range release missed all
    # went to 10, and the bins for 11 to 31 then looked full and got none of the range release's mass.
    n_bins = len(edges) - 1
    index = np.where(values < edges[0], n_bins, np.where(values > edges[-1], n_bins + 1, bin_index(values, edges)))
    bins = np.append(index, np.full(int(null.sum()), n_bins + 2))
    both = None if units is None or null_units is None else np.append(units, null_units)
    counts = np.bincount(bins, weights=unit_weights(bins, both), minlength=n_bins + 3).astype(float)
    histogram = accountant.gaussian(f"bins:{column.name}", counts, sigma)
    has_nulls = column.nullable and bool(histogram[-1] >= 3.0 * sigma)  # NOT NULL: never, whatever the noise
    outside = histogram[n_bins : n_bins + 2]
    clear = outside >= 3.0 * sigma
    # a declared bound is never crossed; a range that was never located has no end to grow from
    free = (public_min is None and located, public_max is None and located)
    past = _edges_past(column, edges, ends=(low, high), clear=clear & free, unit_bins=unit_bins)
    inside = histogram[:n_bins].copy()
    for end, side in ((0, 0), (-1, 1)):  # clear mass that no grid bin past an end takes stays at that end, as clipped
        inside[end] += outside[side] if clear[side] and past[side] is None else 0.0
    noisy = denoise(inside, sigma)
    if coarse is not None:  # the zoom's bins first (finer), then the range release's
        noisy = _with_range_counts(noisy, edges, coarse.zoom, coarse.zoom_sigma, points, point_counts)
        noisy = _with_range_counts(noisy, edges, coarse.counts, coarse.sigma, points, point_counts)
    edges, noisy = _extended(
        edges, noisy, past, outside, integer=column.kind is ColumnKind.INTEGER, unit_bins=unit_bins
    )
    kept = np.flatnonzero(noisy >= 0.5)
    if kept.size and not public:  # no values where the released histogram has none: trim empty bins at both ends
        edges, noisy = edges[kept[0] : kept[-1] + 2], noisy[kept[0] : kept[-1] + 1]
    probs = noisy / noisy.sum() if noisy.sum() > 0 else np.full(len(noisy), 1.0 / len(noisy))
    # Few distinct integers, as many as the noise would afford bins for: one token each, exact relations survive.
    # More (ages, hours a week on a table of 20,000 rows) are decoded exactly from unit bins but modelled as coarse
    # quantile bins: a head of 99 classes learns less under DP-SGD's noise than one of 24.
    if unit_bins and len(probs) <= min(MAX_EXACT_TOKENS, values_rows / (4.0 * sigma)):
        starts = np.arange(len(probs) + 1, dtype=np.int64)
    else:
        starts = _quantile_starts(probs, max(n_coarse - len(points), 2))
    codec = NumericCodec(column, edges, probs, starts, unit_bins, has_nulls or not located, points, located)
    if coarse is not None and coarse.grid is not None:
        codec.range_grid = (coarse.grid, coarse.sigma)
    if not located:  # never values from a guessed place: NULL only (the bins release is still made, as budgeted)
        codec.unplaced = n_rows - float(histogram[-1])  # released rows less NULLs: values to look for
    # The binned values: the rows less NULLs and point masses (the denoised bins lose thin stretches, and the sum of
    # hundreds of noisy bins is far noisier than these few counts). With units, each release scales a unit's counts
    # on its own, so the point masses' counts do not subtract from units: a unit of 100 flights, 35 of them on 7 point
    # masses, adds 2.6 to their sum, and 2,600 aircraft left no mass to the bins (every delay sampled from -6 to 0).
    # The bins' own released mass, noisier but on the scale of the NULL bin beside it, then stands for them; the
    # points' share comes out roughly (0.31 for a true 0.40 in the unit test), and DP-SGD learns the rest.
    if units is None:
        binned_rows = max(n_rows - max(float(histogram[-1]), 0.0) - float(point_counts.sum()), 0.0)
    else:
        binned_rows = max(float(noisy.sum()), 0.0)
    shape = np.add.reduceat(probs, starts[:-1]) if len(probs) else np.zeros(codec.n_coarse)
    coarse_counts = shape * binned_rows
    codec.prior = token_prior(np.concatenate([coarse_counts, point_counts, [histogram[-1]]]), codec.forbidden_tokens)
    return codec


def _edges_past(
    column: Column,
    edges: np.ndarray,
    *,
    ends: tuple[float, float],
    clear: np.ndarray,
    unit_bins: bool,
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """New fine edges below and above the range (or None) where the bins release counted clear mass past an end
    (``clear``: below, above; ``ends``: the range's low and high): over the stretch past the end (:func:`_beyond`),
    one bin per integer with ``unit_bins`` (the integers nearest the ends, as many as keep the column within
    ``MAX_EXACT_TOKENS`` tokens, shared between the ends), else four. The range release missed a stretch the
    bins release saw: a quarter of a months-since figure, 0 to 9, in grid bins each under the range's threshold,
    which then go to the bin from 3.16 to 10 (4 to 9: the integers under 4 are in bins the bins release did not see
    apart); or a zoom cut a float's thin tail (:func:`_extended` keeps such a tail near the end)."""
    past: list[np.ndarray | None] = []
    for side, end, wanted in ((-1, ends[0], clear[0]), (1, ends[1], clear[1])):
        beside = _beyond(column, end, side) if wanted else None
        if beside is None:
            past.append(None)
            continue
        low, high = beside
        if column.kind is ColumnKind.INTEGER and unit_bins:  # one bin per integer, as the range's own
            new = np.arange(math.ceil(low) - 0.5, math.floor(high) + 1.0)
        elif column.kind is ColumnKind.INTEGER:
            new = np.unique(np.round(spaced_edges(low, high, 4)) - 0.5)
        else:
            new = spaced_edges(low, high, 4, log=column.kind is not ColumnKind.DATETIME)
        new = new[new < edges[0]] if side < 0 else new[new > edges[-1]]
        past.append(new if len(new) else None)
    if unit_bins:  # one token per integer, at most MAX_EXACT_TOKENS: the integers nearest each end that fit
        below, above = past
        wanted = [0 if below is None else len(below), 0 if above is None else len(above)]
        room = max(MAX_EXACT_TOKENS - (len(edges) - 1), 0)
        kept = [min(wanted[0], room // 2), min(wanted[1], room - room // 2)]  # half the room each, then what one
        kept = [min(wanted[0], room - kept[1]), min(wanted[1], room - kept[0])]  # side leaves to the other
        # (no room on a side: its values stay at the end, as clipped)
        past = [below[len(below) - kept[0] :] if below is not None and kept[0] else None]
        past.append(above[: kept[1]] if above is not None and kept[1] else None)
    return past[0], past[1]


def _beyond(column: Column, end: float, side: int) -> tuple[float, float] | None:
    """The stretch past a range's ``end`` (below with ``side`` -1, above with 1) that values counted past it may
    take: the grid bin beside an end on a grid bound (:func:`grid_neighbour`); beside a continuous column's zoomed
    end (inside a grid bin), the rest of the grid bin holding it, which the range release counted. A zoomed integer
    keeps such values at its end, as clipped: a credit score's floor (580) lies right past its zoomed end (614), and
    trailing off from there put synthetic scores down to 424 (SDMetrics, binning each table over its own minimum
    and maximum, then scored the score's pairs 0.11 and 0.28)."""
    beside = grid_neighbour(column, end, side)
    if beside is not None or column.kind not in ZOOMED_KINDS:
        return beside
    if column.kind is ColumnKind.DATETIME:
        index = int((end - CALENDAR_START) // CALENDAR_STEP)
        if not 0 <= index < CALENDAR_BINS:
            return None
        low, high = calendar_bounds(index)
    else:
        low, high = grid_bounds(int(grid_index(np.array([end]))[0]))
    stretch = (low, end) if side < 0 else (end, high)
    return stretch if stretch[0] < stretch[1] else None


def _extended(
    edges: np.ndarray,
    noisy: np.ndarray,
    past: tuple[np.ndarray | None, np.ndarray | None],
    outside: np.ndarray,
    *,
    integer: bool,
    unit_bins: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """The fine bins with :func:`_edges_past`'s bins added and each side's count past the range (``outside``) in them
    (post-processing).

    Real values past an end mostly trail off from it: a count that the end's outermost bin holding mass, at its
    density, could hold within the stretch is a tail, given an exponential decline from that density over bins beside
    the end (:func:`_trailing`). Spread evenly, a thin tail past a grid bound reached 3.2 times the end's value, and
    SDMetrics, which bins each table over its own minimum and maximum, then misaligns every pair the column is in. A
    count too large for that (a quarter of a months-since figure, 0 to 9, below a range that starts at 10) fills its
    stretch evenly. ``integer``: cuts on whole numbers; ``unit_bins``: one bin per integer, as :func:`_edges_past`
    made them."""
    below, above = past
    shape = {"integer": integer, "unit_bins": unit_bins}
    held = np.flatnonzero(noisy > 0)  # the density at an end: its outermost bin that holds mass
    first, last = (int(held[0]), int(held[-1])) if held.size else (0, len(noisy) - 1)
    if above is not None:  # first: bins added below would move ``first`` and ``last``
        width = edges[last + 1] - edges[last]
        tail, mass = _trailing(np.insert(above, 0, edges[-1]), width, noisy[last], outside[1], **shape)
        edges, noisy = np.concatenate([edges, tail[1:]]), np.concatenate([noisy, mass])
    if below is not None:  # outwards is downwards: the tail's edges and masses come nearest first
        width = edges[first + 1] - edges[first]
        tail, mass = _trailing(np.append(below, edges[0])[::-1], width, noisy[first], outside[0], **shape)
        edges, noisy = np.concatenate([tail[:0:-1], edges]), np.concatenate([mass[::-1], noisy])
    return edges, noisy


def _trailing(
    stretch: np.ndarray, end_width: float, end_count: float, count: float, *, integer: bool, unit_bins: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Edges and masses of ``count`` values past a range's end, ``stretch`` the candidate edges outwards from the end
    (``stretch[0]``, ascending or descending), ``end_count`` the rows of the end bin of width ``end_width``.

    Where ``count`` fits under the end bin's density across the stretch, the masses follow a truncated exponential
    decline whose density at the end is the end bin's and whose integral is ``count``, over bins from the end of
    half its scale, then doubling (``integer``: of whole numbers; ``unit_bins``: the stretch's own), up to the first
    cut with at most half a row beyond it (the last bin holds what lies beyond). Else ``count`` is spread over the
    stretch's bins by their widths."""
    offsets = np.abs(stretch - stretch[0])
    span = float(offsets[-1])
    density = max(end_count, 0.0) / end_width if end_width > 0 else 0.0
    share = count / (density * span) if density > 0 else math.inf  # of what the end's density would put there
    if count <= 0 or share >= 1.0 - 1e-6:  # about as much as that, or more: no decline to speak of
        return stretch, max(count, 0.0) * np.diff(offsets) / span
    # The scale s solves s (1 - exp(-span / s)) = count / density; in u = span / s, (1 - exp(-u)) / u = share,
    # which falls from 1 at u = 0 towards 1 / u: a root lies between the two brackets.
    scale = span / float(brentq(lambda u: -math.expm1(-u) / u - share, 1e-6, 2.0 / share + 10.0))
    if not unit_bins:
        cuts = [0.0, *(scale / 2 * 2.0**k for k in range(64) if scale / 2 * 2.0**k < span), span]
        offsets = np.unique(np.round(cuts)) if integer else np.asarray(cuts)
    left = count * (np.exp(-offsets / scale) - math.exp(-span / scale)) / -math.expm1(-span / scale)  # beyond each
    keep = int(np.searchsorted(-left, -0.5)) + 1  # up to the first offset with less than half a row beyond it
    offsets = offsets[: max(keep, 2)]
    masses = -np.diff(left[: len(offsets)])
    masses[-1] += count - masses.sum()  # the last bin takes what lies beyond it
    direction = 1.0 if stretch[-1] > stretch[0] else -1.0
    return stretch[0] + direction * offsets, masses


def _with_range_counts(
    counts: np.ndarray,
    edges: np.ndarray,
    wide: list[tuple[float, float, float]],
    sigma: float,
    points: np.ndarray,
    point_counts: np.ndarray,
) -> np.ndarray:
    """Give the fine bins inside each ``wide`` bin (low, high, noisy count of noise ``sigma``: the range release's
    grid bins, or a zoom's) the mass that release saw and they lack, spread
    evenly, where they lack most of it and the gap clears 2 sigma of the range release's noise, corrected for the
    range's number of grid bins at a 5% chance of any false fill (2.4 sigma over six bins; a range falsely stretched
    over 60 decades filled empty bins out to 1e30 at a flat 2 sigma). The grid bin is inside the range: the release
    already saw mass about it; at 3 sigma a fifth of a months-since figure's fits, NULL for 77% of 8,000 rows at the
    noise of a 55-column table, lost the values from 1 to 9 that two grid bins held. The range release counted the
    point masses too, which the fine bins leave out: their released counts are not missing mass (a rate column
    whose values are all point masses would otherwise be smeared across its grid bin).

    Post-processing of two releases: a tail, or a column held by a few percent of the rows, is too thin for fine
    bins to show, but clear in the wider bins of the range release, which then shape it (hours past 70, months
    since an event below 10). A zoom's bins do the same at their finer scale: the fine bins of a year column (one an
    integer at noise 142, about a hundred aircraft each) kept the densest years and lost the 40% of the aircraft that
    the zoom's bins of eight years each counted around them.
    """
    out = counts.copy()
    centres = (edges[:-1] + edges[1:]) / 2
    # 2 sigma for the few grid bins of most ranges; more across a range falsely stretched over decades of nothing,
    # where one empty bin in 40 would otherwise be filled (a 5% chance of any false fill)
    threshold = corrected_threshold(len(wide), sigma, 2.0, false_rate=0.05) if wide else 0.0
    for low, high, count in wide:
        inside = (centres >= low) & (centres < high) if high > low else centres == low
        at_points = float(point_counts[(points >= low) & ((points < high) if high > low else points == low)].sum())
        missing = count - at_points - out[inside].sum()
        if inside.any() and missing > max(threshold, count / 2):  # the fine bins lost most of it
            out[inside] += missing / inside.sum()
    return out


def _fine_edges(
    column: Column, low: float, high: float, n_rows: float, sigma: float, coarse: DPRange | None = None
) -> tuple[np.ndarray, bool]:
    """Fine bins inside the range: one per integer for short integer ranges (up to 128 integers, or as many as the
    noise affords); otherwise as many as the noise affords across the core (about 4 sigma of the ``n_rows`` holding
    a value each, 4 to 400; integer-aligned for integers), and beyond the core the range release's own grid bins,
    each in four, so a thin tail out to 316 does not coarsen the bins of a spike at 20."""
    n_bins = int(np.clip(n_rows / (4.0 * sigma), _MIN_FINE_BINS, _MAX_FINE_BINS))
    integer = column.kind is ColumnKind.INTEGER
    if integer and math.ceil(high) - math.floor(low) + 1 <= max(n_bins, MAX_EXACT_TOKENS):
        return np.arange(math.floor(low) - 0.5, math.ceil(high) + 1.0), True  # thin bins: pooled by the denoising
    inner_low, inner_high = low, high
    spread = column.kind is ColumnKind.DATETIME and coarse is not None and not concentrated(coarse)
    if coarse is not None and not spread and max(low, coarse.core_low) < min(high, coarse.core_high):
        inner_low, inner_high = max(low, coarse.core_low), min(high, coarse.core_high)
    # Thin data over many integers (months since an event, NULL for half the rows): wider bins clear the noise
    log = column.kind is not ColumnKind.DATETIME
    edges = spaced_edges(inner_low, inner_high, n_bins, log=log)
    tails = [
        spaced_edges(max(lo, low), min(hi, high), 4, log=log)
        for lo, hi, _ in (coarse.counts if coarse is not None else [])
        if max(lo, low) < min(hi, high) and (hi <= inner_low or lo >= inner_high)  # inside a declared bound too
    ]
    edges = np.unique(np.concatenate([edges, [low, high], *tails]))
    if integer:  # integer-aligned: each integer in one bin, the highest included
        edges = np.unique(np.append(np.round(edges) - 0.5, math.ceil(high) + 0.5))
    return edges, False


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
