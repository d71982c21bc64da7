"""Privacy: distances from synthetic rows to training and to a holdout never trained on.

- DCR share: how often a synthetic row is closer to training than to an equal-sized holdout (ideal 0.5).
- NNDR: nearest over second-nearest neighbour distance of each synthetic row; a row sitting on one real
  record and far from the rest has a low ratio. Compared between training and holdout (ideal ratio 1).
- Exact copies: the share of synthetic rows equal to some training row (over all of both), beside the share
  of holdout rows equal to some training row: real records never trained on duplicate training records that
  often by chance alone.
- Membership inference: an attacker scores a real record by its distance to the closest synthetic row and
  guesses "trained on" when it is small; the ROC AUC of that guess over training vs holdout records
  (0.5: no better than a coin).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from sklearn.neighbors import NearestNeighbors

from synthgate.columns import to_numeric
from synthgate.evaluation.features import FeatureSpace, single_threaded
from synthgate.evaluation.nearest import nearest_distances
from synthgate.hashing import as_text
from synthgate.schema import Column

_NULL_HASH = np.uint64(0x9E3779B97F4A7C15)  # a NULL text value's hash, apart from every text's
#: Decimals kept of a score whose denominator is a count of real rows: at full precision a share k / n gives back k
#: and n exactly (a continued fraction of 0.005672609400324149 is 7 / 1234: 7 of 1,234 holdout rows).
COARSE_DECIMALS = 3
_LOOKUP_ROWS = 1_000_000  # rows whose hashes are looked up among the training rows' at once (exact_copy_shares)


@dataclass(frozen=True)
class DistanceToClosestRecord:
    """Distance-based privacy metrics of the synthetic rows, each beside what an unseen holdout gives."""

    share_closer_to_training: float  # ideal 0.5: synthetic rows are no closer to training than to unseen rows
    exact_copies_training: float  # share of synthetic rows identical to some training row
    exact_copies_holdout: float  # share of holdout rows identical to some training row: what chance alone gives
    median_dcr_training: float
    median_dcr_holdout: float
    nndr_training: float  # mean nearest / second-nearest distance ratio against training
    nndr_holdout: float  # the same against the holdout
    mia_auc: float  # distance-based membership inference ROC AUC (ideal 0.5)

    @property
    def nndr_ratio(self) -> float:
        """NNDR against training over NNDR against the holdout: below 1 when rows hug training records."""
        return self.nndr_training / self.nndr_holdout if self.nndr_holdout > 0 else 1.0

    @property
    def exact_copy_excess(self) -> float:
        """Share of exact copies of training rows beyond what the holdout shows by chance."""
        return self.exact_copies_training - self.exact_copies_holdout


def _nndr(distances: np.ndarray) -> np.ndarray:
    nearest, second = distances[:, 0], distances[:, 1]
    return np.where(second > 0, nearest / np.where(second > 0, second, 1.0), 1.0)


@single_threaded
def dcr(
    *,
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    synthetic: pd.DataFrame,
    columns: list[Column],
    max_rows: int = 10_000,
    max_synthetic: int = 5_000,
    mia_records: int = 2_000,
    seed: int = 0,
    unit: str | None = None,
    train_hashes: np.ndarray | None = None,
) -> DistanceToClosestRecord:
    """All distance metrics on equal-sized training and holdout samples (ties split evenly).

    With a privacy ``unit`` the membership attack targets units (persons), not rows: a unit's score is its row closest
    to the synthetic table, over the training units against as many holdout units (the holdout takes whole units).
    ``train_hashes``: :func:`row_hashes` of every training row, where ``train`` is a sample of them
    (:func:`synthgate.evaluation.scorecard.evaluation_rows`): the exact copies are searched among all."""
    rng = np.random.default_rng(seed)
    members = outsiders = None
    if unit is not None:
        members, outsiders = (_unit_sample(frame, unit, mia_records, rng) for frame in (train, holdout))
    seen = row_hashes(train, columns) if train_hashes is None else train_hashes
    copies_training, copies_holdout = exact_copy_shares(seen, holdout, synthetic, columns)
    size = min(len(train), len(holdout), max_rows)
    train = train.iloc[rng.choice(len(train), size, replace=False)]
    holdout = holdout.iloc[rng.choice(len(holdout), size, replace=False)]
    space = FeatureSpace(pd.concat([train, holdout]), columns)
    x_train, x_holdout = space.transform(train), space.transform(holdout)
    x_synth = space.transform(
        synthetic.iloc[np.sort(rng.choice(len(synthetic), min(len(synthetic), max_synthetic), replace=False))]
    )
    neighbours = min(2, size)
    d_train = NearestNeighbors(n_neighbors=neighbours).fit(x_train).kneighbors(x_synth)[0]
    d_holdout = NearestNeighbors(n_neighbors=neighbours).fit(x_holdout).kneighbors(x_synth)[0]
    near_train, near_holdout = d_train[:, 0], d_holdout[:, 0]
    closer = np.mean(near_train < near_holdout) + 0.5 * np.mean(near_train == near_holdout)
    nndr_train = _nndr(d_train) if neighbours == 2 else np.ones(len(x_synth))
    nndr_holdout = _nndr(d_holdout) if neighbours == 2 else np.ones(len(x_synth))
    return DistanceToClosestRecord(
        share_closer_to_training=float(closer),
        exact_copies_training=copies_training,
        exact_copies_holdout=coarse(copies_holdout),
        median_dcr_training=float(np.median(near_train)),
        median_dcr_holdout=float(np.median(near_holdout)),
        nndr_training=float(np.mean(nndr_train)),
        nndr_holdout=float(np.mean(nndr_holdout)),
        mia_auc=coarse(
            membership_inference_auc(x_train, x_holdout, _feature_chunks(space, synthetic), mia_records, rng)
            if members is None or outsiders is None
            else unit_membership_auc(space, members, outsiders, synthetic)
        ),
    )


def coarse(score: float) -> float:
    """``score``, computed over real rows and divided by their count, to :data:`COARSE_DECIMALS` decimals: what it
    says without the count it was divided by (a share of holdout rows, an AUC over at most 2,000 real records)."""
    return round(score, COARSE_DECIMALS)


_T = TypeVar("_T")


def coarsened(value: _T) -> _T:
    """``value`` with every float in it to :data:`COARSE_DECIMALS` decimals (:func:`coarse`): a dataclass's fields, a
    dict's values, a tuple's or list's items, recursively. What an evaluation hands on (gates, MLflow, the catalog,
    the report): every score is computed over real rows, and at full precision one divided by their count gives the
    count back (a child table's children-per-parent TVD was a multiple of 1 / (2 n) for the n training parents)."""
    out: Any = value
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, float | np.floating):
        out = coarse(float(value))
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: coarsened(getattr(value, f.name)) for f in dataclasses.fields(value) if f.init}
        out = dataclasses.replace(value, **fields)
    elif isinstance(value, dict):
        out = {key: coarsened(item) for key, item in value.items()}
    elif isinstance(value, tuple):
        items = [coarsened(item) for item in value]
        out = type(value)(*items) if hasattr(value, "_fields") else tuple(items)
    elif isinstance(value, list):
        out = [coarsened(item) for item in value]
    return cast("_T", out)


