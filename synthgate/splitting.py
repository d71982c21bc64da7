"""Holdout rows: never trained on, used only to evaluate the synthetic table."""

from __future__ import annotations

import numpy as np
import pandas as pd

from synthgate.errors import DataValidationError
from synthgate.schema import Column


def split_holdout(frame: pd.DataFrame, row_hashes: np.ndarray, fraction: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, holdout): a row is held out when its keyed content hash falls below ``fraction`` of the hash range.

    The decision depends on that row alone, so adding or removing one source row changes the training set by
    at most that row: neighbouring sources give neighbouring training sets, as DP-SGD's accounting assumes
    (a permutation of positions would move many rows at once). The hash is keyed with the secret
    fingerprint key, so nobody without it can tell which rows trained; the same rows stay out on every
    refresh of an unchanged table.
    """
    held = row_hashes < np.uint64(min(int(fraction * 2.0**64), 2**64 - 1))
    return frame[~held].reset_index(drop=True), frame[held].reset_index(drop=True)


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


def source_rows(noisy_training_rows: int, holdout_fraction: float | None) -> int:
    """The DP estimate of the source's rows, the default size of a synthetic table: the training rows' DP count,
    scaled back by the (public) share split off as holdout (post-processing; each row is held out with that
    probability). A separate holdout table leaves the whole source for training."""
    return max(1, round(noisy_training_rows / (1.0 - (holdout_fraction or 0.0))))
