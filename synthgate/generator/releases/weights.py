"""How the preprocessing budget is weighed: each release's weight (:func:`budget_weight`), the refit reserve
(:func:`refit_plan`, :func:`locating_weight`), and each row's weight when a privacy unit owns several rows
(:func:`unit_weights`)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from synthgate.generator.releases.counts import corrected_threshold
from synthgate.generator.releases.grid import CALENDAR_BINS, GRID_SIDE
from synthgate.schema import Column, ColumnKind

#: With a privacy unit, a unit adds to at most this many values of a category release: those it holds most often
#: (:func:`unit_weights`), and only values some unit adds to are released at all. A unit then brings at most this many
#: values into a release, and a value's selection guards against that many instead of every row a unit keeps (up to
#: 384 flights of an aircraft: the threshold falls from about 6.1 to 5.5 sigma).
UNIT_CATEGORIES = 8

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
    (:meth:`.categories.CategoryCounts.combined`), a number's range with its first range
    (:func:`.ranges.dp_range`'s ``earlier``; its bins, released over a range that was never located, are made anew).
    With nothing else to spend it on, the ``fallback`` columns (those of private categories) share the rest equally:
    combined with their first counts, it is as if those had had more weight, and the budget spent never depends on the
    data (the shares do, on released counts only: post-processing).
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
    and their sum clears the threshold :func:`.ranges._pooled_core` sets for pairs. ``sigma``: the noise of a weight-1
    release; ``column_weight``: the weight of the column's first releases.

    On a 55-column table (first range noise 84), 480 values need about 2, 160 about 20; a column of NULLs only
    (estimated at 0) needs about 85, more than the reserve holds.
    """
    at_most = max(rows, 0.0) + sigma * math.sqrt(2.0)
    n_bins = CALENDAR_BINS if column.kind is ColumnKind.DATETIME else 2 * GRID_SIDE + 1
    levels = max(int(n_bins - 1).bit_length(), 1)
    pair_threshold = corrected_threshold(-(-n_bins // 2) * levels, math.sqrt(2.0), 4.0)  # at a noise of 1
    target = _PAIR_SHARE * at_most / pair_threshold  # the combined range noise at which the pair clears
    first = sigma / math.sqrt(RANGE_WEIGHT)
    return column_weight * max((first / target) ** 2 - 1.0, 0.0)
