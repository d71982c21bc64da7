import math
import secrets

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from synthgate.generator.accounting import PrivacyAccountant
from synthgate.generator.codecs import RARE_LABEL, CategoricalCodec, codec_from_state
from synthgate.generator.releases import denoise, fit_categorical, fit_numeric, select_points, selection_threshold
from synthgate.schema import Column, ColumnKind

RNG = np.random.default_rng(0)


@pytest.fixture(autouse=True)
def one_fixed_noise_draw(monkeypatch):
    """These tests check codec logic on one fixed draw of the release noise, so the OS entropy is pinned here.

    Each assertion is about one draw (a tail kept, a bin trimmed), as with the seeded noise before. That releases
    draw fresh OS entropy (never a seed) is tested in test_accounting.py and test_synthesizer.py.
    """
    monkeypatch.setattr(secrets, "randbits", lambda bits: 1)


def numeric(kind: ColumnKind, values, sigma=2.0, public=(None, None), tz=False, n_coarse=16, selection_delta=0.0):
    accountant = PrivacyAccountant(delta=1e-5)
    codec = fit_numeric(
        Column("x", kind, "", tz),
        pd.Series(values),
        public_min=public[0],
        public_max=public[1],
        n_rows=len(values),
        n_coarse=n_coarse,
        sigma=sigma,
        accountant=accountant,
        selection_delta=selection_delta,
    )
    return codec, accountant


def test_integer_codec_round_trips_exact_integers():
    values = RNG.integers(17, 90, 20_000)
    codec, accountant = numeric(ColumnKind.INTEGER, values)
    assert codec.unit_bins
    decoded = codec.decode(codec.encode(pd.Series(values)), np.random.default_rng(2))
    assert decoded.dtype == "Int64"
    assert decoded.min() >= 10 and decoded.max() <= 100
    # The marginal survives: same mean within a year, same spread.
    assert abs(decoded.mean() - values.mean()) < 1.0
    assert [r.purpose for r in accountant.releases] == ["range:x", "bins:x"]


def test_outliers_are_clipped_to_the_dp_range():
    values = np.concatenate([RNG.normal(100, 10, 20_000), [1e9]])  # one extreme record
    codec, _ = numeric(ColumnKind.FLOAT, values)
    assert codec.fine_edges[-1] < 1e6  # a single record cannot stretch the range
    decoded = codec.decode(codec.encode(pd.Series(values)), np.random.default_rng(0))
    assert decoded.max() < 1e6


def test_heavy_tail_with_point_mass_at_zero():
    values = np.where(RNG.random(20_000) < 0.9, 0, RNG.lognormal(8, 1, 20_000)).round()
    codec, _ = numeric(ColumnKind.INTEGER, values)
    decoded = codec.decode(codec.encode(pd.Series(values)), np.random.default_rng(0)).astype(float)
    assert abs((decoded == 0).mean() - 0.9) < 0.02


def test_nulls_have_their_own_token():
    values = pd.Series([1.5, None, 2.5, np.nan, np.inf] * 2000, dtype=float)
    codec, _ = numeric(ColumnKind.FLOAT, values)
    tokens = codec.encode(values)
    assert (tokens == codec.null_token).sum() == 6000  # None, NaN and infinity
    assert codec.decode(tokens, RNG).isna().sum() == 6000


def test_public_bounds_cost_no_range_release():
    codec, accountant = numeric(ColumnKind.FLOAT, RNG.random(5000), public=(0.0, 1.0))
    assert [r.purpose for r in accountant.releases] == ["bins:x"]
    assert codec.fine_edges[0] == 0.0 and codec.fine_edges[-1] == 1.0


def test_datetimes_keep_their_timezone():
    stamps = pd.Series(pd.date_range("2021-01-01", periods=10_000, freq="h", tz="UTC"))
    codec, _ = numeric(ColumnKind.DATETIME, stamps, tz=True)
    decoded = codec.decode(codec.encode(stamps), RNG)
    assert str(decoded.dt.tz) == "UTC"
    assert decoded.min() >= pd.Timestamp("2020-01-01", tz="UTC") and decoded.max() <= pd.Timestamp(
        "2023-01-01", tz="UTC"
    )


