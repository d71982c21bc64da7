"""Anonymeter's three attacks (Giomi et al., PoPETs 2023): singling out, linkability, attribute inference.

The ``anonymeter`` package cannot be installed beside this project's pins (it requires numpy < 1.27; the
project pins numpy 2.x), so the method is implemented here: each attack is run against training records
and, as control, against equally many holdout records never trained on. The risk is the attack's excess
success over the control, ``(attack - control) / (1 - control)`` on Wilson-centred rates. Its confidence interval
is that of the ratio of the two failure rates, ``1 - risk = (1 - attack) / (1 - control)``, on the log scale (Katz):
propagating the two rates' errors instead fails where the control almost always succeeds (a secret that is 0 for
97% of rows), and refused 2-3% of such secrets on no evidence at 300 attacks. A random-guess baseline is reported
beside them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from math import exp, sqrt

import numpy as np
import pandas as pd
from scipy.stats import norm
from sklearn.neighbors import NearestNeighbors

from synthgate.columns import to_numeric
from synthgate.evaluation.features import FeatureSpace, category_text, single_threaded
from synthgate.schema import Column, ColumnKind


@dataclass(frozen=True)
class Rate:
    """A success rate and the half-width of its confidence interval."""

    value: float
    error: float


@dataclass(frozen=True)
class AttackRisk:
    """One attack's risk with its confidence interval, and the rates behind it."""

    name: str
    risk: float
    ci_low: float
    ci_high: float
    attack_rate: float
    control_rate: float
    baseline_rate: float
    attacks: int


def success_rate(attacks: int, successes: int, confidence: float = 0.95) -> Rate:
    """Wilson score estimate of a Bernoulli success rate and its error at ``confidence``."""
    z = float(norm.ppf(0.5 * (1 + confidence)))
    denominator = attacks + z * z
    rate = (successes + 0.5 * z * z) / denominator
    error = z / denominator * sqrt(successes * (attacks - successes) / attacks + 0.25 * z * z)
    return Rate(rate, error)


def risk_from_counts(
    name: str, attacks: int, successes: int, control: int, baseline: int, confidence: float = 0.95
) -> AttackRisk:
    """Excess success over the control, clipped to [0, 1] (rates centred as Wilson's at 95%), with Katz's interval of
    the failure ratio at ``confidence`` (see the module docstring)."""
    if attacks == 0:
        return AttackRisk(name, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0)  # no attack could be mounted: no information
    a, c, b = (success_rate(attacks, k) for k in (successes, control, baseline))  # centred at 95% whatever the family
    residual = (a.value - c.value) / (1.0 - c.value)
    # Katz's interval of the failure ratio, with 0.5 added to every count so that no failure is no infinite ratio
    fail_attack, fail_control, n = attacks - successes + 0.5, attacks - control + 0.5, attacks + 0.5
    ratio = fail_attack / fail_control
    spread = float(norm.isf(0.5 * (1 - confidence))) * sqrt(1 / fail_attack + 1 / fail_control - 2 / n)
    clip = lambda v: min(max(v, 0.0), 1.0)  # noqa: E731
    low, high = 1.0 - ratio * exp(spread), 1.0 - ratio * exp(-spread)
    risk = clip(residual)
    return AttackRisk(name, risk, min(clip(low), risk), max(clip(high), risk), a.value, c.value, b.value, attacks)


class _Columns:
    """Per-column arrays for predicates: floats for numerics, shared integer codes (nulls: -1) otherwise."""

    def __init__(self, frames: dict[str, pd.DataFrame], columns: list[Column]) -> None:
        self.columns = columns
        self.values: dict[str, list[np.ndarray]] = {name: [] for name in frames}
        for c in columns:
            if c.kind.is_numeric:
                for name, frame in frames.items():
                    self.values[name].append(to_numeric(frame[c.name], c))
            else:
                texts = {name: category_text(frame[c.name]) for name, frame in frames.items()}
                domain = pd.Index(pd.unique(pd.concat(texts.values()).dropna()))
                for name, series in texts.items():
                    codes = domain.get_indexer(series)
                    self.values[name].append(np.where(series.isna().to_numpy(), -1, codes).astype(float))


def _matches(data: list[np.ndarray], predicate: list[tuple[int, str, float]]) -> np.ndarray:
    mask = np.ones(len(data[0]), dtype=bool)
    for j, op, value in predicate:
        col = data[j]
        if np.isnan(value):
            mask &= np.isnan(col)
        elif op == "==":
            mask &= col == value
        elif op == ">=":
            mask &= col >= value
        else:
            mask &= col <= value
    return mask


