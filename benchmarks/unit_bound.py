"""The bound on rows per unit chosen from the DP histogram of rows per unit, over many draws of its noise.

    .venv/bin/python benchmarks/unit_bound.py [--draws 4000]

A table with a privacy unit (or a linked child table) trains at most ``bound`` rows of each unit; the bound is the size
edge under which the released histogram counts 99% of the units (`synthgate.generator.units.SizeHistogram.bound`).
Each shape below is released ``--draws`` times with fresh noise (the noise a 300-unit table gets at epsilon 4 in
`tests/flows/test_unit_refresh.py`, sigma 11.5, or 10 for 3,000 units), and the table counts the draws by bound:
too low cuts the units' rows (a customer's orders faked as at most 2), far too high (over 4 times the true bound)
stretches the synthetic units and the rows they add.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from synthgate.generator.accounting import PrivacyAccountant  # noqa: E402
from synthgate.generator.units import SIZE_EDGES, SizeHistogram, release_sizes, size_bin  # noqa: E402


def shapes() -> dict[str, tuple[np.ndarray, float]]:
    """Rows per unit of each table shape, and the noise of its histogram."""
    rng = np.random.default_rng(0)
    return {
        "300 customers, geometric(0.25) orders": (rng.geometric(0.25, 300), 11.5),
        "3,000 customers, geometric(0.05) orders": (rng.geometric(0.05, 3000), 10.0),
        "300 units of 1 row": (np.ones(300, dtype=np.int64), 11.5),
        "300 units of 2 rows": (np.full(300, 2), 11.5),
        "200 units of 1 row, 100 of 9": (np.r_[np.ones(200, dtype=np.int64), np.full(100, 9)], 11.5),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--draws", type=int, default=4000)
    args = parser.parse_args()
    print("| shape | true bound | at most 2 | under half of it | over 4 times it | most frequent bounds |")
    print("|---|---|---|---|---|---|")
    for name, (sizes, sigma) in shapes().items():
        counts = np.bincount(size_bin(sizes), minlength=len(SIZE_EDGES)).astype(float)
        true = SizeHistogram(tuple(counts), counts.sum()).bound()
        bounds = Counter(release_sizes(sizes, sigma, PrivacyAccountant(delta=1e-5)).bound() for _ in range(args.draws))
        two = sum(n for b, n in bounds.items() if b <= 2) / args.draws
        low = sum(n for b, n in bounds.items() if b < true / 2) / args.draws
        far = sum(n for b, n in bounds.items() if b > 4 * true) / args.draws
        common = ", ".join(f"{b}: {n / args.draws:.1%}" for b, n in bounds.most_common(4))
        print(f"| {name} | {true} | {two:.2%} | {low:.2%} | {far:.2%} | {common} |")


if __name__ == "__main__":
    main()
