"""Fidelity: SDMetrics quality (column shapes per column, column pair trends per pair)."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from synthgate.evaluation.features import category_text
from synthgate.evaluation.pair_trends import pair_trends
from synthgate.schema import Column, ColumnKind

#: Columns one SDMetrics report scores together (every pair among them); a wider table is scored in blocks.
REPORT_COLUMNS = 64

_SDTYPE = {
    ColumnKind.INTEGER: "numerical",
    ColumnKind.FLOAT: "numerical",
    ColumnKind.DATETIME: "datetime",
    ColumnKind.BOOLEAN: "boolean",
    ColumnKind.CATEGORICAL: "categorical",
}


@dataclass(frozen=True)
class Fidelity:
    """SDMetrics quality and its two properties, with the scores behind them per column and per pair."""

    quality: float
    column_shapes: float
    column_pair_trends: float
    per_column: dict[str, float]
    per_pair: dict[tuple[str, str], float]


def sdmetrics_metadata(columns: list[Column]) -> dict:
    """SDMetrics single-table metadata: each column's sdtype."""
    return {"columns": {c.name: {"sdtype": _SDTYPE[c.kind]} for c in columns}}


def quality(
    *, train: pd.DataFrame, synthetic: pd.DataFrame, columns: list[Column], max_rows: int = 20_000, seed: int = 0
) -> Fidelity:
    """SDMetrics single-table quality of ``synthetic`` against the real ``train`` rows, on up to ``max_rows`` rows of
    each side (the holdout plays no part); a table wider than :data:`REPORT_COLUMNS` is scored in seeded blocks of
    columns, its pairs within blocks (as many pairs per column as a 64-column table has)."""
    logging.getLogger("sdmetrics").setLevel(logging.ERROR)
    names = [c.name for c in columns]
    real = _prepare(train[names], columns, max_rows, seed)
    synthetic = _prepare(synthetic[names], columns, max_rows, seed)
    blocks = _blocks(columns, seed)
    if len(blocks) == 1:
        return _report(real, synthetic, columns)
    # A wide table: one report per block of columns (a seeded partition), pairs scored within blocks only, so the
    # cost grows linearly with the columns (SDMetrics itself took about 35 minutes for the 124,750 pairs of 500).
    parts = [_report(real[[c.name for c in b]], synthetic[[c.name for c in b]], b) for b in blocks]
    # each property is the mean of the scores it counts, as in one report: weighted by what each block scored
    shapes = sum(p.column_shapes * len(p.per_column) for p in parts) / max(1, sum(len(p.per_column) for p in parts))
    trends = sum(p.column_pair_trends * len(p.per_pair) for p in parts) / max(1, sum(len(p.per_pair) for p in parts))
    return Fidelity(
        quality=(shapes + trends) / 2,  # SDMetrics' quality: the mean of its two properties
        column_shapes=shapes,
        column_pair_trends=trends,
        per_column={k: v for p in parts for k, v in p.per_column.items()},
        per_pair={k: v for p in parts for k, v in p.per_pair.items()},
    )


def _blocks(columns: list[Column], seed: int) -> list[list[Column]]:
    """The columns in one block when there are at most :data:`REPORT_COLUMNS`, else a seeded partition into
    near-equal blocks of at most that many."""
    if len(columns) <= REPORT_COLUMNS:
        return [columns]
    order = np.random.default_rng(seed).permutation(len(columns))
    count = -(-len(columns) // REPORT_COLUMNS)
    return [[columns[i] for i in sorted(part)] for part in np.array_split(order, count)]


def _report(real: pd.DataFrame, synthetic: pd.DataFrame, columns: list[Column]) -> Fidelity:
    """SDMetrics' quality over ``columns``: its Column Shapes property, and its Column Pair Trends as
    :mod:`synthgate.evaluation.pair_trends` computes them (the same scores, 7 to 60 times faster)."""
    from sdmetrics.reports.single_table._properties import ColumnShapes

    shapes = ColumnShapes()
    shapes_score = shapes.get_score(real, synthetic, sdmetrics_metadata(columns))
    trends = pair_trends(real, synthetic, columns)
    if math.isnan(trends.score):
        # SDMetrics scores only pairs whose real correlation or association is strong (its published quality
        # score, kept as is so figures compare with other tools'); a table without such pairs has no pair
        # score at all, and then every pair counts.
        trends = trends.every_pair()
    details = shapes.details
    return Fidelity(
        quality=float(np.nanmean([shapes_score, trends.score])),  # as SDMetrics' overall score
        column_shapes=float(shapes_score),
        column_pair_trends=trends.score,
        per_column={str(r["Column"]): float(r["Score"]) for _, r in details.iterrows() if pd.notna(r["Score"])},
        per_pair={pair: score for pair, score in trends.scores.items() if not math.isnan(score)},
    )


def _prepare(frame: pd.DataFrame, columns: list[Column], max_rows: int, seed: int) -> pd.DataFrame:
    if len(frame) > max_rows:
        frame = frame.sample(max_rows, random_state=seed)
    frame = frame.reset_index(drop=True).copy()
    for c in columns:
        if c.kind is ColumnKind.CATEGORICAL:
            frame[c.name] = category_text(frame[c.name]).fillna("None")  # a null as SDMetrics' category "None"
        elif c.kind is ColumnKind.DATETIME:
            frame[c.name] = pd.to_datetime(frame[c.name], utc=True, errors="coerce").dt.tz_localize(None)
        elif c.kind is ColumnKind.BOOLEAN:
            frame[c.name] = frame[c.name].astype("boolean")
        else:
            frame[c.name] = pd.to_numeric(frame[c.name], errors="coerce").astype(float)
    return frame
