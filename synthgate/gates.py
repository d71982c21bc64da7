"""Gates: each check's threshold, its measured value and its verdict."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from synthgate.errors import GateFailedError
from synthgate.spec import Gates

if TYPE_CHECKING:
    from synthgate.evaluation.relations import Relations


@dataclass(frozen=True)
class Scores:
    """Aggregate scores of one synthetic table (no real values, no per-column detail).

    Built by :func:`synthgate.evaluation.scorecard.evaluate`, but defined here, beside the gates that judge it: it
    is the contract between the two, and its readers (the gates, the catalog, the report, the artifacts) then need
    not import the evaluation's libraries (scikit-learn, SciPy, SDMetrics).
    """

    quality: float
    column_shapes: float
    column_pair_trends: float
    dcr_share: float
    exact_copies_training: float
    exact_copies_holdout: float
    synthetic_suite_passed: bool
    synthetic_suite_failures: tuple[str, ...] = ()
    utility_metric: str | None = None
    tstr: float | None = None  # gradient boosting
    trtr: float | None = None
    tstr_linear: float | None = None
    trtr_linear: float | None = None
    tvd_1way: float = 0.0
    tvd_1way_holdout: float = 0.0  # a same-sized holdout against training: the ceiling
    tvd_2way: float = 0.0
    tvd_2way_holdout: float = 0.0
    tvd_3way: float = 0.0
    tvd_3way_holdout: float = 0.0
    nndr_ratio: float = 1.0
    mia_auc: float = 0.5
    singling_out_risk: float = 0.0
    linkability_risk: float = 0.0
    inference_risk: float = 0.0  # the largest over the attacked columns
    # Lower ends of the attacks' 95% intervals (None: not measured, the point estimate is gated). 300 attacks on a
    # column most guesses get right make the point estimate swing by 0.2 between runs of the same model.
    singling_out_risk_low: float | None = None
    linkability_risk_low: float | None = None
    inference_risk_low: float | None = None
    duplicate_key_share: float | None = None  # None: the spec declares no keys

    @property
    def exact_copy_excess(self) -> float:
        """Share of synthetic rows identical to a training row, less the share chance alone gives (holdout rows)."""
        return self.exact_copies_training - self.exact_copies_holdout

    @property
    def utility_gap(self) -> float | None:
        """The larger drop from TRTR to TSTR over the two models; None when neither pair was measured."""
        gaps = [
            r - s
            for r, s in ((self.trtr, self.tstr), (self.trtr_linear, self.tstr_linear))
            if r is not None and s is not None
        ]
        return max(gaps) if gaps else None

    def as_metrics(self) -> dict[str, float]:
        """The numeric scores and derived excesses and gap as MLflow metrics (name to float)."""
        # A metric that could not be measured (NaN: no column pair to score, say) is left out, never stored as NaN.
        values = {k: v for k, v in asdict(self).items() if isinstance(v, (int, float)) and not _undefined(v)}
        values |= {"exact_copy_excess": self.exact_copy_excess}
        values |= {
            f"tvd_{k}way_excess": getattr(self, f"tvd_{k}way") - getattr(self, f"tvd_{k}way_holdout") for k in (1, 2, 3)
        }
        if self.utility_gap is not None:
            values["utility_gap"] = self.utility_gap
        return {k: float(v) for k, v in values.items() if not _undefined(v)}


def _undefined(value: float | None) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


@dataclass(frozen=True)
class GateVerdict:
    """One gate's outcome: the metric, whether it passed, what was measured and the threshold it was held to."""

    name: str
    passed: bool
    measured: float
    threshold: float
    comparison: str  # ">=" or "<="
    detail: str = ""

    @property
    def measurable(self) -> bool:
        """Whether the metric was measured at all (its value is not NaN)."""
        return not math.isnan(self.measured)

    def describe(self) -> str:
        """One line for people: the gate, passed or FAILED, the measured value against the required bound."""
        state = "passed" if self.passed else "FAILED"
        if not self.measurable:
            return f"{self.name} {state}: not measured, required {self.comparison} {self.threshold:.4f} [{self.detail}]"
        text = f"{self.name} {state}: measured {self.measured:.4f}, required {self.comparison} {self.threshold:.4f}"
        if not self.passed:
            gap = abs(self.measured - self.threshold)
            text += f" (off by {gap:.4f})"
        return text + (f" [{self.detail}]" if self.detail else "")


#: Why a gate's metric can be undefined for a table, which makes the gate not applicable (passed) rather than failed.
NOT_APPLICABLE = {
    "column_pair_trends": "not applicable: no pair of learned columns could be scored (fewer than two learned columns, "
    "or no pair SDMetrics can score)",
}


def _at_least(name: str, measured: float, threshold: float, detail: str = "") -> GateVerdict:
    return _undefined_verdict(name, measured, threshold, ">=") or GateVerdict(
        name, measured >= threshold, measured, threshold, ">=", detail
    )


def _at_most(name: str, measured: float, threshold: float, detail: str = "") -> GateVerdict:
    return _undefined_verdict(name, measured, threshold, "<=") or GateVerdict(
        name, measured <= threshold, measured, threshold, "<=", detail
    )