def test_rare_categories_are_not_released():
    values = pd.Series(["a"] * 5000 + ["b"] * 3000 + ["unique-person"])
    accountant = PrivacyAccountant(delta=1e-5, delta_selection=2.5e-6)
    sigma = 5.0
    codec = fit_categorical(
        Column("c", ColumnKind.CATEGORICAL, ""),
        values,
        public_categories=None,
        n_rows=len(values),
        sigma=sigma,
        selection_delta=2.5e-6,
        accountant=accountant,
    )
    assert codec.categories == ["a", "b"]
    tokens = codec.encode(values)
    assert tokens[-1] == codec.rare_token
    assert codec.decode(tokens, RNG).iloc[-1] == RARE_LABEL


def test_public_categories_never_sample_rare():
    codec = CategoricalCodec(Column("c", ColumnKind.CATEGORICAL, ""), ["x", "y"], public=True)
    assert codec.forbidden_tokens == [codec.rare_token]


def test_booleans_are_public_and_nullable():
    codec = fit_categorical(
        Column("b", ColumnKind.BOOLEAN, ""),
        pd.Series([True, False, None]),
        public_categories=None,
        n_rows=3,
        sigma=1.0,
        selection_delta=1e-6,
        accountant=PrivacyAccountant(delta=1e-5),
    )
    decoded = codec.decode(codec.encode(pd.Series([True, False, None], dtype=object)), RNG)
    assert decoded.tolist()[:2] == [True, False] and pd.isna(decoded.iloc[2])


@pytest.mark.parametrize("delta", [1e-6, 1e-9])
def test_selection_threshold_grows_as_delta_shrinks(delta):
    assert selection_threshold(10.0, delta) > selection_threshold(10.0, delta * 100) > 1.0


@pytest.mark.parametrize("sigma", [1.0, 2.2, 4.2, 11.0])
def test_a_singleton_is_selected_with_at_most_delta_though_its_count_is_rounded(sigma):
    # the accountant rounds each released count: rint(1 + noise) > t holds from noise = floor(t) - 0.5 on, which was
    # below t - 1 where t's fraction is over a half (sigma 1: 3.4e-6 against a delta of 1e-6)
    delta = 1e-6
    lowest = math.floor(selection_threshold(sigma, delta)) + 1  # the smallest rounded count above the threshold
    assert norm.sf((lowest - 0.5 - 1.0) / sigma) <= delta


def test_denoise_keeps_a_thin_tail_and_adds_little_to_empty_bins():
    sigma = 20.0
    bulk = np.array([400.0, 900.0, 1200.0, 800.0])
    thin_tail = np.array([50.0, 45.0, 40.0, 35.0, 30.0, 25.0, 20.0, 15.0])  # every bin below 3 sigma, 260 in all
    true = np.concatenate([np.zeros(40), bulk, thin_tail, np.zeros(40)])
    rng = np.random.default_rng(3)
    runs = [denoise(true + rng.normal(0, sigma, len(true)), sigma) for _ in range(200)]
    tail = np.mean([out[44:52].sum() for out in runs])
    invented = np.mean([out[:38].sum() + out[72:].sum() for out in runs])
    beside = np.mean([out[38:40].sum() for out in runs])
    assert 200 < tail < 320  # on average about the tail's true 260 (zeroing every sub-threshold bin gives ~0)
    assert invented < 0.005 * true.sum()  # no mass invented far out, on average
    # right beside the bulk's lower edge, a declining tail fitted to the noise (about 5% of draws here) adds a little
    assert beside < 0.002 * true.sum()


def test_a_tail_declining_under_the_noise_is_kept_and_noise_past_an_edge_seldom_makes_one():
    """An interest rate's highest 6% trail off over bins each under 3 sigma (noise 120), and no window of them
    clears: dropped, the synthetic rates ended at the last clear bin; noise alone past a clear edge makes a tail in
    a few percent of draws."""
    sigma = 120.0
    bulk = np.array([900.0, 1100.0, 1300.0, 1200.0, 900.0, 600.0])
    tail = np.array([250.0, 130.0, 70.0, 35.0, 15.0, 5.0])  # 505 rows, the first bin at 2.1 sigma
    true = np.concatenate([np.zeros(8), bulk, tail, np.zeros(20)])
    rng = np.random.default_rng(5)
    runs = [denoise(true + rng.normal(0, sigma, len(true)), sigma) for _ in range(300)]
    kept = np.array([out[14:20].sum() for out in runs])
    assert np.mean(kept > 0) > 0.6 and 250 < np.median(kept[kept > 0]) < 800
    assert np.mean([out[20:].sum() > 0 for out in runs]) < 0.1  # hardly ever past the tail's reach
    below = np.array([out[:8].sum() for out in runs])
    assert np.mean(below > 0) < 0.06  # noise alone below the bulk: a tail in a few percent of draws