#: Rows of one unit the unit-level attack measures at most (drawn at random): a unit's closest row among them.
UNIT_ROWS = 20


def _unit_sample(frame: pd.DataFrame, unit: str, units: int, rng: np.random.Generator) -> pd.DataFrame:
    """Up to ``units`` units of ``frame`` drawn at random, each with up to :data:`UNIT_ROWS` of its rows drawn at
    random, the units in the order they were drawn (so that the first ``n`` of them are a uniform draw too: ordered by
    their first row in shuffled rows, the units with many rows came first, and an attack on the first ``n`` member
    units read 0.58 where nothing could be told)."""
    nulls = pd.Series([("<null unit>", i) for i in range(len(frame))], index=frame.index, dtype=object)
    keys = frame[unit].astype(object).where(frame[unit].notna(), nulls)  # a NULL unit is a unit of its own
    chosen = pd.unique(keys)
    chosen = chosen[rng.permutation(len(chosen))[:units]]
    drawn = {key: place for place, key in enumerate(chosen)}
    picked = frame[keys.isin(set(chosen))].assign(_unit=keys)
    picked = picked.iloc[rng.permutation(len(picked))].groupby("_unit", sort=False).head(UNIT_ROWS)
    places = np.fromiter((drawn[key] for key in picked["_unit"]), dtype=np.int64, count=len(picked))
    return picked.iloc[np.argsort(places, kind="stable")]


def unit_membership_auc(
    space: FeatureSpace, members: pd.DataFrame, outsiders: pd.DataFrame, synthetic: pd.DataFrame
) -> float:
    """ROC AUC of "a unit with a row close to the synthetic table trained" over member and outsider units."""
    n = min(members["_unit"].nunique(), outsiders["_unit"].nunique())
    scores, labels = [], []
    for frame, label in ((members, 1.0), (outsiders, 0.0)):
        kept = frame[frame["_unit"].isin(set(pd.unique(frame["_unit"])[:n]))]
        distance = nearest_distances(space.transform(kept), _feature_chunks(space, synthetic))
        per_unit = pd.Series(distance, index=kept["_unit"].to_numpy()).groupby(level=0, sort=False).min()
        scores.append(-per_unit.to_numpy())
        labels.append(np.full(len(per_unit), label))
    return float(roc_auc_score(np.concatenate(labels), np.concatenate(scores)))


