import inspect
import math
import pickle
import secrets

import numpy as np
import pytest
from scipy.optimize import brentq
from scipy.stats import norm

from synthgate.errors import PrivacyBudgetError
from synthgate.generator.accounting import (
    PrivacyAccountant,
    Release,
    _history,
    compose_epsilon,
    preprocessing_noise,
    sgd_noise_for_budget,
    zcdp_epsilon,
    zcdp_rho,
)
from synthgate.generator.noise import SecureNoise


def analytic_gaussian_epsilon(sigma: float, delta: float) -> float:
    """Exact epsilon of the Gaussian mechanism with sensitivity 1 (Balle and Wang 2018)."""

    def gap(eps: float) -> float:
        return norm.cdf(0.5 / sigma - eps * sigma) - math.exp(eps) * norm.cdf(-0.5 / sigma - eps * sigma) - delta

    return brentq(gap, 1e-9, 100)


@pytest.mark.parametrize("sigma", [1.0, 5.0, 20.0])
def test_single_gaussian_matches_the_exact_curve(sigma):
    eps, method = compose_epsilon([Release("g", sigma)], 1e-5)
    exact = analytic_gaussian_epsilon(sigma, 1e-5)
    assert method == "prv"
    assert exact <= eps <= exact * 1.03 + 0.01  # PRV reports an upper bound


def test_k_gaussians_compose_like_one_with_sigma_over_root_k():
    # Composing k Gaussian releases with noise sigma is exactly one Gaussian with sigma / sqrt(k).
    k, sigma = 16, 20.0
    eps, _ = compose_epsilon([Release(f"g{i}", sigma) for i in range(k)], 1e-5)
    exact = analytic_gaussian_epsilon(sigma / math.sqrt(k), 1e-5)
    assert exact <= eps <= exact * 1.03 + 0.01


def test_full_releases_of_unequal_noise_and_steps_compose_like_one_and_subsampled_ones_stay_apart():
    # Full releases merge into one Gaussian of precision sum(steps / sigma^2): exact, and one mechanism for PRV
    full = [Release("a", 10.0), Release("b", 20.0, steps=3), Release("c", 30.0, 1.0, 5)]
    eps, _ = compose_epsilon(full, 1e-5)
    exact = analytic_gaussian_epsilon((1 / 100 + 3 / 400 + 5 / 900) ** -0.5, 1e-5)
    assert exact <= eps <= exact * 1.03 + 0.01
    history = _history([*full, Release("dp-sgd", 10.0, 0.01, 100)])  # the same noise, subsampled: its own mechanism
    assert history[0] == pytest.approx(((1 / 100 + 3 / 400 + 5 / 900) ** -0.5, 1.0, 1))
    assert history[1:] == [(10.0, 0.01, 100)]


def test_composition_of_preprocessing_and_sgd_exceeds_each_part():
    pre = [Release("count", 50.0), Release("bins", 50.0)]
    sgd = [Release("dp-sgd", 1.2, 0.01, 2000)]
    both, _ = compose_epsilon(pre + sgd, 1e-5)
    assert both > compose_epsilon(sgd, 1e-5)[0] > compose_epsilon(pre, 1e-5)[0] > 0


def test_rdp_fallback_is_an_upper_bound_of_prv():
    history = [Release("dp-sgd", 1.0, 0.02, 500)]
    prv, _ = compose_epsilon(history, 1e-5)
    from opacus.accountants import RDPAccountant

    rdp = RDPAccountant()
    rdp.history = [(1.0, 0.02, 500)]
    assert prv <= rdp.get_epsilon(1e-5) + 1e-6


def test_zcdp_rho_inverts_the_conversion():
    rho = zcdp_rho(1.0, 1e-5)
    assert rho + 2 * math.sqrt(rho * math.log(1e5)) == pytest.approx(1.0)
    assert zcdp_epsilon(rho, 1e-5) == pytest.approx(1.0)


def test_preprocessing_share_of_rho():
    sigma = preprocessing_noise(zcdp_rho(1.0, 1e-5), weight=10, share=0.1)
    assert 10 / (2 * sigma**2) == pytest.approx(0.1 * zcdp_rho(1.0, 1e-5))


def test_sgd_noise_fits_the_remaining_budget():
    accountant = PrivacyAccountant(delta=1e-5)
    accountant.gaussian("count", np.array([100.0]), 40.0)
    sigma = sgd_noise_for_budget(accountant, 1.0, sample_rate=0.05, steps=400)
    total, _ = accountant.epsilon([Release("dp-sgd", sigma, 0.05, 400)])
    assert 0.95 <= total <= 1.0
    looser, _ = accountant.epsilon([Release("dp-sgd", sigma * 0.9, 0.05, 400)])
    assert looser > 1.0


def test_impossible_budget_is_refused():
    accountant = PrivacyAccountant(delta=1e-5)
    with pytest.raises(PrivacyBudgetError, match="too small"):
        sgd_noise_for_budget(accountant, 1e-6, sample_rate=0.5, steps=100000)


def test_selection_delta_is_kept_out_of_the_composed_delta():
    accountant = PrivacyAccountant(delta=1e-5, delta_selection=2.5e-6)
    assert accountant.delta_composed == pytest.approx(7.5e-6)


def test_each_accountant_draws_fresh_os_entropy_and_releases_integers(monkeypatch):
    bits = []
    real = secrets.randbits
    monkeypatch.setattr(secrets, "randbits", lambda k: bits.append(k) or real(k))
    a, b = PrivacyAccountant(delta=1e-5), PrivacyAccountant(delta=1e-5)
    assert bits == [128, 128]  # one 128-bit OS seed per accountant (per fit)
    counts = np.arange(20_000, dtype=float)
    x, y = a.gaussian("h", counts, 10.0), b.gaussian("h", counts, 10.0)
    assert not np.array_equal(x, y)
    assert np.array_equal(x, np.rint(x))  # rounded where released (floating-point hazard)
    assert abs(float(np.std(x - counts)) - 10.0) < 0.3
    assert [r.purpose for r in a.releases] == ["h"]


def test_the_release_api_takes_no_seed_and_the_noise_state_never_leaves():
    parameters = list(inspect.signature(PrivacyAccountant.gaussian).parameters)
    assert parameters == ["self", "purpose", "counts", "noise_multiplier", "sensitivity"]
    assert "noise" not in inspect.signature(PrivacyAccountant).parameters  # not injectable
    accountant = PrivacyAccountant(delta=1e-5)
    assert "noise" not in repr(accountant)
    with pytest.raises(TypeError):
        pickle.dumps(accountant)
    with pytest.raises(TypeError):
        pickle.dumps(SecureNoise())