def test_denoise_zeroes_everything_without_a_clear_bin():
    rng = np.random.default_rng(4)
    assert denoise(rng.normal(0, 5.0, 300), 5.0).sum() == 0


def test_a_column_without_nulls_never_samples_null():
    codec, _ = numeric(ColumnKind.FLOAT, RNG.normal(50, 5, 20_000), sigma=20.0)
    assert not codec.has_nulls and codec.forbidden_tokens == [codec.null_token]
    with_nulls, _ = numeric(ColumnKind.FLOAT, np.where(RNG.random(20_000) < 0.3, np.nan, 50.0), sigma=20.0)
    assert with_nulls.has_nulls and with_nulls.forbidden_tokens == []


def test_null_count_shares_the_category_release():
    accountant = PrivacyAccountant(delta=1e-5)
    series = pd.Series(RNG.choice(["a", "b"], 10_000))
    codec = fit_categorical(
        Column("x", ColumnKind.CATEGORICAL, ""),
        series,
        public_categories=None,
        n_rows=len(series),
        sigma=20.0,
        selection_delta=1e-6,
        accountant=accountant,
    )
    assert len(accountant.releases) == 1  # counts and NULL in one Gaussian release
    assert codec.null_token in codec.forbidden_tokens


def test_decoded_datetimes_have_nanosecond_resolution():
    stamps = pd.Series(pd.date_range("2021-01-01", "2022-01-01", periods=5000, tz="UTC"))
    codec, _ = numeric(ColumnKind.DATETIME, stamps, tz=True)
    assert str(codec.decode(codec.encode(stamps), RNG).dtype) == "datetime64[ns, UTC]"


def test_a_thin_long_tail_is_kept_from_the_range_release():
    # Working hours: a bulk at 30..60 and 2.6% spread thinly over 61..99, too thin for any one value to clear the noise.
    values = np.concatenate([RNG.integers(30, 61, 30_000), RNG.integers(61, 100, 800)])  # ~20 rows a value past 60
    codec, _ = numeric(ColumnKind.INTEGER, values, sigma=30.0)
    assert codec.fine_edges[-1] >= 95
    decoded = codec.decode(codec.encode(pd.Series(values)), RNG).astype(float)
    assert 0.01 < (decoded > 70).mean() < 0.04


def test_a_spike_gets_its_own_coarse_bin_and_the_rest_keep_their_quantiles():
    values = np.where(RNG.random(30_000) < 0.9, 0.0, RNG.lognormal(8, 1, 30_000))
    codec, _ = numeric(ColumnKind.FLOAT, values, sigma=5.0)
    assert len(codec.coarse_starts) - 1 >= 12  # not one bin for all the non-zero values
    tokens = codec.encode(pd.Series(values))
    assert (tokens == np.bincount(tokens).argmax()).mean() > 0.85  # the zeros are one token


def test_a_float_with_a_large_offset_keeps_its_resolution():
    # Coordinates: offset 45, spread 0.03. The coarse range grid alone leaves a handful of bins across the data.
    values = RNG.normal(45.0, 0.03, 40_000)
    codec, accountant = numeric(ColumnKind.FLOAT, values, sigma=40.0)
    assert [r.purpose for r in accountant.releases] == ["range:x", "zoom:x", "bins:x"]
    assert codec.fine_edges[0] > 44.8 and codec.fine_edges[-1] < 45.2
    decoded = codec.decode(codec.encode(pd.Series(values)), RNG)
    assert abs(decoded.std() - 0.03) < 0.003


def test_the_zoom_keeps_a_heavy_tail():
    values = RNG.lognormal(3, 1.5, 40_000)
    codec, _ = numeric(ColumnKind.FLOAT, values, sigma=20.0)
    low, high = np.quantile(values, [0.01, 0.99])  # the zoom does not cut back what the coarse range found
    assert codec.fine_edges[0] < low and codec.fine_edges[-1] > high


# -- shapes of real tables: spikes, sentinels, zero inflation, thin figures (issue 15) --------------------------------


