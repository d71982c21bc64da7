"""The privacy unit: one person (customer, patient, aircraft) who owns several rows of a table.

Without a unit every row is one individual, and someone who owns 100 rows is protected at about 100 times the
epsilon on the label (group privacy). With ``privacy.unit`` every use of the real data is bounded per unit:

* **Rows per unit are bounded** to ``max_rows`` (declared as ``privacy.max_rows_per_unit``, or the upper edge of
  the size bin where a DP histogram of rows per unit reaches 99% of the units). A larger unit keeps ``max_rows`` of
  its rows, picked uniformly at random with operating-system entropy: which rows train never depends on their
  values, a seed or their order.
* **Releases before training weigh each row 1/n**, n its unit's kept rows, so a unit adds at most 1 to any
  histogram, as one row does without a unit (:mod:`releases`); the row count, which a unit moves by up to
  ``max_rows``, gets noise ``max_rows`` times larger.
* **DP-SGD samples units** (Poisson over units) and clips each unit's gradient, the sum over its rows, as one
  (:func:`synthgate.generator.dpsgd.per_unit_norms`). The accountant's epsilon is then per unit.

A NULL unit is an unknown person: each such row is a unit of its own.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from synthgate.generator.accounting import PrivacyAccountant
from synthgate.generator.noise import SecureNoise

#: Upper edges of the rows-per-unit bins: 1, 2, 3, 4, 6, 8, 12, 16, ... 2**20 (two bins an octave past 4).
SIZE_EDGES: tuple[int, ...] = (1, 2, 3, 4, *(int(edge) for k in range(2, 20) for edge in (1.5 * 2**k, 2 ** (k + 1))))
UNIT_COVERAGE = 0.99  # the bound keeps every row of this share of the units (by the DP size histogram)


@dataclass(frozen=True)
class SizeHistogram:
    """The DP histogram of rows per unit: noisy units in each size bin (``SIZE_EDGES``), bins under 3 sigma cleared,
    and the DP estimate of the units (post-processing: the sum of the noisy bins)."""

    units: tuple[float, ...]
    total: float

    def bound(self, coverage: float = UNIT_COVERAGE) -> int:
        """The smallest size edge at or above which ``coverage`` of the units' sizes fall."""
        shares = np.cumsum(self.units) / max(sum(self.units), 1.0)
        return SIZE_EDGES[min(int(np.searchsorted(shares, coverage)), len(SIZE_EDGES) - 1)]

    def bins(self, max_rows: int) -> list[tuple[int, int, float]]:
        """(fewest rows, most rows, share of units) of each bin up to ``max_rows``: the group sizes to fake."""
        out, low = [], 1
        for high, units in zip(SIZE_EDGES, self.units, strict=False):
            if low > max_rows:
                break
            out.append((low, min(high, max_rows), units))
            low = high + 1
        total = sum(u for _, _, u in out)
        return [(lo, hi, u / total) for lo, hi, u in out if u > 0] if total > 0 else [(1, 1, 1.0)]


@dataclass(frozen=True)
class Units:
    """A table's rows grouped by unit, each unit cut to its bounded rows."""

    rows: np.ndarray  # positions of the kept rows in the frame, unit by unit
    sizes: np.ndarray  # kept rows of each unit, in the same order
    all_sizes: np.ndarray  # rows of each unit before the bound (only ever released through the DP size histogram)

    @property
    def weights(self) -> np.ndarray:
        """Per kept row (in ``rows`` order), 1 / its unit's kept rows: a unit weighs 1 in every release."""
        return np.repeat(1.0 / self.sizes, self.sizes)

    @property
    def dropped(self) -> int:
        """Rows left out by the bound (never logged: it is not a DP figure)."""
        return int(self.all_sizes.sum() - self.sizes.sum())


def group_units(values: pd.Series, noise: SecureNoise) -> tuple[np.ndarray, np.ndarray]:
    """(row positions unit by unit, in a random order within each unit; rows of each unit). A NULL value is a unit
    of its own. The order inside a unit is drawn from ``noise`` (OS entropy)."""
    codes, _ = pd.factorize(values, use_na_sentinel=True)
    codes = codes.astype(np.int64)
    missing = codes < 0
    codes[missing] = codes.max(initial=-1) + 1 + np.arange(int(missing.sum()))
    shuffled = noise.permutation(len(codes))
    order = shuffled[np.argsort(codes[shuffled], kind="stable")]
    _, sizes = np.unique(codes[order], return_counts=True)
    return order, sizes


def bound_units(order: np.ndarray, sizes: np.ndarray, max_rows: int) -> Units:
    """Keep the first ``max_rows`` rows of each unit (their order inside a unit is random: :func:`group_units`)."""
    starts = np.cumsum(sizes) - sizes
    kept = np.minimum(sizes, max_rows)
    rank = np.arange(len(order)) - np.repeat(starts, sizes)
    return Units(order[rank < np.repeat(kept, sizes)], kept, sizes)


def release_sizes(sizes: np.ndarray, sigma: float, accountant: PrivacyAccountant) -> SizeHistogram:
    """The DP histogram of rows per unit (a unit falls in one bin: sensitivity 1)."""
    index = np.searchsorted(np.asarray(SIZE_EDGES), np.minimum(sizes, SIZE_EDGES[-1]))
    counts = np.bincount(index, minlength=len(SIZE_EDGES)).astype(float)
    noisy = accountant.gaussian("unit-sizes", counts, sigma)
    clear = tuple(float(c) if c >= 3.0 * sigma else 0.0 for c in noisy)  # 0.13% chance of a false bin each
    # the units: every noisy bin up to the one past the last clear bin (the empty bins beyond add noise only)
    reach = max((i for i, c in enumerate(clear) if c > 0), default=len(clear) - 1) + 2
    return SizeHistogram(clear, max(float(noisy[:reach].sum()), 1.0))
