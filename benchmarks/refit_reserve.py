"""Where the refit reserve goes on the 55-column credit table: how often its sparse figures are located and how much
of its category columns is RARE, over many preprocessing passes (the DP releases only: no training).

    .venv/bin/python benchmarks/refit_reserve.py [--passes 40]

The table is ``benchmarks/real_tables.py``'s credit file (8,000 training rows after its keyed holdout split, loaded
into PostgreSQL as that benchmark does), with the policies and spec a new user gets. Each pass makes every release
with fresh noise, as a refresh does before training. It prints, per sparse figure, the share of passes that located
it (``joint_income``: 448 values, NULL for 94% of rows; ``hardship_amount``: 240; ``settlement_pct``: 160;
``secondary_fico``: 810) and, per category column, the mean share of its training rows that came out RARE. Run
from two commits to compare how the reserve is shared.
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import real_tables  # noqa: E402
from synthgate.generator import DPSynthesizer  # noqa: E402
from synthgate.generator.accounting import PrivacyAccountant  # noqa: E402
from synthgate.profiling import effective_policies, policies_from_schema  # noqa: E402

FIGURES = ("joint_income", "hardship_amount", "settlement_pct", "secondary_fico")
CATEGORIES = ("state", "loan_purpose", "grade")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--passes", type=int, default=40)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    logging.disable(logging.WARNING)  # each pass warns about the figures it cannot locate
    table = real_tables.credit()
    real_tables.load_into_postgres(table)
    spec = real_tables.make_spec(table, 1.0, 1e-5)
    split, extract = real_tables.extract_and_split(spec)
    policies = effective_policies(policies_from_schema(spec, extract.columns))
    located = dict.fromkeys(FIGURES, 0)
    rare: dict[str, list[float]] = {name: [] for name in CATEGORIES}
    for _ in range(args.passes):
        synth = DPSynthesizer(extract.columns, policies, spec.privacy, spec.training, spec.target_column)
        synth.preprocess(
            split.train, PrivacyAccountant(delta=spec.privacy.delta, delta_selection=spec.privacy.delta / 4)
        )
        codecs = {column.name: codec for column, codec in zip(synth.learned, synth.codecs, strict=True)}
        for name in FIGURES:
            located[name] += bool(getattr(codecs[name], "has_values", False))
        for name in CATEGORIES:
            values = split.train[name].dropna().astype(str)
            released = {str(v) for v in getattr(codecs[name], "categories", [])}
            rare[name].append(float((~values.isin(released)).mean()))
    print(f"| {args.passes} passes | located | | category | RARE rows (mean) |\n|---|---|---|---|---|")
    for figure, category in zip(FIGURES, [*CATEGORIES, ""], strict=True):
        share = f"{np.mean(rare[category]):.1%}" if category else ""
        print(f"| {figure} | {located[figure] / args.passes:.1%} | | {category} | {share} |")


if __name__ == "__main__":
    main()
