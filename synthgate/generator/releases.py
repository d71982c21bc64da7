"""The DP releases that fit the column codecs.

Everything a codec learns from the real data (numeric bounds, bins, category lists) is a
released DP statistic recorded on the :class:`PrivacyAccountant`, unless the spec declares
it public. A codec's token set is the released bins or categories plus one NULL token
(and one RARE token for DP-selected categories).

Numeric columns (integers, floats, datetimes as seconds) are released in three steps (declared bounds: the third
only), weighted as :func:`budget_weight` says:

1. *range*: a noisy histogram over a fixed, data-independent grid (numbers: 2 log bins a
   decade, both signs, 1e-6 to 1e307; datetimes: 30-day bins from 1700 to 2261,
   about all that pandas' nanosecond timestamps hold). Its core runs from the first to the last
   bin (or sum of adjacent bins) that clears a threshold corrected for the number of bins, so a spike
   never hides the rest; the range grows over thin tails while the next bins clear. Outliers beyond
   it are clipped: no single record moves the range. Wide bins gather thin mass: a figure held by 15%
   of the rows, or spread over a decade, still clears the threshold.
2. one of: a *zoom* (256 noisy bins across the core narrow it where the whole core sits in one
   coarse bin: coordinates, the stamps of one week, a year column; never past the mass that coarse bin counted,
   :func:`_covering`); *point masses* (floats and
   integers spread wider: DP selection of exact values that many rows hold, such as the zeros of a
   zero-inflated figure, a sentinel or a loan term, decoded exactly); or, for datetimes spread over
   months and integers over at most 128 values, nothing, the fine bins taking this step's share.
3. *bins*: a noisy histogram over a fine grid inside the range (one bin per integer for
   short integer ranges; otherwise uniform in linear or log space, as many as the column's
   non-null rows afford, over the core, or over the whole range for dates spread across it), plus a
   NULL bin. The model predicts a coarse quantile bin of it (or a point mass); sampling then draws
   the fine bin from the noisy fine histogram and a value uniformly inside it, so column shapes
   follow the DP histogram.

Every release goes through :meth:`PrivacyAccountant.gaussian`: noise from OS entropy (never a seed),
released counts rounded to integers (see :mod:`synthgate.generator.noise`).

``units`` (one code per row) names each row's privacy unit. A unit's rows then count together: in each release the
unit's counts (its rows per bin) are scaled to an L2 norm of at most 1 (:func:`unit_weights`), so a unit moves any
release by at most 1, as one row does without a unit, and every threshold below holds per unit (a unit can split
its weight over several values: the caller divides the selection delta by the most rows a unit keeps, or by
:data:`UNIT_CATEGORIES` for categories, where a unit adds only to the values it holds most and brings no other into
the release). A unit whose rows spread over m bins adds up to sqrt(m) to the release, where weighing each row 1/n
would add 1.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import brentq
from scipy.stats import norm

from synthgate.columns import to_numeric
from synthgate.generator.accounting import PrivacyAccountant
from synthgate.generator.codecs import CategoricalCodec, NumericCodec, category_key, token_prior
from synthgate.schema import Column, ColumnKind

log = logging.getLogger(__name__)

# Data-independent grid for the bounds release: bin k covers |x| in [10^(k/2), 10^((k+1)/2)).
_GRID_PER_DECADE = 2
# Up to 1e307, so NUMERIC columns of 1e25 and floats of 1e300 keep their scale (a range from -1e307 to 1e307 still
# has a finite width; larger doubles fall in the top bin). The grid's 1,253 bins set the core threshold: 4.8 sigma
# for a 0.1% chance of a false core bin.
_GRID_MIN_EXP, _GRID_MAX_EXP = -6 * _GRID_PER_DECADE, 307 * _GRID_PER_DECADE
_GRID_SIDE = _GRID_MAX_EXP - _GRID_MIN_EXP
# 30-day bins from 1700-01-01 (seconds since 1970) to 2261: pandas' nanosecond timestamps end in April 2262.
# 6842 bins: the core threshold is 5.1 sigma (a 0.1% chance of a false core bin).
_CALENDAR_START = -8_520_336_000.0  # 1700-01-01T00:00:00
_CALENDAR_STEP = 30 * 86400.0
_CALENDAR_BINS = int((9_214_646_400.0 - _CALENDAR_START) // _CALENDAR_STEP)  # up to 2262-01-01
_MAX_INTEGER_BINS = 512
_MAX_EXACT_TOKENS = 128
_MAX_FINE_BINS = 400
_MIN_FINE_BINS = 4
_ZOOM_BINS = 256
_LONE_FALSE_RATE = 1e-6  # chance over all bins that an empty one clears the threshold a lone core bin must clear
_EDGE_REACH = 64  # the most bins extend_edge looks past an edge at once (its widest stretch)
_LONE_GAP = _EDGE_REACH  # bins between a core bin and the next beyond which it is lone: past extend_edge's reach
_MISSING_Z = 1.5  # a zoom's core grows while its coarse bin counted this many sigmas (of the difference) more
# Kept categories holding less than this share of a column's non-null rows make it a key (faked, not learned): a
# key's values are held by a few rows each, so almost none clears the threshold; a wide category (50 US states on
# a 55-column table, where the noise keeps only the largest) still holds a third of the rows.
_KEY_COVERAGE = 0.1
# Kept categories holding more than this share leave too few rows for RARE to be worth sampling.
_COMPLETE_COVERAGE = 0.995
#: How much better (in sigma squared of summed squares) a declining tail must fit the bins past a clear edge than no
#: tail (:func:`_declining_tail`): 4 keeps an interest rate's thin tail in most fits and takes a tail of noise in 2.4%.
TAIL_EVIDENCE = 4.0
_MAX_POINTS = 16  # point masses a column keeps, the largest first
#: With a privacy unit, a unit adds to at most this many values of a category release: those it holds most often
#: (:func:`unit_weights`), and only values some unit adds to are released at all. A unit then brings at most this many
#: values into a release, and a value's selection guards against that many instead of every row a unit keeps (up to
#: 384 flights of an aircraft: the threshold falls from about 6.1 to 5.5 sigma).
UNIT_CATEGORIES = 8
_INTEGER_SPIKE_SHARE = 0.04  # an integer's point mass holds at least this share of its values (noisy)
# Budget weights: a release of weight w gets noise sigma / sqrt(w) and costs w times a weight-1 release (zCDP adds).
# The range locates a column (a column not located is lost whole) and a category list is cut at a threshold of
# about five times its noise (a category under it is RARE): both are worth more than the fine bins, whose noise
# the denoising pools. Most category columns (a channel, a grade) hold a few large categories that any weight finds;
# the few with many mid-sized ones (50 states, 87 neighbourhoods) get the refit reserve on top (:func:`refit_plan`):
# REFIT_WEIGHT for each column of private categories. With 12 at once and no reserve, Minneapolis's neighbourhoods
# were 19% RARE (shape 0.74-0.76); with 8 plus the reserve, 4-7% (0.88-0.89), and the 50 states of a 55-column table
# of 8,000 rows went from 27% to 9-13% RARE.
RANGE_WEIGHT = 2.0
CATEGORY_WEIGHT = 8.0
REFIT_WEIGHT = 12.0
# At most this share of the refit reserve locates numbers (:func:`refit_plan`): the rest keeps categories from RARE.
# On credit's 55 columns (benchmarks/refit_reserve.py, 200 passes) joint_income (448 values) is located in 90.5% of
# passes and state is 14.1% RARE; with the share set by rows against state's RARE rows, 63.5% and 11.5%; with half
# the reserve for numbers (40 passes), 97.5% and 17%, and state's shape fell to 0.79-0.80.
NUMBERS_SHARE = 1.0 / 3.0
_PAIR_SHARE = 0.7  # the share of a sparse number's values that two adjacent grid bins hold (:func:`locating_weight`)
ZOOMED_KINDS = (ColumnKind.FLOAT, ColumnKind.DATETIME)  # continuous: their range gets a second, finer release


def unit_weights(
    bins: np.ndarray, units: np.ndarray | None, *, top: int | None = None, priority: np.ndarray | None = None
) -> np.ndarray | None:
    """Per-row weights for one release whose rows fall in ``bins``: 1 / the L2 norm of the row's unit's counts over the
    bins, so each unit's weighted counts have norm 1 (the release's L2 sensitivity per unit). None without units.

    ``top``: each unit adds only to its ``top`` bins that hold most of its rows, the norm taken over those; its rows in
    any other bin weigh 0. Ties go to the lower ``priority`` (one key per row, the same for a unit's rows in one bin:
    :func:`tie_priority`), or without it to the lower bin, which favours the first labels in sorted order. A function
    of the unit's own rows, so the sensitivity stays 1 and a unit adds to at most ``top`` bins
    (:data:`UNIT_CATEGORIES`)."""
    if units is None:
        return None
    bins = np.asarray(bins, dtype=np.int64)
    if bins.size == 0:
        return np.zeros(0)
    width = int(bins.max()) + 1
    pairs, first, inverse, counts = np.unique(
        units * width + bins, return_index=True, return_inverse=True, return_counts=True
    )
    owners, counts = pairs // width, counts.astype(float)  # (unit, bin) pairs, sorted by unit, and their rows
    kept = np.ones(pairs.size, dtype=bool)
    if top is not None:
        tiebreak = pairs % width if priority is None else np.asarray(priority, dtype=np.uint64)[first]
        order = np.lexsort((tiebreak, -counts, owners))  # each unit's pairs, most rows first
        starts = np.searchsorted(owners[order], owners[order], side="left")
        kept[order] = np.arange(pairs.size) - starts < top
    norm_sq = np.bincount(owners, weights=np.where(kept, counts**2, 0.0))
    return np.where(kept[inverse], 1.0 / np.sqrt(norm_sq[units]), 0.0)


def tie_priority(unit_keys: pd.Series, values: pd.Series, key: str) -> np.ndarray:
    """Each row's tie-break key in a unit's choice of values (:func:`unit_weights`): a hash of the row's unit and value
    under ``key`` (16 characters, a fit's draw of OS entropy, never kept). A unit's order of its tied values is then
    random and depends on nothing but the unit and the key (the units beside it leave it unchanged, as the privacy
    argument needs), and a refit's second release of the same rows makes the same choices."""
    frame = pd.DataFrame({"unit": unit_keys.to_numpy(dtype=object), "value": values.to_numpy(dtype=object)})
    return pd.util.hash_pandas_object(frame, index=False, hash_key=key).to_numpy()


def budget_weight(column: Column, *, public_bounds: bool, public_domain: bool) -> tuple[float, bool]:
    """(Total budget weight of a learned column's releases, whether it selects values privately).

    Numbers: range, then a zoom, point masses or more weight on the bins, then bins; declared bounds: the bins only.
    Categories: one release of the categories and NULLs; a public domain (booleans, declared categories): one
    release of each value's count and NULLs, at weight 1.
    """
    if column.kind.is_numeric:
        if public_bounds:
            return 1.0, False
        return RANGE_WEIGHT + 2.0, column.kind in (ColumnKind.FLOAT, ColumnKind.INTEGER)
    if column.kind is ColumnKind.BOOLEAN or public_domain:
        return 1.0, False
    return CATEGORY_WEIGHT, True


def refit_plan(
    unplaced: dict[str, float], *, reserve: float, fallback: list[str], needs: dict[str, float] | None = None
) -> dict[str, float]:
    """Share out the refit reserve: the weight each chosen column's releases take a second time.

    The first releases leave some columns short: a figure that is NULL for 94% of rows is never located, the
    categories of a 50-state column that fall under the selection threshold are RARE (a third of its rows on a
    55-column table). A number that is not located is lost whole, so the numbers come first: those that
    :data:`NUMBERS_SHARE` of the reserve could locate (``needs``, from :func:`locating_weight`) share it equally
    (whether or not the equal part reaches each one's need: the needs are estimates of noisy counts), the others
    get nothing. The rest goes to the columns with ``unplaced`` rows (RARE rows of categories) in proportion to
    them. Each chosen column's releases are made again at that weight: category counts are combined with the first
    (:meth:`CategoryCounts.combined`), a number's range with its first range (:func:`dp_range`'s ``earlier``; its
    bins, released over a range that was never located, are made anew). With nothing else to spend it on, the
    ``fallback`` columns (those of private categories) share the rest equally: combined with their first counts, it
    is as if those had had more weight, and the budget spent never depends on the data (the shares do, on released
    counts only: post-processing).
    """
    if reserve <= 0:
        return {}
    budget = NUMBERS_SHARE * reserve
    numbers = [name for name, weight in (needs or {}).items() if weight <= budget] if budget > 0 else []
    plan = {name: budget / len(numbers) for name in numbers}
    rest = reserve - sum(plan.values())
    chosen = sorted((n for n, rows in unplaced.items() if rows > 0 and n not in plan), key=lambda n: -unplaced[n])
    if chosen:
        total = sum(unplaced[name] for name in chosen)
        return plan | {name: rest * unplaced[name] / total for name in chosen}
    if not fallback:  # a reserve comes from columns of private categories, which are the fallback
        raise ValueError("a refit reserve with no column to spend it on")
    for name in fallback:
        plan[name] = plan.get(name, 0.0) + rest / len(fallback)
    return plan


def locating_weight(column: Column, rows: float, *, sigma: float, column_weight: float) -> float:
    """The refit weight at which a number's range release, combined with its first, would locate its values: of
    ``rows`` released (row count less the NULL count, each of noise ``sigma``) one standard deviation more, as many
    as the release allows, :data:`_PAIR_SHARE` sit in two adjacent grid bins (a spread of up to a decade, or 60 days)
    and their sum clears the threshold :func:`_pooled_core` sets for pairs. ``sigma``: the noise of a weight-1
    release; ``column_weight``: the weight of the column's first releases.

    On a 55-column table (first range noise 84), 480 values need about 2, 160 about 20; a column of NULLs only
    (estimated at 0) needs about 85, more than the reserve holds.
    """
    at_most = max(rows, 0.0) + sigma * math.sqrt(2.0)
    n_bins = _CALENDAR_BINS if column.kind is ColumnKind.DATETIME else 2 * _GRID_SIDE + 1
    levels = max(int(n_bins - 1).bit_length(), 1)
    pair_threshold = corrected_threshold(-(-n_bins // 2) * levels, math.sqrt(2.0), 4.0)  # at a noise of 1
    target = _PAIR_SHARE * at_most / pair_threshold  # the combined range noise at which the pair clears
    first = sigma / math.sqrt(RANGE_WEIGHT)
    return column_weight * max((first / target) ** 2 - 1.0, 0.0)


def _grid_index(values: np.ndarray) -> np.ndarray:
    """Signed log-grid bin of each value: 0 .. 2*_GRID_SIDE, the middle one holds |x| < 1e-6."""
    mag = np.abs(values)
    small = mag < 10.0 ** (_GRID_MIN_EXP / _GRID_PER_DECADE)
    with np.errstate(divide="ignore"):
        k = np.floor(np.log10(np.where(small, 1.0, mag)) * _GRID_PER_DECADE).astype(np.int64)
    k = np.clip(k - _GRID_MIN_EXP + 1, 1, _GRID_SIDE)
    return np.where(small, 0, np.sign(values).astype(np.int64) * k) + _GRID_SIDE


def _calendar_bounds(index: int) -> tuple[float, float]:
    return _CALENDAR_START + index * _CALENDAR_STEP, _CALENDAR_START + (index + 1) * _CALENDAR_STEP


def _grid_bounds(index: int) -> tuple[float, float]:
    signed = index - _GRID_SIDE
    if signed == 0:  # the zero bin: its values are (within 1e-6) exactly zero
        return 0.0, 0.0
    k = abs(signed) + _GRID_MIN_EXP - 1
    low, high = 10.0 ** (k / _GRID_PER_DECADE), 10.0 ** ((k + 1) / _GRID_PER_DECADE)
    return (low, high) if signed > 0 else (-high, -low)


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
        index = np.clip(((values - _CALENDAR_START) // _CALENDAR_STEP).astype(np.int64), 0, _CALENDAR_BINS - 1)
        counts = np.bincount(index, weights=unit_weights(index, units), minlength=_CALENDAR_BINS).astype(float)
        bounds = _calendar_bounds
    else:
        index = _grid_index(values)
        counts = np.bincount(index, weights=unit_weights(index, units), minlength=2 * _GRID_SIDE + 1).astype(float)
        bounds = _grid_bounds
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
    edges = _spaced_edges(coarse.core_low, coarse.core_high, _ZOOM_BINS, log=column.kind is not ColumnKind.DATETIME)
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


def corrected_threshold(n_bins: int, sigma: float, at_least: float, false_rate: float = 0.01) -> float:
    """Count that any of ``n_bins`` empty bins exceeds by chance with probability ``false_rate`` (at least
    ``at_least`` sigma)."""
    return sigma * max(at_least, float(norm.isf(false_rate / n_bins)))


def extend_edge(
    noisy: np.ndarray, edge: int, step: int, sigma: float, empty: list[bool] | None = None, *, z: float = 3.0
) -> int:
    """Move ``edge`` outwards over thin tails: past the next 1, 2, 4, ... 64 bins, the fewest whose noisy sum clears
    ``z`` sigma sqrt(bins), again from there, until none does.

    A tail that the corrected core threshold misses still sets the range (months since an event, a few hundred
    rows a bin below 10); each stretch must hold mass of its own, so mass near the edge cannot carry the range
    far out. Bins that cannot hold a value (``empty``) are stepped over.
    """
    while True:
        ahead = [i for i in range(edge + step, -1 if step < 0 else noisy.size, step) if not (empty and empty[i])]
        ahead = ahead[:_EDGE_REACH]
        widths = [w for w in (1, 2, 4, 8, 16, 32, 64) if w <= len(ahead)]
        clear = [w for w in widths if noisy[ahead[:w]].sum() >= z * sigma * math.sqrt(w)]
        if not clear:
            return edge
        edge = ahead[clear[0] - 1]


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

    ``sigma`` is the noise of a weight-1 release (see :func:`budget_weight`). ``selection_delta`` is the chance that
    a value held by one record is selected as a point mass (floats, and integers spread wide; see
    :func:`select_points`); with the default, none is selected. ``earlier_range``: a first fit's range release
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
        released, (points, point_counts), sigma = _release_range(
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
    index = np.where(values < edges[0], n_bins, np.where(values > edges[-1], n_bins + 1, _bin_index(values, edges)))
    bins = np.append(index, np.full(int(null.sum()), n_bins + 2))
    both = None if units is None or null_units is None else np.append(units, null_units)
    counts = np.bincount(bins, weights=unit_weights(bins, both), minlength=n_bins + 3).astype(float)
    histogram = accountant.gaussian(f"bins:{column.name}", counts, sigma)
    has_nulls = bool(histogram[-1] >= 3.0 * sigma)
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
    if unit_bins and len(probs) <= min(_MAX_EXACT_TOKENS, values_rows / (4.0 * sigma)):
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
    one bin per integer with ``unit_bins`` (the integers nearest the end, as many as keep the column within
    ``_MAX_EXACT_TOKENS`` tokens: the last takes what lies beyond), else four. The range release missed a stretch the
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
            new = np.unique(np.round(_spaced_edges(low, high, 4)) - 0.5)
        else:
            new = _spaced_edges(low, high, 4, log=column.kind is not ColumnKind.DATETIME)
        new = new[new < edges[0]] if side < 0 else new[new > edges[-1]]
        past.append(new if len(new) else None)
    if unit_bins:  # one token per integer, at most _MAX_EXACT_TOKENS: each side's stretch up to its share of the room
        sides = sum(new is not None for new in past)
        room = (_MAX_EXACT_TOKENS - (len(edges) - 1)) // max(sides, 1)
        if room < 1:
            return None, None  # no room: the values stay at the ends, as clipped
        below, above = past
        past = [None if below is None else below[-room:], None if above is None else above[:room]]
    return past[0], past[1]


def _beyond(column: Column, end: float, side: int) -> tuple[float, float] | None:
    """The stretch past a range's ``end`` (below with ``side`` -1, above with 1) that values counted past it may
    take: the grid bin beside an end on a grid bound (:func:`_grid_neighbour`); beside a continuous column's zoomed
    end (inside a grid bin), the rest of the grid bin holding it, which the range release counted. A zoomed integer
    keeps such values at its end, as clipped: a credit score's floor (580) lies right past its zoomed end (614), and
    trailing off from there put synthetic scores down to 424 (SDMetrics, binning each table over its own minimum
    and maximum, then scored the score's pairs 0.11 and 0.28)."""
    beside = _grid_neighbour(column, end, side)
    if beside is not None or column.kind not in ZOOMED_KINDS:
        return beside
    if column.kind is ColumnKind.DATETIME:
        index = int((end - _CALENDAR_START) // _CALENDAR_STEP)
        if not 0 <= index < _CALENDAR_BINS:
            return None
        low, high = _calendar_bounds(index)
    else:
        low, high = _grid_bounds(int(_grid_index(np.array([end]))[0]))
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


def _grid_neighbour(column: Column, end: float, side: int) -> tuple[float, float] | None:
    """The range release's grid bin just past ``end`` (below with ``side`` -1, above with 1), or None where ``end``
    is no grid bound. Integers step over the log grid's bins below 1, which hold no integer; below 1 they reach the
    zero bin, returned as running from 0 to ``end``."""
    if column.kind is ColumnKind.DATETIME:
        step = (end - _CALENDAR_START) / _CALENDAR_STEP
        index = round(step) - (side < 0)
        return _calendar_bounds(index) if step == round(step) and 0 <= index < _CALENDAR_BINS else None
    found = int(_grid_index(np.array([end]))[0])
    starts = [i for i in (found - 1, found, found + 1) if 0 <= i <= 2 * _GRID_SIDE]
    at = [i for i in starts if math.isclose(_grid_bounds(i)[0], end, rel_tol=1e-12, abs_tol=1e-300)]
    if not at:
        return None
    index = at[0] - (side < 0)
    while 0 <= index <= 2 * _GRID_SIDE:
        low, high = _grid_bounds(index)
        if low == high:  # the zero bin
            return (0.0, end) if side < 0 else None
        if column.kind is not ColumnKind.INTEGER or math.ceil(low) < high:
            return low, high
        index += side
    return None


def _bin_index(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """The bin of each value as ``np.histogram`` counts it (values clipped into the edges; the last bin closed)."""
    index = np.searchsorted(edges, np.clip(values, edges[0], edges[-1]), side="right") - 1
    return np.clip(index, 0, len(edges) - 2).astype(np.int64)


def _histogram(values: np.ndarray, edges: np.ndarray, units: np.ndarray | None) -> np.ndarray:
    """Counts of ``values`` (clipped into the edges) in the bins, each unit's counts scaled to norm 1 with units."""
    index = _bin_index(values, edges)
    return np.bincount(index, weights=unit_weights(index, units), minlength=len(edges) - 1).astype(float)


def _release_range(
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
    short = column.kind is ColumnKind.INTEGER and released.high - released.low <= _MAX_EXACT_TOKENS
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


def denoise(noisy: np.ndarray, sigma: float) -> np.ndarray:
    """Post-process a noisy histogram (free under DP): clear bins keep their count, the rest is pooled.

    A bin alone below 3 sigma is indistinguishable from noise (P(noise > 3 sigma) = 0.13%); the outermost
    bins must clear a stricter threshold (1% chance of any false one over all bins). Between them, a run of bins
    below 3 sigma is judged as a whole (:func:`_pooled`): a spread-out stretch (dates over two years, each bin
    near 3 sigma) keeps its mass instead of coming out full of holes, a gap stays empty. The tails beyond the
    outermost clear bins often hold real mass spread thin (ages past 70, rare small counts). Their noisy *sums* are
    far better estimates than any one bin: see :func:`_tail_mass`.
    """
    clear = noisy >= 3.0 * sigma
    # The extent comes from bins that clear a threshold corrected for the number of bins: among hundreds
    # of empty bins one clears 3 sigma by chance, and a lone spurious bin far out would set the range.
    core = np.flatnonzero(noisy >= corrected_threshold(noisy.size, sigma, 3.0))
    kept = core if core.size else np.flatnonzero(clear)
    if kept.size == 0:
        return np.zeros_like(noisy)
    first, last = int(kept[0]), int(kept[-1])
    out = np.where(clear, noisy, 0.0)
    run_start = None
    for i in range(first, last + 2):
        inside_run = i <= last and not clear[i]
        if inside_run and run_start is None:
            run_start = i
        elif not inside_run and run_start is not None:
            out[run_start:i] = _pooled(noisy[run_start:i], sigma)
            run_start = None
    out[last + 1 :] = _tail_mass(noisy[last + 1 :], sigma, edge=float(out[last]))
    out[:first] = _tail_mass(noisy[:first][::-1], sigma, edge=float(out[first]))[::-1]
    return out


def _pooled(run: np.ndarray, sigma: float) -> np.ndarray:
    """Mass for a run of bins none of which clears 3 sigma alone: zeros unless their sum clears 3 sigma sqrt(width).

    A run that clears is split in halves: a half that clears on its own is pooled the same way, a half that does
    not gets its own noisy sum (at least 0) spread evenly, so mass stays where the release saw it.
    """
    width = run.size
    if width < 2 or run.sum() < 3.0 * sigma * math.sqrt(width):
        return np.zeros(width)
    half = width // 2
    parts = []
    for part in (run[:half], run[half:]):
        if part.size > 1 and part.sum() >= 3.0 * sigma * math.sqrt(part.size):
            parts.append(_pooled(part, sigma))
        else:
            parts.append(np.full(part.size, max(float(part.sum()), 0.0) / part.size))
    return np.concatenate(parts)


def _tail_mass(tail: np.ndarray, sigma: float, edge: float) -> np.ndarray:
    """Mass for the bins beyond a clear edge bin of count ``edge`` (``tail[0]`` adjacent to it), or zeros.

    The tail reaches as far as the widest window from the edge (1, 2, 4, ... bins, or all) whose
    noisy sum clears 3 sigma sqrt(width). Inside that reach, rings of widths 1, 1, 2, 4, ... bins each
    keep their own noisy sum, spread evenly: fine near the edge, pooled (less noisy) further out. Where no window
    clears, a tail that declines from the edge may still be clear (:func:`_declining_tail`).
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
    return out if reach else _declining_tail(tail, sigma, edge)


def _declining_tail(tail: np.ndarray, sigma: float, edge: float) -> np.ndarray:
    """A geometric decline from the edge bin's count, ``edge * r**i`` in the i-th bin out, with the ratio ``r`` (0 to
    0.98) that fits the noisy bins best by least squares (post-processing), out to the last bin it gives a quarter
    sigma (a slow decline fitted to the noise past a tail's end would carry it on over empty bins); zeros unless it
    fits them clearly better than no tail at all (the sum of squares falls by :data:`TAIL_EVIDENCE` sigma squared: on
    bins of noise alone, in 2.4% of tails, each then a few sigma of rows beside the edge).

    Real tails trail off from their last clear bin, and their bins each under 3 sigma were dropped: an interest
    rate's 6% of rows from 19 to 28 (bins of 1.8 points at noise 120) ended the synthetic values at 19, and SDMetrics,
    which bins each table over its own minimum and maximum, then misaligned every pair the rate takes part in.
    Over 30 fits at noise 120 (``benchmarks/range_releases.py``, ``benchmarks/results/range_releases_tails.md``),
    the rate's values past the synthetic range went from 3.4% to 0.7% (median), the shift of its ends from 3.1 to
    1.5 of SDMetrics' bins, a credit score's from 2.4 to 1.6.
    """
    bins = min(tail.size, _EDGE_REACH)
    if bins == 0 or edge <= 0:
        return np.zeros(tail.size)
    fits = edge * np.linspace(0.0, 0.98, 99)[:, None] ** np.arange(1, bins + 1)  # one row per ratio
    misfit = ((tail[:bins] - fits) ** 2).sum(axis=1)
    best = int(np.argmin(misfit))
    out = np.zeros(tail.size)
    if misfit[0] - misfit[best] >= TAIL_EVIDENCE * sigma**2:  # as far as a bin holds a quarter sigma: no further
        out[:bins] = np.where(fits[best] >= sigma / 4.0, fits[best], 0.0)
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
    if integer and math.ceil(high) - math.floor(low) + 1 <= max(n_bins, _MAX_EXACT_TOKENS):
        return np.arange(math.floor(low) - 0.5, math.ceil(high) + 1.0), True  # thin bins: pooled by the denoising
    inner_low, inner_high = low, high
    spread = column.kind is ColumnKind.DATETIME and coarse is not None and not _concentrated(coarse)
    if coarse is not None and not spread and max(low, coarse.core_low) < min(high, coarse.core_high):
        inner_low, inner_high = max(low, coarse.core_low), min(high, coarse.core_high)
    # Thin data over many integers (months since an event, NULL for half the rows): wider bins clear the noise
    log = column.kind is not ColumnKind.DATETIME
    edges = _spaced_edges(inner_low, inner_high, n_bins, log=log)
    tails = [
        _spaced_edges(max(lo, low), min(hi, high), 4, log=log)
        for lo, hi, _ in (coarse.counts if coarse is not None else [])
        if max(lo, low) < min(hi, high) and (hi <= inner_low or lo >= inner_high)  # inside a declared bound too
    ]
    edges = np.unique(np.concatenate([edges, [low, high], *tails]))
    if integer:  # integer-aligned: each integer in one bin, the highest included
        edges = np.unique(np.append(np.round(edges) - 0.5, math.ceil(high) + 0.5))
    return edges, False


def _concentrated(coarse: DPRange) -> bool:
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


def _spaced_edges(low: float, high: float, n_bins: int, *, log: bool = True) -> np.ndarray:
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
    """Noisy-count threshold so that a category held by one record is released with probability at most
    delta_per_column: its count 1 plus the noise's quantile, plus half a count, since the released counts are rounded
    (:meth:`PrivacyAccountant.gaussian`): ``rint(x) > t`` holds for ``x`` down to ``floor(t) + 0.5``, below ``t``
    (a singleton got through 3.4 times as often as delta at sigma 1), and a precision-weighted mean of rounded
    releases is off by at most half a count too."""
    return 1.5 + sigma * float(norm.isf(delta_per_column))


@dataclass(frozen=True)
class CategoryCounts:
    """One column's released category counts: every label the rows hold (sorted) or the declared domain, with the
    noisy count of each and of NULLs. Held while the codecs are fitted, never kept: the counts of the labels that
    miss the threshold must not reach anything."""

    labels: list[Any]
    noisy: np.ndarray  # the labels' counts, then NULL
    sigma: float
    public: bool
    weighted: bool = False  # each unit's counts scaled to norm 1 (a privacy unit): they are not rows

    def combined(self, other: CategoryCounts) -> CategoryCounts:
        """Both releases of the same counts weighed by their precision: as one release of their summed weight."""
        w1, w2 = self.sigma**-2, other.sigma**-2
        return CategoryCounts(
            self.labels, (w1 * self.noisy + w2 * other.noisy) / (w1 + w2), (w1 + w2) ** -0.5, self.public, self.weighted
        )


def release_categories(
    column: Column,
    series: pd.Series,
    *,
    public_categories: list[Any] | None,
    sigma: float,
    accountant: PrivacyAccountant,
    units: np.ndarray | None = None,
    priority: np.ndarray | None = None,
) -> CategoryCounts:
    """Release a categorical column's counts, at weight :data:`CATEGORY_WEIGHT`: of every label the rows hold, and
    of NULLs; for a public domain (booleans, declared categories), of each of its values and NULLs, at weight 1. Each
    record adds to one count (sensitivity 1). ``sigma``: a weight-1 release's noise. With ``units``, each unit adds
    to its :data:`UNIT_CATEGORIES` values held most (``priority``: see :func:`unit_weights`)."""
    null = series.isna().to_numpy()
    keys = series.map(category_key)
    public = column.kind is ColumnKind.BOOLEAN or public_categories is not None
    if public:
        # a declared value listed twice is one category (as the codec's index holds it)
        domain = [False, True] if column.kind is ColumnKind.BOOLEAN else list(dict.fromkeys(public_categories or []))
        labels = pd.Index([category_key(v) for v in domain])
        purpose, kept_sigma = f"domain:{column.name}", sigma
    else:
        # categories in an order free of the rows' (sorted), the NULL bin last; each record adds to one of them
        domain = sorted(set(keys[~null]), key=lambda v: (type(v).__name__, v))
        labels = pd.Index(domain)
        purpose, kept_sigma = f"categories:{column.name}", sigma / math.sqrt(CATEGORY_WEIGHT)
    bins = _category_bins(keys, null, labels)
    weights = unit_weights(bins, units, top=UNIT_CATEGORIES, priority=priority)
    if weights is not None and not public:
        # Only the values some unit adds to: a value held by one unit among more than UNIT_CATEGORIES of its values
        # would otherwise be released at a count of pure noise, selected now and then without the unit adding to it
        held = np.bincount(bins, weights=weights > 0, minlength=len(labels) + 2)[: len(labels)] > 0
        domain = [label for label, kept in zip(domain, held, strict=True) if kept]
        labels = pd.Index(domain)
        bins = _category_bins(keys, null, labels)  # the other values' rows weigh 0: out of the release
    counts = np.bincount(bins, weights=weights, minlength=len(labels) + 2).astype(float)
    counts = np.append(counts[: len(labels)], counts[len(labels)])  # the values' bins, then NULL
    noisy = accountant.gaussian(purpose, counts, kept_sigma)
    return CategoryCounts(domain, noisy, kept_sigma, public, weighted=units is not None)


def _category_bins(keys: pd.Series, null: np.ndarray, labels: pd.Index) -> np.ndarray:
    """Each row's bin in a category release: its label's index, ``len(labels)`` for NULL, ``len(labels) + 1`` for a
    value outside ``labels`` (counted with none of them: outside a declared domain, its rows are RARE)."""
    bins = np.full(len(keys), len(labels), dtype=np.int64)
    bins[~null] = np.where((index := labels.get_indexer(pd.Index(keys[~null]))) >= 0, index, len(labels) + 1)
    return bins


def categorical_codec(
    column: Column, released: CategoryCounts, *, n_rows: float, selection_delta: float, rows_noise: float = 0.0
) -> CategoricalCodec:
    """A categorical column's codec from its released counts: a public domain whole; otherwise the labels that clear
    the selection threshold (one held by a single record is kept with probability ``selection_delta``).
    ``n_rows``: the released rows (or units), of noise ``rows_noise``."""
    noisy, sigma = released.noisy[:-1], released.sigma
    has_nulls = bool(released.noisy[-1] >= 3.0 * sigma)
    if released.public:
        codec = CategoricalCodec(column, released.labels, public=True, has_nulls=has_nulls)
        codec.prior = token_prior(np.concatenate([noisy, [0.0, released.noisy[-1]]]), codec.forbidden_tokens)
        return codec
    threshold = selection_threshold(sigma, selection_delta)
    order = np.argsort(-noisy, kind="stable")
    kept = [i for i in order if noisy[i] > threshold]
    # Post-processing: the share of the non-null rows (the released rows, less the released NULLs) that the kept
    # categories hold. Never the sum of every noisy count: its noise grows with the number of distinct values, which
    # one record changes (a column of three values and one singleton would show it in that sum's spread).
    kept_rows = float(noisy[kept].sum())
    non_null = max(n_rows - float(released.noisy[-1]), kept_rows, 0.0)
    covered = kept_rows / max(non_null, 1.0)
    key_like = non_null > 2.0 * threshold and covered < _KEY_COVERAGE  # a nearly empty column is not a key
    # With a unit the counts are weighted per unit (a unit over m labels adds up to sqrt(m)), so the kept ones can
    # seem to cover every unit when they do not: RARE stays possible and training learns its share. A key (its
    # values unique to a row or a few) keeps nothing either way.
    has_rare = covered < _COMPLETE_COVERAGE or released.weighted
    codec = CategoricalCodec(
        column,
        [released.labels[i] for i in kept],
        public=False,
        has_nulls=has_nulls,
        key_like=key_like,
        has_rare=has_rare,
    )
    rare = non_null - kept_rows
    # worth a refit where a category at the threshold could hide in RARE, clear of the estimate's own noise (that of
    # the row count and of the NULL and kept counts: about a hundred rows on a wide table)
    noise = math.sqrt(rows_noise**2 + (len(kept) + 1) * sigma**2)
    codec.unplaced = rare if rare > threshold + 3.0 * noise and not key_like else 0.0
    codec.prior = token_prior(np.concatenate([noisy[kept], [rare, released.noisy[-1]]]), codec.forbidden_tokens)
    return codec


def fit_categorical(
    column: Column,
    series: pd.Series,
    *,
    public_categories: list[Any] | None,
    n_rows: float,
    sigma: float,
    selection_delta: float,
    accountant: PrivacyAccountant,
    units: np.ndarray | None = None,
) -> CategoricalCodec:
    """Release a categorical column's codec (:func:`release_categories`, then :func:`categorical_codec`)."""
    released = release_categories(
        column, series, public_categories=public_categories, sigma=sigma, accountant=accountant, units=units
    )
    return categorical_codec(column, released, n_rows=n_rows, selection_delta=selection_delta)
