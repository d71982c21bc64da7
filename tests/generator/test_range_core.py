"""The range release's core: a lone clear bin far from the rest is noise unless it clears a stricter threshold."""

import numpy as np
import pandas as pd

from synthgate.generator.accounting import PrivacyAccountant
from synthgate.generator.releases import corrected_threshold, fit_numeric
from synthgate.generator.releases.grid import CALENDAR_BINS, GRID_SIDE, grid_index
from synthgate.generator.releases.ranges import _LONE_FALSE_RATE, _without_lone_ends
from synthgate.schema import Column, ColumnKind


def _kept(noisy: np.ndarray, sigma: float, place: np.ndarray | None = None) -> list[int]:
    core = np.flatnonzero(noisy > corrected_threshold(noisy.size, sigma, 4.0, false_rate=1e-3))
    strict = corrected_threshold(noisy.size, sigma, 4.0, false_rate=_LONE_FALSE_RATE)
    return _without_lone_ends(core, noisy, strict, np.arange(noisy.size) if place is None else place).tolist()


def test_a_lone_bin_far_out_sets_no_range_unless_it_is_strong():
    sigma = 5.0
    noisy = np.zeros(CALENDAR_BINS)
    noisy[3860:3868] = 40.0  # eight months of 2021, 8 sigma each
    core = corrected_threshold(noisy.size, sigma, 4.0, false_rate=1e-3)
    strict = corrected_threshold(noisy.size, sigma, 4.0, false_rate=_LONE_FALSE_RATE)
    assert core < strict
    weak, strong = (core + strict) / 2, strict * 1.5
    far = noisy.copy()
    far[6500] = weak  # a month of the 2230s that cleared the core's threshold by chance (about one fit in a thousand)
    assert _kept(far, sigma) == list(range(3860, 3868))
    far[6500] = strong  # a default date that a few percent of rows hold
    assert _kept(far, sigma)[-1] == 6500
    beside = noisy.copy()
    beside[3868] = weak  # next to the core: kept (a thin month beside the others)
    assert _kept(beside, sigma)[-1] == 3868
    both = noisy.copy()
    both[[100, 6500]] = weak  # one at each end
    assert _kept(both, sigma) == list(range(3860, 3868))


def test_the_zeros_of_a_zero_inflated_figure_are_no_lone_bin():
    # 4% zeros beside values of about a thousand (bankcard limits): the zero bin is some twenty log bins from the
    # values, within extend_edge's reach, and stays in the core at a count under the strict threshold
    sigma = 60.0
    noisy = np.zeros(2 * GRID_SIDE + 1)
    zero, thousand, far = grid_index(np.array([0.0, 1500.0, 1e60]))
    noisy[thousand - 2 : thousand + 3] = 2000.0
    noisy[zero] = 5.5 * sigma
    assert _kept(noisy, sigma)[0] == zero
    noisy[far] = 5.5 * sigma  # the same count far out: noise that cleared the core's threshold
    assert far - thousand > 64 and _kept(noisy, sigma)[-1] == thousand + 2


def test_dates_of_one_year_keep_their_place_over_many_fits():
    """300 dates of 2021 at the noise of a small table (the reliability suite's): no fit spreads them over decades,
    as about one fit in a thousand did (a lone month of 2249 in the core)."""
    rng = np.random.default_rng(5)
    dates = pd.Series(pd.Timestamp("2021-01-01") + pd.to_timedelta(rng.integers(0, 2 * 10**7, 300), unit="s"))
    column = Column("naive", ColumnKind.DATETIME, "TIMESTAMP", False)
    for _ in range(200):
        codec = fit_numeric(
            column,
            dates,
            public_min=None,
            public_max=None,
            n_rows=300.0,
            n_coarse=24,
            sigma=7.3,
            accountant=PrivacyAccountant(delta=1e-5),
        )
        assert pd.Timestamp(codec.fine_edges[-1], unit="s") < pd.Timestamp("2030-01-01")
