"""Relations between a parent table and its child table: what a linked synthetic pair keeps of the real one.

Every metric takes the same four frames (parents and children, real and synthetic) and the two key names:

- **children per parent**: total variation distance between the real and synthetic distributions of children per
  parent (0 children included), over the size bins of :data:`synthgate.generator.units.SIZE_EDGES`; beside it the
  same distance between training and holdout parents, the ceiling sampling alone reaches;
- **referential integrity**: the share of child rows whose non-NULL key names no parent (dangling), real and
  synthetic, and the share with a NULL key;
- **order trends** (with ``order_by``): each numeric child column's Spearman correlation with the child's place
  among its parent's children, real against synthetic;
- **siblings**: for each category column of the child, how often siblings agree (over the parents with two or more
  children holding a value, the mean share holding the parent's most common one), real against synthetic (an
  aircraft's flights all fly one carrier);
- **parent-level TSTR** (with the parent's ``target_column``): gradient boosting on the parent's target from its
  columns and its children's aggregates, trained on the synthetic pair and on the training pair, tested on the
  holdout pair;
- **parent-child pair trends**: for each learned ordered parent column (numbers, dates, booleans) and each child
  aggregate per parent (the number of
  children, the mean of each numeric child column), 1 - |Spearman real - Spearman synthetic| / 2, averaged (the
  SDMetrics correlation similarity, across the link);
- **privacy per unit**: each parent with this child table's aggregates is one record (a privacy unit as this link
  shows it; a parent with several child tables is scored once for each); the share of synthetic units closer to a
  training unit than to a holdout unit (DCR share, ideal 0.5) and the ROC AUC of a distance-based membership attack
  on training against holdout units (ideal 0.5).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd

from synthgate.evaluation.privacy import coarsened
from synthgate.generator.units import sibling_agreement, size_bin
from synthgate.schema import Column, ColumnKind


@dataclass(frozen=True)
class LinkedPair:
    """One parent table and its child table, with the names of the parent's key and the child's foreign key."""

    parents: pd.DataFrame
    children: pd.DataFrame
    key: str
    foreign_key: str
    order_by: str | None = None  # the column that orders a parent's children, when the spec declares one

    def children_per_parent(self) -> pd.Series:
        """Each parent's number of children (0 for a parent without any)."""
        counts = self.children[self.foreign_key].value_counts()
        return self.parents[self.key].map(counts).fillna(0).astype("int64")

    def dangling_share(self) -> float:
        """Share of child rows whose key is not NULL and names no parent."""
        keys = self.children[self.foreign_key]
        dangling = keys.notna() & ~keys.isin(self.parents[self.key].dropna())
        return float(dangling.mean()) if len(keys) else 0.0

    def null_key_share(self) -> float:
        """Share of child rows with a NULL key."""
        return float(self.children[self.foreign_key].isna().mean()) if len(self.children) else 0.0


@dataclass(frozen=True)
class Relations:
    """What the synthetic pair keeps of the real one's relations (aggregates only)."""

    children_tvd: float
    children_tvd_holdout: float
    dangling_share: float
    dangling_share_real: float
    null_key_share: float
    null_key_share_real: float
    pair_trends: float  # NaN: no parent column and child aggregate to pair
    order_trends: float = float("nan")  # NaN: no order_by declared (or no numeric child column)
    siblings: float = float("nan")  # NaN: no category column in the child table (or no parent with two children)
    tstr: float = float("nan")  # the parent's target from its columns and its children's aggregates (NaN: no target)
    trtr: float = float("nan")
    dcr_share: float = float("nan")  # units (a parent, this child's aggregates) closer to training than to holdout
    mia_auc: float = float("nan")  # membership inference over those units

    @property
    def dangling_excess(self) -> float:
        """Dangling child rows beyond what the real data has: referential integrity's gated measure."""
        return self.dangling_share - self.dangling_share_real

    def as_metrics(self) -> dict[str, float]:
        """The relation metrics, named ``relations.<name>`` (MLflow, the catalog's scores)."""
        values = {
            "children_tvd": self.children_tvd,
            "children_tvd_holdout": self.children_tvd_holdout,
            "dangling_share": self.dangling_share,
            "dangling_share_real": self.dangling_share_real,
            "dangling_excess": self.dangling_excess,
            "null_key_share": self.null_key_share,
            "null_key_share_real": self.null_key_share_real,
            "pair_trends": self.pair_trends,
            "order_trends": self.order_trends,
            "siblings": self.siblings,
            "tstr": self.tstr,
            "trtr": self.trtr,
            "dcr_share": self.dcr_share,
            "mia_auc": self.mia_auc,
        }
        return {f"relations.{k}": float(v) for k, v in values.items() if not np.isnan(v)}


