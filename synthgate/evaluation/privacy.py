"""Privacy: distance to closest record (DCR) against training and a holdout never trained on."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.neighbors import NearestNeighbors

from synthgate.evaluation.features import FeatureSpace
from synthgate.schema import Column


@dataclass(frozen=True)
class DistanceToClosestRecord:
    share_closer_to_training: float  # ideal 0.5: synthetic rows are no closer to training than to unseen rows
    exact_copies_training: float  # share of synthetic rows identical to some training row
    exact_copies_holdout: float  # the same against the holdout: what chance alone gives
    median_dcr_training: float
    median_dcr_holdout: float


def dcr(train: pd.DataFrame, holdout: pd.DataFrame, synthetic: pd.DataFrame, columns: list[Column], max_rows: int = 10_000, seed: int = 0) -> DistanceToClosestRecord:
    """DCR share on equal-sized training and holdout samples (ties split evenly)."""
    rng = np.random.default_rng(seed)
    size = min(len(train), len(holdout), max_rows)
    train = train.iloc[rng.choice(len(train), size, replace=False)]
    holdout = holdout.iloc[rng.choice(len(holdout), size, replace=False)]
    synthetic = synthetic.iloc[rng.choice(len(synthetic), min(len(synthetic), max_rows), replace=False)]
    space = FeatureSpace(pd.concat([train, holdout]), columns)
    x_train, x_holdout, x_synth = (space.transform(f) for f in (train, holdout, synthetic))
    d_train = NearestNeighbors(n_neighbors=1).fit(x_train).kneighbors(x_synth)[0][:, 0]
    d_holdout = NearestNeighbors(n_neighbors=1).fit(x_holdout).kneighbors(x_synth)[0][:, 0]
    closer = np.mean(d_train < d_holdout) + 0.5 * np.mean(d_train == d_holdout)
    return DistanceToClosestRecord(
        share_closer_to_training=float(closer),
        exact_copies_training=float(np.mean(d_train < 1e-9)),
        exact_copies_holdout=float(np.mean(d_holdout < 1e-9)),
        median_dcr_training=float(np.median(d_train)),
        median_dcr_holdout=float(np.median(d_holdout)),
    )
