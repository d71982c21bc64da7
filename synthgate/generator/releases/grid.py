"""The range release's public grid: two log bins a decade for numbers (both signs, 1e-6 to 1e307) and 30-day bins
for datetimes (1700 to 2261). Data-independent, so where a column's values fall on it is the release, not the grid."""

from __future__ import annotations

import math

import numpy as np

from synthgate.schema import Column, ColumnKind

# Data-independent grid for the bounds release: bin k covers |x| in [10^(k/2), 10^((k+1)/2)).
_GRID_PER_DECADE = 2

# Up to 1e307, so NUMERIC columns of 1e25 and floats of 1e300 keep their scale (a range from -1e307 to 1e307 still
# has a finite width; larger doubles fall in the top bin). The grid's 1,253 bins set the core threshold: 4.8 sigma
# for a 0.1% chance of a false core bin.
_GRID_MIN_EXP, _GRID_MAX_EXP = -6 * _GRID_PER_DECADE, 307 * _GRID_PER_DECADE
GRID_SIDE = _GRID_MAX_EXP - _GRID_MIN_EXP

# 30-day bins from 1700-01-01 (seconds since 1970) to 2261: pandas' nanosecond timestamps end in April 2262.
# 6842 bins: the core threshold is 5.1 sigma (a 0.1% chance of a false core bin).
CALENDAR_START = -8_520_336_000.0  # 1700-01-01T00:00:00
CALENDAR_STEP = 30 * 86400.0
CALENDAR_BINS = int((9_214_646_400.0 - CALENDAR_START) // CALENDAR_STEP)  # up to 2262-01-01


def grid_index(values: np.ndarray) -> np.ndarray:
    """Signed log-grid bin of each value: 0 .. 2*GRID_SIDE, the middle one holds |x| < 1e-6."""
    mag = np.abs(values)
    small = mag < 10.0 ** (_GRID_MIN_EXP / _GRID_PER_DECADE)
    with np.errstate(divide="ignore"):
        k = np.floor(np.log10(np.where(small, 1.0, mag)) * _GRID_PER_DECADE).astype(np.int64)
    k = np.clip(k - _GRID_MIN_EXP + 1, 1, GRID_SIDE)
    return np.where(small, 0, np.sign(values).astype(np.int64) * k) + GRID_SIDE


def calendar_bounds(index: int) -> tuple[float, float]:
    """The seconds since 1970 at which calendar bin ``index`` starts and ends."""
    return CALENDAR_START + index * CALENDAR_STEP, CALENDAR_START + (index + 1) * CALENDAR_STEP


def grid_bounds(index: int) -> tuple[float, float]:
    """The low and high value of grid bin ``index`` (as :func:`grid_index` numbers them)."""
    signed = index - GRID_SIDE
    if signed == 0:  # the zero bin: its values are (within 1e-6) exactly zero
        return 0.0, 0.0
    k = abs(signed) + _GRID_MIN_EXP - 1
    low, high = 10.0 ** (k / _GRID_PER_DECADE), 10.0 ** ((k + 1) / _GRID_PER_DECADE)
    return (low, high) if signed > 0 else (-high, -low)


def grid_neighbour(column: Column, end: float, side: int) -> tuple[float, float] | None:
    """The range release's grid bin just past ``end`` (below with ``side`` -1, above with 1), or None where ``end``
    is no grid bound. Integers step over the log grid's bins below 1, which hold no integer; below 1 they reach the
    zero bin, returned as running from 0 to ``end``."""
    if column.kind is ColumnKind.DATETIME:
        step = (end - CALENDAR_START) / CALENDAR_STEP
        index = round(step) - (side < 0)
        return calendar_bounds(index) if step == round(step) and 0 <= index < CALENDAR_BINS else None
    found = int(grid_index(np.array([end]))[0])
    starts = [i for i in (found - 1, found, found + 1) if 0 <= i <= 2 * GRID_SIDE]
    at = [i for i in starts if math.isclose(grid_bounds(i)[0], end, rel_tol=1e-12, abs_tol=1e-300)]
    if not at:
        return None
    index = at[0] - (side < 0)
    while 0 <= index <= 2 * GRID_SIDE:
        low, high = grid_bounds(index)
        if low == high:  # the zero bin
            return (0.0, end) if side < 0 else None
        if column.kind is not ColumnKind.INTEGER or math.ceil(low) < high:
            return low, high
        index += side
    return None
