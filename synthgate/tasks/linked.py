"""A parent table with its child tables (``spec.children``): the split by parent, one linked fit, one linked sample,
and each child's relations with the parent. The other stages run per table with the single-table tasks."""

from __future__ import annotations

import pandas as pd
from prefect import get_run_logger, task

from synthgate.evaluation.relations import LinkedPair, Relations, evaluate_relations
from synthgate.gates import GateVerdict, relation_verdicts
from synthgate.generator.linked import LinkedChild, LinkedSynthesizer
from synthgate.keys import row_hash_key
from synthgate.outcome import RefreshResult
from synthgate.profiling import effective_policies
from synthgate.spec import ChildTable, TableSpec
from synthgate.splitting import divided, holdout_mask, linked_holdout_mask, source_rows
from synthgate.tasks import PRIVATE, withheld

Split = tuple[pd.DataFrame, pd.DataFrame]


@task(name="split-linked", **PRIVATE)
@withheld
def split_linked(parent: RefreshResult, key: bytes) -> tuple[Split, list[Split]]:
    """The parent's (train, holdout) and each child's: a parent is held out with all its children in every child
    table (keyed hash of its key, the same on each). Each source's rows are taken out of it as they are split (a
    source is left with no rows)."""
    spec = parent.spec
    assert parent.source is not None and spec.privacy.unit is not None
    fraction, hash_key = spec.holdout.fraction or 0.2, row_hash_key(key)
    parents = parent.source.frame
    held = holdout_mask(parents, parent.source.row_hashes, fraction, unit=spec.privacy.unit, hash_key=hash_key)
    children = []
    for link, child in zip(spec.children, parent.children, strict=True):
        assert child.source is not None
        child_held = linked_holdout_mask(
            parents,
            held,
            child.source.frame,
            child.source.row_hashes,
            fraction,
            key=spec.privacy.unit,
            foreign_key=link.key,
            hash_key=hash_key,
        )
        children.append(divided(child.source.frame, child_held, consume=True))
    return divided(parents, held, consume=True), children


@task(name="train-linked", **PRIVATE)
@withheld
def train_linked(parent: RefreshResult) -> LinkedSynthesizer:
    """The parent and child models fitted under the spec's one budget, per parent with all its children."""
    spec = parent.spec
    assert parent.source is not None and spec.privacy.unit is not None and parent.train is not None
    linked = LinkedSynthesizer(
        parent_columns=parent.source.columns,
        parent_policies=effective_policies(parent.profiles),
        parent_key=spec.privacy.unit,
        children=[_child(link, child) for link, child in zip(spec.children, parent.children, strict=True)],
        privacy=spec.privacy,
        training=spec.training,
    )
    trains = [child.train for child in parent.children if child.train is not None]
    assert len(trains) == len(parent.children)
    summary = linked.fit(parent.train, trains)
    get_run_logger().info(
        "trained %s with %s under epsilon %.4f per %s with all its rows (at most %d of its child rows trained); "
        "parent model %.1f s, child models %s s",
        spec.source.table,
        ", ".join(link.source.table for link in spec.children),
        summary.epsilon,
        spec.privacy.unit,
        summary.max_rows_per_unit,
        summary.parent.train_seconds,
        ", ".join(f"{fit.train_seconds:.1f}" for fit in summary.children),
    )
    return linked


def _child(link: ChildTable, child: RefreshResult) -> LinkedChild:
    """A child table as the linked generator takes it: its columns and policies as profiled, its link's key, label
    and order."""
    assert child.source is not None
    return LinkedChild(
        name=link.name,
        columns=child.source.columns,
        foreign_key=link.key,
        policies=effective_policies(child.profiles),
        target=link.target_column,
        order_by=link.order_by,
    )


@task(name="sample-linked", **PRIVATE)
@withheld
def sample_linked(spec: TableSpec, linked: LinkedSynthesizer) -> tuple[pd.DataFrame, list[pd.DataFrame]]:
    """(parents, each child table's rows): ``spec.rows`` parents (default: the DP estimate of the source's), each with
    its children."""
    assert linked.summary is not None
    parents = spec.rows or source_rows(linked.summary.noisy_rows, spec.holdout.fraction)
    synthetic, children = linked.sample(parents)
    get_run_logger().info(
        "sampled %d parent rows and %s child rows", len(synthetic), ", ".join(str(len(rows)) for rows in children)
    )
    return synthetic, children


@task(name="score-relations", **PRIVATE)
@withheld
def score_relations(
    parent: RefreshResult, child: RefreshResult, link: ChildTable
) -> tuple[Relations, list[GateVerdict]]:
    """One child's relations with its parent (children per parent, referential integrity, parent-child trends) and
    their gates."""
    spec = parent.spec
    key = spec.privacy.unit
    assert key is not None and parent.synthesizer is not None and child.synthesizer is not None

    def pair(parents: pd.DataFrame | None, children: pd.DataFrame | None) -> LinkedPair:
        assert parents is not None and children is not None
        return LinkedPair(parents, children, key, link.key, link.order_by)

    relations = evaluate_relations(
        train=pair(parent.train, child.train),
        holdout=pair(parent.holdout, child.holdout),
        synthetic=pair(parent.synthetic, child.synthetic),
        parent_columns=parent.synthesizer.learned,
        child_columns=child.synthesizer.learned,
        target=spec.target_column,
        seed=spec.training.seed,
    )
    verdicts = relation_verdicts(spec.gates, relations)
    get_run_logger().info(
        "relations with %s: children per parent TVD %.3f (holdout %.3f), child rows naming no parent %.3f (real "
        "%.3f), parent-child trends %.3f",
        link.name,
        relations.children_tvd,
        relations.children_tvd_holdout,
        relations.dangling_share,
        relations.dangling_share_real,
        relations.pair_trends,
    )
    return relations, verdicts