def ks_distance(real: np.ndarray, synthetic: np.ndarray) -> float:
    """Largest CDF gap (SDMetrics' column shape for numbers is one minus this)."""
    grid = np.union1d(real, synthetic)
    cdf = lambda x: np.searchsorted(np.sort(x), grid, side="right") / len(x)  # noqa: E731
    return float(np.abs(cdf(real) - cdf(synthetic)).max())


def round_trip(codec, values: np.ndarray) -> np.ndarray:
    decoded = codec.decode(codec.encode(pd.Series(values)), np.random.default_rng(9)).to_numpy(dtype=float)
    return decoded[~np.isnan(decoded)]


def test_a_spike_does_not_swallow_the_rest_of_the_range():
    # 40% of the rows in 19.6-20.4, the rest spread over 18-119: the range covers the mass, not the densest window
    rng = np.random.default_rng(11)
    values = np.where(
        rng.random(21_000) < 0.4, rng.uniform(19.6, 20.4, 21_000), (rng.gamma(3, 9, 21_000) + 18).clip(18, 119)
    )
    codec, _ = numeric(ColumnKind.FLOAT, values, sigma=45.0)
    assert codec.fine_edges[0] < 19.6 and codec.fine_edges[-1] > 85.0  # below the spike, and far above it
    assert ks_distance(values, round_trip(codec, values)) < 0.1


@pytest.mark.parametrize(
    ("share", "point", "rest"),
    [
        (0.6, 999.0, lambda rng, n: np.round(rng.lognormal(1.8, 0.4, n), 1)),  # a sentinel holds most rows
        (0.92, 0.0, lambda rng, n: np.round(rng.lognormal(8, 1.2, n)) + 1),
    ],  # zero inflation
    ids=["sentinel", "zero-inflated"],
)
def test_point_masses_are_selected_and_decoded_exactly(share, point, rest):
    rng = np.random.default_rng(12)
    values = np.where(rng.random(21_000) < share, point, rest(rng, 21_000)).astype(float)
    sigma = 45.0
    accountant = PrivacyAccountant(delta=1e-5)
    codec = fit_numeric(
        Column("x", ColumnKind.FLOAT, ""),
        pd.Series(values),
        public_min=None,
        public_max=None,
        n_rows=len(values),
        n_coarse=24,
        sigma=sigma,
        accountant=accountant,
        selection_delta=1e-6,
    )
    assert point in codec.points.tolist()
    assert "points:x" in [r.purpose for r in accountant.releases]
    decoded = round_trip(codec, values)
    assert abs((decoded == point).mean() - share) < 0.01  # exactly the point, in its share
    assert ks_distance(values, decoded) < 0.05  # and the rest of the values keep their shape


def test_a_figure_most_rows_leave_null_keeps_its_range():
    # NULL for 85% of rows; the rest over one decade: the wide grid bins gather enough mass to find it
    rng = np.random.default_rng(13)
    values = np.where(rng.random(10_000) < 0.85, np.nan, np.round(rng.lognormal(11, 0.5, 10_000), -2))
    codec, _ = numeric(ColumnKind.FLOAT, values, sigma=100.0)
    real = values[~np.isnan(values)]
    assert ks_distance(real, round_trip(codec, values)) < 0.2


def test_a_boolean_without_nulls_never_samples_null():
    accountant = PrivacyAccountant(delta=1e-5)
    column = Column("b", ColumnKind.BOOLEAN, "")
    full = fit_categorical(
        column,
        pd.Series(RNG.random(5000) < 0.3),
        public_categories=None,
        n_rows=5000,
        sigma=20.0,
        selection_delta=1e-6,
        accountant=accountant,
    )
    # one release (the counts of False, True and NULL), of which the prior is the shares
    assert full.null_token in full.forbidden_tokens and [r.purpose for r in accountant.releases] == ["domain:b"]
    assert full.prior is not None and abs(full.prior[1] - 0.3) < 0.03 and full.prior[full.null_token] == 0
    sparse = fit_categorical(
        column,
        pd.Series(np.where(RNG.random(5000) < 0.3, None, True)),
        public_categories=None,
        n_rows=5000,
        sigma=20.0,
        selection_delta=1e-6,
        accountant=accountant,
    )
    assert sparse.null_token not in sparse.forbidden_tokens


