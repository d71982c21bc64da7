"""Utility: train on synthetic, test on real (TSTR), beside train on real, test on real (TRTR).

Two model families: gradient boosting (captures interactions) and a linear model (L2-regularised logistic
or ridge regression on the shared feature view), so a synthetic table that only keeps the easy signal shows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import r2_score, roc_auc_score

from synthgate.columns import to_numeric
from synthgate.evaluation.features import FeatureSpace, categorical_codes, category_text, single_threaded
from synthgate.schema import Column, ColumnKind

_MAX_MODEL_CATEGORIES = 250


@dataclass(frozen=True)
class Utility:
    """TSTR and TRTR scores of both model families on the holdout, under one metric."""

    metric: str  # "roc_auc" or "r2"
    tstr: float  # gradient boosting
    trtr: float
    tstr_linear: float
    trtr_linear: float

    @property
    def gap(self) -> float:
        """The larger shortfall of TSTR against TRTR over the two model families."""
        return max(self.trtr - self.tstr, self.trtr_linear - self.tstr_linear)


@single_threaded
def tstr(
    *,
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    synthetic: pd.DataFrame,
    columns: list[Column],
    target: str,
    max_rows: int = 50_000,
    seed: int = 0,
) -> Utility:
    """Score gradient-boosting and linear models trained on synthetic rows, and on real rows, on the holdout.

    Each of the three frames is a seeded sample of at most ``max_rows`` rows (a ROC AUC on 50,000 holdout rows has a
    standard error near 0.003), so the cost stops growing with the table.

    Every metric of :mod:`synthgate.evaluation` takes the same keyword-only ``train``, ``holdout``, ``synthetic``
    and ``columns``; then its own options."""
    train, holdout, synthetic = (_at_most(frame, max_rows, seed) for frame in (train, holdout, synthetic))
    features = [c for c in columns if c.name != target]
    target_column = next(c for c in columns if c.name == target)
    regression = target_column.kind.is_numeric and holdout[target].nunique() > 10  # datetimes too: as numbers
    x_test = _design(holdout, features)
    y_test = holdout[target]
    if regression:
        if target_column.kind is ColumnKind.DATETIME:
            train, holdout, synthetic = (_as_numbers(f, target_column) for f in (train, holdout, synthetic))
            y_test = holdout[target]
        boosted = [_fit_regressor(frame, features, target, x_test, y_test, seed) for frame in (synthetic, train)]
        linear = [_fit_linear(frame, features, target, None, holdout, y_test) for frame in (synthetic, train)]
        return Utility("r2", *boosted, *linear)
    classes = _classes(train[target])
    if len(classes) > 2:  # one against the rest for each class, averaged: the rarest alone is often never sampled
        y_codes = _codes(y_test, classes)
        frames = (synthetic, train)
        boosted = [_multiclass(frame, features, target, classes, x_test, y_codes, seed) for frame in frames]
        linear = [_multiclass_linear(frame, features, target, classes, holdout, y_codes) for frame in frames]
        return Utility("roc_auc", *boosted, *linear)
    positive = _positive_class(train[target])
    y_true = (category_text(y_test) == positive).to_numpy()
    boosted = [_fit_classifier(frame, features, target, positive, x_test, y_true, seed) for frame in (synthetic, train)]
    linear = [_fit_linear(frame, features, target, positive, holdout, y_true) for frame in (synthetic, train)]
    return Utility("roc_auc", *boosted, *linear)


#: A target of more classes than two is scored on its most frequent classes, each against the rest (the others pooled).
MAX_CLASSES = 10


def _as_numbers(frame: pd.DataFrame, column: Column) -> pd.DataFrame:
    return frame.assign(**{column.name: to_numeric(frame[column.name], column)})


def _classes(labels: pd.Series) -> list[str]:
    """The real training labels' most frequent classes (as text), at most :data:`MAX_CLASSES`."""
    return list(category_text(labels).dropna().value_counts().index[:MAX_CLASSES])


def _codes(labels: pd.Series, classes: list[str]) -> np.ndarray:
    """Each label's class number; a label of no listed class (or NULL) the number after them."""
    found = pd.Index(classes).get_indexer(pd.Index(category_text(labels)))
    return np.where(found < 0, len(classes), found)


def _macro_auc(y_codes: np.ndarray, classes: np.ndarray, proba: np.ndarray) -> float:
    """The mean over the holdout's classes (with positives and negatives) of each class's ROC AUC against the rest,
    ``proba`` the model's probabilities for its ``classes`` (a class the model never saw scores 0 for every row)."""
    aucs = []
    for k in np.unique(y_codes):
        truth = y_codes == k
        if truth.all():
            continue
        at = np.flatnonzero(classes == k)
        aucs.append(roc_auc_score(truth, proba[:, at[0]] if at.size else np.zeros(len(truth))))
    return float(np.mean(aucs)) if aucs else 0.5


