"""A refresh of a table whose rows belong to persons (``privacy.unit``), on SQLite and MariaDB: the whole pipeline."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
import yaml

from synthgate.audit import audit, chain
from synthgate.flows.refresh import refresh_table
from synthgate.generator.units import SIZE_EDGES
from synthgate.settings import get_settings
from synthgate.spec import load_spec
from synthgate.warehouse import governance
from tests.reliability.conftest import spec_dict
from tests.reliability.test_ownership import MARIADB_URL

pytestmark = pytest.mark.integration


def orders(customers: int = 400, seed: int = 0) -> pd.DataFrame:
    """Customers with 1 to about 12 orders each; a customer's segment is the same on each of their orders."""
    rng = np.random.default_rng(seed)
    sizes = rng.geometric(0.25, customers)
    n = int(sizes.sum())
    return pd.DataFrame(
        {
            "customer_id": np.repeat(np.arange(70_000, 70_000 + customers), sizes),
            "segment": np.repeat(rng.choice(["retail", "business"], customers, p=[0.7, 0.3]), sizes),
            "amount": np.round(rng.lognormal(3, 0.8, n), 2),
            "channel": rng.choice(["web", "store", "phone"], n, p=[0.6, 0.3, 0.1]),
        }
    )


@pytest.fixture(params=["sqlite", "mariadb"])
def warehouse(request, tmp_path) -> Iterator[tuple[str, str | None, sa.Engine]]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'warehouse.db'}"
        engine = sa.create_engine(url)
        yield url, None, engine
        engine.dispose()
        return
    pytest.importorskip("pymysql")
    engine = sa.create_engine(MARIADB_URL)
    database = f"sg_{uuid.uuid4().hex[:10]}"
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE DATABASE `{database}`"))
    try:
        yield MARIADB_URL, database, engine
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP DATABASE `{database}`"))
        engine.dispose()


def test_a_unit_table_publishes_and_says_what_epsilon_protects(prefect_harness, workdir, warehouse):
    url, schema, engine = warehouse
    source = orders(customers=1000)  # 400 left the chosen bound near its noise: 1 fit in 100 read it off
    source.to_sql("orders", engine, schema=schema, index=False)
    data = spec_dict(schema or "", table="orders", target="orders_synthetic", name="orders")
    for side in ("source", "target"):
        data[side] = {"url": url, "table": data[side]["table"], **({"schema": schema} if schema else {})}
    data |= {"privacy": {"epsilon": 4.0, "delta": 1e-5, "unit": "customer_id"}, "holdout": {"fraction": 0.25}}
    path = Path(workdir) / "orders.yaml"
    path.write_text(yaml.safe_dump(data))

    result = refresh_table(str(path), trigger="test")
    assert result["status"] == "published"

    published = pd.read_sql_table("orders_synthetic", engine, schema=schema)
    assert set(published.columns) == set(source.columns)
    per_customer = published["customer_id"].value_counts()
    # the real mean is 4 orders a customer; the median, not the mean, above: a false far bin of sizes (0.2% of draws,
    # benchmarks/unit_bound.py) fakes some customers with hundreds
    assert per_customer.max() > 1 and per_customer.mean() > 1.5 and per_customer.median() <= 8
    governed = engine.execution_options(schema_translate_map={None: schema}) if schema else engine
    (row,) = governance.catalog_rows(governed, "orders")
    # the bound is chosen from the DP histogram of orders per customer
    assert row["privacy_unit"] == "customer_id" and row["max_rows_per_unit"] in SIZE_EDGES
    budget = next(
        step for step in chain(audit(load_spec(path), get_settings(), with_mlflow=False)) if step["step"] == "budget"
    )
    assert "protecting each customer_id with all its rows" in budget["text"]