def test_a_not_null_column_never_samples_null_whatever_the_noise(monkeypatch):
    # a NULL count of 0 clears 3 sigma in 0.13% of fits: on a 50-column table, some column invented NULLs in about
    # one refresh in fifteen. NOT NULL is in the schema (structure): such a column has no NULL token at all.
    monkeypatch.setattr(PrivacyAccountant, "gaussian", lambda self, purpose, counts, sigma: counts + 10.0 * sigma)
    values = {
        ColumnKind.BOOLEAN: pd.Series(RNG.random(2000) < 0.3),
        ColumnKind.CATEGORICAL: pd.Series(RNG.choice(["a", "b"], 2000), dtype=object),
        ColumnKind.INTEGER: pd.Series(RNG.integers(0, 60, 2000)),
    }
    for nullable in (True, False):
        for kind, series in values.items():
            column = Column("x", kind, "", nullable=nullable)
            accountant = PrivacyAccountant(delta=1e-5)
            common = {"n_rows": 2000, "sigma": 5.0, "selection_delta": 1e-6, "accountant": accountant}
            if kind is ColumnKind.INTEGER:
                codec = fit_numeric(column, series, public_min=None, public_max=None, n_coarse=16, **common)
            else:
                codec = fit_categorical(column, series, public_categories=None, **common)
            assert codec.has_nulls is nullable, (kind, nullable)  # the noise put 50 NULLs in every column


def test_a_repeating_key_is_recognised_from_the_release_and_a_category_is_not():
    rng = np.random.default_rng(14)
    sigma = 45.0
    cases = pd.Series([f"C{k:06d}" for k in rng.integers(0, 10_000, 21_000)])  # 1-4 rows a case, ~10,000 cases
    # 20 common cities hold 70% of the rows, 500 rare ones the rest: a category with a long tail, not a key
    cities = pd.Series(
        np.where(
            rng.random(21_000) < 0.7,
            rng.choice([f"c{i}" for i in range(20)], 21_000),
            rng.choice([f"r{i}" for i in range(500)], 21_000),
        )
    )

    def fit(s):
        return fit_categorical(
            Column("x", ColumnKind.CATEGORICAL, ""),
            s,
            public_categories=None,
            n_rows=len(s),
            sigma=sigma,
            selection_delta=1e-6,
            accountant=PrivacyAccountant(delta=1e-5),
        )

    assert fit(cases).key_like
    assert not fit(cities).key_like
    assert not fit(pd.Series([None] * 20_990 + ["a"] * 10)).key_like  # nearly empty: nothing to call a key
    # 50 states on a wide table (noise 106): only the largest clear the threshold, but they are no key
    weights = np.arange(50, 0, -1) ** 1.5
    states = pd.Series(rng.choice([f"s{i}" for i in range(50)], 10_000, p=weights / weights.sum()))
    wide = fit_categorical(
        Column("x", ColumnKind.CATEGORICAL, ""),
        states,
        public_categories=None,
        n_rows=len(states),
        sigma=106.0,
        selection_delta=1e-7,
        accountant=PrivacyAccountant(delta=1e-5),
    )
    assert len(wide.categories) < 50 and not wide.key_like


def test_numeric_columns_come_back_at_their_scale():
    values = RNG.lognormal(4, 1, 5000).round(2)
    codec, _ = numeric(ColumnKind.FLOAT, values, sigma=5.0)
    codec.column = Column("x", ColumnKind.FLOAT, "NUMERIC(10, 2)")
    decoded = round_trip(codec, values)
    assert np.allclose(decoded, np.round(decoded, 2)) and not np.allclose(decoded, np.round(decoded, 1))


def test_rare_is_never_sampled_when_the_released_categories_hold_every_row():
    series = pd.Series(RNG.choice(["a", "b", "c", "d", "e"], 5000))
    codec = fit_categorical(
        Column("x", ColumnKind.CATEGORICAL, ""),
        series,
        public_categories=None,
        n_rows=len(series),
        sigma=40.0,
        selection_delta=1e-6,
        accountant=PrivacyAccountant(delta=1e-5),
    )
    assert sorted(codec.categories) == ["a", "b", "c", "d", "e"]
    assert codec.rare_token in codec.forbidden_tokens


