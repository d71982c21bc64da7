"""A parent table with its child table (``spec.children``): the split by parent, one linked fit, one linked sample,
and the relations' scores. The other stages run per table with the single-table tasks."""

from __future__ import annotations

import pandas as pd
from prefect import get_run_logger, task

from synthgate.evaluation.relations import LinkedPair, Relations, evaluate_relations
from synthgate.gates import GateVerdict, relation_verdicts
from synthgate.generator.linked import LinkedSynthesizer
from synthgate.keys import row_hash_key
from synthgate.outcome import RefreshResult
from synthgate.profiling import effective_policies
from synthgate.spec import TableSpec
from synthgate.splitting import source_rows, split_linked_holdout
from synthgate.tasks import PRIVATE

Split = tuple[pd.DataFrame, pd.DataFrame]


@task(name="split-linked", **PRIVATE)
def split_linked(parent: RefreshResult, child: RefreshResult, key: bytes) -> tuple[Split, Split]:
    """Each table's (train, holdout): a parent held out with all its children (keyed hash of its key)."""
    spec = parent.spec
    assert parent.source is not None and child.source is not None and spec.privacy.unit is not None
    return split_linked_holdout(
        parent.source.frame,
        parent.source.row_hashes,
        child.source.frame,
        child.source.row_hashes,
        spec.holdout.fraction or 0.2,
        key=spec.privacy.unit,
        foreign_key=spec.children[0].key,
        hash_key=row_hash_key(key),
    )


@task(name="train-linked", **PRIVATE)
def train_linked(parent: RefreshResult, child: RefreshResult) -> LinkedSynthesizer:
    """The parent and child models fitted under the spec's one budget, per parent with all its children."""
    spec, link = parent.spec, parent.spec.children[0]
    assert parent.source is not None and child.source is not None and spec.privacy.unit is not None
    assert parent.train is not None and child.train is not None
    linked = LinkedSynthesizer(
        parent_columns=parent.source.columns,
        parent_policies=effective_policies(parent.profiles),
        parent_key=spec.privacy.unit,
        child_columns=child.source.columns,
        child_policies=effective_policies(child.profiles),
        foreign_key=link.key,
        privacy=spec.privacy,
        training=spec.training,
        child_target=link.target_column,
        order_by=link.order_by,
    )
    summary = linked.fit(parent.train, child.train)
    get_run_logger().info(
        "trained %s with %s under epsilon %.4f per %s with all its %s rows (at most %d of them trained); parent "
        "model %.1f s, child model %.1f s",
        spec.source.table,
        link.source.table,
        summary.epsilon,
        spec.privacy.unit,
        link.source.table,
        summary.max_rows_per_unit,
        summary.parent.train_seconds,
        summary.child.train_seconds,
    )
    return linked


@task(name="sample-linked", **PRIVATE)
def sample_linked(spec: TableSpec, linked: LinkedSynthesizer) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(parents, children): ``spec.rows`` parents (default: the DP estimate of the source's), each with its children."""
    assert linked.summary is not None
    parents = spec.rows or source_rows(linked.summary.noisy_rows, spec.holdout.fraction)
    synthetic = linked.sample(parents)
    get_run_logger().info("sampled %d parent rows and %d child rows", len(synthetic[0]), len(synthetic[1]))
    return synthetic


@task(name="score-relations", **PRIVATE)
def score_relations(parent: RefreshResult, child: RefreshResult) -> tuple[Relations, list[GateVerdict]]:
    """The relations' metrics (children per parent, referential integrity, parent-child trends) and their gates."""
    spec = parent.spec
    key, link = spec.privacy.unit, spec.children[0]
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
        "relations: children per parent TVD %.3f (holdout %.3f), child rows naming no parent %.3f (real %.3f), "
        "parent-child trends %.3f",
        relations.children_tvd,
        relations.children_tvd_holdout,
        relations.dangling_share,
        relations.dangling_share_real,
        relations.pair_trends,
    )
    return relations, verdicts
