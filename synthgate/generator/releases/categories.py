"""A category column's codec: thresholded noisy counts of its labels (:func:`release_categories`), the labels that
clear the selection threshold and the rest as RARE (:func:`categorical_codec`)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from synthgate.generator.accounting import PrivacyAccountant
from synthgate.generator.codecs import CategoricalCodec, category_key, token_prior
from synthgate.generator.releases.counts import selection_threshold
from synthgate.generator.releases.weights import CATEGORY_WEIGHT, UNIT_CATEGORIES, unit_weights
from synthgate.schema import Column, ColumnKind

# Kept categories holding less than this share of a column's non-null rows make it a key (faked, not learned): a
# key's values are held by a few rows each, so almost none clears the threshold; a wide category (50 US states on
# a 55-column table, where the noise keeps only the largest) still holds a third of the rows.
_KEY_COVERAGE = 0.1

# Kept categories holding more than this share leave too few rows for RARE to be worth sampling.
_COMPLETE_COVERAGE = 0.995


@dataclass(frozen=True)
class CategoryCounts:
    """One column's released category counts: every label the rows hold (sorted) or the declared domain, with the
    noisy count of each and of NULLs. Held while the codecs are fitted, never kept: the counts of the labels that
    miss the threshold must not reach anything."""

    labels: list[Any]
    noisy: np.ndarray  # the labels' counts, then NULL
    sigma: float
    public: bool
    weighted: bool = False  # each unit's counts scaled to norm 1 (a privacy unit): they are not rows

    def combined(self, other: CategoryCounts) -> CategoryCounts:
        """Both releases of the same counts weighed by their precision: as one release of their summed weight."""
        w1, w2 = self.sigma**-2, other.sigma**-2
        return CategoryCounts(
            self.labels, (w1 * self.noisy + w2 * other.noisy) / (w1 + w2), (w1 + w2) ** -0.5, self.public, self.weighted
        )


def release_categories(
    column: Column,
    series: pd.Series,
    *,
    public_categories: list[Any] | None,
    sigma: float,
    accountant: PrivacyAccountant,
    units: np.ndarray | None = None,
    priority: np.ndarray | None = None,
) -> CategoryCounts:
    """Release a categorical column's counts, at weight :data:`CATEGORY_WEIGHT`: of every label the rows hold, and
    of NULLs; for a public domain (booleans, declared categories), of each of its values and NULLs, at weight 1. Each
    record adds to one count (sensitivity 1). ``sigma``: a weight-1 release's noise. With ``units``, each unit adds
    to its :data:`UNIT_CATEGORIES` values held most (``priority``: see :func:`unit_weights`)."""
    null = series.isna().to_numpy()
    keys = series.map(category_key)
    public = column.kind is ColumnKind.BOOLEAN or public_categories is not None
    if public:
        # a declared value listed twice is one category (as the codec's index holds it)
        domain = [False, True] if column.kind is ColumnKind.BOOLEAN else list(dict.fromkeys(public_categories or []))
        labels = pd.Index([category_key(v) for v in domain])
        purpose, kept_sigma = f"domain:{column.name}", sigma
    else:
        # categories in an order free of the rows' (sorted), the NULL bin last; each record adds to one of them
        domain = sorted(set(keys[~null]), key=lambda v: (type(v).__name__, v))
        labels = pd.Index(domain)
        purpose, kept_sigma = f"categories:{column.name}", sigma / math.sqrt(CATEGORY_WEIGHT)
    bins = _category_bins(keys, null, labels)
    weights = unit_weights(bins, units, top=UNIT_CATEGORIES, priority=priority)
    if weights is not None and not public:
        # Only the values some unit adds to: a value held by one unit among more than UNIT_CATEGORIES of its values
        # would otherwise be released at a count of pure noise, selected now and then without the unit adding to it
        held = np.bincount(bins, weights=weights > 0, minlength=len(labels) + 2)[: len(labels)] > 0
        domain = [label for label, kept in zip(domain, held, strict=True) if kept]
        labels = pd.Index(domain)
        bins = _category_bins(keys, null, labels)  # the other values' rows weigh 0: out of the release
    counts = np.bincount(bins, weights=weights, minlength=len(labels) + 2).astype(float)
    counts = np.append(counts[: len(labels)], counts[len(labels)])  # the values' bins, then NULL
    noisy = accountant.gaussian(purpose, counts, kept_sigma)
    return CategoryCounts(domain, noisy, kept_sigma, public, weighted=units is not None)


def _category_bins(keys: pd.Series, null: np.ndarray, labels: pd.Index) -> np.ndarray:
    """Each row's bin in a category release: its label's index, ``len(labels)`` for NULL, ``len(labels) + 1`` for a
    value outside ``labels`` (counted with none of them: outside a declared domain, its rows are RARE)."""
    bins = np.full(len(keys), len(labels), dtype=np.int64)
    bins[~null] = np.where((index := labels.get_indexer(pd.Index(keys[~null]))) >= 0, index, len(labels) + 1)
    return bins


def categorical_codec(
    column: Column, released: CategoryCounts, *, n_rows: float, selection_delta: float, rows_noise: float = 0.0
) -> CategoricalCodec:
    """A categorical column's codec from its released counts: a public domain whole; otherwise the labels that clear
    the selection threshold (one held by a single record is kept with probability ``selection_delta``).
    ``n_rows``: the released rows (or units), of noise ``rows_noise``."""
    noisy, sigma = released.noisy[:-1], released.sigma
    has_nulls = column.nullable and bool(released.noisy[-1] >= 3.0 * sigma)  # NOT NULL: never, whatever the noise
    if released.public:
        codec = CategoricalCodec(column, released.labels, public=True, has_nulls=has_nulls)
        codec.prior = token_prior(np.concatenate([noisy, [0.0, released.noisy[-1]]]), codec.forbidden_tokens)
        return codec
    threshold = selection_threshold(sigma, selection_delta)
    order = np.argsort(-noisy, kind="stable")
    kept = [i for i in order if noisy[i] > threshold]
    # Post-processing: the share of the non-null rows (the released rows, less the released NULLs) that the kept
    # categories hold. Never the sum of every noisy count: its noise grows with the number of distinct values, which
    # one record changes (a column of three values and one singleton would show it in that sum's spread).
    kept_rows = float(noisy[kept].sum())
    non_null = max(n_rows - float(released.noisy[-1]), kept_rows, 0.0)
    covered = kept_rows / max(non_null, 1.0)
    key_like = non_null > 2.0 * threshold and covered < _KEY_COVERAGE  # a nearly empty column is not a key
    # With a unit the counts are weighted per unit (a unit over m labels adds up to sqrt(m)), so the kept ones can
    # seem to cover every unit when they do not: RARE stays possible and training learns its share. A key (its
    # values unique to a row or a few) keeps nothing either way.
    has_rare = covered < _COMPLETE_COVERAGE or released.weighted
    codec = CategoricalCodec(
        column,
        [released.labels[i] for i in kept],
        public=False,
        has_nulls=has_nulls,
        key_like=key_like,
        has_rare=has_rare,
    )
    rare = non_null - kept_rows
    # worth a refit where a category at the threshold could hide in RARE, clear of the estimate's own noise (that of
    # the row count and of the NULL and kept counts: about a hundred rows on a wide table)
    noise = math.sqrt(rows_noise**2 + (len(kept) + 1) * sigma**2)
    codec.unplaced = rare if rare > threshold + 3.0 * noise and not key_like else 0.0
    codec.prior = token_prior(np.concatenate([noisy[kept], [rare, released.noisy[-1]]]), codec.forbidden_tokens)
    return codec


def fit_categorical(
    column: Column,
    series: pd.Series,
    *,
    public_categories: list[Any] | None,
    n_rows: float,
    sigma: float,
    selection_delta: float,
    accountant: PrivacyAccountant,
    units: np.ndarray | None = None,
) -> CategoricalCodec:
    """Release a categorical column's codec (:func:`release_categories`, then :func:`categorical_codec`)."""
    released = release_categories(
        column, series, public_categories=public_categories, sigma=sigma, accountant=accountant, units=units
    )
    return categorical_codec(column, released, n_rows=n_rows, selection_delta=selection_delta)