def test_a_constant_year_comes_back_exactly():
    # 2013 in every row: one coarse bin of 2,162 integers holds it; a zoom finds the year itself
    values = np.full(20_000, 2013)
    codec, accountant = numeric(ColumnKind.INTEGER, values, sigma=40.0)
    assert [r.purpose for r in accountant.releases] == ["range:x", "zoom:x", "bins:x"]
    assert set(round_trip(codec, values)) == {2013.0}


def test_a_thin_integer_column_gets_bins_the_noise_affords():
    # months since an event: 0-119, NULL for half of 8,000 rows; one bin per month would drown in the noise
    rng = np.random.default_rng(16)
    values = np.where(rng.random(8000) < 0.5, np.nan, rng.integers(0, 120, 8000)).astype(float)
    codec, _ = numeric(ColumnKind.INTEGER, values, sigma=80.0)
    assert not codec.unit_bins and np.allclose(codec.fine_edges % 1, 0.5)  # integer-aligned, wider than one
    real = values[~np.isnan(values)]
    decoded = round_trip(codec, values)
    assert np.allclose(decoded, np.round(decoded)) and ks_distance(real, decoded) < 0.15


def test_values_too_few_to_locate_are_sampled_as_null_not_at_a_guessed_place():
    # 2% of 8,000 rows hold a value, under a wide table's noise: no bin nor sum of bins clears its threshold
    rng = np.random.default_rng(17)
    values = np.where(rng.random(8000) < 0.98, np.nan, rng.lognormal(np.log(95_000), 0.6, 8000).round(0))
    codec, _ = numeric(ColumnKind.FLOAT, values, sigma=106.0)
    assert not codec.has_values and codec.forbidden_tokens == list(range(codec.null_token))
    restored = codec_from_state(codec.column, codec.to_state())
    assert not restored.has_values


def wide_table_fit(values: np.ndarray, kind: ColumnKind, sigma: float = 110.0):
    """A column fitted as on a 55-column table of 8,000 rows (weight-1 noise about 110 at epsilon 1)."""
    accountant = PrivacyAccountant(delta=1e-5)
    codec = fit_numeric(
        Column("x", kind, ""),
        pd.Series(values),
        public_min=None,
        public_max=None,
        n_rows=len(values),
        n_coarse=24,
        sigma=sigma,
        accountant=accountant,
        selection_delta=1e-7,
    )
    return codec, accountant


def test_an_integer_spread_wide_keeps_its_point_masses():
    # loan terms: 36 or 60 months, nothing between; a wide integer range with most rows at a few exact values
    rng = np.random.default_rng(21)
    terms = np.where(rng.random(8000) < 0.7, 36, 60)
    months = np.where(rng.random(8000) < 0.6, 0, rng.integers(1, 400, 8000))
    codec, accountant = wide_table_fit(months, ColumnKind.INTEGER)
    assert 0 in codec.points.tolist() and "points:x" in [r.purpose for r in accountant.releases]
    assert abs((round_trip(codec, months) == 0).mean() - 0.6) < 0.02
    codec, _ = wide_table_fit(terms, ColumnKind.INTEGER)
    assert set(np.unique(round_trip(codec, terms))) == {36.0, 60.0}  # a short range: one token per integer


def test_a_thin_tail_below_the_core_is_kept_on_a_wide_table():
    # months since an event: NULL for half the rows, the rest 0-200, a quarter of them under 10; no grid bin below
    # 10 clears the core threshold alone, the next bins' sums do
    rng = np.random.default_rng(22)
    values = np.where(rng.random(8000) < 0.5, np.nan, np.round(rng.exponential(30, 8000)).clip(0, 200))
    codec, _ = wide_table_fit(values, ColumnKind.INTEGER)
    real = values[~np.isnan(values)]
    decoded = round_trip(codec, values)
    assert decoded.min() <= 3 and abs((decoded < 10).mean() - (real < 10).mean()) < 0.05
    assert ks_distance(real, decoded) < 0.1


def test_a_figure_held_by_a_few_percent_of_rows_keeps_its_shape():
    # 12% of 8,000 rows hold a score near 690: its fine bins are sized by those rows, not by the table's
    rng = np.random.default_rng(23)
    values = np.where(rng.random(8000) < 0.88, np.nan, rng.normal(690, 45, 8000).round())
    codec, _ = wide_table_fit(values, ColumnKind.INTEGER)
    real = values[~np.isnan(values)]
    assert ks_distance(real, round_trip(codec, values)) < 0.35  # 4 bins of 49 points: about what the noise affords


