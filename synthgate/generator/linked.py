"""A parent table and its child tables under one budget, with the parent's key as the privacy unit.

A unit is a parent row together with every child row that refers to it, in every child table (a customer with their
orders and their support tickets; an aircraft and its flights). Every mechanism of the fit releases on one
accountant, so all of them compose together (PRV), each part planned with its share of the zCDP budget
(:data:`SHARES`). Adding up their epsilons instead (basic composition, as before) gave the parts of a one-child fit
0.44 of the zCDP budget of epsilon 1 (delta 1e-5), a third more noise in every release:

1. **Children per parent** (:data:`SHARES` ``sizes``, split between the child tables): for each child table one DP
   histogram of its rows per unit, in three parts that each unit falls in exactly one of (sensitivity 1): children of
   a parent in the parent table, children of a key missing from it (orphans, as real foreign keys have), and
   children with a NULL key (each a unit of its own). It bounds that table's rows per unit (declared
   ``privacy.max_rows_per_unit``, or chosen as for one table) and says how many orphans and NULL-key children to
   publish.
2. **The parent model** (``parent``): the parent's columns plus a count column per child table
   (:attr:`LinkedChild.count_column`, bounded), learned together, so the number of children of each kind follows the
   parent's values and each other.
3. **A child model per child table** (``children``, split evenly): each child row after its parent's columns, encoded
   with the parent model's released codecs (nothing released twice); DP-SGD samples units and clips each unit's
   gradient as one (:mod:`synthgate.generator.units`).

Sampling draws the parents, then each parent's children in each table conditioned on its row, their foreign key the
synthetic parent's key: every synthetic child refers to a synthetic parent, except the orphans (keys no parent has)
and the NULL-key children, in the numbers the DP histograms give. Children of one parent are drawn independently given
the parent (in the declared order's places, where a table has ``order_by``), and a parent's children in one table do
not see its children in another except through the parent's counts.

Siblings agree as real ones do: one more release per child table (:meth:`LinkedSynthesizer._release_siblings`, at
:data:`SIBLINGS_SHARE` of its model's stage, before the model) says how often a parent's children hold its most common
value of each category column, and sampling has each parent's later children take the value its first child drew at
the least weight that brings the synthetic siblings there (:meth:`LinkedSynthesizer._calibrate`, post-processing once
after the fit; the weights are saved with the model). Drawn independently given the aircraft, NYC's aircraft flew the
carrier they fly most on 59% of their flights (real: all); with the mix, 94% (one run each, ``benchmarks/linked.py``).
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from synthgate.errors import DataValidationError
from synthgate.generator.accounting import (
    PrivacyAccountant,
    Release,
    Stage,
    bisect_sigma,
    compose_epsilon,
    preprocessing_noise,
    zcdp_rho,
)
from synthgate.generator.codecs import RARE_LABEL, NumericCodec, token_prior
from synthgate.generator.faking import fake_column
from synthgate.generator.noise import SecureNoise
from synthgate.generator.synthesizer import DPSynthesizer, FitSummary, refuse_newer_format
from synthgate.generator.units import (
    SIZE_EDGES,
    SizeHistogram,
    bound_units,
    denoised_histogram,
    group_units,
    sibling_agreement,
    size_bin,
)
from synthgate.schema import Column, ColumnKind
from synthgate.spec import KEY_KINDS, ColumnPolicy, PrivacyBudget, Training

CHILDREN = "__children__."  # prefix of the parent model's columns: how many rows of each child table it has (bounded)
PARENT = "__parent__."  # prefix of the parent's columns in a child model
POSITION = "__position__"  # with ``order_by``: a child model's column for a child's place among its parent's
#: Shares of the zCDP budget (and of the selection delta, for the models): the histograms of children per unit, the
#: parent model, the child models (split evenly between them).
SHARES = {"sizes": 0.1, "parent": 0.3, "children": 0.6}
#: Share of a child model's zCDP budget for the release of how often siblings agree (:meth:`_release_siblings`); the
#: rest is the model's (its releases and DP-SGD, which spends what is left).
SIBLINGS_SHARE = 0.02
LINKED_FORMAT = 2  # the layout :meth:`LinkedSynthesizer.save` writes (1: one child table, read still)
_CALIBRATION_ROWS = 50_000  # child rows (whole parents') sampled for each step of a sibling weight's bisection
_MIX_STEPS = 8  # samples per bisection: the first with no mix, then seven halvings (within 1/128)


@dataclass(frozen=True)
class LinkedChild:
    """A child table of a linked fit: its columns, how they are treated, the foreign key naming the parent's key, its
    label for TSTR and the column that orders a parent's children (a timestamp), if any."""

    name: str
    columns: list[Column]
    foreign_key: str
    policies: dict[str, ColumnPolicy] = field(default_factory=dict)
    target: str | None = None
    order_by: str | None = None

    @property
    def count_column(self) -> str:
        """The parent model's column holding how many of this table's rows a parent has."""
        return CHILDREN + self.name

    @property
    def sibling_columns(self) -> list[Column]:
        """The learned category columns, whose values a parent's children may share (not the foreign key nor the
        order): how often they do is released (:meth:`LinkedSynthesizer._release_siblings`)."""
        skipped = {self.foreign_key, self.order_by}
        return [
            column
            for column in self.columns
            if column.name not in skipped
            and (policy := self.policies.get(column.name, ColumnPolicy())).policy not in ("drop", "fake")
            and (column.kind is ColumnKind.CATEGORICAL or policy.policy == "categorical")
        ]


