"""Stage 5: the synthetic GX suite, fidelity, utility and privacy scores, and the gates."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd
from prefect import get_run_logger, task

from synthgate.evaluation.scorecard import Evaluation, evaluate
from synthgate.gates import GateVerdict, evaluate_gates
from synthgate.generator import DPSynthesizer
from synthgate.profiling import ColumnProfile
from synthgate.schema import Column
from synthgate.spec import TableSpec
from synthgate.validation import ValidationOutcome, build_synthetic_suite, suite_path, validate
from tasks import PRIVATE


@task(name="validate-synthetic", **PRIVATE)
def check_synthetic_suite(
    spec: TableSpec, synthetic: pd.DataFrame, columns: list[Column], profiles: list[ColumnProfile], expectations_dir: Path
) -> ValidationOutcome:
    suite = build_synthetic_suite(spec, columns, {p.name: p.proposed for p in profiles}, rows=len(synthetic))
    path = suite_path(expectations_dir, spec, "synthetic")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(suite, indent=2) + "\n")
    outcome = validate(synthetic, suite)
    get_run_logger().info("synthetic suite: %s (%d expectations)", "passed" if outcome.success else f"failed {outcome.failed}", outcome.evaluated)
    return outcome


@task(name="score-synthetic", **PRIVATE)
def score_synthetic(
    spec: TableSpec,
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    synthetic: pd.DataFrame,
    synthesizer: DPSynthesizer,
    suite_failures: list[str],
) -> tuple[Evaluation, list[GateVerdict]]:
    """Every metric and every gate's verdict; each verdict is logged whatever it is."""
    evaluation = evaluate(
        train, holdout, synthetic, synthesizer.learned, spec.target_column, suite_failures,
        keys=spec.key_columns, seed=spec.training.seed,
    )
    verdicts = evaluate_gates(spec.gates, evaluation.scores)
    logger = get_run_logger()
    logger.info("evaluation took %.1f s (%s)", sum(evaluation.seconds.values()), evaluation.seconds)
    failed = [v for v in verdicts if not v.passed]
    # One line for the gates that passed (each one's measure is in the gates artifact and the report), one per failure.
    logger.info("%d of %d gates passed%s", len(verdicts) - len(failed), len(verdicts),
                f"; failed: {', '.join(v.name for v in failed)}" if failed else "")
    for v in verdicts:
        logger.log(logging.WARNING if not v.passed else logging.DEBUG, v.describe())
    return evaluation, verdicts