def singling_out(
    train: pd.DataFrame,
    control: pd.DataFrame,
    synthetic: pd.DataFrame,
    columns: list[Column],
    attacks: int = 300,
    predicate_columns: int = 5,
    rng: np.random.Generator | None = None,
) -> AttackRisk:
    """Multivariate singling out: predicates built from synthetic rows that isolate one synthetic row.

    A predicate combines ``predicate_columns`` conditions taken from one synthetic row (equality for
    categories, the tail side of the value for numerics). It succeeds when it isolates exactly one
    training record; the control is the same on an equal-sized holdout.
    """
    rng = rng or np.random.default_rng(0)
    arrays = _Columns({"train": train, "control": control, "synthetic": synthetic}, columns)
    synth = arrays.values["synthetic"]
    medians = [float(np.nanmedian(col)) if np.isfinite(col).any() else 0.0 for col in synth]
    numeric = [c.kind.is_numeric for c in columns]
    width = min(predicate_columns, len(columns))
    found: set[tuple] = set()
    for _ in range(attacks * 20):
        if len(found) >= attacks:
            break
        row = int(rng.integers(len(synthetic)))
        chosen = sorted(rng.choice(len(columns), width, replace=False))
        predicate = tuple(
            (int(j), (">=" if synth[j][row] >= medians[j] else "<=") if numeric[j] else "==", float(synth[j][row]))
            for j in chosen
        )
        if predicate not in found and _matches(synth, list(predicate)).sum() == 1:
            found.add(predicate)
    predicates = [list(p) for p in found]
    hits = {
        name: sum(int(_matches(arrays.values[name], p).sum() == 1) for p in predicates) for name in ("train", "control")
    }
    baseline = _random_predicates(arrays.values["train"], synth, numeric, width, len(predicates), rng)
    return risk_from_counts("singling_out", len(predicates), hits["train"], hits["control"], baseline)


def _random_predicates(
    target: list[np.ndarray], synth: list[np.ndarray], numeric: list[bool], width: int, n: int, rng: np.random.Generator
) -> int:
    """How many predicates with values drawn at random from each column's synthetic values single out a record."""
    hits = 0
    for _ in range(n):
        predicate = []
        for j in sorted(rng.choice(len(synth), width, replace=False)):
            value = float(rng.choice(synth[j]))
            predicate.append((int(j), (">=" if rng.random() < 0.5 else "<=") if numeric[j] else "==", value))
        hits += int(_matches(target, predicate).sum() == 1)
    return hits


class _Blocks:
    """The shared feature view, one block of features per column, so attacks can pick their columns."""

    def __init__(self, reference: pd.DataFrame, columns: list[Column], frames: dict[str, pd.DataFrame]) -> None:
        self.names = [c.name for c in columns]
        self.blocks = {
            name: [FeatureSpace(reference, [c]).transform(frame) for c in columns] for name, frame in frames.items()
        }

    def select(self, frame: str, names: list[str], rows: np.ndarray | None = None) -> np.ndarray:
        """The named columns' blocks of ``frame`` side by side, restricted to ``rows`` when given."""
        blocks = [self.blocks[frame][self.names.index(n)] for n in names]
        matrix = np.hstack(blocks) if blocks else np.zeros((len(self.blocks[frame][0]), 0))
        return matrix if rows is None else matrix[rows]


def linkability(
    train: pd.DataFrame,
    control: pd.DataFrame,
    synthetic: pd.DataFrame,
    columns: list[Column],
    attacks: int = 300,
    rng: np.random.Generator | None = None,
) -> AttackRisk:
    """Link two halves of a record (alternate columns) through their common nearest synthetic row."""
    rng = rng or np.random.default_rng(0)
    if len(columns) < 2:
        return risk_from_counts("linkability", 0, 0, 0, 0)
    names = [c.name for c in columns]
    halves = (names[0::2], names[1::2])  # interleaved: each half mixes the table's kinds of columns
    blocks = _Blocks(synthetic, columns, {"train": train, "control": control, "synthetic": synthetic})
    n = min(attacks, len(train), len(control))
    indexes = [NearestNeighbors(n_neighbors=1).fit(blocks.select("synthetic", half)) for half in halves]

    def links(frame: str) -> int:
        rows = rng.choice(len(blocks.blocks[frame][0]), n, replace=False)
        nearest = [
            index.kneighbors(blocks.select(frame, half, rows))[1][:, 0]
            for index, half in zip(indexes, halves, strict=True)
        ]
        return int(np.sum(nearest[0] == nearest[1]))

    baseline = int(np.sum(rng.integers(len(synthetic), size=n) == rng.integers(len(synthetic), size=n)))
    return risk_from_counts("linkability", n, links("train"), links("control"), baseline)