def _feature_chunks(space: FeatureSpace, frame: pd.DataFrame, rows: int = 100_000) -> Iterator[np.ndarray]:
    """``frame``'s feature matrix, a chunk of rows at a time (ten million rows of 138 features take 11 GB)."""
    for start in range(0, len(frame), rows):
        yield space.transform(frame.iloc[start : start + rows])


def membership_inference_auc(
    x_members: np.ndarray,
    x_outsiders: np.ndarray,
    x_synthetic: Iterable[np.ndarray],
    records: int,
    rng: np.random.Generator,
) -> float:
    """ROC AUC of "closer to the synthetic table means trained on" over members and equally many outsiders.

    Every synthetic row counts (a copy anywhere in the output is the attacker's signal); they come in chunks, each
    searched (:func:`~synthgate.evaluation.nearest.nearest_distances`) and dropped in turn, so memory stays bounded
    whatever the table's size."""
    n = min(len(x_members), len(x_outsiders), records)
    members = x_members[rng.choice(len(x_members), n, replace=False)]
    outsiders = x_outsiders[rng.choice(len(x_outsiders), n, replace=False)]
    distance = nearest_distances(np.concatenate([members, outsiders]), x_synthetic)
    labels = np.concatenate([np.ones(n), np.zeros(n)])
    return float(roc_auc_score(labels, -distance))


def row_hashes(frame: pd.DataFrame, columns: list[Column]) -> np.ndarray:
    """One 64-bit hash per row over the ``columns``, numerics compared as floats (``-0.0`` as ``0.0``) and NULLs as one
    value; built one column at a time (a table's worth of value strings at once took gigabytes on a million rows), a
    text column's from its distinct values (:func:`_text_hashes`). What the exact-copy shares compare
    (:func:`exact_copy_shares`)."""
    hashes = np.zeros(len(frame), dtype=np.uint64)
    for c in columns:
        if c.kind.is_numeric:
            values = pd.Series(np.round(to_numeric(frame[c.name], c), 9) + 0.0)
            column = pd.util.hash_pandas_object(values, index=False).to_numpy(dtype=np.uint64)
        else:
            column = _text_hashes(frame[c.name])
        hashes = np.bitwise_xor(hashes * np.uint64(0x100000001B3), column, dtype=np.uint64)
    return hashes


def _text_hashes(values: pd.Series) -> np.ndarray:
    """Each value's hash from its text, NULL as :data:`_NULL_HASH`: each distinct value's text hashed once, without a
    string per row (5M rows of four text columns: 1.2 s and 39 MiB more at the peak, against 3.2 s and 116 MiB).

    A column of mixed Python types (an untyped SQLite column: ``5``, ``5.0``, ``True``) is written out in
    :func:`~synthgate.hashing.as_text`'s one form per value first: distinct values that compare equal would otherwise
    take the text of whichever comes first, and the same value would hash apart in two frames."""
    if values.dtype == object and pd.api.types.infer_dtype(values, skipna=True) not in ("string", "empty"):
        values = values.map(as_text).where(values.notna())  # mixed Python types: one spelling per value first
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    # each distinct value once (a typed column: its values' one form); pandas hashes text up to its first NUL:
    # escaped, "x\\x00y" and "x" hash apart
    texts = pd.Series(
        [(v if isinstance(v, str) else as_text(v)).replace("\\", "\\\\").replace("\x00", "\\0") for v in uniques],
        dtype=object,
    )
    hashed = pd.util.hash_pandas_object(texts, index=False).to_numpy(dtype=np.uint64)
    return np.where(codes < 0, _NULL_HASH, hashed[codes] if hashed.size else _NULL_HASH).astype(np.uint64)


def exact_copy_shares(
    seen: np.ndarray, holdout: pd.DataFrame, synthetic: pd.DataFrame, columns: list[Column]
) -> tuple[float, float]:
    """Share of synthetic rows, and of holdout rows, that equal some training row (``seen``: :func:`row_hashes` of every
    training row). Each row's hash is looked up in the sorted training hashes, a million at a time: ``np.isin`` of 10M
    synthetic against 8M training hashes took 735 MiB more at the peak, this 224 (in one piece)."""
    known = np.sort(seen)

    def share(frame: pd.DataFrame) -> float:
        if not len(frame) or not len(known):
            return 0.0
        hashes, found = row_hashes(frame, columns), 0
        for start in range(0, len(hashes), _LOOKUP_ROWS):
            part = hashes[start : start + _LOOKUP_ROWS]
            found += int((known[np.searchsorted(known, part).clip(max=len(known) - 1)] == part).sum())
        return found / len(hashes)

    return share(synthetic), share(holdout)
