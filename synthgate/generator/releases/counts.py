"""Reading released counts: thresholds (corrected for the number of bins, or a category's selection), thin tails
grown past an edge, and the denoising of a noisy histogram (post-processing: none of it touches the data)."""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import norm

EDGE_REACH = 64  # the most bins extend_edge looks past an edge at once (its widest stretch)

#: How much better (in sigma squared of summed squares) a declining tail must fit the bins past a clear edge than no
#: tail (:func:`_declining_tail`): 4 keeps an interest rate's thin tail in most fits and takes a tail of noise in 2.4%.
TAIL_EVIDENCE = 4.0


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
        ahead = ahead[:EDGE_REACH]
        widths = [w for w in (1, 2, 4, 8, 16, 32, 64) if w <= len(ahead)]
        clear = [w for w in widths if noisy[ahead[:w]].sum() >= z * sigma * math.sqrt(w)]
        if not clear:
            return edge
        edge = ahead[clear[0] - 1]


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
    bins = min(tail.size, EDGE_REACH)
    if bins == 0 or edge <= 0:
        return np.zeros(tail.size)
    fits = edge * np.linspace(0.0, 0.98, 99)[:, None] ** np.arange(1, bins + 1)  # one row per ratio
    misfit = ((tail[:bins] - fits) ** 2).sum(axis=1)
    best = int(np.argmin(misfit))
    out = np.zeros(tail.size)
    if misfit[0] - misfit[best] >= TAIL_EVIDENCE * sigma**2:  # as far as a bin holds a quarter sigma: no further
        out[:bins] = np.where(fits[best] >= sigma / 4.0, fits[best], 0.0)
    return out


def selection_threshold(sigma: float, delta_per_column: float) -> float:
    """Noisy-count threshold so that a category held by one record is released with probability at most
    delta_per_column: its count 1 plus the noise's quantile, plus half a count, since the released counts are rounded
    (:meth:`PrivacyAccountant.gaussian`): ``rint(x) > t`` holds for ``x`` down to ``floor(t) + 0.5``, below ``t``
    (a singleton got through 3.4 times as often as delta at sigma 1), and a precision-weighted mean of rounded
    releases is off by at most half a count too."""
    return 1.5 + sigma * float(norm.isf(delta_per_column))
