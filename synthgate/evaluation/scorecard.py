"""All checks of one synthetic table in one call: fidelity, utility, privacy and validity."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import ParamSpec, TypedDict, TypeVar

import numpy as np
import pandas as pd

from synthgate.evaluation.attacks import AnonymeterRisks, anonymeter_risks
from synthgate.evaluation.features import single_threaded
from synthgate.evaluation.fidelity import Fidelity, quality
from synthgate.evaluation.marginals import MarginalTVD, marginal_tvd
from synthgate.evaluation.privacy import DistanceToClosestRecord, coarsened, dcr, row_hashes
from synthgate.evaluation.utility import Utility, tstr
from synthgate.evaluation.validity import duplicate_key_share
from synthgate.gates import Scores
from synthgate.schema import Column

P = ParamSpec("P")
R = TypeVar("R")

#: Real rows (training and holdout each) the evaluation keeps once the model is trained: above what any metric reads
#: (the report plots 100,000 rows, TSTR trains on 50,000), so the scores are those of the whole tables' samples, while
#: a 10M-row table's 8M training rows are not held through sampling and the checks.
EVALUATION_ROWS = 200_000


class _Inputs(TypedDict):
    """The keyword arguments every metric takes (see :func:`synthgate.evaluation.utility.tstr`)."""

    train: pd.DataFrame
    holdout: pd.DataFrame
    synthetic: pd.DataFrame
    columns: list[Column]


@dataclass(frozen=True)
class Evaluation:
    """The aggregate scores (gated, published) and the per-column details (report and MLflow only)."""

    scores: Scores
    fidelity: Fidelity
    marginals: MarginalTVD
    distance: DistanceToClosestRecord
    risks: AnonymeterRisks
    utility: Utility | None
    seconds: dict[str, float] = field(default_factory=dict)

    def detail_metrics(self) -> dict[str, float]:
        """Per-column and per-pair scores and attack rates, for MLflow (never for the catalog)."""
        out: dict[str, float] = {}
        for name, value in self.fidelity.per_column.items():
            out[f"column_shape.{name}"] = value
        for (a, b), value in self.fidelity.per_pair.items():
            out[f"pair_trend.{a}.{b}"] = value
        for name, (synth, hold) in self.marginals.per_column.items():
            out[f"tvd_1way.{name}"] = synth
            out[f"tvd_1way_holdout.{name}"] = hold
        for order, o in self.marginals.orders.items():
            out[f"tvd_{order}way_max"] = o.synthetic_max
            out[f"tvd_{order}way_holdout_max"] = o.holdout_max
        d = self.distance
        out |= {
            "median_dcr_training": d.median_dcr_training,
            "median_dcr_holdout": d.median_dcr_holdout,
            "nndr_training": d.nndr_training,
            "nndr_holdout": d.nndr_holdout,
        }
        attacks = [self.risks.singling_out, self.risks.linkability, *self.risks.inference.values()]
        for r in attacks:
            key = r.name.replace(":", ".")
            out |= {
                f"{key}.risk": r.risk,
                f"{key}.ci_low": r.ci_low,
                f"{key}.ci_high": r.ci_high,
                f"{key}.attack_rate": r.attack_rate,
                f"{key}.control_rate": r.control_rate,
                f"{key}.baseline_rate": r.baseline_rate,
            }
        for name, value in self.seconds.items():
            out[f"seconds_eval_{name}"] = value
        return out


def evaluation_rows(frame: pd.DataFrame, *, unit: str | None, seed: int, rows: int = EVALUATION_ROWS) -> pd.DataFrame:
    """A sample of at most about ``rows`` of ``frame``'s rows, in their order (``frame`` itself when it holds no more):
    rows drawn uniformly, or with a privacy ``unit`` whole units (a NULL unit is a unit of its own) in a random order
    up to the last that fits, so that unit-level metrics see every row of each unit they see."""
    if len(frame) <= rows:
        return frame
    rng = np.random.default_rng(seed)
    if unit is None:
        kept = np.sort(rng.choice(len(frame), rows, replace=False))
    else:
        codes, _ = pd.factorize(frame[unit], use_na_sentinel=True)
        codes = codes.astype(np.int64)
        missing = codes < 0
        codes[missing] = codes.max(initial=-1) + 1 + np.arange(int(missing.sum()))
        place = rng.permutation(int(codes.max()) + 1)[codes]  # each row's unit's place in a random order of units
        units = max(1, int(np.searchsorted(np.cumsum(np.bincount(place)), rows, side="right")))
        kept = np.flatnonzero(place < units)
    return frame.iloc[kept].reset_index(drop=True)


def training_rows_for_evaluation(
    train: pd.DataFrame, *, columns: list[Column], unit: str | None, seed: int
) -> tuple[pd.DataFrame, np.ndarray]:
    """(:func:`evaluation_rows` of ``train``, :func:`~synthgate.evaluation.privacy.row_hashes` of every training row
    over ``columns``): what :func:`evaluate` needs of the training rows once the model is trained."""
    return evaluation_rows(train, unit=unit, seed=seed), row_hashes(train, columns)


@single_threaded
def evaluate(
    *,
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    synthetic: pd.DataFrame,
    columns: list[Column],
    target: str | None,
    synthetic_suite_failures: list[str],
    keys: list[str] | None = None,
    seed: int = 0,
    attacks: int = 300,
    unit: str | None = None,
    train_hashes: np.ndarray | None = None,
) -> Evaluation:
    """Every metric over the learned ``columns`` (faked and dropped columns carry no real signal); with a privacy
    ``unit`` the membership attack targets units. ``train_hashes``: where ``train`` is a sample of the training rows
    (:func:`training_rows_for_evaluation`), the hashes of all of them, among which exact copies are searched."""
    seconds: dict[str, float] = {}

    def timed(name: str, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        began = time.perf_counter()
        result = fn(*args, **kwargs)
        seconds[name] = round(time.perf_counter() - began, 2)
        return result

    data: _Inputs = {"train": train, "holdout": holdout, "synthetic": synthetic, "columns": columns}
    # Every figure computed over real rows to three decimals (at full precision some give back their count). Shares
    # of synthetic rows are kept whole: gated at 0 (exact copies of training rows, repeated keys), a share of 1 in
    # 10,000 rounded to 0 would pass
    fidelity = coarsened(timed("sdmetrics", quality, train=train, synthetic=synthetic, columns=columns, seed=seed))
    marginals = coarsened(timed("marginals", marginal_tvd, **data, seed=seed))
    utility = coarsened(timed("utility", tstr, **data, target=target, seed=seed)) if target else None
    measured = timed("distances", dcr, **data, seed=seed, unit=unit, train_hashes=train_hashes)
    distance = replace(coarsened(measured), exact_copies_training=measured.exact_copies_training)
    risks = coarsened(timed("anonymeter", anonymeter_risks, **data, target=target, attacks=attacks, seed=seed))
    duplicates = duplicate_key_share(synthetic, keys) if keys else None
    worst = risks.worst_inference if risks.inference else None
    scores = Scores(
        quality=fidelity.quality,
        column_shapes=fidelity.column_shapes,
        column_pair_trends=fidelity.column_pair_trends,
        tvd_1way=marginals.orders[1].synthetic_mean,
        tvd_1way_holdout=marginals.orders[1].holdout_mean,
        tvd_2way=marginals.orders[2].synthetic_mean if 2 in marginals.orders else 0.0,
        tvd_2way_holdout=marginals.orders[2].holdout_mean if 2 in marginals.orders else 0.0,
        tvd_3way=marginals.orders[3].synthetic_mean if 3 in marginals.orders else 0.0,
        tvd_3way_holdout=marginals.orders[3].holdout_mean if 3 in marginals.orders else 0.0,
        dcr_share=distance.share_closer_to_training,
        nndr_ratio=distance.nndr_ratio,
        exact_copies_training=distance.exact_copies_training,
        exact_copies_holdout=distance.exact_copies_holdout,
        mia_auc=distance.mia_auc,
        singling_out_risk=risks.singling_out.risk,
        linkability_risk=risks.linkability.risk,
        inference_risk=worst.risk if worst else 0.0,
        singling_out_risk_low=risks.singling_out.ci_low,
        linkability_risk_low=risks.linkability.ci_low,
        inference_risk_low=max((r.ci_low for r in risks.inference.values()), default=0.0),
        duplicate_key_share=duplicates,
        synthetic_suite_passed=not synthetic_suite_failures,
        synthetic_suite_failures=tuple(synthetic_suite_failures),
        utility_metric=utility.metric if utility else None,
        tstr=utility.tstr if utility else None,
        trtr=utility.trtr if utility else None,
        tstr_linear=utility.tstr_linear if utility else None,
        trtr_linear=utility.trtr_linear if utility else None,
    )
    return Evaluation(scores, fidelity, marginals, distance, risks, utility, seconds)
