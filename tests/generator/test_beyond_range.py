"""Values past the range's ends: counted apart in the bins release, never piled into its end bins, and given the
stretch next to an end where that count is clear: spread over it where the range missed a dense stretch (a
months-since figure whose range release missed 0 to 9), trailing off from the end where it cut a thin tail."""

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ks_2samp

from synthgate.generator.accounting import PrivacyAccountant
from synthgate.generator.releases import fit_numeric
from synthgate.generator.releases.grid import grid_neighbour
from synthgate.generator.releases.numeric import _beyond, _edges_past, _extended, _trailing
from synthgate.schema import Column, ColumnKind

MONTHS = Column("months_since_delinquency", ColumnKind.INTEGER, "BIGINT")


def test_the_grid_bin_below_a_range_end_takes_the_mass_counted_below_it():
    edges = np.arange(9.5, 101.0)  # one bin per integer from 10 to 100: the range release missed 0 to 9
    noisy = np.full(len(edges) - 1, 15.0)
    outside = np.array([470.0, 90.0])
    past = _edges_past(MONTHS, edges, ends=(10.0, 100.0), clear=outside >= 3 * 119.0, unit_bins=True)
    out_edges, out_mass = _extended(edges, noisy, past, outside, integer=True, unit_bins=True)
    # the grid bin from 3.16 to 10 holds the integers 4 to 9: 470 spread evenly over them; 90 above is no clear count
    assert out_edges[0] == 3.5 and out_edges[-1] == 100.5
    assert out_mass[:6] == pytest.approx([470.0 / 6] * 6) and out_mass[6:] == pytest.approx(noisy)


def test_past_a_zoomed_end_lies_the_rest_of_its_grid_bin():
    latitude = Column("lat", ColumnKind.FLOAT, "DOUBLE PRECISION")
    assert grid_neighbour(latitude, 44.87, -1) is None  # the zoom's end is no grid bound
    assert _beyond(latitude, 44.87, -1) == pytest.approx((10**1.5, 44.87))  # the grid bin holding it, below the end
    assert _beyond(latitude, 44.87, 1) == pytest.approx((44.87, 100.0))
    assert _beyond(MONTHS, 44.0, 1) is None  # a zoomed integer (a year, a score) keeps them at its end, as clipped
    assert grid_neighbour(latitude, 10.0, -1) == pytest.approx((10**0.5, 10.0))
    assert grid_neighbour(latitude, 10.0, 1) == pytest.approx((10.0, 10**1.5))
    assert grid_neighbour(MONTHS, 1.0, -1) == (0.0, 1.0)  # integers step over the bins below 1 to the zero bin
    assert grid_neighbour(latitude, -10.0, -1) == pytest.approx((-(10**1.5), -10.0))


def test_a_declared_minimum_is_never_crossed_though_values_lie_below_it():
    # only the minimum is declared: the range's high is released, its low is the declaration (a grid bound, 10)
    values = pd.Series(np.r_[np.arange(0, 10).repeat(100), np.arange(10, 101).repeat(80)])
    codec = fit_numeric(
        MONTHS,
        values,
        public_min=10,
        public_max=None,
        n_rows=len(values),
        n_coarse=16,
        sigma=20.0,
        accountant=PrivacyAccountant(delta=1e-5),
    )
    assert codec.fine_edges[0] == 9.5
    assert codec.decode(codec.encode(values), np.random.default_rng(0)).min() >= 10


def test_a_months_since_figure_keeps_its_low_months():
    """An exponential figure of mean 35 months, NULL for 77% of 8,000 rows, at the noise of a 55-column table, over
    80 fits with fresh noise. A quarter of its values are under 10, in grid bins each under the range release's
    threshold: piled on the range's first month (the bins above it then looked full), or dropped as noise, they left
    35-40% of fits with a KS distance over 0.2 (``benchmarks/range_releases.py``); now about 10%."""
    rng = np.random.default_rng(11)
    months = pd.Series(np.clip(rng.exponential(35, 8000), 0, 200).astype(int)).where(rng.random(8000) >= 0.77)
    series = months.astype("Int64")
    real = months.dropna().to_numpy()
    poor = 0
    for _ in range(80):
        codec = fit_numeric(
            MONTHS,
            series,
            public_min=None,
            public_max=None,
            n_rows=8000,
            n_coarse=16,
            sigma=119.0,
            accountant=PrivacyAccountant(delta=1e-5),
            selection_delta=1e-7,
        )
        decoded = codec.decode(codec.encode(series), np.random.default_rng(1)).dropna().to_numpy(dtype=float)
        poor += ks_2samp(real, decoded).statistic > 0.2
    assert poor <= 18, poor


