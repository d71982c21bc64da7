"""A wide table is scored in blocks of columns (linear cost), a narrow one by one SDMetrics report."""

import numpy as np
import pandas as pd

from synthgate.evaluation import fidelity, marginals
from synthgate.schema import Column, ColumnKind


def table(columns: int, rows: int = 300, seed: int = 0) -> tuple[pd.DataFrame, list[Column]]:
    rng = np.random.default_rng(seed)
    base = rng.normal(size=rows)
    frame = pd.DataFrame({f"c{j}": base + rng.normal(size=rows) for j in range(columns)})
    return frame, [Column(f"c{j}", ColumnKind.FLOAT, "FLOAT") for j in range(columns)]


def test_a_wide_table_is_scored_in_blocks_of_columns():
    real, columns = table(130)
    synthetic, _ = table(130, seed=1)
    blocks = fidelity._blocks(columns, seed=0)
    assert [len(b) for b in blocks] == [44, 43, 43] and sorted(c.name for b in blocks for c in b) == sorted(
        c.name for c in columns
    )
    scored = fidelity.quality(train=real, synthetic=synthetic, columns=columns)
    assert len(scored.per_column) == 130
    within = {(a.name, b.name) for block in blocks for i, a in enumerate(block) for b in block[i + 1 :]}
    assert scored.per_pair and set(scored.per_pair) <= within  # pairs scored within blocks only
    assert abs(scored.column_pair_trends - np.mean(list(scored.per_pair.values()))) < 1e-9
    assert abs(scored.quality - (scored.column_shapes + scored.column_pair_trends) / 2) < 1e-9


def test_a_narrow_table_keeps_one_report():
    real, columns = table(12)
    synthetic, _ = table(12, seed=1)
    assert fidelity._blocks(columns, seed=0) == [columns]
    scored = fidelity.quality(train=real, synthetic=synthetic, columns=columns)
    assert 0 < len(scored.per_pair) <= 66 and len(scored.per_column) == 12


def test_marginals_sample_pairs_and_triples_of_a_wide_table_without_listing_them():
    rng = np.random.default_rng(0)
    every = marginals._combinations(10, 2, 2016, rng)
    assert len(every) == 45  # all pairs of a narrow table
    drawn = marginals._combinations(500, 3, 60, rng)  # 20.7 million triples: drawn, not listed
    assert len(drawn) == len(set(drawn)) == 60 and all(a < b < c < 500 for a, b, c in drawn)
    real, columns = table(90, rows=200)
    tvd = marginals.marginal_tvd(train=real, holdout=real, synthetic=table(90, rows=200, seed=2)[0], columns=columns)
    assert len(tvd.per_pair) == 2016 and tvd.orders[3].marginals == 60
