"""Holdout rows: never trained on, used only to evaluate the synthetic table."""

from __future__ import annotations

import numpy as np
import pandas as pd

from synthgate.errors import DataValidationError
from synthgate.hashing import keyed, value_hashes
from synthgate.schema import Column


def split_holdout(
    frame: pd.DataFrame,
    row_hashes: np.ndarray,
    fraction: float,
    *,
    unit: str | None = None,
    hash_key: str,
    consume: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, holdout): the rows :func:`holdout_mask` holds out, and the rest (see :func:`divided` for
    ``consume``)."""
    return divided(frame, holdout_mask(frame, row_hashes, fraction, unit=unit, hash_key=hash_key), consume=consume)


def holdout_mask(
    frame: pd.DataFrame, row_hashes: np.ndarray, fraction: float, *, unit: str | None = None, hash_key: str
) -> np.ndarray:
    """Which rows are held out: those whose keyed content hash falls below ``fraction`` of the hash range.

    With a privacy ``unit`` (a column identifying a person) a unit is held out whole: its rows take the hash of the
    unit's value keyed with ``hash_key``, so no person is on both sides (a row whose unit is NULL is a unit of its
    own, and keeps its own hash).

    The decision depends on that row alone, so adding or removing one source row changes the training set by
    at most that row: neighbouring sources give neighbouring training sets, as DP-SGD's accounting assumes
    (a permutation of positions would move many rows at once). ``row_hashes`` are hashed again under ``hash_key``
    (from the secret fingerprint key; :func:`~synthgate.hashing.keyed`: pandas keys text alone), so nobody without
    it can tell which rows trained, even of a table of numbers only; the same rows stay out on every refresh of an
    unchanged table.
    """
    hashes = _copy_hashes(keyed(row_hashes, hash_key))
    if unit is not None:
        values = frame[unit]
        by_unit = value_hashes(values, hash_key)  # a key's hash is its own, whatever dtype the column got
        hashes = np.where(values.isna().to_numpy(), hashes, by_unit)
    return hashes < np.uint64(min(int(fraction * 2.0**64), 2**64 - 1))


def linked_holdout_mask(
    parents: pd.DataFrame,
    parent_held: np.ndarray,
    children: pd.DataFrame,
    child_hashes: np.ndarray,
    fraction: float,
    *,
    key: str,
    foreign_key: str,
    hash_key: str,
) -> np.ndarray:
    """Which child rows are held out: those of a held-out parent (``parent_held``, :func:`holdout_mask` with the
    parent's key as the unit), so a parent goes with all its children; a child whose key no parent has, or whose key
    is NULL, is a unit of its own and goes by its key's (or its own) keyed hash."""
    by_hash = holdout_mask(children, child_hashes, fraction, unit=foreign_key, hash_key=hash_key)
    keys = children[foreign_key]
    linked = keys.isin(parents[key].dropna()).to_numpy()
    return np.where(linked, keys.isin(parents[key][parent_held].dropna()).to_numpy(), by_hash)


def divided(frame: pd.DataFrame, held: np.ndarray, *, consume: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rows not ``held``, rows ``held``), each numbered from 0.

    ``consume``: take each column out of ``frame`` as it is divided, so that a table and its two parts are never held
    side by side (a 10M-row source is gigabytes; the frame's columns must not share one block, as an extract's do
    not); ``frame`` is left with its columns and no rows.
    """
    if not consume:
        return frame[~held].reset_index(drop=True), frame[held].reset_index(drop=True)
    parts: tuple[dict[str, pd.Series], dict[str, pd.Series]] = ({}, {})
    for name in list(frame.columns):
        column = frame.pop(name)
        for part, rows in zip(parts, (~held, held), strict=True):
            part[name] = column[rows]
            part[name].index = pd.RangeIndex(len(part[name]))  # renumbered in place: reset_index would copy
        del column
    frame.drop(index=frame.index, inplace=True)
    for name, column in parts[1].items():
        frame[name] = column.iloc[:0]
    return pd.DataFrame(parts[0], copy=False), pd.DataFrame(parts[1], copy=False)


def _copy_hashes(row_hashes: np.ndarray) -> np.ndarray:
    """Each copy of a repeated row gets a hash of its own: the first keeps the row's hash, the k-th the row's hash
    mixed with k (splitmix64; the row's hash is keyed, so the mix is as unpredictable).

    Identical rows (71% of a survey table's rows repeat another) would otherwise all fall on one side, so a common
    row would be wholly training or wholly holdout, and every synthetic copy of it would look like a copy of a
    training row. Which copy counts as the k-th does not matter, they are the same values; removing one copy still
    removes one hash (the last), so the training sets of neighbouring sources still differ by at most one row.
    """
    order = np.argsort(row_hashes, kind="stable")
    ranked = row_hashes[order]
    first = np.r_[True, ranked[1:] != ranked[:-1]] if ranked.size else np.zeros(0, dtype=bool)
    positions = np.arange(ranked.size)
    copy = np.empty(ranked.size, dtype=np.uint64)
    copy[order] = (positions - np.maximum.accumulate(np.where(first, positions, 0))).astype(np.uint64)
    with np.errstate(over="ignore"):
        mixed = row_hashes + copy * np.uint64(0x9E3779B97F4A7C15)
        mixed = (mixed ^ (mixed >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        mixed = (mixed ^ (mixed >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        mixed = mixed ^ (mixed >> np.uint64(31))
    return np.where(copy == 0, row_hashes, mixed)


def check_holdout_columns(source: list[Column], holdout: list[Column]) -> None:
    """Refuse a holdout table whose columns or kinds differ from the source's, naming the differences."""
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
