"""The Adult demo: an embedded SQLite warehouse loaded from UCI Adult, shipped inside the package (``demo_data/``)
with its table spec and GX suites, so that ``synthgate demo`` runs from any folder of an installed Synthgate."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

#: The package's demo files: ``adult/`` (the CSVs and their licence), ``adult.yaml`` (the spec) and
#: ``expectations/`` (its reviewed GX suites). The project's ``deployments/tables/adult.yaml`` and
#: ``expectations/adult.*.json`` link here.
DEMO_DIR = Path(str(resources.files("synthgate") / "demo_data"))
DEMO_DATA = DEMO_DIR / "adult"
DEMO_SPEC = DEMO_DIR / "adult.yaml"
DEMO_EXPECTATIONS = DEMO_DIR / "expectations"


def load_demo_warehouse(home: Path) -> str:
    """(Re)load ``adult`` and ``adult_test`` into ``home/warehouse.db``; returns the SQLAlchemy URL."""
    home.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{(home / 'warehouse.db').resolve()}"
    engine = sa.create_engine(url)
    for table, csv in (("adult", "train.csv"), ("adult_test", "test.csv")):
        pd.read_csv(DEMO_DATA / csv).to_sql(table, engine, index=False, if_exists="replace", chunksize=10_000)
    engine.dispose()
    return url
