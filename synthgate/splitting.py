"""Holdout rows: never trained on, used only to evaluate the synthetic table."""

from __future__ import annotations

import numpy as np
import pandas as pd

from synthgate.errors import DataValidationError
from synthgate.schema import Column


def split_holdout(frame: pd.DataFrame, fraction: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A seeded random split into (train, holdout)."""
    order = np.random.default_rng(seed).permutation(len(frame))
    cut = int(round(len(frame) * fraction))
    holdout, train = frame.iloc[order[:cut]], frame.iloc[order[cut:]]
    return train.reset_index(drop=True), holdout.reset_index(drop=True)


def check_holdout_columns(source: list[Column], holdout: list[Column]) -> None:
    want = {c.name: c.kind for c in source}
    have = {c.name: c.kind for c in holdout}
    if want != have:
        missing = sorted(set(want) - set(have))
        extra = sorted(set(have) - set(want))
        retyped = sorted(n for n in set(want) & set(have) if want[n] != have[n])
        raise DataValidationError(
            f"the holdout table's columns differ from the source: missing {missing}, extra {extra}, retyped {retyped}"
        )
