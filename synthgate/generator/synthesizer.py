"""The DP synthesizer: preprocess (DP codecs), fit (DP-SGD with Opacus), sample.

Like SDV's ``BaseSynthesizer`` the three stages are kept apart, and like Opacus's examples
the training loop wires a ``PrivacyEngine`` around a plain model, optimizer and loss. One
:class:`PrivacyAccountant` composes every use of the real data; the figure it reports is the
whole cost of a fit.

Randomness: every draw a DP guarantee rests on (the Gaussian releases of preprocessing, the
Poisson sampling mask, the DP-SGD noise of either engine) comes from OS entropy, fresh for each
fit (:mod:`synthgate.generator.noise`). ``training.seed`` only sets the initial weights, the
sampling of synthetic rows and fake values; two fits of the same data and spec release
different noise. No loss on the real rows leaves a fit (it is not a DP statistic).

With ``privacy.unit`` a person owns several rows: every release and DP-SGD are bounded per unit
(:mod:`synthgate.generator.units`), and the epsilon is per unit. Synthetic rows are drawn one by one; the unit
column is a fake key whose group sizes follow the DP histogram of rows per unit.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from opacus import PrivacyEngine
from torch.utils.data import DataLoader, TensorDataset

from synthgate.columns import from_numeric, joined
from synthgate.cpu_threads import cpu_share
from synthgate.errors import DataValidationError, PrivacyBudgetError, SpecError
from synthgate.generator.accounting import (
    PrivacyAccountant,
    Release,
    Stage,
    default_preprocessing_share,
    preprocessing_noise,
    sgd_noise_for_budget,
    zcdp_epsilon,
    zcdp_rho,
)
from synthgate.generator.codecs import CategoricalCodec, Codec, NumericCodec, codec_from_state
from synthgate.generator.dpsgd import DPSGD, unit_rows
from synthgate.generator.faking import fake_column
from synthgate.generator.network import CONTEXT_WINDOW, AutoregressiveNet, Lift, TokenNLL
from synthgate.generator.noise import SecureNoise
from synthgate.generator.releases import (
    REFIT_WEIGHT,
    UNIT_CATEGORIES,
    CategoryCounts,
    budget_weight,
    categorical_codec,
    fit_numeric,
    locating_weight,
    refit_plan,
    release_categories,
    tie_priority,
)
from synthgate.generator.screening import SCREEN_MIN_COLUMNS, SCREEN_SHARE, screen
from synthgate.generator.units import SIZE_EDGES, SizeHistogram, Units, bound_units, group_units, release_sizes
from synthgate.schema import Column, ColumnKind
from synthgate.spec import KEY_KINDS, ColumnPolicy, PrivacyBudget, Training

log = logging.getLogger(__name__)

MAX_USEFUL_NOISE = 40.0  # beyond this DP-SGD learns nothing useful at any batch size we would pick
_SAMPLE_CHUNK = 16_384  # rows per pass: the context stays in cache (16k: 250k rows/s, 50k: 220k on Adult)
MIN_ROWS = 50  # fewer (DP-estimated) rows (or units) than this: nothing useful can be learned under DP
#: A category column with more released values than this is learned after the other columns it relates to (see
#: :meth:`DPSynthesizer._reading_order`).
LATE_CATEGORIES = 48


@dataclass(frozen=True)
class TrainingPlan:
    """How DP-SGD trains: epochs, batch, steps and the noise that fits what the releases left of the budget."""

    epochs: int
    expected_batch_size: int
    sample_rate: float
    steps: int
    noise_multiplier: float
    preprocessing_noise: float
    preprocessing_releases: int
    preprocessing_share: float = 0.3  # of the zCDP budget (plans saved before it was recorded: the default then)


@dataclass(frozen=True)
class EpochProgress:
    """One finished epoch and the epsilon spent so far (for progress logs)."""

    epoch: int
    epochs: int
    epsilon: float
    seconds: float


@dataclass(frozen=True)
class FitSummary:
    """What a fit spent and how: the accountant's epsilon, the plan, the DP row count, timings."""

    epsilon: float
    delta: float
    accounting: str
    plan: TrainingPlan
    noisy_rows: int
    train_seconds: float
    preprocess_seconds: float
    releases: int
    engine: str  # the DP-SGD engine that ran: "fast" or "opacus"
    cpu_threads: int = 0  # PyTorch's CPU threads when training began (synthgate.cpu_threads; 0: not recorded)
    unit: str | None = None  # the privacy unit's column (None: one row = one individual)
    noisy_units: int = 0  # DP estimate of the units (0 without a unit)
    max_rows_per_unit: int = 0  # the rows of one unit that trained at most (0 without a unit)
    marginal_columns: tuple[str, ...] = ()  # learned columns the dependency screen found in no pair (marginal heads)


@dataclass(frozen=True)
class Encoded:
    """The training rows as tokens, and the DP counts the plan needs."""

    tokens: np.ndarray  # rows x learned columns (16-bit integers, or 32-bit); with a unit, unit by unit
    noisy_rows: float  # DP row count (with a unit: of the bounded rows)
    noisy_units: float  # DP unit count (without a unit: the row count, each row a unit)
    sigma: float  # the noise of a weight-1 release before training
    sizes: np.ndarray | None  # with a unit: the bounded rows of each unit, in ``tokens`` order


def choose_device(requested: str) -> torch.device:
    """The torch device for ``training.device``: ``auto`` takes CUDA when present."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested == "cuda" and not torch.cuda.is_available():
        raise SpecError("training.device is 'cuda' but no CUDA device is available: use 'auto' or 'cpu'")
    return torch.device(requested)


#: The most DP-SGD steps a default plan takes. Small tables take 48-480 steps (6 a pass); a large one reaches its
#: batch cap, and passes beyond this many steps cost time without helping the model: fewer passes also spend the
#: budget on fewer steps, so each gets less noise (800,000 training rows: 8 passes of 98 steps instead of 24).
MAX_DEFAULT_STEPS = 800


def group_leaders(groups: np.ndarray) -> np.ndarray:
    """Each row's group's first row (-1 for a row in no group, ``groups`` -1); a group's rows are together."""
    starts = np.ones(len(groups), dtype=bool)
    starts[1:] = groups[1:] != groups[:-1]
    first = np.maximum.accumulate(np.where(starts, np.arange(len(groups)), 0))
    return np.where(groups >= 0, first, -1)


