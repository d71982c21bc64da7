"""The privacy unit: one person (customer, patient, aircraft) who owns several rows of a table.

Without a unit every row is one individual, and someone who owns 100 rows is protected at about 100 times the
epsilon on the label (group privacy). With ``privacy.unit`` every use of the real data is bounded per unit:

* **Rows per unit are bounded** to ``max_rows`` (declared as ``privacy.max_rows_per_unit``, or chosen from a DP
  histogram of rows per unit: the size edge at which 99% of the units are counted, at most
  :data:`MAX_CHOSEN_ROWS`). A larger unit keeps ``max_rows`` of its rows, picked
  uniformly at random with operating-system entropy: which rows train never depends on their values, a seed or
  their order.
* **The counts come from that histogram** (a unit falls in one bin: sensitivity 1): the units are the sum of its
  bins, the rows the sum of each bin's units times its mean size (cut at the bound). The one release whose
  sensitivity is the bound is the distinct count of another faked key (a unit can hold that many of its values).
* **Releases before training count a unit once**: in each histogram the unit's counts are scaled to an L2 norm of
  at most 1 (:func:`~synthgate.generator.releases.unit_weights`), so a unit moves any release by at most 1, as one
  row does without a unit.
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
from synthgate.generator.releases import corrected_threshold, denoise, extend_edge

#: Upper edges of the rows-per-unit bins: 1, 2, 3, 4, 6, 8, 12, 16, ... 2**20 (two bins an octave past 4).
SIZE_EDGES: tuple[int, ...] = (1, 2, 3, 4, *(int(edge) for k in range(2, 20) for edge in (1.5 * 2**k, 2 ** (k + 1))))
TAIL_SHARE = 0.01  # the chosen bound leaves at most this share of the units (by the DP histogram) above it
MAX_CHOSEN_ROWS = 2048  # the most rows per unit a chosen bound keeps (a declared one may be larger)
SIZE_FALSE_RATE = 1e-4  # the chance that an empty size bin clears the threshold that sets the sizes' reach
REACH_Z = 4.0  # past that reach, a stretch of bins extends it when its noisy sum clears REACH_Z sigma sqrt(bins)


def protected_unit(unit: str | None, max_rows: int = 0) -> str:
    """What epsilon protects, in one phrase, for reports, the catalog's audit and MLflow."""
    if unit is None:
        return (
            "one row = one individual (no privacy.unit: a person who owns k rows is protected at about k times epsilon)"
        )
    bound = f", at most {max_rows} of its rows trained" if max_rows else ""
    return f"each {unit} with all its rows (privacy.unit{bound})"


@dataclass(frozen=True)
class SizeHistogram:
    """The DP histogram of rows per unit: units in each size bin (``SIZE_EDGES``) denoised as a numeric column's bins
    (:func:`~synthgate.generator.releases.denoise`), and the DP estimate of the units (the sum of the noisy bins)."""

    units: tuple[float, ...]
    total: float

    def bound(self) -> int:
        """The smallest size edge at which the denoised units counted from the bottom reach all but
        :data:`TAIL_SHARE` of them, at most :data:`MAX_CHOSEN_ROWS`."""
        reached = np.cumsum(self.units) >= (1.0 - TAIL_SHARE) * sum(self.units)
        first = int(np.argmax(reached)) if reached.any() else len(SIZE_EDGES) - 1
        return min(SIZE_EDGES[first], MAX_CHOSEN_ROWS)

    def rows(self, max_rows: int) -> float:
        """DP estimate of the rows the units keep under ``max_rows`` (post-processing): each clear bin's units times
        the mean size inside it."""
        low = (0, *SIZE_EDGES[:-1])
        return max(
            sum(
                units * (min(lo + 1, max_rows) + min(hi, max_rows)) / 2.0
                for lo, hi, units in zip(low, SIZE_EDGES, self.units, strict=True)
            ),
            1.0,
        )

    def median_row_size(self, max_rows: int) -> int:
        """The unit size at which half of the kept rows sit in units at most that large (post-processing): the rows
        up to which DP-SGD weighs a unit by its rows (:func:`synthgate.generator.dpsgd.unit_clip_norms`)."""
        bins = self.bins(max_rows)
        rows = np.array([share * (lo + hi) / 2.0 for lo, hi, share in bins])
        if rows.sum() <= 0:
            return 1
        half = int(np.argmax(np.cumsum(rows) >= rows.sum() / 2.0))
        return max(1, round((bins[half][0] + bins[half][1]) / 2.0))

    def bins(self, max_rows: int) -> list[tuple[int, int, float]]:
        """(fewest rows, most rows, share of units) of each bin up to ``max_rows``: the group sizes to fake. Units
        above the bound kept ``max_rows`` rows: their share goes to a last bin of exactly that size."""
        out, low, beyond = [], 1, 0.0
        for high, units in zip(SIZE_EDGES, self.units, strict=False):
            if low > max_rows:
                beyond += units
                continue
            out.append((low, min(high, max_rows), units))
            low = high + 1
        if beyond > 0:
            out.append((max_rows, max_rows, beyond))
        total = sum(u for _, _, u in out)
        return [(lo, hi, u / total) for lo, hi, u in out if u > 0] if total > 0 else [(1, 1, 1.0)]