def test_a_column_of_point_masses_only_never_samples_between_them():
    # log coinsurance rates (RAND HIE's lncoins): every value one of four; the range's grid bin reaches 10, and its
    # coarse bins, which the releases give no rows, must never be sampled (randhie had 26-32 rows up to 10 from them)
    rng = np.random.default_rng(3)
    values = np.log1p(rng.choice([0.0, 25.0, 50.0, 95.0], 10_000, p=[0.5, 0.2, 0.2, 0.1]))
    codec, _ = numeric(ColumnKind.FLOAT, values, sigma=20.0, selection_delta=1e-6)
    assert len(codec.points) == 4 and codec.n_coarse > 0 and codec.fine_edges[-1] > values.max()
    allowed = [t for t in range(codec.n_tokens) if t not in codec.forbidden_tokens]
    decoded = codec.decode(np.array(allowed * 50), np.random.default_rng(0)).to_numpy(dtype=float)
    assert set(np.round(decoded[~np.isnan(decoded)], 9)) <= set(np.round(np.unique(values), 9))
    again = codec_from_state(codec.column, codec.to_state())  # the saved generator samples the same tokens
    assert again.forbidden_tokens == codec.forbidden_tokens


def test_point_masses_are_not_missing_mass_of_the_range_bins():
    # RAND HIE's lpi: 70% of values are five point masses up to 6.9, the rest spread over 0.1-7.2; the range release
    # (which counts the points too) must not fill the fine bins up to its grid edge, 10, with the points' mass
    rng = np.random.default_rng(4)
    n = 16_000
    points = rng.choice([0.0, 5.704, 6.109, 6.62, 6.908], n, p=[0.3, 0.05, 0.15, 0.1, 0.4])
    values = np.where(rng.random(n) < 0.7, points, rng.uniform(0.1, 7.16, n))
    codec, _ = numeric(ColumnKind.FLOAT, values, sigma=20.0, n_coarse=24, selection_delta=1e-6)
    assert codec.fine_edges[-1] < 7.6  # before: 10.0, and 75-130 of 20,000 synthetic rows between 7.2 and 10
    assert ks_distance(values, round_trip(codec, values)) < 0.05


def test_a_thin_integer_keeps_every_bin_its_rows_fall_in():
    # hours worked: 47% at 40, the rest thin over 1-99; denoised bins of single hours are zero where rows are, and
    # those tokens must stay sampleable (forbidding them took Adult's hours 41-44 away)
    rng = np.random.default_rng(5)
    values = np.where(rng.random(20_000) < 0.47, 40, np.clip(rng.normal(42, 12, 20_000), 1, 99).round())
    codec, _ = numeric(ColumnKind.INTEGER, values, sigma=60.0)
    assert codec.prior is not None and (codec.prior[: codec.n_coarse] == 0).any()  # zero shares where rows are
    assert not [t for t in codec.forbidden_tokens if t < codec.n_coarse]


def test_with_a_unit_rare_stays_possible_where_weighted_counts_seem_to_cover_every_unit():
    # 2,000 units of 4 rows over 4 common labels and (30% of rows) values of their own: each unit's counts have norm
    # 1, so the kept labels' weighted counts come near the units themselves although 30% of rows are RARE
    rng = np.random.default_rng(5)
    units = np.repeat(np.arange(2000), 4)
    common = rng.choice(["a", "b", "c", "d"], units.size)
    values = pd.Series(np.where(rng.random(units.size) < 0.3, [f"own-{i}" for i in range(units.size)], common))
    codec = fit_categorical(
        Column("x", ColumnKind.CATEGORICAL, ""),
        values,
        public_categories=None,
        n_rows=2000,
        sigma=5.0,
        selection_delta=1e-6,
        accountant=PrivacyAccountant(delta=1e-5),
        units=units,
    )
    assert sorted(codec.categories) == ["a", "b", "c", "d"] and not codec.key_like
    assert codec.has_rare and codec.rare_token not in codec.forbidden_tokens


def test_a_point_mass_selection_over_no_values_is_still_a_release():
    # the budget spent (and the DP-SGD noise set from it) must not tell an all-NULL column from one with a value
    accountant = PrivacyAccountant(delta=1e-5)
    points, counts = select_points(Column("x", ColumnKind.INTEGER, ""), np.empty(0), 5.0, 10.0, accountant)
    assert points.size == counts.size == 0 and [r.purpose for r in accountant.releases] == ["points:x"]