@dataclass(frozen=True)
class ChildCounts:
    """The DP histogram of one child table's rows per unit, by link: to a parent, to a key no parent has, NULL."""

    linked: SizeHistogram
    orphans: SizeHistogram
    null_key: float  # DP count of child rows with a NULL key
    max_rows: int  # the bound on the children of one unit
    childless: float  # DP count of parents without children
    epsilon: float  # what the histograms' release cost (the accountant's figure right after them)


@dataclass(frozen=True)
class LinkedFitSummary:
    """What a linked fit spent: every release of its parts, composed on one accountant."""

    epsilon: float
    delta: float
    parent: FitSummary  # its epsilon: the histograms' and the parent model's releases, composed
    children: list[FitSummary]  # in the children's order; the last one's epsilon: the whole fit's
    max_rows_per_unit: int  # the most child rows of one unit that trained: the sum of the child tables' bounds

    @property
    def accounting(self) -> str:
        """How the releases were composed (the ledger's accounting): the accountant's method."""
        return self.children[-1].accounting

    @property
    def engine(self) -> str:
        """The DP-SGD engine that trained the models."""
        return self.children[-1].engine

    @property
    def unit(self) -> str | None:
        """The privacy unit: the parent's key (each parent with all its children)."""
        return self.parent.unit

    @property
    def noisy_rows(self) -> int:
        """The DP count of parents."""
        return self.parent.noisy_rows