def children_tvd(real: LinkedPair, synthetic: LinkedPair, *, parents: int | None = None, seed: int = 0) -> float:
    """Total variation distance of the children-per-parent distributions, over the size bins (0 its own bin);
    ``parents``: the synthetic side measured on that many of its parents drawn at random (``seed``), so that it
    compares with a holdout of that many (a TVD over fewer parents is larger by its sampling noise alone)."""

    def shares(pair: LinkedPair) -> np.ndarray:
        sizes = pair.children_per_parent().to_numpy()
        if pair is synthetic and parents is not None and parents < sizes.size:
            sizes = np.random.default_rng(seed).choice(sizes, parents, replace=False)
        bins = np.where(sizes > 0, 1 + size_bin(np.maximum(sizes, 1)), 0)
        counts = np.bincount(bins, minlength=64)[:64].astype(float)
        return counts / max(counts.sum(), 1.0)

    return float(0.5 * np.abs(shares(real) - shares(synthetic)).sum())


def spearman(a: pd.Series, b: pd.Series) -> float:
    """Spearman's correlation over the rows where both are set; NaN where fewer than two are, or either is constant
    there (undefined: a synthetic parent column of one value, where SciPy would warn and give NaN)."""
    both = a.notna() & b.notna()
    a, b = a[both], b[both]
    if a.nunique() < 2 or b.nunique() < 2:
        return float("nan")
    return float(a.corr(b, method="spearman"))


def pair_trends(
    real: LinkedPair, synthetic: LinkedPair, parent_columns: list[Column], child_columns: list[Column]
) -> float:
    """Mean correlation similarity of each parent column with each child aggregate per parent (NaN: none to pair)."""

    def table(pair: LinkedPair) -> pd.DataFrame:
        numeric = [c.name for c in child_columns if c.kind in (ColumnKind.INTEGER, ColumnKind.FLOAT)]
        grouped = pair.children.groupby(pair.foreign_key)[numeric].mean() if numeric else pd.DataFrame()
        means = grouped.add_prefix("mean:").reindex(pair.parents[pair.key]).reset_index(drop=True)
        parents = pair.parents[[c.name for c in parent_columns]].reset_index(drop=True)
        return pd.concat([parents, means.assign(**{"count:": pair.children_per_parent().to_numpy()})], axis=1)

    def ranks(frame: pd.DataFrame) -> pd.DataFrame:
        # Spearman reads ranks only: categories ranked in one shared order (real and synthetic ranked together)
        def rank(s: pd.Series) -> pd.Series:
            ordered = (
                s.astype(str).where(s.notna()) if s.dtype == object or isinstance(s.dtype, pd.CategoricalDtype) else s
            )
            return ordered.rank(method="dense")

        return frame.apply(rank)

    # ordered parent columns only: a category's rank (its label's place in the alphabet) would measure nothing
    parent_columns = [c for c in parent_columns if c.kind is not ColumnKind.CATEGORICAL]
    real_table, synthetic_table = table(real), table(synthetic)
    combined = ranks(pd.concat([real_table, synthetic_table], ignore_index=True))
    real_ranks, synthetic_ranks = combined.iloc[: len(real_table)], combined.iloc[len(real_table) :]
    scores = []
    aggregates = [n for n in real_table.columns if n.startswith(("mean:", "count:"))]
    for p in (c.name for c in parent_columns):
        for a in aggregates:
            r = spearman(real_ranks[p], real_ranks[a])
            s = spearman(synthetic_ranks[p], synthetic_ranks[a])
            if not (np.isnan(r) or np.isnan(s)):
                scores.append(1.0 - abs(r - s) / 2.0)
    return float(np.mean(scores)) if scores else float("nan")


