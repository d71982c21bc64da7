"""The Adult demo: an embedded SQLite warehouse loaded from the CSVs shipped under demo/data/adult."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
DEMO_DATA = ROOT / "demo" / "data" / "adult"
DEMO_SPEC = ROOT / "deployments" / "tables" / "adult.yaml"


def load_demo_warehouse(home: Path) -> str:
    """(Re)load ``adult`` and ``adult_test`` into ``home/warehouse.db``; returns the SQLAlchemy URL."""
    home.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{(home / 'warehouse.db').resolve()}"
    engine = sa.create_engine(url)
    for table, csv in (("adult", "train.csv"), ("adult_test", "test.csv")):
        pd.read_csv(DEMO_DATA / csv).to_sql(table, engine, index=False, if_exists="replace", chunksize=10_000)
    engine.dispose()
    return url
