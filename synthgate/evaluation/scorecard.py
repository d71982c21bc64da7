"""All checks of one synthetic table in one call: fidelity, utility, privacy and the synthetic suite."""

from __future__ import annotations

import pandas as pd

from synthgate.evaluation.fidelity import Fidelity, quality
from synthgate.evaluation.privacy import dcr
from synthgate.evaluation.utility import tstr
from synthgate.gates import Scores
from synthgate.schema import Column


def score(
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    synthetic: pd.DataFrame,
    columns: list[Column],
    target: str | None,
    synthetic_suite_failures: list[str],
    seed: int = 0,
) -> tuple[Scores, Fidelity]:
    """Scores over the learned ``columns`` (faked and dropped columns carry no real signal)."""
    fidelity = quality(train, synthetic, columns, seed=seed)
    distance = dcr(train, holdout, synthetic, columns, seed=seed)
    utility = tstr(train, synthetic, holdout, columns, target, seed=seed) if target else None
    scores = Scores(
        quality=fidelity.quality,
        column_shapes=fidelity.column_shapes,
        column_pair_trends=fidelity.column_pair_trends,
        dcr_share=distance.share_closer_to_training,
        exact_copies_training=distance.exact_copies_training,
        exact_copies_holdout=distance.exact_copies_holdout,
        synthetic_suite_passed=not synthetic_suite_failures,
        synthetic_suite_failures=tuple(synthetic_suite_failures),
        utility_metric=utility.metric if utility else None,
        tstr=utility.tstr if utility else None,
        trtr=utility.trtr if utility else None,
    )
    return scores, fidelity
