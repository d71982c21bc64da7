"""Benchmark tables: real public data shipped with the repo, with a fixed train/holdout split."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from synthgate.demo import DEMO_DATA
from synthgate.schema import Column, ColumnKind

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Dataset:
    name: str
    train: pd.DataFrame
    holdout: pd.DataFrame
    columns: list[Column]  # the modelled columns (identifiers excluded)
    target: str
    dropped: tuple[str, ...] = ()


def adult() -> Dataset:
    train = pd.read_csv(DEMO_DATA / "train.csv")
    holdout = pd.read_csv(DEMO_DATA / "test.csv")
    columns = [
        Column(n, ColumnKind.INTEGER if train[n].dtype.kind == "i" else ColumnKind.CATEGORICAL, "")
        for n in train.columns
    ]
    return Dataset("adult", train, holdout, columns, "income")


def mpls_stops() -> Dataset:
    """Minneapolis police stops 2017: a datetime, coordinates, nulls and a unique identifier (dropped)."""
    frame = pd.read_csv(ROOT / "benchmarks/data/mpls_stops.csv.gz")
    frame["date"] = pd.to_datetime(frame["date"], utc=True)
    frame = frame.drop(columns=["idNum"])
    holdout = frame.sample(frac=0.2, random_state=0)
    train = frame.drop(holdout.index)
    kinds = {"date": ColumnKind.DATETIME, "lat": ColumnKind.FLOAT, "long": ColumnKind.FLOAT}
    columns = [Column(n, kinds.get(n, ColumnKind.CATEGORICAL), "", n == "date") for n in frame.columns]
    return Dataset(
        "mpls_stops", train.reset_index(drop=True), holdout.reset_index(drop=True), columns, "personSearch", ("idNum",)
    )


DATASETS = {"adult": adult, "mpls_stops": mpls_stops}
