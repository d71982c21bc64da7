"""Stage 5: fidelity, utility and privacy scores, and the gates."""

from __future__ import annotations

import logging

from prefect import get_run_logger, task

from synthgate.evaluation.scorecard import Evaluation, evaluate
from synthgate.gates import GateVerdict, evaluate_gates
from synthgate.outcome import RefreshResult
from synthgate.tasks import PRIVATE, withheld


@task(name="score-synthetic", **PRIVATE)
@withheld
def score_synthetic(result: RefreshResult) -> tuple[Evaluation, list[GateVerdict]]:
    """Every metric and every gate's verdict on ``result``'s rows; each verdict is logged whatever it is."""
    spec = result.spec
    assert result.synthesizer is not None and result.synthetic_check is not None
    assert result.train is not None and result.holdout is not None and result.synthetic is not None
    evaluation = evaluate(
        train=result.train,
        holdout=result.holdout,
        synthetic=result.synthetic,
        columns=result.synthesizer.learned,
        target=spec.target_column,
        synthetic_suite_failures=result.synthetic_check.failed,
        keys=spec.key_columns,
        seed=spec.training.seed,
        unit=spec.privacy.unit,
        train_hashes=result.train_hashes,
    )
    verdicts = evaluate_gates(spec.gates, evaluation.scores)
    logger = get_run_logger()
    logger.info("evaluation took %.1f s (%s)", sum(evaluation.seconds.values()), evaluation.seconds)
    failed = [v for v in verdicts if not v.passed]
    # One line for the gates that passed (each one's measure is in the gates artifact and the report), one per failure.
    logger.info(
        "%d of %d gates passed%s",
        len(verdicts) - len(failed),
        len(verdicts),
        f"; failed: {', '.join(v.name for v in failed)}" if failed else "",
    )
    for v in verdicts:
        logger.log(logging.WARNING if not v.passed else logging.DEBUG, v.describe())
    return evaluation, verdicts