def default_batch_and_epochs(noisy_rows: float, epsilon: float, batch: int | None = None) -> tuple[int, int]:
    """Batch size (``batch`` when the spec sets it) and epochs from the (DP) row count and epsilon: at most
    :data:`MAX_DEFAULT_STEPS` steps, at least one pass."""
    batch = batch or int(np.clip(noisy_rows / 6.0, 64, 8192))
    epochs = int(np.clip(24 * math.sqrt(epsilon), 8, 80))
    steps_per_epoch = max(1, round(noisy_rows / batch))
    return batch, max(1, min(epochs, MAX_DEFAULT_STEPS // steps_per_epoch))


class DPSynthesizer:
    """Differentially private generator for one table."""

    def __init__(
        self,
        columns: list[Column],
        policies: dict[str, ColumnPolicy],
        privacy: PrivacyBudget,
        training: Training,
        target_column: str | None = None,
        *,
        released: dict[str, Codec] | None = None,
        given: tuple[str, ...] = (),
        stage: Stage | None = None,
    ) -> None:
        self.columns = columns
        # With a stage, this model trains on an accountant shared with others (a linked fit) and plans with its part
        self.stage = stage
        # Codecs released elsewhere (a parent table's, a linked fit's histogram): learned, never released again
        self.released = dict(released or {})
        # Columns modelled first and given when sampling (not sampled, not output): a child table's model conditions
        # on its parent row this way (their codecs are released ones)
        self.given = given
        self.policies = policies
        self.privacy = privacy
        self.training = training
        self.target_column = target_column
        self.unit = privacy.unit
        if self.unit is not None and training.engine == "opacus":
            raise SpecError("privacy.unit needs training.engine 'fast' (Opacus clips rows, not units)")
        self.output_columns = [
            c.name for c in columns if self._policy(c.name).policy != "drop" and c.name not in self.given
        ]
        self.fakes: dict[str, str] = {
            c.name: fake
            for c in columns
            if (fake := self._policy(c.name).fake) and self._policy(c.name).policy == "fake"
        }
        if self.unit is not None:  # the unit identifies a person: a fake key, never learned
            self.fakes[self.unit] = self._policy(self.unit).fake or "id"
        self.rows_per_key: dict[str, float] = {}  # DP estimate of rows per value of each faked key column
        self.unit_sizes: SizeHistogram | None = None  # with a unit: the DP histogram of rows per unit
        self.max_rows_per_unit = 0  # with a unit: the bound on its rows (declared, or chosen from unit_sizes)
        self.preprocessing_share = privacy.preprocessing_share or 0.3  # set from the releases' weight by preprocess
        learned = [
            c for c in columns if self._policy(c.name).policy in (None, "keep", "categorical") and c.name != self.unit
        ]
        learned = [self._as_categorical(c) if self._categorical(c) else c for c in learned]
        # Given columns first, the target last, so its head conditions on every other column.
        self.learned = sorted(learned, key=lambda c: (c.name not in given, c.name == target_column))
        self.codecs: list[Codec] = []
        # Learned columns the dependency screen found in no pair: their heads learn the column's marginal only
        self.independent: list[str] = []
        self.keys_found: list[str] = []  # learned columns the releases showed to be keys: faked (not saved)
        self.network: AutoregressiveNet | None = None
        self.summary: FitSummary | None = None
        self.device = choose_device(training.device)

    def _policy(self, name: str) -> ColumnPolicy:
        return self.policies.get(name, ColumnPolicy())

    def _categorical(self, column: Column) -> bool:
        """Whether a column is learned as categories: declared so, or a number with a declared domain of values
        (learned on its axis, a domain of five amounts came out as any number between them)."""
        return self._policy(column.name).policy == "categorical" or self._numeric_domain(column)

    def _numeric_domain(self, column: Column) -> bool:
        """Whether ``column`` is a number with a declared domain: learned as categories, sampled as its numbers."""
        numbers = column.kind in (ColumnKind.INTEGER, ColumnKind.FLOAT)
        return numbers and self._policy(column.name).categories is not None

    def _number_as_categories(self, name: str) -> bool:
        """Whether the column ``name`` is a number learned as categories (a declared domain, or ``policy:
        categorical``): sampled as its numbers, in its own type, and never RARE (no number of its type)."""
        column = next((c for c in self.columns if c.name == name), None)
        if column is None or column.kind not in (ColumnKind.INTEGER, ColumnKind.FLOAT):
            return False
        return self._categorical(column)

    @staticmethod
    def _as_categorical(column: Column) -> Column:
        return dataclasses.replace(column, kind=ColumnKind.CATEGORICAL)

    # -- preprocess ---------------------------------------------------------------------

    def _release_weight(self) -> tuple[float, int]:
        """(Budget weight of the Gaussian releases before training, columns that select values privately)."""
        weight, selected = 1.0, 0  # 1: the row count (with a unit: half the histogram of rows per unit)
        weight += self.unit is not None  # the histogram's other half
        weight += sum(kind in KEY_KINDS for name, kind in self.fakes.items() if name != self.unit)  # distinct values
        for column in self.learned:
            if column.name in self.released:  # released elsewhere
                continue
            column_weight, selects = self._column_weight(column)
            weight += column_weight
            selected += selects
        reserve = self._refit_reserve()
        return weight + reserve, selected * (2 if reserve else 1)  # a refit may select a column's values again

    def _column_weight(self, column: Column) -> tuple[float, bool]:
        """(The column's budget weight, whether it selects values privately), as the spec declares it."""
        policy = self._policy(column.name)
        return budget_weight(
            column,
            public_bounds=policy.min is not None and policy.max is not None,
            public_domain=policy.categories is not None,
        )

    def _refit_reserve(self) -> float:
        """The refit reserve's weight (:func:`refit_plan`): :data:`REFIT_WEIGHT` for each column of private categories
        this model releases (from the schema and the spec only)."""
        private = sum(
            not column.kind.is_numeric and self._column_weight(column)[1]
            for column in self.learned
            if column.name not in self.released
        )
        return REFIT_WEIGHT * private

    def preprocess(self, data: pd.DataFrame, accountant: PrivacyAccountant) -> Encoded:
        """Release the codecs under DP (noise from the accountant's OS-entropy source) and encode the rows."""
        if not self.learned:
            raise DataValidationError("no column is left to learn: every column is dropped or faked")
        weight, selected = self._release_weight()
        self.preprocessing_share = self.privacy.preprocessing_share or default_preprocessing_share(len(self.learned))
        sigma = preprocessing_noise(self._rho(accountant), weight=weight, share=self.preprocessing_share)
        units = self._bound_units(data, sigma, accountant) if self.unit is not None else None
        if units is None:
            noisy_rows = max(float(accountant.gaussian("row-count", np.array([len(data)], dtype=float), sigma)[0]), 1)
            noisy_units = noisy_rows
        else:  # both counts from the histogram of rows per unit; units weigh 1 in every release and train as one
            data = data.iloc[units.rows].reset_index(drop=True)
            assert self.unit_sizes is not None
            noisy_rows, noisy_units = self.unit_sizes.rows(self.max_rows_per_unit), self.unit_sizes.total
        # the noise of that count: the row count's, or about that of the histogram's bins that hold units
        rows_noise = sigma if units is None else sigma * math.sqrt(len(SIZE_EDGES) / 2.0)
        bound = max(self.max_rows_per_unit, 1)  # the most rows one individual moves
        _check_rows(noisy_units, self.privacy.delta, "units" if units is not None else "rows")
        codes = units.codes if units is not None else None
        # a unit can split its weight over its rows' values: up to ``bound`` of them, or UNIT_CATEGORIES for categories
        selection_delta = self._selection_delta(accountant) / max(selected, 1) / bound
        category_delta = selection_delta * bound / min(bound, UNIT_CATEGORIES)
        ties = f"{accountant.noise.integer():016x}" if codes is not None else ""  # a unit's ties' key (this fit only)
        self.rows_per_key = {
            name: _rows_per_key(name, data[name], noisy_rows, sigma, accountant, bound)
            for name, kind in self.fakes.items()
            if kind in KEY_KINDS and name != self.unit
        }

        first: dict[str, CategoryCounts] = {}  # each column's released counts, until the codecs are fitted
        ranges: dict[str, tuple[np.ndarray, float]] = {}  # a number's range release (grid counts, noise), for its refit

        def fit(column: Column, weight: float | None = None) -> Codec:
            """The column's releases at its budget weight, or at ``weight`` in all (a refit)."""
            if column.name in self.released:
                return self.released[column.name]
            policy = self._policy(column.name)
            scaled = sigma if weight is None else sigma * math.sqrt(self._column_weight(column)[0] / weight)
            if column.kind.is_numeric:
                numeric = fit_numeric(
                    column,
                    data[column.name],
                    public_min=policy.min,
                    public_max=policy.max,
                    n_rows=noisy_units,
                    n_coarse=self.training.numeric_bins,
                    sigma=scaled,
                    selection_delta=selection_delta,
                    accountant=accountant,
                    units=codes,
                    earlier_range=ranges.get(column.name),  # a refit: combined with the first range release
                )
                if numeric.range_grid is not None:
                    ranges[column.name] = numeric.range_grid
                return numeric
            released = release_categories(
                column,
                data[column.name],
                public_categories=policy.categories,
                sigma=scaled,
                accountant=accountant,
                units=codes,
                priority=None if codes is None else tie_priority(data[self.unit], data[column.name], ties),
            )
            if column.name in first:  # a refit: the first counts and these weigh as one release of both weights
                released = first[column.name].combined(released)
            first[column.name] = released
            codec = categorical_codec(
                column, released, n_rows=noisy_units, rows_noise=rows_noise, selection_delta=category_delta
            )
            if self._number_as_categories(column.name):  # its released values only: RARE is no number
                codec.has_rare = False
            return codec

        self.codecs = [fit(column) for column in self.learned]
        self._refit(fit, sigma)
        self._fake_unreleasable_keys()
        if not self.learned:
            raise DataValidationError("no column is left to learn: every column is dropped, faked or a key")
        # The smallest integers that hold every column's tokens (a few hundred each): a 10M-row table's tokens as
        # 64-bit integers were 1.2 GB, as 16-bit 0.3 GB. A batch is made 64-bit as it is drawn (:meth:`_train`).
        widest = max(codec.n_tokens for codec in self.codecs)
        tokens = np.empty((len(data), len(self.learned)), dtype=np.int16 if widest <= 2**15 else np.int32)
        for j, (column, codec) in enumerate(zip(self.learned, self.codecs, strict=True)):
            tokens[:, j] = codec.encode(data[column.name])
        sizes = units.sizes if units is not None else None
        self._screen(tokens, noisy_units, sizes, accountant)
        return Encoded(self._reading_order(tokens), noisy_rows, noisy_units, sigma, sizes)

    def _reading_order(self, tokens: np.ndarray) -> np.ndarray:
        """The learned columns (and ``tokens``' columns) in the order the network reads them: given columns first; then
        the columns in a clear pair (after a screen), the categories of more than :data:`LATE_CATEGORIES` released
        values last among them; then the marginal ones; the target last.

        The heads that learn read only columns that relate (the target too, :meth:`_last_reads`): on the 55-column
        credit file, reading the 49 marginal columns as well held TSTR at 0.77-0.82 against 0.81-0.84 (TRTR 0.844) in
        ten runs since. A category of many values learned first reaches the later heads through its embedding, whose
        rows DP-SGD trains only on their few rows each, under noise on all of them; learned after the numbers it
        relates to, its head's output layer learns from every row. Flights' destinations (56 released) then keep
        their distances (mean error over the 15 largest 45-68 miles against 271, real spread 7): the table's quality
        0.869 and 0.871 against 0.855 and 0.858, Minneapolis's (87 neighbourhoods) 0.932 and 0.933 against 0.927
        and 0.941 (`benchmarks/real_tables.py --tables flights credit mpls_stops`, two runs each side, with the bar
        at 24: on those two tables the same columns as at 48); at 24 the credit file's 31 states moved too and its
        quality fell from 0.860 and 0.881 to 0.850 and 0.852, so the bar is above them."""

        def late(j: int) -> bool:
            codec = self.codecs[j]
            return isinstance(codec, CategoricalCodec) and len(codec.categories) > LATE_CATEGORIES

        order = sorted(
            range(len(self.learned)),
            key=lambda j: (
                self.learned[j].name not in self.given,
                self.learned[j].name == self.target_column,
                self.learned[j].name in self.independent,
                late(j),
            ),
        )
        self.learned = [self.learned[j] for j in order]
        self.codecs = [self.codecs[j] for j in order]
        return tokens[:, order]

    def _last_reads(self) -> int | None:
        """The slots the last head (the target's) reads: the start and the columns in a clear pair, which come first;
        None for all (no screen, or one that found no pair: too few rows for so many columns to tell)."""
        if len(self.learned) - len(self.independent) <= 1 or self.learned[-1].name != self.target_column:
            return None
        return len(self.learned) - len(self.independent)  # the start's slot and the target's own, which it never reads

    def _refit(self, fit: Callable[[Column, float], Codec], sigma: float) -> None:
        """Spend the refit reserve (:func:`refit_plan`): the numbers not located whose released values outnumber
        that estimate's noise and that the numbers' share could locate are released again at an equal part of it, the
        categories whose first release left rows RARE at the rest (with none, the columns of private categories). A
        number's range is combined with its first, its other releases are made anew; a category's counts are
        combined with the first. ``sigma``: a weight-1 release's noise."""
        own = [
            (c, codec)
            for c, codec in zip(self.learned, self.codecs, strict=True)
            if c.name not in self.released and not (isinstance(codec, CategoricalCodec) and codec.public)
        ]  # a released codec (a linked parent's) is not this model's to release again
        # the fallback: the columns of private categories, keys to be faked only where every one is
        categories = [(c.name, self._faked_key(c, codec)) for c, codec in own if isinstance(codec, CategoricalCodec)]
        needs = {
            c.name: locating_weight(c, codec.unplaced, sigma=sigma, column_weight=self._column_weight(c)[0])
            for c, codec in own
            # released rows less NULLs, each of noise sigma: past that noise, not a column of NULLs only
            if isinstance(codec, NumericCodec) and not codec.has_values and codec.unplaced > sigma * math.sqrt(2.0)
        }
        plan = refit_plan(
            {c.name: codec.unplaced for c, codec in own if isinstance(codec, CategoricalCodec)},
            reserve=self._refit_reserve(),
            fallback=[name for name, key in categories if not key] or [name for name, _ in categories],
            needs=needs,
        )
        for i, column in enumerate(self.learned):
            if column.name in plan:
                self.codecs[i] = fit(column, plan[column.name])  # the first releases stay spent
        if plan:
            log.info("refit: the releases of %s were made again with the reserve", ", ".join(plan))
        for column, codec in zip(self.learned, self.codecs, strict=True):
            if isinstance(codec, NumericCodec) and not codec.has_values:
                log.warning("column %s: too few values to locate under this budget: sampled as NULL", column.name)

    def _screen(
        self, tokens: np.ndarray, noisy_units: float, sizes: np.ndarray | None, accountant: PrivacyAccountant
    ) -> None:
        """On a wide table, find the columns that depend on no other (:mod:`screening`): their heads learn only their
        marginal. Not with Opacus (it trains every parameter), a child table's given columns, or a spec that leaves
        DP-SGD less than a fifth of the budget."""
        self.independent = []
        # wide by the schema: the columns learned before DP releases made some keys (a choice made on released
        # counts would pick whether the screen runs, and so the noise DP-SGD composes with, adaptively)
        wide = len(self.learned) + len(self.keys_found) >= SCREEN_MIN_COLUMNS
        fast = self.training.engine == "fast"
        room = self.preprocessing_share + SCREEN_SHARE <= 0.8
        if not wide or not fast or not room or self.given or any(codec.prior is None for codec in self.codecs):
            return
        sigma = preprocessing_noise(self._rho(accountant), weight=1.0, share=SCREEN_SHARE)
        weights = None if sizes is None else np.repeat(1.0 / sizes, sizes)
        depends = screen(tokens, self.codecs, rows=noisy_units, accountant=accountant, sigma=sigma, weights=weights)
        self.preprocessing_share += SCREEN_SHARE
        self.independent = [
            c.name
            for c, related in zip(self.learned, depends, strict=True)
            if not related and c.name != self.target_column
        ]
        log.info(
            "dependency screen: %d of %d learned columns are in a clear pair and train with the target; the heads of "
            "the other %d learn their marginals only",
            len(self.learned) - len(self.independent) - (self.target_column is not None),
            len(self.learned),
            len(self.independent),
        )

    def _bound_units(self, data: pd.DataFrame, sigma: float, accountant: PrivacyAccountant) -> Units:
        """Group the rows by unit, release the DP histogram of rows per unit, and bound each unit's rows (declared,
        or chosen from that histogram: :meth:`SizeHistogram.bound`)."""
        assert self.unit is not None
        if self.unit not in data.columns:
            raise SpecError(f"privacy.unit {self.unit!r} is not a column of the source table")
        order, sizes = group_units(data[self.unit], accountant.noise)
        self.unit_sizes = release_sizes(sizes, sigma / math.sqrt(2.0), accountant)  # weight 2: the row count's too
        self.max_rows_per_unit = self.privacy.max_rows_per_unit or self.unit_sizes.bound()
        log.info("privacy unit %s: at most %d rows of each unit train", self.unit, self.max_rows_per_unit)
        return bound_units(order, sizes, self.max_rows_per_unit)

    def _fake_unreleasable_keys(self) -> None:
        """A categorical column nearly all of whose rows hold values too rare to release is a key (a case number shared
        by a few rows, a free-form reference): it is faked, never learned or scored, instead of coming out as
        ``_RARE_`` (a decision on DP releases only). A column the spec declares ``policy: categorical`` stays."""
        keep = []
        for column, codec in zip(self.learned, self.codecs, strict=True):
            if self._faked_key(column, codec):
                self.fakes[column.name] = "uuid"
                self.keys_found.append(column.name)
                log.info("column %s: most rows hold values too rare to release, so it is a key: faked", column.name)
            else:
                keep.append((column, codec))
        self.learned, self.codecs = [c for c, _ in keep], [k for _, k in keep]

    def _faked_key(self, column: Column, codec: Codec) -> bool:
        """Whether a key-like column is faked: unless the spec declares it ``policy: categorical``, it is released
        elsewhere, or it is the target."""
        declared = self._policy(column.name).policy == "categorical" or column.name in self.released  # decided
        key = isinstance(codec, CategoricalCodec) and codec.key_like and not declared
        return key and column.name != self.target_column

    @property
    def repeating_keys(self) -> list[str]:
        """Faked keys whose DP count of distinct values shows them repeating, and the privacy unit: sampled with
        repeats, not unique."""
        repeating = [name for name, per_key in self.rows_per_key.items() if per_key > 1.0]
        return repeating + ([self.unit] if self.unit is not None and self.max_rows_per_unit != 1 else [])

    @property
    def unreleased(self) -> list[str]:
        """Learned columns whose values the budget could not locate: sampled as NULL (logged when fitted)."""
        return [
            c.name
            for c, k in zip(self.learned, self.codecs, strict=True)
            if isinstance(k, NumericCodec) and not k.has_values
        ]

    # -- fit ----------------------------------------------------------------------------

    def _rho(self, accountant: PrivacyAccountant) -> float:
        """The zCDP budget this model plans its releases and training with: the whole budget's, or its stage's."""
        return self.stage.rho if self.stage is not None else zcdp_rho(self.privacy.epsilon, accountant.delta_composed)

    def _selection_delta(self, accountant: PrivacyAccountant) -> float:
        """The delta this model's category and value selections share: the accountant's, or its stage's part."""
        return self.stage.selection_delta if self.stage is not None else accountant.delta_selection

    def _target_epsilon(self) -> float:
        """What the accountant may have composed once this model has trained."""
        return self.stage.epsilon if self.stage is not None else self.privacy.epsilon

    def plan(self, accountant: PrivacyAccountant, noisy_examples: float, preprocessing_sigma: float) -> TrainingPlan:
        """Batch, epochs and the smallest DP-SGD noise whose epsilon, with every release recorded, fits the budget.

        ``noisy_examples``: the DP count of rows, or with a privacy unit of units (the batch is then in units)."""
        # its own part of the budget, as one model's epsilon (a single table's: its epsilon, exactly)
        own = self.privacy.epsilon if self.stage is None else zcdp_epsilon(self.stage.rho, accountant.delta_composed)
        batch, epochs = default_batch_and_epochs(noisy_examples, own, self.training.batch_size)
        target = self._target_epsilon()
        epochs = self.training.epochs or epochs
        steps_per_epoch = max(1, round(noisy_examples / batch))
        sample_rate = min(1.0, 1.0 / steps_per_epoch)
        steps = epochs * steps_per_epoch
        if self.training.noise_multiplier is not None:
            noise = self.training.noise_multiplier
            spent = accountant.epsilon([Release("dp-sgd", noise, sample_rate, steps)])[0]
            if spent > target:
                raise PrivacyBudgetError(
                    f"training.noise_multiplier {noise:g} spends epsilon {spent:.3f} with preprocessing, "
                    f"over the budget {target:g}{' (the linked fit, up to this model)' if self.stage else ''}: "
                    "raise the noise, lower epochs, or drop the override"
                )
        else:
            noise = sgd_noise_for_budget(accountant, target, sample_rate, steps)
        if noise > MAX_USEFUL_NOISE:
            raise PrivacyBudgetError(
                f"epsilon {own:.3g} is too small to train on about {noisy_examples:.0f} rows (or "
                f"units): DP-SGD would need noise multiplier {noise:.1f} (at most {MAX_USEFUL_NOISE:g} is useful). "
                "Raise epsilon, declare public domains for columns, or use more rows"
            )
        return TrainingPlan(
            epochs=epochs,
            expected_batch_size=max(1, round(noisy_examples * sample_rate)),
            sample_rate=sample_rate,
            steps=steps,
            noise_multiplier=noise,
            preprocessing_noise=preprocessing_sigma,
            preprocessing_share=self.preprocessing_share,
            preprocessing_releases=len(accountant.releases),
        )

    def fit(self, data: pd.DataFrame, progress: Callable[[EpochProgress], None] | None = None) -> FitSummary:
        """Fit on the real rows; every use of them is inside ``privacy``. Returns the accounting summary."""
        started = time.perf_counter()
        # The seed sets the initial weights only (no secrecy needed). Every DP draw comes from the
        # accountant's SecureNoise (OS entropy, fresh per fit) or a torch generator made by it.
        torch.manual_seed(self.training.seed)
        _, selected = self._release_weight()
        accountant = (
            self.stage.accountant
            if self.stage is not None
            else PrivacyAccountant(
                delta=self.privacy.delta, delta_selection=self.privacy.delta * 0.25 if selected else 0.0
            )
        )
        encoded = self.preprocess(data, accountant)
        plan = self.plan(accountant, encoded.noisy_units, encoded.sigma)
        preprocess_seconds = time.perf_counter() - started
        log.info(
            "training plan: %d epochs, expected batch %d, noise multiplier %.3f, %d steps",
            plan.epochs,
            plan.expected_batch_size,
            plan.noise_multiplier,
            plan.steps,
        )
        started = time.perf_counter()
        sizes = None if encoded.sizes is None else torch.as_tensor(encoded.sizes, dtype=torch.long)
        threads = self._train(torch.as_tensor(encoded.tokens), sizes, plan, accountant, progress)
        accountant.record(Release("dp-sgd", plan.noise_multiplier, plan.sample_rate, plan.steps))
        epsilon, method = accountant.epsilon()
        self.summary = FitSummary(
            epsilon=epsilon,
            delta=self.privacy.delta,
            accounting=method,
            plan=plan,
            noisy_rows=round(encoded.noisy_rows),
            train_seconds=time.perf_counter() - started,
            preprocess_seconds=preprocess_seconds,
            releases=len(accountant.releases),
            engine=self.training.engine,
            cpu_threads=threads,
            unit=self.unit,
            noisy_units=round(encoded.noisy_units) if self.unit is not None else 0,
            max_rows_per_unit=self.max_rows_per_unit,
            marginal_columns=tuple(self.independent),
        )
        return self.summary

    def _train(
        self,
        tokens: torch.Tensor,
        sizes: torch.Tensor | None,
        plan: TrainingPlan,
        accountant: PrivacyAccountant,
        progress: Callable[[EpochProgress], None] | None,
    ) -> int:
        """Train the network; returns the CPU threads it started on. ``sizes``: with a unit, the rows of each unit
        (``tokens`` laid out unit by unit); Poisson sampling then picks units."""
        cards = [codec.n_tokens for codec in self.codecs]
        ordinal = [isinstance(codec, NumericCodec) for codec in self.codecs]
        model = AutoregressiveNet(
            cards, self.training.embedding_dim, self.training.hidden_dim, ordinal, last_reads=self._last_reads()
        )
        for j, (column, codec) in enumerate(zip(self.learned, self.codecs, strict=True)):
            if column.name in self.independent and codec.prior is not None:
                model.fix_marginal(j, torch.as_tensor(codec.prior, dtype=torch.float32))
        model = model.to(self.device)
        optimizer = torch.optim.Adam(model.parameters(), lr=self.training.learning_rate)
        weights = self._loss_weights()
        step: Callable[..., None] = (
            self._opacus_step(model, optimizer, tokens, plan, weights)
            if self.training.engine == "opacus"
            else DPSGD(
                model,
                optimizer,
                plan.noise_multiplier,
                self.training.max_grad_norm,
                plan.expected_batch_size,
                weights,
                self._full_weight_rows(),
            ).step
        )  # its noise generator is seeded from OS entropy
        tokens = tokens.to(self.device)
        n = tokens.shape[0] if sizes is None else sizes.shape[0]
        starts = None if sizes is None else torch.cumsum(sizes, 0) - sizes
        sampler = SecureNoise.torch_generator("cpu")  # Poisson sampling: part of the DP guarantee, OS entropy
        steps_per_epoch = plan.steps // plan.epochs
        average = WeightAverage(model, self.training.ema_decay) if self.training.ema_decay > 0 else None
        with cpu_share("training") as threads:
            for epoch in range(1, plan.epochs + 1):
                began = time.perf_counter()
                for _ in range(steps_per_epoch):
                    threads.adjust()
                    mask = torch.rand(n, generator=sampler) < plan.sample_rate  # Poisson sampling (of units)
                    if sizes is None or starts is None:
                        step(tokens[mask.to(self.device)].long())
                    else:
                        step(tokens[unit_rows(starts[mask], sizes[mask]).to(self.device)].long(), sizes[mask])
                    if average is not None:
                        average.update()
                if progress is not None:
                    done = Release("dp-sgd", plan.noise_multiplier, plan.sample_rate, epoch * steps_per_epoch)
                    spent = accountant.epsilon([done])[0]
                    progress(EpochProgress(epoch, plan.epochs, spent, time.perf_counter() - began))
        if average is not None:
            average.apply()
        self.network = model.eval()
        return threads.first.threads

    def _full_weight_rows(self) -> int:
        """With a unit: the rows up to which a unit weighs as its rows do in DP-SGD, the median row's unit size in
        the released histogram of rows per unit (post-processing); 1 without."""
        if self.unit_sizes is None:
            return 1
        return self.unit_sizes.median_row_size(self.max_rows_per_unit)

    def _loss_weights(self) -> list[float]:
        """The target's weight, 0 for given columns (never sampled: their heads would only take clipping norm)."""
        return [
            0.0 if c.name in self.given else self.training.target_weight if c.name == self.target_column else 1.0
            for c in self.learned
        ]

    def _opacus_step(
        self,
        model: AutoregressiveNet,
        optimizer: torch.optim.Optimizer,
        tokens: torch.Tensor,
        plan: TrainingPlan,
        weights: list[float],
    ) -> Callable[[torch.Tensor], None]:
        """The reference engine: Opacus's PrivacyEngine with ghost clipping (same mechanism).

        Its noise comes from ``noise_generator`` (OS entropy): Opacus 1.6 passes it to the DPOptimizer,
        whose ``add_noise`` draws every ``torch.normal`` from it; without it Opacus would use torch's
        global generator, which ``training.seed`` seeds. ``secure_mode`` is not used (it needs torchcsprng).
        """
        # The loader only tells Opacus the sample rate: batches come from the Poisson mask in _train.
        loader = DataLoader(TensorDataset(tokens), batch_size=max(1, plan.expected_batch_size))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            private_model, private_optimizer, criterion, _ = PrivacyEngine(accountant="prv").make_private(
                module=model,
                optimizer=optimizer,
                data_loader=loader,
                criterion=TokenNLL(weights=weights),
                noise_multiplier=plan.noise_multiplier,
                max_grad_norm=self.training.max_grad_norm,
                grad_sample_mode="ghost",
                poisson_sampling=True,
                noise_generator=SecureNoise.torch_generator(self.device),
            )
        private_optimizer.expected_batch_size = plan.expected_batch_size
        warnings.filterwarnings("ignore", message="Full backward hook is firing", category=UserWarning)

        def step(batch: torch.Tensor) -> None:
            private_optimizer.zero_grad(set_to_none=True)
            if batch.shape[0] == 0:
                # Opacus's ghost clipping cannot run an empty batch, but the mechanism the accountant composes still
                # steps: the sum of no clipped gradients plus noise. A skipped step would leave the weights exactly
                # unchanged, which a batch holding one more record never does (probability (1 - q)^n a step)
                for parameter in model.parameters():
                    if parameter.requires_grad:
                        parameter.grad = torch.zeros_like(parameter)
            else:
                criterion(private_model(batch), batch).backward()  # the loss stays here: it is not DP
            private_optimizer.step()

        return step

    # -- sample -------------------------------------------------------------------------

    def sample(
        self,
        n: int,
        seed: int | None = None,
        *,
        given: pd.DataFrame | None = None,
        siblings: dict[str, float] | None = None,
        groups: np.ndarray | None = None,
    ) -> pd.DataFrame:
        """``n`` synthetic rows in the source's column order (dropped and given columns left out). ``given``: one row
        of the given columns for each row to sample (``n`` is then its length), which the rows are conditioned on.
        ``groups``: each row's group (a parent's children, together; -1: none); ``siblings``: a weight for learned
        category columns: each row of a group but its first takes the value the first drew (where that is a released
        category) with that probability, else draws as the network says (:class:`network.Lift`)."""
        if self.network is None:
            raise RuntimeError("fit() or load() the synthesizer before sampling")
        seed = self.training.seed if seed is None else seed
        rng = np.random.default_rng(seed + 7)
        generator = torch.Generator(device=self.device).manual_seed(seed)
        pieces: dict[str, list[pd.Series]] = {c.name: [] for c in self.learned if c.name not in self.given}
        forbidden = [codec.forbidden_tokens for codec in self.codecs]
        fixed = None
        if given is not None:
            n = len(given)
            encoded = [
                codec.encode(given[c.name].reset_index(drop=True))
                for c, codec in zip(self.learned, self.codecs, strict=True)
                if c.name in self.given
            ]
            fixed = torch.as_tensor(np.stack(encoded, axis=1), dtype=torch.long, device=self.device)
        leaders = None if groups is None or not siblings else group_leaders(groups)
        lifts = self._lifts(siblings or {}, leaders)
        # chunks start where a group does: a group's later rows take its first row's values
        cuts = {0} | {
            b if leaders is None or leaders[b] < 0 else int(leaders[b]) for b in range(_SAMPLE_CHUNK, n, _SAMPLE_CHUNK)
        }
        bounds = [*sorted(cuts), n] if n else []
        with cpu_share("sampling") as threads:
            for start, stop in itertools.pairwise(bounds):
                threads.adjust()
                size = stop - start
                prefix = None if fixed is None else fixed[start : start + size]
                chunk_lifts = {j: lift.rows(start, start + size) for j, lift in lifts.items()}
                tokens = self.network.sample(size, generator, self.device, forbidden, prefix, chunk_lifts).cpu().numpy()
                for j, (c, codec) in enumerate(zip(self.learned, self.codecs, strict=True)):
                    if c.name not in self.given:
                        pieces[c.name].append(codec.decode(tokens[:, j], rng))
        columns = joined(pieces)  # a column at a time: 10M sampled rows are gigabytes, their chunks as many again
        for column in self.columns:  # a number drawn as categories: its numbers in its own type
            if column.name in columns and self._number_as_categories(column.name):
                drawn = pd.to_numeric(columns[column.name], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
                columns[column.name] = from_numeric(drawn, column)
        for name, kind in self.fakes.items():
            sizes = self.unit_sizes.bins(self.max_rows_per_unit) if name == self.unit and self.unit_sizes else None
            columns[name] = fake_column(kind, n, seed, self.rows_per_key.get(name, 1.0), group_sizes=sizes)
        return pd.DataFrame({name: columns[name] for name in self.output_columns}, copy=False)

    def _lifts(self, siblings: dict[str, float], leaders: np.ndarray | None) -> dict[int, Lift]:
        """For :meth:`sample`'s ``siblings``: each lifted column's index and its :class:`Lift` (``leaders``: each row's
        group's first row, :func:`group_leaders`)."""
        if leaders is None:
            return {}
        first = torch.as_tensor(leaders, dtype=torch.long, device=self.device)
        return {
            j: Lift(siblings[column.name], first, shared=codec.rare_token)
            for j, (column, codec) in enumerate(zip(self.learned, self.codecs, strict=True))
            if column.name in siblings and isinstance(codec, CategoricalCodec)
        }

    # -- persistence (no real data: only DP releases and DP-trained weights) -------------

    def save(self, directory: str | Path) -> Path:
        """Write the codecs (released statistics), the weights and the fit summary to ``directory``."""
        if self.network is None:
            raise RuntimeError("nothing to save: fit() first")
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        state: dict[str, Any] = {
            "format": SAVED_FORMAT,
            "columns": [asdict(c) | {"kind": c.kind.value} for c in self.columns],
            "learned": [asdict(c) | {"kind": c.kind.value} for c in self.learned],
            "codecs": [codec.to_state() for codec in self.codecs],
            "policies": {k: v.model_dump() for k, v in self.policies.items()},
            "privacy": self.privacy.model_dump(),
            "training": self.training.model_dump(),
            "target_column": self.target_column,
            "given": list(self.given),
            "fakes": self.fakes,
            "rows_per_key": self.rows_per_key,
            "unit_sizes": None if self.unit_sizes is None else asdict(self.unit_sizes),
            "max_rows_per_unit": self.max_rows_per_unit,
            "summary": _summary_dict(self.summary),
        }
        (path / "synthesizer.json").write_text(json.dumps(state, indent=1))
        torch.save(self.network.state_dict(), path / "weights.pt")
        return path

    @classmethod
    def load(cls, directory: str | Path, device: str = "cpu") -> DPSynthesizer:
        """A generator saved by :meth:`save`, ready to sample."""
        path = Path(directory)
        state = json.loads((path / "synthesizer.json").read_text())
        refuse_newer_format(state, SAVED_FORMAT, "synthesizer.json")
        columns = [_column_from_state(c) for c in state["columns"]]
        training = Training.model_validate(state["training"] | {"device": device})
        synth = cls(
            columns,
            {k: ColumnPolicy.model_validate(v) for k, v in state["policies"].items()},
            PrivacyBudget.model_validate(state["privacy"]),
            training,
            state["target_column"],
        )
        synth.learned = [_column_from_state(c) for c in state["learned"]]
        synth.codecs = [codec_from_state(c, s) for c, s in zip(synth.learned, state["codecs"], strict=True)]
        synth.given = tuple(state.get("given", ()))
        synth.output_columns = [name for name in synth.output_columns if name not in synth.given]
        synth.fakes = state.get("fakes", synth.fakes)
        synth.rows_per_key = state.get("rows_per_key", {})
        sizes = state.get("unit_sizes")
        synth.unit_sizes = SizeHistogram(tuple(sizes["units"]), sizes["total"]) if sizes else None
        synth.max_rows_per_unit = state.get("max_rows_per_unit", 0)
        weights = torch.load(path / "weights.pt", map_location=synth.device, weights_only=True)
        cards = [codec.n_tokens for codec in synth.codecs]
        # a head reads at most CONTEXT_WINDOW slots (the last reads all); one saved before that limit is wider
        widest = max((weights[f"hidden.{j}.weight"].shape[1] for j in range(len(cards) - 1)), default=0)
        window = max(CONTEXT_WINDOW, widest // training.embedding_dim)
        last_reads = weights[f"hidden.{len(cards) - 1}.weight"].shape[1] // training.embedding_dim
        network = AutoregressiveNet(
            cards, training.embedding_dim, training.hidden_dim, window=window, last_reads=last_reads
        )
        network.load_state_dict(weights)
        synth.summary = _summary_from_dict(state.get("summary"))
        marginal = synth.summary.marginal_columns if synth.summary is not None else ()
        network.marginal = {j for j, column in enumerate(synth.learned) if column.name in marginal}
        synth.network = network.to(synth.device).eval()
        return synth


class WeightAverage:
    """Exponential moving average of a model's weights: post-processing of the DP iterates, so free.

    The decay warms up as (1 + t) / (10 + t), so a short run is not averaged with its initial weights.
    """

    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        self.params = list(model.parameters())
        self.decay = decay
        self.updates = 0
        self.average = [p.detach().clone() for p in self.params]

    @torch.no_grad()
    def update(self) -> None:
        """Move the average towards the current weights (after each optimizer step)."""
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        torch._foreach_lerp_(self.average, [param.detach() for param in self.params], 1.0 - decay)

    @torch.no_grad()
    def apply(self) -> None:
        """Replace the weights by their average (before sampling)."""
        for param, average in zip(self.params, self.average, strict=True):
            param.copy_(average)


def _rows_per_key(
    name: str, series: pd.Series, noisy_rows: float, sigma: float, accountant: PrivacyAccountant, bound: int = 1
) -> float:
    """Rows per value of a key column, from a DP count of its distinct values (a row adds at most one value; an
    individual of ``bound`` rows at most ``bound``).

    1.0 (unique) unless the key clearly repeats: more than 5% more rows than values, and a gap the noise of the two
    counts (each ``sigma * bound``) explains with under a 0.2% chance; a unique key must stay unique.
    """
    distinct = accountant.gaussian(
        f"keys:{name}", np.array([float(series.nunique(dropna=True))]), sigma, sensitivity=bound
    )[0]
    ratio = noisy_rows / max(distinct, 1.0)
    clear = noisy_rows - distinct > 3.0 * math.sqrt(2.0) * sigma * bound
    return float(min(ratio, 1000.0)) if ratio > 1.05 and clear else 1.0


def _check_rows(noisy_count: float, delta: float, what: str = "rows") -> None:
    """Refuse tables DP-SGD cannot learn, or whose delta is meaningless; checked on the DP count of rows (or units)
    only."""
    if noisy_count < MIN_ROWS:
        raise DataValidationError(
            f"the source has about {noisy_count:.0f} {what} (DP estimate): at least {MIN_ROWS} are needed to learn "
            "anything under differential privacy. Use a larger table"
        )
    if delta * noisy_count >= 1.0:
        raise PrivacyBudgetError(
            f"privacy.delta {delta:g} is not below 1/{what} (about 1/{noisy_count:.0f}, DP estimate): such a delta "
            f"allows releasing a whole record. Lower privacy.delta well below 1/{what}"
        )


def _summary_from_dict(data: dict[str, Any] | None) -> FitSummary | None:
    """The fit summary a saved generator carries (keys an older release wrote and this one dropped are ignored)."""
    if not data:
        return None
    known = set(FitSummary.__dataclass_fields__)
    fields = {k: v for k, v in data.items() if k in known} | {"plan": TrainingPlan(**data["plan"])}
    fields["marginal_columns"] = tuple(fields.get("marginal_columns", ()))
    return FitSummary(**{"engine": "fast", **fields})


#: The layout :meth:`DPSynthesizer.save` writes; :meth:`DPSynthesizer.load` reads it and every older one.
SAVED_FORMAT = 1


def refuse_newer_format(state: dict[str, Any], newest: int, file: str) -> None:
    """A generator saved by a newer release (a layout this one cannot read): refused in one line, never read wrongly."""
    saved = state.get("format", 1)
    if not isinstance(saved, int) or saved > newest:
        raise ValueError(
            f"{file} was saved in layout {saved!r} by a newer Synthgate than this one (which reads up to {newest}): "
            "upgrade Synthgate to load it"
        )


def _summary_dict(summary: FitSummary | None) -> dict[str, Any] | None:
    return None if summary is None else asdict(summary)


def _column_from_state(state: dict[str, Any]) -> Column:
    """A saved column (a model saved before ``nullable`` was kept reads as nullable; its codecs say the rest)."""
    return Column(
        state["name"], ColumnKind(state["kind"]), state["sql_type"], state["timezone"], state.get("nullable", True)
    )
