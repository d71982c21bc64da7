"""Empirical privacy audit: a membership-inference attack on planted outliers, against the DP generator.

Outlier rows (unique combinations of categories no ordinary row has, with a numeric value at the far end of its
public range) are candidates; a random half of them (members) is added to the training table, the other half
(non-members) is not. The attacker sees the trained generator and scores each candidate by its log-likelihood under
it (a white-box attack, stronger than looking at samples). For (epsilon, delta)-DP any threshold on that score has
TPR <= e^epsilon * FPR + delta (and the same with the roles of members and non-members swapped); we check it with
Clopper-Pearson confidence bounds, and report the attack's AUC, best advantage (TPR - FPR, at most tanh(epsilon/2) +
delta in expectation) and the epsilon lower bound it proves.

Run it alone: ``python -m tests.reliability.privacy_audit`` prints the numbers.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from scipy.stats import beta

from synthgate.generator import DPSynthesizer
from synthgate.generator.network import TokenNLL
from synthgate.schema import Column, ColumnKind
from synthgate.spec import ColumnPolicy, PrivacyBudget, Training

CATEGORIES = [f"k{i}" for i in range(8)]
CAT_COLUMNS = ["c1", "c2", "c3", "c4"]
COLUMNS = [Column(name, ColumnKind.CATEGORICAL, "TEXT") for name in CAT_COLUMNS] + [
    Column("x", ColumnKind.FLOAT, "FLOAT")
]
POLICIES = {name: ColumnPolicy(policy="categorical", categories=CATEGORIES) for name in CAT_COLUMNS} | {
    "x": ColumnPolicy(min=0.0, max=100.0)
}


def base_rows(n: int, rng: np.random.Generator) -> pd.DataFrame:
    """Ordinary rows: categories k0..k2 only (correlated), x in [0, 50]."""
    first = rng.integers(0, 3, n)
    data = {"c1": first}
    for name in CAT_COLUMNS[1:]:
        data[name] = np.where(rng.random(n) < 0.6, first, rng.integers(0, 3, n))
    frame = pd.DataFrame({k: [CATEGORIES[i] for i in v] for k, v in data.items()})
    frame["x"] = np.clip(rng.normal(20 + 8 * first, 6), 0, 50)
    return frame


def outlier_rows(n: int, rng: np.random.Generator) -> pd.DataFrame:
    """Unique outliers: distinct combinations of categories k4..k7 (never seen in ordinary rows), x near 100."""
    combos = list(itertools.product(range(4, 8), repeat=len(CAT_COLUMNS)))
    chosen = rng.choice(len(combos), n, replace=False)
    frame = pd.DataFrame([[CATEGORIES[i] for i in combos[k]] for k in chosen], columns=CAT_COLUMNS)
    frame["x"] = rng.uniform(90, 100, n)
    return frame


def log_likelihood(synth: DPSynthesizer, rows: pd.DataFrame) -> np.ndarray:
    tokens = np.stack(
        [codec.encode(rows[c.name]) for c, codec in zip(synth.learned, synth.codecs, strict=True)], axis=1
    )
    assert synth.network is not None
    with torch.inference_mode():
        batch = torch.as_tensor(tokens, dtype=torch.long, device=synth.device)
        return -TokenNLL(reduction="none")(synth.network(batch), batch).cpu().numpy()


@dataclass(frozen=True)
class AuditResult:
    epsilon_budget: float
    epsilon_spent: float
    delta: float
    members: int
    non_members: int
    auc: float
    best_advantage: float  # max over thresholds of TPR - FPR
    advantage_bound: float  # tanh(epsilon / 2) + delta
    best_tpr: float
    best_fpr: float
    epsilon_lower_bound: float  # what the attack proves, at 95% confidence (0: nothing)
    violations: int  # thresholds where even the confidence bounds break TPR <= e^eps FPR + delta

    def describe(self) -> str:
        return (
            f"epsilon budget {self.epsilon_budget:g} (spent {self.epsilon_spent:.3f}), delta {self.delta:g}; "
            f"{self.members} members vs {self.non_members} non-members: attack AUC {self.auc:.3f}, best advantage "
            f"{self.best_advantage:.3f} (TPR {self.best_tpr:.2f} at FPR {self.best_fpr:.2f}; DP allows "
            f"{self.advantage_bound:.3f}), epsilon lower bound {self.epsilon_lower_bound:.3f}, "
            f"violations {self.violations}"
        )


def _clopper_pearson(k: int, n: int, alpha: float) -> tuple[float, float]:
    low = 0.0 if k == 0 else float(beta.ppf(alpha, k, n - k + 1))
    high = 1.0 if k == n else float(beta.ppf(1 - alpha, k + 1, n - k))
    return low, high


def audit(
    member_scores: np.ndarray,
    non_member_scores: np.ndarray,
    epsilon: float,
    delta: float,
    epsilon_spent: float,
    alpha: float = 0.05,
) -> AuditResult:
    m, n = len(member_scores), len(non_member_scores)
    thresholds = np.unique(np.concatenate([member_scores, non_member_scores]))
    best = (0.0, 0.0, 0.0)
    eps_lb, violations = 0.0, 0
    # Bonferroni over thresholds and both directions, so the lower bound holds at 1 - alpha overall.
    per_test = alpha / (2 * len(thresholds))
    for t in thresholds:
        tp, fp = int((member_scores >= t).sum()), int((non_member_scores >= t).sum())
        tpr, fpr = tp / m, fp / n
        if tpr - fpr > best[0]:
            best = (tpr - fpr, tpr, fpr)
        for (k_hit, n_hit), (k_miss, n_miss) in (((tp, m), (fp, n)), ((n - fp, n), (m - tp, m))):
            hit_low, _ = _clopper_pearson(k_hit, n_hit, per_test)
            _, miss_high = _clopper_pearson(k_miss, n_miss, per_test)
            if hit_low > math.exp(epsilon) * miss_high + delta:
                violations += 1
            if hit_low - delta > 0 and miss_high > 0:
                eps_lb = max(eps_lb, math.log((hit_low - delta) / miss_high))
    ranks = pd.Series(np.concatenate([member_scores, non_member_scores])).rank().to_numpy()
    auc = (ranks[:m].sum() - m * (m + 1) / 2) / (m * n)
    return AuditResult(
        epsilon,
        epsilon_spent,
        delta,
        m,
        n,
        float(auc),
        best[0],
        math.tanh(epsilon / 2) + delta,
        best[1],
        best[2],
        eps_lb,
        violations,
    )


def run_audit(
    epsilon: float,
    rows: int = 2000,
    candidates: int = 200,
    seed: int = 0,
    epochs: int | None = None,
    noise_multiplier: float | None = None,
) -> AuditResult:
    rng = np.random.default_rng(seed)
    outliers = outlier_rows(candidates, rng)
    is_member = rng.permutation(np.arange(candidates) < candidates // 2)
    train = pd.concat([base_rows(rows, rng), outliers[is_member]], ignore_index=True).sample(frac=1, random_state=seed)
    training = Training(seed=seed, device="cpu", epochs=epochs, noise_multiplier=noise_multiplier, hidden_dim=64)
    synth = DPSynthesizer(COLUMNS, POLICIES, PrivacyBudget(epsilon=epsilon, delta=1e-5), training)
    summary = synth.fit(train.reset_index(drop=True))
    scores = log_likelihood(synth, outliers)
    return audit(scores[is_member], scores[~is_member], epsilon, 1e-5, summary.epsilon)


if __name__ == "__main__":
    import sys
    import time

    for eps in [float(e) for e in sys.argv[1:]] or [1.0, 100.0]:
        began = time.time()
        print(run_audit(eps).describe(), f"({time.time() - began:.0f} s)")
