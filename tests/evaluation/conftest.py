"""Known-answer cases for the metrics: identical tables, independent samples, copied rows, a shifted column."""

import pandas as pd
import pytest

from synthgate.schema import Column, ColumnKind

COLUMNS = [
    Column("age", ColumnKind.INTEGER, ""),
    Column("income", ColumnKind.FLOAT, ""),
    Column("plan", ColumnKind.CATEGORICAL, ""),
    Column("region", ColumnKind.CATEGORICAL, ""),
    Column("visits", ColumnKind.INTEGER, ""),
    Column("churned", ColumnKind.BOOLEAN, ""),
]


@pytest.fixture(scope="session")
def columns() -> list[Column]:
    return COLUMNS


@pytest.fixture(scope="session")
def thirds(people) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Training (1000 rows), holdout and fresh rows (500 each): independent samples of one distribution."""
    table = people[[c.name for c in COLUMNS]]
    return tuple(table.iloc[a:b].reset_index(drop=True) for a, b in ((0, 1000), (1000, 1500), (1500, 2000)))
