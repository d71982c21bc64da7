"""One person, many rows, in one table: the same generator per row and per person, side by side.

    .venv/bin/python benchmarks/unit_table.py [--epsilon 1 4] [--seeds 3]

Data: `benchmarks/data/wage_panel.csv.bz2` (545 persons, 8 rows each; see wage_panel.README.md). The persons are split
80/20 into training and holdout (a person's rows on one side). For each epsilon, the generator is fitted twice on the
training rows: without a unit (epsilon per row: a person's 8 rows are protected at about 8 times epsilon) and with
`privacy.unit: nr` (epsilon per person). Scores against the training rows: SDMetrics quality
(`synthgate.evaluation.fidelity.quality`), TSTR ROC AUC of `union` on the holdout (train-on-real beside it), and the
membership attack per person (`synthgate.evaluation.privacy.dcr(unit=...)`: 0.5 is ideal).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from synthgate.evaluation.fidelity import quality  # noqa: E402
from synthgate.evaluation.privacy import dcr  # noqa: E402
from synthgate.evaluation.utility import tstr  # noqa: E402
from synthgate.generator import DPSynthesizer  # noqa: E402
from synthgate.schema import Column, ColumnKind  # noqa: E402
from synthgate.spec import ColumnPolicy, PrivacyBudget, Training  # noqa: E402

UNIT, TARGET = "nr", "union"
CATEGORIES = ("black", "hisp", "married", "union", "occupation")


def columns(frame: pd.DataFrame) -> list[Column]:
    kinds = {name: ColumnKind.CATEGORICAL if name in CATEGORIES else ColumnKind.INTEGER for name in frame.columns}
    kinds["lwage"] = ColumnKind.FLOAT
    return [Column(name, kinds[name], "X") for name in frame.columns]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epsilon", type=float, nargs="+", default=[1.0, 4.0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    frame = pd.read_csv(ROOT / "benchmarks" / "data" / "wage_panel.csv.bz2")
    frame[list(CATEGORIES)] = frame[list(CATEGORIES)].astype(str)
    persons = frame[UNIT].unique()
    held = set(np.random.default_rng(0).permutation(persons)[: len(persons) // 5])
    train, holdout = frame[~frame[UNIT].isin(held)], frame[frame[UNIT].isin(held)]
    cols = columns(frame)
    learned = [c for c in cols if c.name != UNIT]
    results = []
    for epsilon in args.epsilon:
        for unit in (None, UNIT):
            for seed in range(args.seeds):
                synth = DPSynthesizer(
                    cols,
                    {} if unit else {UNIT: ColumnPolicy(policy="fake", fake="id")},
                    PrivacyBudget(epsilon=epsilon, delta=1e-5, unit=unit),
                    Training(seed=seed),
                    TARGET,
                )
                began = time.perf_counter()
                summary = synth.fit(train.reset_index(drop=True))
                seconds = time.perf_counter() - began
                synthetic = synth.sample(len(train), seed=seed)
                fidelity = quality(train=train, synthetic=synthetic, columns=learned, seed=seed)
                utility = tstr(
                    train=train, holdout=holdout, synthetic=synthetic, columns=learned, target=TARGET, seed=seed
                )
                attack = dcr(train=train, holdout=holdout, synthetic=synthetic, columns=learned, unit=UNIT, seed=seed)
                results.append(
                    {
                        "epsilon": epsilon,
                        "protects": "person" if unit else "row",
                        "seed": seed,
                        "epsilon_spent": round(summary.epsilon, 4),
                        "max_rows_per_unit": summary.max_rows_per_unit,
                        "quality": round(fidelity.quality, 4),
                        "tstr": round(utility.tstr, 4),
                        "trtr": round(utility.trtr, 4),
                        "mia_auc_per_person": round(attack.mia_auc, 4),
                        "fit_seconds": round(seconds, 1),
                    }
                )
                print(json.dumps(results[-1]), flush=True)
    table = pd.DataFrame(results).groupby(["epsilon", "protects"])[
        ["quality", "tstr", "trtr", "mia_auc_per_person", "fit_seconds"]
    ]
    print(table.mean().round(3).to_string())
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