def test_a_thin_tail_past_a_zoomed_end_trails_off_from_it():
    """A float zoomed to 572.5-785.5, 268 of its 7,925 rows past 785.5 (to 850): spread evenly over the rest of the
    grid bin they would reach 1,000; trailing off from the end bin's density they stay near it."""
    score = Column("score", ColumnKind.FLOAT, "DOUBLE PRECISION")
    edges = np.linspace(572.5, 785.5, 6)  # bins of 42.6
    noisy = np.array([440.0, 1180.0, 2650.0, 2540.0, 840.0])
    past = _edges_past(score, edges, ends=(572.5, 785.5), clear=np.array([False, True]), unit_bins=False)
    out_edges, out_mass = _extended(edges, noisy, past, np.array([0.0, 268.0]), integer=False, unit_bins=False)
    assert out_edges[:6] == pytest.approx(edges) and out_mass[:5] == pytest.approx(noisy)
    assert out_mass[5:].sum() == pytest.approx(268.0)
    assert out_mass[5] > out_mass[6] > out_mass[-1]  # declining from the end
    assert 785.5 < out_edges[-1] < 900  # the scale is 268 / (840 / 42.6) = 13.6: 8 scales hold all but half a row
    decoded = np.concatenate(
        [
            np.random.default_rng(0).uniform(a, b, round(float(m)))
            for a, b, m in zip(out_edges[5:-1], out_edges[6:], out_mass[5:], strict=True)
        ]
    )
    assert np.median(decoded) < 800  # the exponential's median: 785.5 + 13.6 ln 2


def test_a_tail_of_integers_keeps_one_bin_each_and_a_false_count_stays_beside_the_end():
    edges = np.arange(9.5, 21.0)  # 10 to 20, one bin per integer
    tail, mass = _trailing(
        np.arange(20.5, 40.0), 1.0, 300.0, 60.0, integer=True, unit_bins=True
    )  # 60 rows past 20, 300 at 20
    assert tail[0] == 20.5 and np.diff(tail) == pytest.approx(1.0)  # whole integers: 21, 22, ...
    assert mass.sum() == pytest.approx(60.0) and mass[0] > 0.15 * 60
    assert len(mass) <= 2  # a scale of 0.2 integers: 21 and little past it
    assert edges[-1] == tail[0]


def test_both_ends_trail_off_and_the_bins_stay_in_order():
    score = Column("score", ColumnKind.FLOAT, "DOUBLE PRECISION")
    edges = np.linspace(600.5, 780.5, 7)  # zoomed at both ends
    noisy = np.array([300.0, 900.0, 1500.0, 1400.0, 800.0, 250.0])
    past = _edges_past(score, edges, ends=(600.5, 780.5), clear=np.array([True, True]), unit_bins=False)
    out_edges, out_mass = _extended(edges, noisy, past, np.array([120.0, 90.0]), integer=False, unit_bins=False)
    assert np.all(np.diff(out_edges) > 0) and len(out_mass) == len(out_edges) - 1
    inner = int(np.flatnonzero(out_edges == 600.5)[0])
    assert out_edges[inner : inner + 7] == pytest.approx(edges) and out_mass[inner : inner + 6] == pytest.approx(noisy)
    assert out_mass[:inner].sum() == pytest.approx(120.0) and out_mass[inner + 6 :].sum() == pytest.approx(90.0)
    assert out_edges[0] > 500 and out_edges[-1] < 880  # each side near its end: scales of 12 and 11


def test_a_tail_of_integers_past_a_range_near_the_token_limit_takes_the_integers_beside_the_end():
    """91 integers (10 to 100), one token each, and a thin tail counted above: the stretch past the end (the grid bin
    to 316) would take the column past 128 tokens. The tail keeps the integers beside the end that fit (before, the
    whole stretch was counted against the limit and every value past the end piled on it)."""
    edges = np.arange(9.5, 101.0)
    noisy = np.full(len(edges) - 1, 40.0)
    past = _edges_past(MONTHS, edges, ends=(10.0, 100.0), clear=np.array([False, True]), unit_bins=True)
    assert past[0] is None and past[1] is not None and len(past[1]) == 128 - 91
    out_edges, out_mass = _extended(edges, noisy, past, np.array([0.0, 60.0]), integer=True, unit_bins=True)
    assert len(out_mass) <= 128 and np.diff(out_edges) == pytest.approx(1.0)
    assert out_mass[91:].sum() == pytest.approx(60.0) and out_mass[91] > out_mass[-1]  # declining from the end


def test_the_room_one_end_leaves_goes_to_the_other():
    edges = np.arange(9.5, 101.0)  # 10 to 100: room for 37 more integers
    months = Column("months", ColumnKind.INTEGER, "BIGINT")
    past = _edges_past(months, edges, ends=(10.0, 100.0), clear=np.array([True, True]), unit_bins=True)
    below, above = past
    assert below is not None and above is not None
    assert len(below) == 6 and len(above) == 37 - 6  # 4 to 9 below (the grid bin from 3.16), the rest above
    assert below[-1] == edges[0] - 1 and above[0] == edges[-1] + 1  # the integers nearest each end