def _multiclass(
    frame: pd.DataFrame,
    features: list[Column],
    target: str,
    classes: list[str],
    x_test: pd.DataFrame,
    y_codes: np.ndarray,
    seed: int,
) -> float:
    y = _codes(frame[target], classes)
    if np.unique(y).size < 2:
        return 0.5
    x = _usable(_design(frame, features))
    model = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=seed, max_iter=200)
    model.fit(x, y)
    return _macro_auc(y_codes, model.classes_, model.predict_proba(_align(x, x_test)))


def _multiclass_linear(
    frame: pd.DataFrame,
    features: list[Column],
    target: str,
    classes: list[str],
    holdout: pd.DataFrame,
    y_codes: np.ndarray,
) -> float:
    y = _codes(frame[target], classes)
    if np.unique(y).size < 2:
        return 0.5
    space = FeatureSpace(frame, features)
    model = LogisticRegression(C=1.0, max_iter=300).fit(space.transform(frame), y)
    return _macro_auc(y_codes, model.classes_, model.predict_proba(space.transform(holdout)))


def _at_most(frame: pd.DataFrame, rows: int, seed: int) -> pd.DataFrame:
    return frame.sample(rows, random_state=seed) if len(frame) > rows else frame


def _design(frame: pd.DataFrame, features: list[Column]) -> pd.DataFrame:
    design = categorical_codes(frame, features)
    for c in features:
        if not c.kind.is_numeric:  # gradient boosting takes at most 255 categories: the rest become one
            values = design[c.name]
            top = values.value_counts().index[:_MAX_MODEL_CATEGORIES]
            design[c.name] = values.where(values.isin(top), "__other__").astype("category")
    return design


def _usable(design: pd.DataFrame) -> pd.DataFrame:
    """The feature columns a model can learn from: an all-null one (a generator that lost a column) says nothing."""
    return design.loc[:, design.notna().any().to_numpy()]


def _align(train: pd.DataFrame, test: pd.DataFrame) -> pd.DataFrame:
    test = test[train.columns].copy()
    for name in test.columns:
        if isinstance(train[name].dtype, pd.CategoricalDtype):
            test[name] = pd.Categorical(test[name], categories=train[name].cat.categories)
    return test


def _positive_class(labels: pd.Series) -> str:
    """The minority class of the real training labels (the usual positive class, e.g. '>50K')."""
    counts = category_text(labels).dropna().value_counts()
    return str(counts.index[-1])


def _fit_classifier(
    frame: pd.DataFrame,
    features: list[Column],
    target: str,
    positive: str,
    x_test: pd.DataFrame,
    y_true: np.ndarray,
    seed: int,
) -> float:
    y = (category_text(frame[target]) == positive).to_numpy()
    if y.all() or not y.any() or y_true.all() or not y_true.any():
        return 0.5
    x = _usable(_design(frame, features))
    model = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=seed, max_iter=200)
    model.fit(x, y)
    return float(roc_auc_score(y_true, model.predict_proba(_align(x, x_test))[:, 1]))


def _fit_regressor(
    frame: pd.DataFrame, features: list[Column], target: str, x_test: pd.DataFrame, y_test: pd.Series, seed: int
) -> float:
    y = pd.to_numeric(frame[target], errors="coerce")
    keep = y.notna().to_numpy()
    x = _usable(_design(frame, features)[keep])
    model = HistGradientBoostingRegressor(categorical_features="from_dtype", random_state=seed, max_iter=200)
    model.fit(x, y[keep])
    y_true = pd.to_numeric(y_test, errors="coerce")
    mask = y_true.notna().to_numpy()
    return float(r2_score(y_true[mask], model.predict(_align(x, x_test))[mask])) if mask.any() else float(np.nan)


def _fit_linear(
    frame: pd.DataFrame,
    features: list[Column],
    target: str,
    positive: str | None,
    holdout: pd.DataFrame,
    y_true: np.ndarray | pd.Series,
) -> float:
    """Logistic regression (``positive`` given) or ridge regression on the shared feature view of ``frame``."""
    space = FeatureSpace(frame, features)
    x, x_test = space.transform(frame), space.transform(holdout)
    if positive is not None:
        y = (category_text(frame[target]) == positive).to_numpy()
        if y.all() or not y.any() or y_true.all() or not y_true.any():
            return 0.5
        model = LogisticRegression(C=1.0, max_iter=300)
        model.fit(x, y)
        return float(roc_auc_score(y_true, model.predict_proba(x_test)[:, 1]))
    y = pd.to_numeric(frame[target], errors="coerce").to_numpy(dtype=float)
    keep = ~np.isnan(y)
    # y_true is the holdout's target column here: pd.Series() keeps its values and dtype, and types the union
    truth = pd.to_numeric(pd.Series(y_true), errors="coerce").to_numpy(dtype=float)
    mask = ~np.isnan(truth)
    if not keep.any() or not mask.any():
        return float(np.nan)
    model = Ridge(alpha=1.0).fit(x[keep], y[keep])
    return float(r2_score(truth[mask], model.predict(x_test)[mask]))
