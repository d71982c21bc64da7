"""Every gated metric: its verdict flips at its threshold, and the message names gate, threshold and value."""

import pytest

from synthgate.errors import GateFailedError
from synthgate.gates import Scores, enforce, evaluate_gates
from synthgate.spec import Gates


def scores(**overrides) -> Scores:
    base = {
        "quality": 0.9,
        "column_shapes": 0.95,
        "column_pair_trends": 0.85,
        "dcr_share": 0.5,
        "exact_copies_training": 0.01,
        "exact_copies_holdout": 0.01,
        "synthetic_suite_passed": True,
        "utility_metric": "roc_auc",
        "tstr": 0.85,
        "trtr": 0.9,
        "tstr_linear": 0.8,
        "trtr_linear": 0.82,
        "tvd_1way": 0.05,
        "tvd_1way_holdout": 0.02,
        "tvd_2way": 0.1,
        "tvd_2way_holdout": 0.05,
        "tvd_3way": 0.2,
        "tvd_3way_holdout": 0.1,
        "nndr_ratio": 1.0,
        "mia_auc": 0.51,
        "singling_out_risk": 0.0,
        "linkability_risk": 0.01,
        "inference_risk": 0.02,
        "duplicate_key_share": 0.0,
    }
    return Scores(**(base | overrides))


def test_defaults_pass_a_good_table_and_cover_every_metric():
    verdicts = evaluate_gates(Gates(), scores())
    assert all(v.passed for v in verdicts), [v.describe() for v in verdicts if not v.passed]
    assert [v.name for v in verdicts] == [
        "quality",
        "column_shapes",
        "column_pair_trends",
        "tvd_1way_excess",
        "tvd_2way_excess",
        "tvd_3way_excess",
        "tstr",
        "utility_gap",
        "dcr_share",
        "nndr_ratio",
        "exact_copy_excess",
        "mia_auc",
        "singling_out_risk",
        "linkability_risk",
        "inference_risk",
        "duplicate_keys",
        "synthetic_suite",
    ]


@pytest.mark.parametrize(
    ("overrides", "gate", "message"),
    [
        ({"quality": 0.7}, "quality", r"quality FAILED: measured 0\.7000, required >= 0\.7500 \(off by 0\.0500\)"),
        ({"tvd_2way": 0.3}, "tvd_2way_excess", r"tvd_2way_excess FAILED: measured 0\.2500, required <= 0\.1500"),
        ({"tstr": 0.6, "trtr": 0.7}, "tstr", r"tstr FAILED: measured 0\.6000, required >= 0\.6500"),
        ({"tstr_linear": 0.5}, "utility_gap", r"utility_gap FAILED: measured 0\.3200, required <= 0\.2500"),
        ({"nndr_ratio": 0.5}, "nndr_ratio", r"nndr_ratio FAILED: measured 0\.5000, required >= 0\.8000"),
        ({"exact_copies_training": 0.2}, "exact_copy_excess", r"exact_copy_excess FAILED: measured 0\.1900"),
        ({"mia_auc": 0.8}, "mia_auc", r"mia_auc FAILED: measured 0\.8000, required <= 0\.6000"),
        ({"singling_out_risk": 0.3}, "singling_out_risk", r"singling_out_risk FAILED: measured 0\.3000"),
        ({"linkability_risk": 0.3}, "linkability_risk", r"linkability_risk FAILED"),
        ({"inference_risk": 0.5}, "inference_risk", r"inference_risk FAILED: measured 0\.5000, required <= 0\.2000"),
        (
            {"duplicate_key_share": 0.01},
            "duplicate_keys",
            r"duplicate_keys FAILED: measured 0\.0100, required <= 0\.0000",
        ),
    ],
)
def test_each_gate_fails_alone_and_is_named(overrides, gate, message):
    verdicts = evaluate_gates(Gates(), scores(**overrides))
    assert [v.name for v in verdicts if not v.passed] == [gate]
    with pytest.raises(GateFailedError, match=message):
        enforce(verdicts)


def test_a_numeric_target_is_gated_on_r2():
    verdicts = evaluate_gates(
        Gates(min_tstr_r2=0.5), scores(utility_metric="r2", tstr=0.4, trtr=0.45, tstr_linear=0.3, trtr_linear=0.3)
    )
    assert [v.name for v in verdicts if not v.passed] == ["tstr"]


def test_no_keys_and_no_target_mean_no_such_gates():
    names = {
        v.name
        for v in evaluate_gates(
            Gates(), scores(duplicate_key_share=None, tstr=None, trtr=None, tstr_linear=None, trtr_linear=None)
        )
    }
    assert not names & {"duplicate_keys", "tstr", "utility_gap"}


def test_suite_failures_are_named_in_the_gate():
    verdicts = evaluate_gates(
        Gates(), scores(synthetic_suite_passed=False, synthetic_suite_failures=("expect_x(age)",))
    )
    with pytest.raises(GateFailedError, match=r"expect_x\(age\)"):
        enforce(verdicts)


def test_an_attack_risk_is_gated_on_the_lower_end_of_its_interval():
    # a point estimate of 0.3 whose interval reaches down to 0.05: one swing of a few hundred attacks, not a risk
    swing = evaluate_gates(Gates(), scores(inference_risk=0.3, inference_risk_low=0.05))
    verdict = next(v for v in swing if v.name == "inference_risk")
    assert verdict.passed and "point estimate 0.3000" in verdict.detail
    significant = evaluate_gates(Gates(), scores(inference_risk=0.5, inference_risk_low=0.35))
    assert not next(v for v in significant if v.name == "inference_risk").passed
