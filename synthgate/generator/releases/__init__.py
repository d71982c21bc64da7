"""The DP releases that fit the column codecs.

Everything a codec learns from the real data (numeric bounds, bins, category lists) is a released DP statistic
recorded on the :class:`~synthgate.generator.accounting.PrivacyAccountant`, unless the spec declares it public. A
codec's token set is the released bins or categories plus one NULL token (and one RARE token for DP-selected
categories).

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
   :func:`.ranges._covering`); *point masses* (floats and
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

The modules, in the order a column meets them:

- :mod:`.weights`: each release's share of the preprocessing budget, the refit reserve, a unit's row weights;
- :mod:`.grid`: the range release's public grid;
- :mod:`.counts`: thresholds and the denoising of released counts (post-processing);
- :mod:`.ranges`: a number's range (the grid release, the zoom, point masses);
- :mod:`.numeric`: a number's codec (the range, then its fine bins and the values past its ends);
- :mod:`.categories`: a category column's codec.
"""

from synthgate.generator.releases.categories import (
    CategoryCounts,
    categorical_codec,
    fit_categorical,
    release_categories,
)
from synthgate.generator.releases.counts import (
    TAIL_EVIDENCE,
    corrected_threshold,
    denoise,
    extend_edge,
    selection_threshold,
)
from synthgate.generator.releases.numeric import fit_numeric
from synthgate.generator.releases.ranges import ZOOMED_KINDS, DPRange, dp_range, select_points, zoom_range
from synthgate.generator.releases.weights import (
    CATEGORY_WEIGHT,
    NUMBERS_SHARE,
    RANGE_WEIGHT,
    REFIT_WEIGHT,
    UNIT_CATEGORIES,
    budget_weight,
    locating_weight,
    refit_plan,
    tie_priority,
    unit_weights,
)

__all__ = [
    "CATEGORY_WEIGHT",
    "NUMBERS_SHARE",
    "RANGE_WEIGHT",
    "REFIT_WEIGHT",
    "TAIL_EVIDENCE",
    "UNIT_CATEGORIES",
    "ZOOMED_KINDS",
    "CategoryCounts",
    "DPRange",
    "budget_weight",
    "categorical_codec",
    "corrected_threshold",
    "denoise",
    "dp_range",
    "extend_edge",
    "fit_categorical",
    "fit_numeric",
    "locating_weight",
    "refit_plan",
    "release_categories",
    "select_points",
    "selection_threshold",
    "tie_priority",
    "unit_weights",
    "zoom_range",
]
