import numpy as np
import pytest

from synthgate.evaluation.attacks import anonymeter_risks, risk_from_counts, success_rate


def test_wilson_rate_and_residual_risk_have_known_values():
    rate = success_rate(100, 50)
    assert rate.value == pytest.approx(0.5) and rate.error == pytest.approx(
        0.0962, abs=1e-3
    )  # 1.96 / 103.84 * sqrt(25 + 0.96)
    risk = risk_from_counts("x", 1000, 600, 200, 10)
    assert risk.risk == pytest.approx((0.6 - 0.2) / 0.8, abs=0.01)
    assert risk.ci_low < risk.risk < risk.ci_high
    assert risk_from_counts("x", 1000, 100, 300, 10).risk == 0.0  # control more attackable: no excess risk


@pytest.mark.parametrize("rate", [0.5, 0.93, 0.97, 0.99])
def test_equal_rates_rarely_look_like_a_risk_even_when_the_control_almost_always_succeeds(rate):
    # Propagating the two rates' errors put the lower bound above 0.2 in 2.8% of such draws at rate 0.99 (a secret
    # that is 0 for 99% of rows): a table refused on no evidence; the failure ratio's interval stays calibrated.
    rng = np.random.default_rng(7)
    attack, control = rng.binomial(300, rate, size=(2, 2000))
    lows = np.array(
        [risk_from_counts("x", 300, int(a), int(c), 0).ci_low for a, c in zip(attack, control, strict=True)]
    )
    assert (lows > 0.2).mean() < 0.01
    assert (lows > 0).mean() < 0.04  # about the 2.5% a one-sided 95% bound allows


def test_copied_rows_are_singled_out_linked_and_inferred(thirds, columns):
    train, holdout, _ = thirds
    risks = anonymeter_risks(
        train=train, holdout=holdout, synthetic=train, columns=columns, target="churned", attacks=200
    )
    assert risks.linkability.risk > 0.5 and risks.linkability.ci_low > 0.3
    assert risks.linkability.control_rate < 0.05
    assert risks.singling_out.risk > 0.3 and risks.singling_out.attacks > 50
    assert risks.inference["churned"].risk > 0.5
    assert risks.worst_inference.risk > 0.5


def test_an_independent_sample_carries_no_excess_risk(thirds, columns):
    train, holdout, fresh = thirds
    risks = anonymeter_risks(
        train=train, holdout=holdout, synthetic=fresh, columns=columns, target="churned", attacks=200
    )
    for risk in [risks.singling_out, risks.linkability, *risks.inference.values()]:
        assert risk.ci_low < 0.1, risk
        assert risk.risk < 0.2, risk
    assert set(risks.inference) >= {"churned"}


def test_attacks_are_repeatable_with_a_seed(thirds, columns):
    train, holdout, fresh = thirds
    a = anonymeter_risks(
        train=train, holdout=holdout, synthetic=fresh, columns=columns, target=None, attacks=100, seed=4
    )
    b = anonymeter_risks(
        train=train, holdout=holdout, synthetic=fresh, columns=columns, target=None, attacks=100, seed=4
    )
    assert a == b
    assert np.isfinite([a.singling_out.ci_high, a.linkability.ci_high]).all()