def test_with_a_unit_point_masses_leave_the_bins_their_mass():
    # 2,000 aircraft of 60 flights each, 40% of the delays on -5..-1 and the rest spread up to 300: each release scales
    # a unit's counts on its own, so the point masses' weighted counts (about 2.4 a unit) exceed the units; the bins
    # must still get their share of the prior (every delay came out from -6 to 0 while they were subtracted)
    rng = np.random.default_rng(8)
    units = np.repeat(np.arange(2000), 60)
    delays = np.where(rng.random(units.size) < 0.4, rng.integers(-5, 0, units.size), rng.integers(1, 300, units.size))
    codec = fit_numeric(
        Column("x", ColumnKind.INTEGER, ""),
        pd.Series(delays),
        public_min=None,
        public_max=None,
        n_rows=2000,
        n_coarse=24,
        sigma=15.0,
        accountant=PrivacyAccountant(delta=1e-5),
        selection_delta=1e-7,
        units=units,
    )
    assert len(codec.points) >= 3  # the spikes are point masses
    assert codec.prior[: codec.n_coarse].sum() > 0.3  # and the bins keep a real share of the values
    assert codec.forbidden_tokens == [codec.null_token]  # no NULLs, and values off the point masses


def test_the_zoom_keeps_the_tails_of_a_dense_score():
    # A credit score, 580-850 around 700: with little noise the zoom's clear bins spanned 629-760, and the fifth of the
    # rows beyond them were piled at those two ends (KS 0.115); grown over the stretches that clear 4 sigma, the core
    # reaches 597-781 on this draw
    rng = np.random.default_rng(24)
    values = np.clip(np.round(rng.normal(700, 50, 8000)), 580, 850)
    codec, accountant = numeric(ColumnKind.INTEGER, values, sigma=30.0)
    assert "zoom:x" in [r.purpose for r in accountant.releases]
    decoded = round_trip(codec, values)
    assert decoded.min() <= 610 and decoded.max() >= 775
    assert ks_distance(values, decoded) < 0.08


def test_dates_spread_over_years_have_no_holes():
    # Application stamps uniform over three years on a wide table: a core of a month or two clears the threshold,
    # and bins of a quarter of a month beyond it held too few rows to clear the noise (holes and spikes, KS 0.2)
    rng = np.random.default_rng(25)
    seconds = rng.uniform(1.641e9, 1.7356e9, 8000)
    stamps = pd.Series(pd.to_datetime(seconds, unit="s", utc=True))
    codec, _ = wide_table_fit(stamps, ColumnKind.DATETIME, sigma=119.0)
    decoded = codec.decode(codec.encode(stamps), np.random.default_rng(9))
    decoded_seconds = decoded.astype("int64").to_numpy() / 1e9
    assert ks_distance(seconds, decoded_seconds) < 0.08


def test_a_week_of_stamps_keeps_fine_bins_on_the_week():
    # One week inside a 30-day grid bin, on a wide table: the zoom's core holds the mass, the bins stay on the week
    rng = np.random.default_rng(26)
    seconds = rng.uniform(1.7e9, 1.7e9 + 7 * 86400, 8000)
    stamps = pd.Series(pd.to_datetime(seconds, unit="s", utc=True))
    codec, accountant = wide_table_fit(stamps, ColumnKind.DATETIME, sigma=60.0)
    assert "zoom:x" in [r.purpose for r in accountant.releases]
    decoded = codec.decode(codec.encode(stamps), np.random.default_rng(9)).astype("int64").to_numpy() / 1e9
    assert ks_distance(seconds, decoded) < 0.08


def test_dates_from_1970_get_even_bins():
    # seconds since 1970 are no magnitude: stamps of 1970 to 2019 once got bins of hours at one end, years at the other
    rng = np.random.default_rng(27)
    seconds = rng.uniform(3e6, 1.576e9, 8000)
    codec, _ = wide_table_fit(pd.Series(pd.to_datetime(seconds, unit="s", utc=True)), ColumnKind.DATETIME, sigma=15.0)
    widths = np.diff(codec.fine_edges)
    assert widths.max() < 2.5 * np.median(widths)
