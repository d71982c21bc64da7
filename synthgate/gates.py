"""Gates: each check's threshold, its measured value and its verdict."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from synthgate.errors import GateFailedError
from synthgate.spec import Gates


@dataclass(frozen=True)
class Scores:
    """Aggregate scores of one synthetic table (no real values)."""

    quality: float
    column_shapes: float
    column_pair_trends: float
    dcr_share: float
    exact_copies_training: float
    exact_copies_holdout: float
    synthetic_suite_passed: bool
    synthetic_suite_failures: tuple[str, ...] = ()
    utility_metric: str | None = None
    tstr: float | None = None
    trtr: float | None = None

    def as_metrics(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items() if isinstance(v, (int, float)) and v is not None}


@dataclass(frozen=True)
class GateVerdict:
    name: str
    passed: bool
    measured: float
    threshold: float
    comparison: str  # ">=" or "<="
    detail: str = ""

    def describe(self) -> str:
        state = "passed" if self.passed else "FAILED"
        text = f"{self.name} {state}: measured {self.measured:.4f}, required {self.comparison} {self.threshold:.4f}"
        if not self.passed:
            gap = abs(self.measured - self.threshold)
            text += f" (off by {gap:.4f})"
        return text + (f" [{self.detail}]" if self.detail else "")


def evaluate_gates(gates: Gates, scores: Scores) -> list[GateVerdict]:
    verdicts = [
        GateVerdict("quality", scores.quality >= gates.min_quality, scores.quality, gates.min_quality, ">="),
        GateVerdict("dcr_share", scores.dcr_share <= gates.max_dcr_share, scores.dcr_share, gates.max_dcr_share, "<="),
    ]
    if scores.tstr is not None:
        verdicts.append(GateVerdict("tstr", scores.tstr >= gates.min_tstr_auc, scores.tstr, gates.min_tstr_auc, ">="))
    if gates.synthetic_suite:
        passed = scores.synthetic_suite_passed
        detail = "failed: " + ", ".join(scores.synthetic_suite_failures) if scores.synthetic_suite_failures else ""
        verdicts.append(GateVerdict("synthetic_suite", passed, float(passed), 1.0, ">=", detail))
    return verdicts


def enforce(verdicts: list[GateVerdict]) -> None:
    failed = [v for v in verdicts if not v.passed]
    if failed:
        raise GateFailedError(
            "nothing published: " + "; ".join(v.describe() for v in failed), verdicts=verdicts
        )