def _risk_at_most(
    name: str, point: float, low: float | None, threshold: float, *, per_column: bool = False
) -> GateVerdict:
    """An attack risk fails its gate when the lower end of its 95% interval is above the limit: the attack is then
    significantly more successful than allowed, not one sampling swing of a few hundred attacks. ``per_column``: the
    risk of one attack per secret column, each figure the largest over the columns (not always the same column's)."""
    if low is None:
        return _at_most(name, point, threshold)
    detail = f"lower end of the 95% interval; point estimate {point:.4f}"
    if per_column:
        detail = f"highest lower end of the columns' 95% intervals; highest point estimate {point:.4f}"
    return _undefined_verdict(name, low, threshold, "<=") or GateVerdict(
        name, low <= threshold, low, threshold, "<=", detail
    )


def _undefined_verdict(name: str, measured: float, threshold: float, comparison: str) -> GateVerdict | None:
    """A NaN measurement: not applicable (passed) where the metric is undefined for the table's shape, else an
    explicit failure that says the metric could not be measured (never a bare 'measured nan')."""
    if not math.isnan(measured):
        return None
    if name in NOT_APPLICABLE:
        return GateVerdict(name, True, math.nan, threshold, comparison, NOT_APPLICABLE[name])
    return GateVerdict(
        name,
        False,
        math.nan,
        threshold,
        comparison,
        "could not be measured: the metric is undefined (NaN) for this table",
    )


def evaluate_gates(gates: Gates, scores: Scores) -> list[GateVerdict]:
    """One verdict per gated metric, in the report's order: fidelity, utility, privacy, validity."""
    s = scores
    verdicts = [
        _at_least("quality", s.quality, gates.min_quality),
        _at_least("column_shapes", s.column_shapes, gates.min_column_shapes),
        _at_least("column_pair_trends", s.column_pair_trends, gates.min_column_pair_trends),
    ]
    for k in (1, 2, 3):  # TVD above what a same-sized holdout scores: sampling noise is not held against the table
        synth, hold = getattr(s, f"tvd_{k}way"), getattr(s, f"tvd_{k}way_holdout")
        verdicts.append(
            _at_most(
                f"tvd_{k}way_excess",
                synth - hold,
                getattr(gates, f"max_tvd_{k}way_excess"),
                f"synthetic {synth:.4f}, holdout {hold:.4f}",
            )
        )
    if s.tstr is not None:
        floor = gates.min_tstr_auc if s.utility_metric == "roc_auc" else gates.min_tstr_r2
        verdicts.append(_at_least("tstr", s.tstr, floor, f"{s.utility_metric}, gradient boosting; TRTR {s.trtr:.4f}"))
    if s.utility_gap is not None:
        verdicts.append(_at_most("utility_gap", s.utility_gap, gates.max_utility_gap, "TRTR - TSTR, worst model"))
    verdicts += [
        _at_most("dcr_share", s.dcr_share, gates.max_dcr_share),
        _at_least("nndr_ratio", s.nndr_ratio, gates.min_nndr_ratio),
        _at_most(
            "exact_copy_excess",
            s.exact_copy_excess,
            gates.max_exact_copy_excess,
            f"training {s.exact_copies_training:.4f}, holdout {s.exact_copies_holdout:.4f}",
        ),
        _at_most("mia_auc", s.mia_auc, gates.max_mia_auc),
        _risk_at_most("singling_out_risk", s.singling_out_risk, s.singling_out_risk_low, gates.max_singling_out_risk),
        _risk_at_most("linkability_risk", s.linkability_risk, s.linkability_risk_low, gates.max_linkability_risk),
        _risk_at_most(
            "inference_risk", s.inference_risk, s.inference_risk_low, gates.max_inference_risk, per_column=True
        ),
    ]
    if s.duplicate_key_share is not None:
        verdicts.append(_at_most("duplicate_keys", s.duplicate_key_share, gates.max_duplicate_key_share))
    if gates.synthetic_suite:
        passed = s.synthetic_suite_passed
        detail = "failed: " + ", ".join(s.synthetic_suite_failures) if s.synthetic_suite_failures else ""
        verdicts.append(GateVerdict("synthetic_suite", passed, float(passed), 1.0, ">=", detail))
    return verdicts


def relation_verdicts(gates: Gates, relations: Relations) -> list[GateVerdict]:
    """The linked pair's gates: children per parent (TVD above the holdout's) and referential integrity."""
    r = relations
    return [
        _at_most(
            "children_tvd_excess",
            r.children_tvd - r.children_tvd_holdout,
            gates.max_children_tvd_excess,
            f"synthetic {r.children_tvd:.4f}, holdout {r.children_tvd_holdout:.4f}",
        ),
        _at_most(
            "dangling_excess",
            r.dangling_excess,
            gates.max_dangling_excess,
            f"child rows naming no parent: synthetic {r.dangling_share:.4f}, real {r.dangling_share_real:.4f}",
        ),
    ]


def enforce(verdicts: list[GateVerdict]) -> None:
    """Raise :class:`GateFailedError` naming every failed gate; return quietly when all passed."""
    failed = [v for v in verdicts if not v.passed]
    if failed:
        raise GateFailedError("nothing published: " + "; ".join(v.describe() for v in failed), verdicts=verdicts)