class LinkedSynthesizer:
    """A parent table and its child tables, fitted and sampled together; epsilon is per parent with all its children
    in every child table."""

    def __init__(
        self,
        *,
        parent_columns: list[Column],
        parent_policies: dict[str, ColumnPolicy],
        parent_key: str,
        children: list[LinkedChild],
        privacy: PrivacyBudget,
        training: Training,
    ) -> None:
        if not children or len({c.name for c in children}) < len(children):
            raise ValueError("a linked fit needs one or more child tables, each with a name of its own")
        self.parent_columns, self.children = parent_columns, children
        declared = parent_policies.get(parent_key, ColumnPolicy())
        key_kind = declared.fake if declared.fake in KEY_KINDS else "id"
        self.parent_policies = parent_policies | {
            parent_key: ColumnPolicy(policy="fake", fake=key_kind)
        }  # never learned
        self.parent_key, self.privacy, self.training = parent_key, privacy, training
        self.parent: DPSynthesizer | None = None
        self.models: list[DPSynthesizer] = []  # one per child table, in the children's order
        self.counts: list[ChildCounts] = []  # one per child table
        # per child table: each sibling column's DP share of a parent's children holding its most common value, and
        # the weight at which sampling mixes in the first sibling's value to reach it (:meth:`_calibrate`)
        self.siblings: list[dict[str, float]] = []
        self.mixes: list[dict[str, float]] = []
        self.summary: LinkedFitSummary | None = None

    def _budget(self, child: int | None) -> PrivacyBudget:
        """A model's budget: the fit's, its privacy unit the parent key: the parent model (``child`` None) keeps one
        row of a key (a key held twice is still one unit), a child model a unit's bounded rows of its table."""
        if child is None:
            return self.privacy.model_copy(update={"unit": self.parent_key, "max_rows_per_unit": 1})
        rows = self.counts[child].max_rows if len(self.counts) > child else None
        return self.privacy.model_copy(update={"unit": self.children[child].foreign_key, "max_rows_per_unit": rows})

    def _shares(self) -> dict[str, float]:
        """Each part's share of the zCDP budget, in the order the parts train: the histograms, the parent model, then
        each child model (``child:<name>``)."""
        each = SHARES["children"] / len(self.children)
        return {"sizes": SHARES["sizes"], "parent": SHARES["parent"]} | {f"child:{c.name}": each for c in self.children}

    def _stages(self, accountant: PrivacyAccountant) -> dict[str, Stage]:
        """Each part's stage on the fit's accountant: the zCDP budget it plans with (its share), what the accountant
        may have composed once it has trained (as for one Gaussian release of the shares so far: Gaussian releases
        compose to one; the last part's target is the budget), and its part of the selection delta (the models'
        only: the histograms select nothing)."""
        delta, epsilon = accountant.delta_composed, self.privacy.epsilon
        whole = bisect_sigma(lambda s: compose_epsilon([Release("budget", s)], delta)[0], epsilon, lo=0.1)
        shares = self._shares()
        models = 1.0 - shares["sizes"]
        stages, so_far = {}, 0.0
        for part, share in shares.items():
            so_far += share
            last = part == list(shares)[-1]
            stages[part] = Stage(
                accountant,
                epsilon=epsilon if last else compose_epsilon([Release("budget", whole / so_far**0.5)], delta)[0],
                rho=share * zcdp_rho(epsilon, delta),
                selection_delta=0.0 if part == "sizes" else accountant.delta_selection * share / models,
            )
        return stages

    def fit(self, parents: pd.DataFrame, children: list[pd.DataFrame]) -> LinkedFitSummary:
        """Fit every model on the real tables (``children`` in the order of :attr:`children`); every use of them is
        inside ``privacy``, per parent with all its children."""
        if len(children) != len(self.children):
            raise ValueError(f"fit() takes {len(self.children)} child frames, one per child table; got {len(children)}")
        # One accountant for the whole fit; a quarter of delta for the models' category and value selections
        accountant = PrivacyAccountant(delta=self.privacy.delta, delta_selection=self.privacy.delta * 0.25)
        stages = self._stages(accountant)
        sizes = stages["sizes"]
        self.counts = [
            self._release_counts(parents, frame, child, sizes, share=1.0 / len(self.children))
            for child, frame in zip(self.children, children, strict=True)
        ]
        augmented = parents.assign(
            **{
                child.count_column: parents[self.parent_key]
                .map(frame[child.foreign_key].value_counts())
                .fillna(0)
                .clip(upper=counts.max_rows)
                .astype("int64")
                for child, frame, counts in zip(self.children, children, self.counts, strict=True)
            }
        )
        count_columns = [Column(child.count_column, ColumnKind.INTEGER, "BIGINT") for child in self.children]
        self.parent = DPSynthesizer(
            [*self.parent_columns, *count_columns],
            self.parent_policies,
            self._budget(None),
            self.training,
            released={  # the histograms' bins, post-processing
                column.name: children_codec(column, counts)
                for column, counts in zip(count_columns, self.counts, strict=True)
            },
            stage=stages["parent"],
        )
        parent_fit = self.parent.fit(augmented)
        self.siblings, self.models = [], []
        for i, (child, frame) in enumerate(zip(self.children, children, strict=True)):
            stage = stages[f"child:{child.name}"]  # the release first: the model's DP-SGD spends what is left
            self.siblings.append(self._release_siblings(child, frame, stage))
            self.models.append(self._fit_child(i, parents, frame, stage))
        self.mixes = self._calibrate()
        fits = [model.summary for model in self.models]
        assert all(fit is not None for fit in fits)
        self.summary = LinkedFitSummary(
            epsilon=accountant.epsilon()[0],  # every release of the fit, composed
            delta=self.privacy.delta,
            parent=parent_fit,
            children=[fit for fit in fits if fit is not None],
            max_rows_per_unit=sum(counts.max_rows for counts in self.counts),
        )
        return self.summary

    def _fit_child(self, i: int, parents: pd.DataFrame, children: pd.DataFrame, stage: Stage) -> DPSynthesizer:
        """The ``i``-th child model: each child row after its parent's learned columns (given, encoded with the parent
        model's released codecs: nothing released twice), and its place among its parent's children when ordered."""
        assert self.parent is not None
        child, bound = self.children[i], self.counts[i].max_rows
        released = {
            PARENT + c.name: codec
            for c, codec in zip(self.parent.learned, self.parent.codecs, strict=True)
            if not c.name.startswith(CHILDREN)
        }
        names = [name.removeprefix(PARENT) for name in released]
        joined = with_parents(children, parents, key=self.parent_key, foreign_key=child.foreign_key, columns=names)
        context_columns = [
            Column(PARENT + c.name, c.kind, c.sql_type, c.timezone) for c in self.parent.learned if c.name in names
        ]
        if child.order_by is not None:  # each child's place among its parent's: given, like the parent's columns
            joined = placed(joined, child.foreign_key, child.order_by, bound=bound, noise=stage.accountant.noise)
            context_columns.append(POSITION_COLUMN)
            released[POSITION] = position_codec(bound)
        model = DPSynthesizer(
            [*child.columns, *context_columns],
            child.policies,
            self._budget(i),
            self.training,
            child.target,
            released=released,
            given=tuple(released),
            stage=stage,
        )
        model.fit(joined)
        return model

    def _release_siblings(self, child: LinkedChild, children: pd.DataFrame, stage: Stage) -> dict[str, float]:
        """How often siblings agree in each of the child's category columns (:attr:`LinkedChild.sibling_columns`), as
        :func:`sibling_agreement` measures it: the mean, over the parents with two or more children holding a value,
        of the share holding the parent's most common one. One release on the child's stage, at
        :data:`SIBLINGS_SHARE` of it: each key (a parent, or a key no parent has: a unit of its own) adds, per
        column, that share and a 1 where it counts (both 0 where not), the whole scaled to norm 1 (sensitivity 1). A
        column whose count of such parents is within the noise is left out."""
        names = [c.name for c in child.sibling_columns]
        if not names:
            return {}
        key = child.foreign_key
        rows = children[children[key].notna()]
        counted = np.zeros((rows[key].nunique(), 2 * len(names)))
        keys = pd.Index(rows[key].unique())
        for k, name in enumerate(names):
            per_parent = rows[[key, name]].dropna().groupby([key, name], observed=True).size().groupby(level=0)
            held, values = per_parent.max(), per_parent.sum()
            many = values[values >= 2].index
            at = keys.get_indexer(many)
            counted[at, k] = (held[many] / values[many]).to_numpy()
            counted[at, len(names) + k] = 1.0
        scale = math.sqrt(2 * len(names))
        sigma = preprocessing_noise(stage.rho, weight=1.0, share=SIBLINGS_SHARE)
        noisy = stage.accountant.gaussian(f"siblings:{child.name}", counted.sum(axis=0) / scale, sigma)
        shares, parents_counted = noisy[: len(names)], noisy[len(names) :]
        return {
            name: float(np.clip(share / count, 0.0, 1.0))
            for name, share, count in zip(names, shares, parents_counted, strict=True)
            if count >= 3.0 * sigma
        }

    def _release_counts(
        self, parents: pd.DataFrame, children: pd.DataFrame, child: LinkedChild, stage: Stage, *, share: float
    ) -> ChildCounts:
        """The DP histogram of one child table's rows per unit (one release; every unit in one bin of one part), on
        the fit's accountant at ``share`` of its stage's zCDP budget."""
        accountant = stage.accountant
        sigma = preprocessing_noise(stage.rho, weight=1.0, share=share)
        key = children[child.foreign_key]
        known = set(parents[self.parent_key].dropna())
        linked = key.isin(known)
        per_parent = key[linked].value_counts().reindex(list(known), fill_value=0)
        orphans = key[~linked & key.notna()].value_counts()
        n_edges, n_groups = len(SIZE_EDGES), len(ORPHAN_GROUPS)
        # One vector: [parents by children (0 children: its own bin), orphan keys by children in a few coarse groups
        # (their total is then far less noisy than over every size bin), NULL-key rows]
        counts = np.zeros(1 + n_edges + n_groups + 1)
        counts[0] = float((per_parent == 0).sum())
        np.add.at(counts, 1 + size_bin(per_parent[per_parent > 0].to_numpy()), 1.0)
        np.add.at(counts, 1 + n_edges + orphan_group(orphans.to_numpy()), 1.0)
        counts[-1] = float(key.isna().sum())
        noisy = accountant.gaussian("children", counts, sigma)
        linked_part, orphan_part = noisy[1 : 1 + n_edges], noisy[1 + n_edges : 1 + n_edges + n_groups]
        linked_sizes = denoised_histogram(linked_part, sigma)
        if linked_sizes.total < 10:
            raise DataValidationError(
                f"too few parents with rows in child table {child.name!r} to learn their relation under this budget"
            )
        bound = self.privacy.max_rows_per_unit or linked_sizes.bound()
        # The shares of children per parent: inside the histogram's reach every bin keeps its noisy count, not only
        # the bins that clear the noise: few parents in each of many small bins (1, 2, 3 children...) would otherwise
        # all come out childless or large, and the sampled children per parent skew high
        reach = max((i + 1 for i, u in enumerate(linked_sizes.units) if u > 0), default=1)
        shares = _within_reach(linked_part, reach, linked_sizes.total)
        return ChildCounts(
            shares,
            _orphan_sizes(orphan_part, shares, sigma),
            float(noisy[-1]) if noisy[-1] >= 3.0 * sigma else 0.0,  # NULL keys only where clear of the noise
            bound,
            max(float(noisy[0]), 0.0),
            accountant.epsilon()[0],
        )

    def sample(self, n_parents: int | None = None, seed: int | None = None) -> tuple[pd.DataFrame, list[pd.DataFrame]]:
        """(parents, children of each child table): ``n_parents`` parents (default: the DP estimate), each with its
        children in every child table drawn conditioned on it, plus the orphan and NULL-key children each table's DP
        histogram counts."""
        if self.parent is None or not self.models or self.parent.summary is None:
            raise RuntimeError("fit() the linked synthesizer before sampling")
        seed = self.training.seed if seed is None else seed
        parents = self._parents(n_parents or self.parent.summary.noisy_rows, seed)
        tables, orphans = [], 0  # integer orphan keys of one table follow the earlier tables': each names no parent
        for i in range(len(self.children)):
            rows, used = self._sample_child(i, parents, seed + 31 * i, orphans)
            tables.append(rows)
            orphans += used
        return parents.drop(columns=[child.count_column for child in self.children]), tables

    def _sample_child(self, i: int, parents: pd.DataFrame, seed: int, skip: int) -> tuple[pd.DataFrame, int]:
        """The ``i``-th child table's rows for the sampled ``parents``: each parent's children conditioned on its row,
        their foreign key the parent's key; then the orphans (their integer keys after the first ``skip``) and NULL-key
        rows. Also how many orphan keys it used."""
        child, model = self.children[i], self.models[i]
        given, families, orphan_rows = self._given(i, parents, seed)
        siblings = self.mixes[i] if i < len(self.mixes) else {}
        rows = model.sample(len(given), seed=seed + 1, given=given, siblings=siblings, groups=families)
        used = int(orphan_rows.max(initial=-1)) + 1
        orphan_keys = self._orphan_keys(parents[self.parent_key], max(used, 1), seed, skip)
        repeat = parents[child.count_column].fillna(0).astype("int64").clip(lower=0).to_numpy()
        keys = pd.concat(
            [
                pd.Series(np.repeat(parents[self.parent_key].to_numpy(dtype=object), repeat), dtype=object),
                pd.Series(orphan_keys.to_numpy()[orphan_rows], dtype=object),
                pd.Series([None] * int((families < 0).sum()), dtype=object),
            ],
            ignore_index=True,
        )
        # the parent key's type (a fake id's integers with NULLs as Int64): published with the same SQL type, they join
        integer = pd.api.types.is_integer_dtype(parents[self.parent_key])
        rows[child.foreign_key] = keys.astype("Int64").array if integer else keys.to_numpy()
        if child.order_by is not None:
            rows[child.order_by] = _in_place_order(rows[child.order_by], given[POSITION], keys)
        return rows, used

    def _given(self, i: int, parents: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
        """What the ``i``-th child model samples from, for ``parents``: the given rows (each parent's columns once per
        child it has, then the orphans' and NULL-key rows with NULL columns; each child's place when ordered), each
        row's family (its parent, or its orphan key: a group too; -1 for a NULL key; a family's rows together), and the
        orphan rows' groups."""
        assert self.parent is not None and self.parent.summary is not None
        child, counts = self.children[i], self.counts[i]
        repeat = parents[child.count_column].fillna(0).astype("int64").clip(lower=0).to_numpy()
        context = parents.loc[parents.index.repeat(repeat)].reset_index(drop=True)
        rng = np.random.default_rng(seed + 11)
        # the orphans and NULL-key rows were counted beside the training parents: as many per parent sampled
        scale = len(parents) / max(self.parent.summary.noisy_rows, 1.0)
        orphan_rows = _group_rows(counts.orphans, counts.max_rows, rng, scale=scale)
        null_rows = round(counts.null_key * scale)
        unlinked = context.iloc[:0].reindex(range(orphan_rows.size + null_rows))  # no parent: its columns NULL
        given = pd.concat([context, unlinked], ignore_index=True).add_prefix(PARENT)
        keyed = np.concatenate([np.repeat(np.arange(len(repeat)), repeat), len(repeat) + orphan_rows])
        if child.order_by is not None:  # each parent's children (each orphan key's) take places 0, 1, ...
            given[POSITION] = np.concatenate([_places(keyed), np.zeros(null_rows, dtype=np.int64)])
        return given, np.concatenate([keyed, np.full(null_rows, -1)]), orphan_rows

    def _calibrate(self) -> list[dict[str, float]]:
        """Each child table's sibling weights (:meth:`_sibling_mixes`), once, on a sample of as many parents as the DP
        count from the fitted models (post-processing), kept with the model: every later sample mixes at them."""
        assert self.parent is not None and self.parent.summary is not None
        seed = self.training.seed + 53
        parents = self._parents(self.parent.summary.noisy_rows, seed)
        mixes = []
        for i in range(len(self.children)):
            given, families, _ = self._given(i, parents, seed)
            keyed = int((families >= 0).sum())
            mixes.append(self._sibling_mixes(i, given.iloc[:keyed], families[:keyed], seed))
        return mixes

    def _sibling_mixes(self, i: int, given: pd.DataFrame, families: np.ndarray, seed: int) -> dict[str, float]:
        """For the ``i``-th child model's ``siblings`` (:meth:`DPSynthesizer.sample`): each sibling column's weight,
        the least at which the synthetic children of a sample of the parents (their rows ``given``, each row's parent in
        ``families``) agree as often as the released share says (:func:`sibling_agreement`; bisection over
        :data:`_MIX_STEPS` samples; 0 where the model alone reaches it, or too few rows to tell). Post-processing: the
        model and the released shares only."""
        shares = self.siblings[i]
        if not shares or len(families) < 2:
            return {}
        rows = int(np.searchsorted(families, families[min(_CALIBRATION_ROWS, len(families)) - 1], side="right"))
        sample, groups = given.iloc[:rows], families[:rows]
        low, high = dict.fromkeys(shares, 0.0), dict.fromkeys(shares, 1.0)
        for step in range(_MIX_STEPS):
            mixes = {n: 0.0 if step == 0 else (low[n] + high[n]) / 2 for n in shares if high[n] > 0}
            if not mixes:  # the model alone agrees as often in every column
                break
            drawn = self.models[i].sample(rows, seed=seed + 97, given=sample, siblings=mixes, groups=groups)
            # RARE stands for many values: siblings that drew it are not known to agree
            drawn = drawn.assign(__family__=groups, **{n: drawn[n].where(drawn[n] != RARE_LABEL) for n in mixes})
            for name, mix in mixes.items():
                if sibling_agreement(drawn, "__family__", name) < shares[name]:
                    low[name] = mix
                else:
                    high[name] = mix
        return {name: (low[name] + high[name]) / 2 for name in shares if high[name] > 0}

    def tables(self) -> tuple[DPSynthesizer, list[DPSynthesizer]]:
        """(parent, each child) models as their published tables see them: the same weights and releases, without the
        helper columns (the parent's children counts, a child's parent columns), for what reads a model per table (the
        scores, the report's plots, the column policies)."""
        assert self.parent is not None and self.models
        return _view(self.parent, lambda name: not name.startswith(CHILDREN)), [
            _view(model, lambda name: not name.startswith(PARENT) and name != POSITION) for model in self.models
        ]

    # -- persistence (no real data: DP releases and DP-trained weights only) ------------------------------------

    def save(self, directory: str | Path) -> Path:
        """Write every model and the released histograms of children per parent to ``directory``."""
        if self.parent is None or not self.models or self.summary is None:
            raise RuntimeError("nothing to save: fit() first")
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        self.parent.save(path / "parent")
        for i, model in enumerate(self.models):
            model.save(path / "children" / str(i))
        state = {
            "format": LINKED_FORMAT,
            "parent_key": self.parent_key,
            "children": [
                {
                    "name": child.name,
                    "foreign_key": child.foreign_key,
                    "target": child.target,
                    "order_by": child.order_by,
                    "counts": asdict(counts),
                    "siblings": siblings,
                    "mixes": mixes,
                }
                for child, counts, siblings, mixes in zip(
                    self.children, self.counts, self.siblings, self.mixes, strict=True
                )
            ],
            "privacy": self.privacy.model_dump(),
            "training": self.training.model_dump(),
            "summary": {"epsilon": self.summary.epsilon, "delta": self.summary.delta},
        }
        (path / "linked.json").write_text(json.dumps(state, indent=1))
        return path

    @classmethod
    def load(cls, directory: str | Path, device: str = "cpu") -> LinkedSynthesizer:
        """A linked generator saved by :meth:`save`, ready to sample (also one saved with a single child table before
        several were possible: format 1)."""
        path = Path(directory)
        state = json.loads((path / "linked.json").read_text())
        refuse_newer_format(state, LINKED_FORMAT, "linked.json")
        parent = DPSynthesizer.load(path / "parent", device)
        if state.get("format", 1) == 1:  # one child: its model in child/, the parent's count column __children__
            keys = {"foreign_key": "foreign_key", "counts": "counts", "order_by": "order_by", "target": "child_target"}
            saved = [{new: state.get(old) for new, old in keys.items()}]
            dirs, old_count = [path / "child"], "__children__"
        else:
            saved, dirs, old_count = (
                state["children"],
                [path / "children" / str(i) for i in range(len(state["children"]))],
                None,
            )
        models = [DPSynthesizer.load(folder, device) for folder in dirs]
        children = [
            LinkedChild(
                name=entry.get("name", "children"),
                columns=[c for c in model.columns if not c.name.startswith(PARENT) and c.name != POSITION],
                foreign_key=entry["foreign_key"],
                policies=model.policies,
                target=entry["target"],
                order_by=entry.get("order_by"),
            )
            for entry, model in zip(saved, models, strict=True)
        ]
        if old_count is not None:  # the old count column under the name the loaded code reads
            parent = _renamed(parent, old_count, children[0].count_column)
        assert parent.summary is not None
        linked = cls(
            parent_columns=[c for c in parent.columns if not c.name.startswith(CHILDREN)],
            parent_policies=parent.policies,
            parent_key=state["parent_key"],
            children=children,
            privacy=PrivacyBudget.model_validate(state["privacy"]),
            training=Training.model_validate(state["training"] | {"device": device}),
        )
        fits = [model.summary for model in models if model.summary is not None]
        assert len(fits) == len(models)
        linked.counts = [_counts_from_state(entry["counts"]) for entry in saved]
        linked.siblings = [entry.get("siblings") or {} for entry in saved]  # none saved before 842e779
        linked.mixes = [entry.get("mixes") or {} for entry in saved]
        linked.parent, linked.models = parent, models
        linked.summary = LinkedFitSummary(
            state["summary"]["epsilon"],
            state["summary"]["delta"],
            parent.summary,
            fits,
            sum(counts.max_rows for counts in linked.counts),
        )
        return linked

    def _orphan_keys(self, parent_keys: pd.Series, n: int, seed: int, skip: int) -> pd.Series:
        """``n`` keys no synthetic parent has, of the parent key's fake kind: integers above the parents' ids (after
        the first ``skip`` of them), or fresh UUIDs."""
        if self.parent_policies[self.parent_key].fake == "uuid":
            return fake_column("uuid", n, seed + 13)
        first = int(parent_keys.max() if len(parent_keys) else 0) + 1 + skip
        return pd.Series(np.arange(n, dtype=np.int64) + first)

    def _parents(self, n: int, seed: int) -> pd.DataFrame:
        """``n`` parents whose children per parent follow each child table's released histogram (post-processing):
        from four times as many of the parent model's, weighted by raking so that every count column's bins hold
        their histogram's shares at once (:func:`rake`), then ``n`` drawn with those weights (:func:`systematic`).
        The model says which parents have many children of each kind, the histograms how many do."""
        assert self.parent is not None
        pool = self.parent.sample(4 * n, seed=seed)
        codecs = dict(zip((c.name for c in self.parent.learned), self.parent.codecs, strict=True))
        margins = []
        for child in self.children:
            codec = codecs[child.count_column]
            assert isinstance(codec, NumericCodec)
            margins.append((codec.encode(pool[child.count_column]), np.asarray(codec.fine_probs, dtype=float)))
        taken = systematic(rake(margins, len(pool)), n, np.random.default_rng(seed + 17))
        return pool.iloc[taken].reset_index(drop=True)


def rake(margins: list[tuple[np.ndarray, np.ndarray]], size: int, iterations: int = 50) -> np.ndarray:
    """Weights of ``size`` rows such that, for each (bin of every row, target shares of the bins), the weighted shares
    of the bins come as close to the targets as the rows allow: iterative proportional fitting from equal weights. A
    bin no row falls in leaves its share to the others; all weights zero (no row in any bin with a share), equal."""
    weights = np.ones(size)
    for _ in range(iterations):
        for bins, target in margins:
            held = np.bincount(bins, weights=weights, minlength=target.size)[: target.size]
            wanted = target / target.sum() * held.sum() if target.sum() > 0 else held
            factor = np.divide(wanted, held, out=np.zeros_like(held), where=held > 0)
            weights = weights * np.append(factor, 0.0)[np.minimum(bins, target.size)]
            if weights.sum() <= 0:
                return np.ones(size)
            weights = weights / weights.sum() * size  # shares the pool lacks never shrink the weights to nothing
    return weights


def systematic(weights: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` distinct row indices (sorted), each row taken with probability ``n`` times its share of the weights (at
    most 1: the heaviest rows are taken first and the rest share what is left), by systematic sampling."""
    weights = np.asarray(weights, dtype=float)
    if not np.isfinite(weights).all() or (weights < 0).any():
        raise ValueError("sampling weights must be finite and non-negative")
    certain = np.zeros(weights.size, dtype=bool)
    while True:  # rows whose share would exceed one draw are taken for certain
        left = n - int(certain.sum())
        rest = np.where(certain, 0.0, weights)
        over = ~certain & (rest * left > rest.sum())
        if not over.any() or left <= 0:
            break
        certain |= over
    left = n - int(certain.sum())
    chosen = np.flatnonzero(certain)
    if left > 0:
        rest = np.where(certain, 0.0, weights)
        if rest.sum() <= 0:
            rest = np.where(certain, 0.0, 1.0)
        cumulative = np.cumsum(rest / rest.sum() * left)
        cumulative[-1] = left  # rounding never leaves the last draw past the end
        points = rng.random() + np.arange(left)
        picked = np.minimum(np.searchsorted(cumulative, points, side="right"), weights.size - 1)
        chosen = np.concatenate([chosen, picked])
    return np.sort(chosen)


def _view(model: DPSynthesizer, published: Callable[[str], bool]) -> DPSynthesizer:
    view = copy.copy(model)
    kept = [(c, k) for c, k in zip(model.learned, model.codecs, strict=True) if published(c.name)]
    view.learned, view.codecs = [c for c, _ in kept], [k for _, k in kept]
    view.columns = [c for c in model.columns if published(c.name)]
    return view


def _renamed(model: DPSynthesizer, old: str, new: str) -> DPSynthesizer:
    """``model`` with its column ``old`` called ``new`` (a format-1 linked model's count column)."""
    view = copy.copy(model)

    def rename(columns: list[Column]) -> list[Column]:
        return [replace(c, name=new) if c.name == old else c for c in columns]

    view.columns, view.learned = rename(model.columns), rename(model.learned)
    view.output_columns = [new if name == old else name for name in model.output_columns]
    return view


def _counts_from_state(state: dict[str, Any]) -> ChildCounts:
    """A saved :class:`ChildCounts` (its histograms as dicts)."""
    hist = {k: SizeHistogram(tuple(state[k]["units"]), state[k]["total"]) for k in ("linked", "orphans")}
    return ChildCounts(**(state | hist))


def children_codec(column: Column, counts: ChildCounts) -> NumericCodec:
    """The parent model's codec for its children (post-processing of the released histogram): one token for no child,
    then one per size bin up to the bound, sampled in the proportions the histogram gives, uniformly inside a bin."""
    highs = [min(high, counts.max_rows) for high in SIZE_EDGES if high < counts.max_rows] + [counts.max_rows]
    edges = np.array([-0.5, 0.5, *(high + 0.5 for high in highs)])
    units = np.asarray(counts.linked.units)
    probs = np.array([counts.childless, *units[: len(highs)]])
    probs[-1] += units[len(highs) :].sum()  # larger units keep the bound's worth of children
    probs = probs / probs.sum() if probs.sum() > 0 else np.full(len(probs), 1.0 / len(probs))
    codec = NumericCodec(column, edges, probs, np.arange(len(probs) + 1), has_nulls=False)
    codec.prior = token_prior(np.append(probs, 0.0), codec.forbidden_tokens)
    return codec


POSITION_COLUMN = Column(POSITION, ColumnKind.INTEGER, "BIGINT")


def with_parents(
    children: pd.DataFrame, parents: pd.DataFrame, *, key: str, foreign_key: str, columns: list[str]
) -> pd.DataFrame:
    """Each child row with its parent's ``columns`` (prefixed :data:`PARENT`), NULL where its ``foreign_key`` is NULL
    or names no parent. A parent whose ``key`` is NULL is no child's parent: pandas matches NaN to NaN, and one such
    parent joined to every NULL-key child put its values in as many clipped gradients (each NULL-key child is a unit of
    its own), from whichever side of the holdout split it was on."""
    context = parents[parents[key].notna()].drop_duplicates(key).set_index(key)[columns]
    return children.join(context.add_prefix(PARENT), on=foreign_key)


def placed(children: pd.DataFrame, key: str, order_by: str, *, bound: int, noise: SecureNoise) -> pd.DataFrame:
    """The rows of ``children`` that train, each with its place among its key's (:data:`POSITION`): each key's rows
    cut to ``bound`` first, drawn as the model's own bound draws them (:func:`bound_units`, from OS entropy), then
    placed among the kept ones. Placed before the cut, a key of 400 children bounded at 24 trained 23 of them at
    places past 23, clipped to the last place, while sampling gives a bounded key's children places 0 to 23."""
    order, sizes = group_units(children[key], noise)
    kept = children.iloc[np.sort(bound_units(order, sizes, bound).rows)]
    return kept.assign(**{POSITION: positions(kept, key, order_by)})


def positions(children: pd.DataFrame, key: str, order_by: str) -> np.ndarray:
    """Each child's place (0, 1, ...) among the children of its key in ``order_by`` (NULLs last); a NULL key's child
    is a unit of its own: place 0."""
    ordered = children.sort_values(order_by, kind="stable", na_position="last")
    place = ordered.groupby(key, sort=False).cumcount()
    return place.reindex(children.index).fillna(0).to_numpy(dtype=np.int64)


def position_codec(bound: int) -> NumericCodec:
    """The child model's codec for a child's place (public: the size bins up to the bound, no release): 0, 1, 2, 3,
    then 4-5, 6-7, 8-11, ... as :data:`SIZE_EDGES` grow."""
    highs = [high - 1 for high in SIZE_EDGES if high < bound] + [bound - 1]
    edges = np.array([-0.5, *(high + 0.5 for high in sorted(set(highs)) if high >= 0)])
    probs = np.full(len(edges) - 1, 1.0 / (len(edges) - 1))
    codec = NumericCodec(POSITION_COLUMN, edges, probs, np.arange(len(probs) + 1), has_nulls=False)
    codec.prior = token_prior(np.append(probs, 0.0), codec.forbidden_tokens)
    return codec


def _places(groups: np.ndarray) -> np.ndarray:
    """Place of each row in its group (groups contiguous): 0, 1, ... from each group's first row."""
    starts = np.r_[True, groups[1:] != groups[:-1]] if groups.size else np.zeros(0, dtype=bool)
    index = np.arange(groups.size)
    return index - np.maximum.accumulate(np.where(starts, index, 0))


def _in_place_order(values: pd.Series, places: pd.Series, keys: pd.Series) -> pd.Series:
    """The sampled ``order_by`` values of each key's children, sorted and handed out in order of place, so a parent's
    children follow their places (post-processing; each child keeps its other values)."""
    frame = pd.DataFrame({"key": keys.to_numpy(), "place": places.to_numpy(), "value": values.to_numpy()})
    linked = frame["key"].notna()
    by_place = frame[linked].sort_values(["key", "place"], kind="stable").index
    by_value = frame[linked].sort_values(["key", "value"], kind="stable", na_position="last").index
    out = values.copy()
    out.iloc[by_place.to_numpy()] = values.iloc[by_value.to_numpy()].to_numpy()
    return out


#: The coarse groups of orphan keys by their children: (fewest, most) children.
ORPHAN_GROUPS = ((1, 2), (3, 4), (5, 16), (17, 64), (65, 256), (257, SIZE_EDGES[-1]))


def orphan_group(sizes: np.ndarray) -> np.ndarray:
    """The :data:`ORPHAN_GROUPS` group of each orphan key's number of children."""
    return np.searchsorted(np.array([high for _, high in ORPHAN_GROUPS]), np.minimum(sizes, SIZE_EDGES[-1]))


def _orphan_sizes(noisy: np.ndarray, linked: SizeHistogram, sigma: float) -> SizeHistogram:
    """Keys no parent has, by their children (post-processing of the coarse groups' noisy counts): none unless the
    groups' noisy sum clears 3.5 times its noise: a 0.02% chance of inventing orphans where there are none (a child
    table whose foreign key the warehouse enforces has none, and its synthetic copy must load there too; at twice the
    noise, one refresh in 40 of such a table published about a hundred dangling rows); each group's count (at least
    0) spread over the size bins inside it in the linked parents' proportions there (evenly where they have none)."""
    if noisy.sum() <= 3.5 * sigma * np.sqrt(noisy.size):
        return SizeHistogram(tuple(0.0 for _ in SIZE_EDGES), 0.0)
    kept = np.maximum(noisy, 0.0) * noisy.sum() / max(np.maximum(noisy, 0.0).sum(), 1e-9)  # scaled to the noisy sum
    units = np.zeros(len(SIZE_EDGES))
    group = orphan_group(np.array(SIZE_EDGES))
    shape = np.asarray(linked.units, dtype=float)
    for g, count in enumerate(kept):
        inside = group == g
        weights = shape[inside] if shape[inside].sum() > 0 else np.ones(int(inside.sum()))
        units[inside] = count * weights / weights.sum()
    return SizeHistogram(tuple(float(u) for u in units), float(units.sum()))


def _within_reach(noisy: np.ndarray, reach: int, total: float) -> SizeHistogram:
    """A histogram of units by size from noisy counts (post-processing): the bins below ``reach`` keep their noisy
    count (at least 0), scaled to sum to ``total`` (the noisy sum, which clipping at 0 would inflate); none beyond."""
    kept = np.where(np.arange(noisy.size) < reach, np.maximum(noisy, 0.0), 0.0)
    if total <= 0 or kept.sum() <= 0:
        return SizeHistogram(tuple(0.0 for _ in noisy), 0.0)
    return SizeHistogram(tuple(float(u) for u in kept * total / kept.sum()), total)


def _group_rows(histogram: SizeHistogram, max_rows: int, rng: np.random.Generator, *, scale: float = 1.0) -> np.ndarray:
    """Group numbers of the rows of ``round(units * scale)`` groups whose sizes follow ``histogram`` (orphan keys)."""
    groups = round(sum(histogram.units) * scale)
    bins = histogram.bins(max_rows)
    if groups <= 0 or not bins:
        return np.zeros(0, dtype=np.int64)
    share = np.array([p for _, _, p in bins])
    chosen = rng.choice(len(bins), size=groups, p=share / share.sum())
    sizes = rng.integers([bins[i][0] for i in chosen], [bins[i][1] + 1 for i in chosen])
    return np.repeat(np.arange(groups, dtype=np.int64), sizes)
