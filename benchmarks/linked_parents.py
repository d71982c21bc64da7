"""Children per parent of a linked model with two child tables, against the real tables, over several fits.

    .venv/bin/python benchmarks/linked_parents.py [--fits 3] [--samples 3] [--epsilon 1]

The customers, orders and tickets of `tests/generator/test_linked.py` (1,500 customers; gold ones place about 10
orders and open about 4 tickets, basic ones about 1.5 and 0.5), fitted ``--fits`` times with fresh DP noise and
sampled ``--samples`` times each. For each sample it prints the TVD of orders per customer and of tickets per
customer (capped at 12) from the real tables'. Run from two commits to compare how sampled parents are drawn.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from synthgate.generator.linked import LinkedChild, LinkedSynthesizer  # noqa: E402
from synthgate.schema import Column, ColumnKind  # noqa: E402
from synthgate.spec import PrivacyBudget, Training  # noqa: E402
from tests.generator.test_linked import ORDERS, PARENT_COLUMNS, customers_and_orders, tickets_of  # noqa: E402

TICKET_COLUMNS = [Column("customer_id", ColumnKind.INTEGER, "BIGINT"), Column("wait_hours", ColumnKind.FLOAT, "REAL")]


def per_parent(keys: pd.Series, parents: pd.Series) -> pd.Series:
    """Shares of parents by their number of children (12 or more counted as 12)."""
    counts = keys.dropna().value_counts().reindex(parents, fill_value=0).clip(upper=12)
    return counts.value_counts(normalize=True).sort_index()


def tvd(a: pd.Series, b: pd.Series) -> float:
    a, b = a.align(b, fill_value=0.0)
    return float(0.5 * (a - b).abs().sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fits", type=int, default=3)
    parser.add_argument("--samples", type=int, default=3)
    parser.add_argument("--epsilon", type=float, default=1.0)
    args = parser.parse_args()
    parents, orders = customers_and_orders(n=1500, seed=4)
    tickets = tickets_of(parents)
    real = (
        per_parent(orders["customer_id"], parents["customer_id"]),
        per_parent(tickets["customer_id"], parents["customer_id"]),
    )
    found: list[tuple[float, float]] = []
    for fit in range(args.fits):
        linked = LinkedSynthesizer(
            parent_columns=PARENT_COLUMNS,
            parent_policies={},
            parent_key="customer_id",
            children=[ORDERS, LinkedChild("tickets", TICKET_COLUMNS, "customer_id")],
            privacy=PrivacyBudget(epsilon=args.epsilon, delta=1e-5),
            training=Training(epochs=12, seed=1),
        )
        linked.fit(parents, [orders, tickets])
        for seed in range(args.samples):
            synthetic, (synthetic_orders, synthetic_tickets) = linked.sample(seed=seed)
            keys = synthetic["customer_id"]
            found.append(
                (
                    tvd(per_parent(synthetic_orders["customer_id"], keys), real[0]),
                    tvd(per_parent(synthetic_tickets["customer_id"], keys), real[1]),
                )
            )
            print(f"fit {fit} sample {seed}: orders TVD {found[-1][0]:.3f}, tickets TVD {found[-1][1]:.3f}", flush=True)
    means = np.mean(found, axis=0)
    print(f"mean over {len(found)}: orders TVD {means[0]:.3f}, tickets TVD {means[1]:.3f}")


if __name__ == "__main__":
    main()
