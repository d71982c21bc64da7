"""Stage 3 and 4: train the DP generator, then sample."""

from __future__ import annotations

import pandas as pd
from prefect import get_run_logger, task

from synthgate import tracking
from synthgate.generator import DPSynthesizer, EpochProgress
from synthgate.profiling import ColumnProfile, effective_policies
from synthgate.schema import Column
from synthgate.spec import TableSpec
from synthgate.splitting import source_rows
from synthgate.tasks import PRIVATE, withheld
from synthgate.tasks.artifacts import TrainingProgress


def logged_epoch(epoch: int, epochs: int, lines: int = 10) -> bool:
    """Whether epoch ``epoch`` of ``epochs`` gets a log line: at most about ``lines`` of them, the last always (the
    training artifact follows every epoch)."""
    step = -(-epochs // lines)
    return epoch == epochs or epoch % step == 0


@task(name="train-generator", **PRIVATE)
@withheld
def train_generator(
    spec: TableSpec, train: pd.DataFrame, columns: list[Column], profiles: list[ColumnProfile]
) -> DPSynthesizer:
    """The DP-SGD generator fitted on ``train`` under ``spec.privacy``; each epoch's progress and epsilon go to the
    log, the progress artifact and MLflow (never a loss on the real rows)."""
    logger = get_run_logger()
    synthesizer = DPSynthesizer(columns, effective_policies(profiles), spec.privacy, spec.training, spec.target_column)

    progress = TrainingProgress(spec.name)

    def report(p: EpochProgress) -> None:
        progress.update(p.epoch, p.epochs, p.epsilon)
        # No loss on the real rows is logged: it is not a DP release. Only progress and the DP epsilon.
        if logged_epoch(p.epoch, p.epochs):
            logger.info("epoch %d/%d: epsilon spent %.3f (%.1f s)", p.epoch, p.epochs, p.epsilon, p.seconds)
        tracking.log_metrics({"epsilon_this_run": p.epsilon}, step=p.epoch)

    summary = synthesizer.fit(train, progress=report)
    logger.info(
        "trained under epsilon %.4f (%s accounting), delta %.2g; noise multiplier %.3f; %s DP-SGD engine; %.1f s "
        "on %d CPU threads at the start (SYNTHGATE_THREADS fixes it)",
        summary.epsilon,
        summary.accounting,
        summary.delta,
        summary.plan.noise_multiplier,
        summary.engine,
        summary.train_seconds,
        summary.cpu_threads,
    )
    return synthesizer


@task(name="sample-rows", **PRIVATE)
@withheld
def sample_rows(spec: TableSpec, synthesizer: DPSynthesizer, seed: int | None = None) -> pd.DataFrame:
    """``spec.rows`` rows (default: the DP estimate of the source's rows), sampled with ``seed`` (default
    ``training.seed``): a re-sampled model passes its own, so an unchanged snapshot gets new rows."""
    noisy = synthesizer.summary.noisy_rows if synthesizer.summary else 1
    rows = spec.rows or source_rows(noisy, spec.holdout.fraction)
    synthetic = synthesizer.sample(rows, seed=seed)
    get_run_logger().info("sampled %d synthetic rows", len(synthetic))
    return synthetic