def order_trends(real: LinkedPair, synthetic: LinkedPair, child_columns: list[Column]) -> float:
    """Mean over the numeric child columns of 1 - |Spearman(place, value) real - synthetic| / 2, a child's place being
    its rank among its parent's children in ``order_by`` (NaN: no order declared, or no numeric column)."""
    if real.order_by is None:
        return float("nan")
    numeric = [
        c.name for c in child_columns if c.kind in (ColumnKind.INTEGER, ColumnKind.FLOAT) and c.name != real.order_by
    ]

    def correlations(pair: LinkedPair) -> pd.Series:
        assert pair.order_by is not None
        linked = pair.children[pair.children[pair.foreign_key].notna()]
        ordered = linked.sort_values(pair.order_by, kind="stable", na_position="last")
        place = ordered.groupby(pair.foreign_key, sort=False).cumcount()
        return ordered[numeric].apply(lambda s: spearman(s, place))

    differences = (correlations(real) - correlations(synthetic)).abs().dropna()
    return float((1.0 - differences / 2.0).mean()) if len(differences) else float("nan")


def siblings(real: LinkedPair, synthetic: LinkedPair, child_columns: list[Column]) -> float:
    """Mean over the child's category columns of 1 - |agreement real - agreement synthetic| (:func:`sibling_agreement`;
    NaN: no category column, or no parent with two children on either side)."""
    categories = [c.name for c in child_columns if c.kind is ColumnKind.CATEGORICAL and c.name != real.foreign_key]
    scores = [
        1.0
        - abs(
            sibling_agreement(real.children, real.foreign_key, c)
            - sibling_agreement(synthetic.children, synthetic.foreign_key, c)
        )
        for c in categories
    ]
    kept = [score for score in scores if not np.isnan(score)]
    return float(np.mean(kept)) if kept else float("nan")


def with_aggregates(pair: LinkedPair, child_columns: list[Column]) -> tuple[pd.DataFrame, list[Column]]:
    """The parents with their children's aggregates as columns: how many children, and the mean of each numeric child
    column (the features a parent-level model reads from its children)."""
    numeric = [c for c in child_columns if c.kind in (ColumnKind.INTEGER, ColumnKind.FLOAT)]
    means = pair.children.groupby(pair.foreign_key)[[c.name for c in numeric]].mean()
    aggregates = means.add_prefix("children.mean.").reindex(pair.parents[pair.key])
    frame = pd.concat(
        [
            pair.parents.reset_index(drop=True),
            aggregates.reset_index(drop=True).assign(**{"children.count": pair.children_per_parent().to_numpy()}),
        ],
        axis=1,
    )
    columns = [Column(f"children.mean.{c.name}", ColumnKind.FLOAT, "DOUBLE PRECISION") for c in numeric]
    return frame, [*columns, Column("children.count", ColumnKind.INTEGER, "BIGINT")]