def inference(
    train: pd.DataFrame,
    control: pd.DataFrame,
    synthetic: pd.DataFrame,
    columns: list[Column],
    secrets: list[str],
    attacks: int = 300,
    tolerance: float = 0.05,
    rng: np.random.Generator | None = None,
) -> dict[str, AttackRisk]:
    """For each secret column: guess it from the nearest synthetic row on all other columns.

    A guess is right when it equals the secret (categories) or lies within ``tolerance`` of it, relatively
    (numerics), or within ``tolerance`` of the synthetic column's 5-95% spread (datetimes, whose epoch
    offset makes any relative tolerance years wide). Baseline: a random synthetic row's value. The gate reads the
    largest lower bound over the secrets, so each interval is at 95% for the whole family (Bonferroni): one secret in
    six beating its control by chance is no finding.
    """
    rng = rng or np.random.default_rng(0)
    confidence = 1.0 - 0.05 / max(len(secrets), 1)
    frames = {"train": train, "control": control, "synthetic": synthetic}
    blocks = _Blocks(synthetic, columns, frames)
    arrays = _Columns(frames, columns)
    n = min(attacks, len(train), len(control))
    risks: dict[str, AttackRisk] = {}
    for secret in secrets:
        j = blocks.names.index(secret)
        aux = [name for name in blocks.names if name != secret]
        numeric = columns[j].kind.is_numeric
        index = NearestNeighbors(n_neighbors=1).fit(blocks.select("synthetic", aux))
        guessed = arrays.values["synthetic"][j]
        spread = None
        if columns[j].kind is ColumnKind.DATETIME and np.isfinite(guessed).any():
            spread = float(np.subtract(*np.nanpercentile(guessed, [95, 5])))

        # Both closures run within this iteration only; this secret's values are bound as defaults all the same, so
        # that a closure called later could not read the next secret's.
        def correct(
            guess: np.ndarray, truth: np.ndarray, *, spread: float | None = spread, numeric: bool = numeric
        ) -> int:
            both_null = np.isnan(guess) & np.isnan(truth)
            if spread is not None:
                right = np.abs(guess - truth) <= tolerance * spread
            elif numeric:
                right = np.abs(guess - truth) <= tolerance * np.maximum(np.abs(truth), 1e-12)
            else:
                right = guess == truth
            return int(np.sum(right | both_null))

        def attack(
            frame: str,
            *,
            index: NearestNeighbors = index,
            aux: list[str] = aux,
            guessed: np.ndarray = guessed,
            j: int = j,
            correct: Callable[[np.ndarray, np.ndarray], int] = correct,
        ) -> int:
            rows = rng.choice(len(frames[frame]), n, replace=False)
            nearest = index.kneighbors(blocks.select(frame, aux, rows))[1][:, 0]
            return correct(guessed[nearest], arrays.values[frame][j][rows])

        base_rows = rng.choice(len(train), n, replace=False)
        baseline = correct(guessed[rng.integers(len(synthetic), size=n)], arrays.values["train"][j][base_rows])
        risks[secret] = risk_from_counts(
            f"inference:{secret}", n, attack("train"), attack("control"), baseline, confidence
        )
    return risks


@dataclass(frozen=True)
class AnonymeterRisks:
    """The three attacks' risks: singling out, linkability, and inference per secret column."""

    singling_out: AttackRisk
    linkability: AttackRisk
    inference: dict[str, AttackRisk]

    @property
    def worst_inference(self) -> AttackRisk:
        """The inference risk of the most exposed secret column (highest risk, then highest upper bound)."""
        return max(self.inference.values(), key=lambda r: (r.risk, r.ci_high))


@single_threaded
def anonymeter_risks(
    *,
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    synthetic: pd.DataFrame,
    columns: list[Column],
    target: str | None,
    attacks: int = 300,
    max_secrets: int = 6,
    max_rows: int = 10_000,
    seed: int = 0,
) -> AnonymeterRisks:
    """The three attacks on equal-sized training and holdout samples, with seeded choices throughout.

    Inference is run for the declared target (when there is one) and up to ``max_secrets`` columns in all.
    """
    rng = np.random.default_rng(seed)
    size = min(len(train), len(holdout), max_rows)
    train = train.iloc[rng.choice(len(train), size, replace=False)].reset_index(drop=True)
    holdout = holdout.iloc[rng.choice(len(holdout), size, replace=False)].reset_index(drop=True)
    synthetic = synthetic.iloc[rng.choice(len(synthetic), min(len(synthetic), max_rows), replace=False)].reset_index(
        drop=True
    )
    names = [c.name for c in columns]
    others = [n for n in names if n != target]
    picked = [
        others[i] for i in sorted(rng.choice(len(others), min(len(others), max_secrets - bool(target)), replace=False))
    ]
    secrets = ([target] if target in names else []) + picked
    return AnonymeterRisks(
        singling_out=singling_out(train, holdout, synthetic, columns, attacks, rng=rng),
        linkability=linkability(train, holdout, synthetic, columns, attacks, rng=rng),
        inference=inference(train, holdout, synthetic, columns, secrets, attacks, rng=rng) if len(columns) > 1 else {},
    )