@dataclass(frozen=True)
class Units:
    """A table's rows grouped by unit, each unit cut to its bounded rows."""

    rows: np.ndarray  # positions of the kept rows in the frame, unit by unit
    sizes: np.ndarray  # kept rows of each unit, in the same order

    @property
    def codes(self) -> np.ndarray:
        """The unit of each kept row (0, 1, ...), in ``rows`` order: what the releases count a unit by."""
        return np.repeat(np.arange(len(self.sizes), dtype=np.int64), self.sizes)


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
    return Units(order[rank < np.repeat(kept, sizes)], kept)


def size_bin(sizes: np.ndarray) -> np.ndarray:
    """The bin of each unit's rows: bin i holds sizes in (SIZE_EDGES[i-1], SIZE_EDGES[i]]; larger ones the last."""
    return np.searchsorted(np.asarray(SIZE_EDGES), np.minimum(np.asarray(sizes), SIZE_EDGES[-1]))


def release_sizes(sizes: np.ndarray, sigma: float, accountant: PrivacyAccountant) -> SizeHistogram:
    """The DP histogram of rows per unit (a unit falls in one bin: sensitivity 1)."""
    counts = np.bincount(size_bin(sizes), minlength=len(SIZE_EDGES)).astype(float)
    return denoised_histogram(accountant.gaussian("unit-sizes", counts, sigma), sigma)


def denoised_histogram(noisy: np.ndarray, sigma: float) -> SizeHistogram:
    """A released histogram of rows per unit (noise ``sigma``), denoised (post-processing)."""
    # The sizes reach over the bins that clear a threshold corrected for the number of bins (SIZE_FALSE_RATE: a false
    # bin far out would stretch the bound, fake units of that size and add their rows), then over the stretches beyond
    # that hold mass of their own (REACH_Z): on a small table (300 customers) the units of 5 to 12 orders sit in bins
    # near 3 sigma, and without them the bound fell to 2 to 6 orders where 99% of the customers hold up to 24. Beyond
    # the reach the thin tail is dropped (benchmarks/unit_bound.py: how often the bound lands too low or too high)
    core = np.flatnonzero(noisy >= corrected_threshold(noisy.size, sigma, 3.0, SIZE_FALSE_RATE))
    reach = int(core[-1]) + 1 if core.size else 1
    reach = extend_edge(noisy, reach - 1, 1, sigma, z=REACH_Z) + 1
    denoised = np.zeros(noisy.size)
    denoised[:reach] = denoise(np.append(noisy[:reach], 0.0), sigma)[:-1]
    # The units: the noisy bins up to where a thin tail beyond the last 3-sigma bin stops holding mass of its own (on
    # a small table few bins clear the corrected threshold, and counting only those would lose most units)
    last = int(np.flatnonzero(noisy >= 3.0 * sigma)[-1]) if (noisy >= 3.0 * sigma).any() else reach - 1
    counted = max(reach, extend_edge(noisy, max(last, reach - 1), 1, sigma) + 1)
    return SizeHistogram(tuple(float(c) for c in denoised), max(float(noisy[:counted].sum()), 1.0))


def sibling_agreement(children: pd.DataFrame, foreign_key: str, column: str) -> float:
    """How often siblings agree: over the parents with two or more children holding a value of ``column`` (NULLs left
    out), the mean share of those children that hold the parent's most common value (NaN: no such parent). 1 where
    every parent's children agree; each parent weighs alike, as each is one unit."""
    rows = children[[foreign_key, column]].dropna()
    per_parent = rows.groupby([foreign_key, column], observed=True).size().groupby(level=0)
    held, values = per_parent.max(), per_parent.sum()
    many = values >= 2
    return float((held[many] / values[many]).mean()) if many.any() else float("nan")