def unit_records(
    pairs: list[LinkedPair], parent_columns: list[Column], child_columns: list[Column]
) -> tuple[list[pd.DataFrame], list[Column]]:
    """Each pair's parents with their children's aggregates (:func:`with_aggregates`), one record a unit, and the
    columns to read from them: the parent's and the aggregates, every name a plain str (a driver's names, SQLAlchemy's
    quoted_name, beside plain ones upset scikit-learn)."""
    frames = [with_aggregates(pair, child_columns) for pair in pairs]
    columns = [dataclasses.replace(c, name=c.name.encode().decode()) for c in [*parent_columns, *frames[0][1]]]
    for frame, _ in frames:
        frame.columns = [name.encode().decode() for name in frame.columns]
    return [frame for frame, _ in frames], columns


def unit_privacy(
    *,
    train: LinkedPair,
    holdout: LinkedPair,
    synthetic: LinkedPair,
    parent_columns: list[Column],
    child_columns: list[Column],
    seed: int = 0,
) -> tuple[float, float]:
    """(DCR share, membership inference AUC) over units: each parent with this child table's aggregates as one record,
    so a synthetic customer close to a real one with the same orders counts, where row-level distances see orders
    alone."""
    from synthgate.evaluation.privacy import dcr

    if min(len(train.parents), len(holdout.parents), len(synthetic.parents)) < 2:
        return float("nan"), float("nan")
    (train_units, holdout_units, synthetic_units), columns = unit_records(
        [train, holdout, synthetic], parent_columns, child_columns
    )
    distances = dcr(train=train_units, holdout=holdout_units, synthetic=synthetic_units, columns=columns, seed=seed)
    return distances.share_closer_to_training, distances.mia_auc


def parent_tstr(
    *,
    train: LinkedPair,
    holdout: LinkedPair,
    synthetic: LinkedPair,
    parent_columns: list[Column],
    child_columns: list[Column],
    target: str,
    seed: int = 0,
) -> tuple[float, float]:
    """(TSTR, TRTR) of gradient boosting on the parent's ``target`` from the parent's columns and its children's
    aggregates (:func:`with_aggregates`): what a model of customers that reads their orders keeps."""
    from synthgate.evaluation.utility import tstr

    (train_units, holdout_units, synthetic_units), columns = unit_records(
        [train, holdout, synthetic], parent_columns, child_columns
    )
    utility = tstr(
        train=train_units, holdout=holdout_units, synthetic=synthetic_units, columns=columns, target=target, seed=seed
    )
    return float(utility.tstr), float(utility.trtr)


def evaluate_relations(
    *,
    train: LinkedPair,
    holdout: LinkedPair,
    synthetic: LinkedPair,
    parent_columns: list[Column],
    child_columns: list[Column],
    target: str | None = None,
    seed: int = 0,
) -> Relations:
    """Every relation metric of a synthetic pair against the training pair (and the holdout, the ceiling); with the
    parent's ``target``, the parent-level TSTR from children's aggregates too."""
    utility = (
        parent_tstr(
            train=train,
            holdout=holdout,
            synthetic=synthetic,
            parent_columns=parent_columns,
            child_columns=child_columns,
            target=target,
            seed=seed,
        )
        if target is not None
        else (float("nan"), float("nan"))
    )
    dcr_share, mia_auc = unit_privacy(
        train=train,
        holdout=holdout,
        synthetic=synthetic,
        parent_columns=parent_columns,
        child_columns=child_columns,
        seed=seed,
    )
    relations = Relations(
        children_tvd=children_tvd(train, synthetic, parents=len(holdout.parents), seed=seed),  # sized alike
        children_tvd_holdout=children_tvd(train, holdout),
        dangling_share=synthetic.dangling_share(),
        dangling_share_real=train.dangling_share(),
        null_key_share=synthetic.null_key_share(),
        null_key_share_real=train.null_key_share(),
        pair_trends=pair_trends(train, synthetic, parent_columns, child_columns),
        order_trends=order_trends(train, synthetic, child_columns),
        siblings=siblings(train, synthetic, child_columns),
        tstr=utility[0],
        trtr=utility[1],
        dcr_share=dcr_share,
        mia_auc=mia_auc,
    )
    return coarsened(relations)  # computed over real parents and children: at full precision, their counts
