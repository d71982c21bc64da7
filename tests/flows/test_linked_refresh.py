"""A parent table with its child tables (``children:``), refreshed end to end: one budget, one version of every
table, referential integrity, the catalog and the ledger, and a rollback that moves the views together."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd
import pytest
import sqlalchemy as sa
import yaml

from synthgate.audit import audit, chain
from synthgate.errors import PublishError
from synthgate.flows.refresh import refresh_table
from synthgate.settings import get_settings
from synthgate.spec import load_spec
from synthgate.warehouse import governance
from synthgate.warehouse.publish import rollback
from tests.flows.test_unit_refresh import warehouse  # noqa: F401 - the SQLite and MariaDB fixture
from tests.generator.test_linked import customers_and_orders, tickets_of
from tests.reliability.conftest import spec_dict

pytestmark = pytest.mark.integration


def linked_spec(folder: Path, url: str, schema: str | None, epsilon: float = 8.0, tickets: bool = False) -> Path:
    where = {"url": url, **({"schema": schema} if schema else {})}
    data = spec_dict(schema or "", table="customers", target="customers_synthetic", name="shop")
    data |= {
        "source": {**where, "table": "customers"},
        "target": {**where, "table": "customers_synthetic"},
        "privacy": {"epsilon": epsilon, "delta": 1e-5, "unit": "customer_id"},
        "holdout": {"fraction": 0.2},
        "target_column": "tier",  # gold customers order more: the parent-level TSTR reads it from the orders
        "children": [
            {
                "source": {**where, "table": "orders"},
                "target": {**where, "table": "orders_synthetic"},
                "key": "customer_id",
                "columns": {"order_id": {"policy": "fake", "fake": "id"}},
            }
        ]
        + (
            [
                {
                    "source": {**where, "table": "tickets"},
                    "target": {**where, "table": "tickets_synthetic"},
                    "key": "customer_id",
                }
            ]
            if tickets
            else []
        ),
    }
    data["training"] = data["training"] | {"epochs": 6}
    path = folder / "shop.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_a_parent_and_its_children_publish_as_one_version(prefect_harness, workdir, warehouse):  # noqa: F811
    # customers with two child tables, their orders and their support tickets: one budget, one version of the three
    url, schema, engine = warehouse
    parents, children = customers_and_orders(1500)
    parents.to_sql("customers", engine, schema=schema, index=False)
    children.to_sql("orders", engine, schema=schema, index=False)
    tickets_of(parents).to_sql("tickets", engine, schema=schema, index=False)
    path = linked_spec(Path(workdir), url, schema, tickets=True)

    result = refresh_table(str(path), trigger="test")
    assert result["status"] == "published"
    orders_result, tickets_result = result["children"]
    assert orders_result["published_version"] == tickets_result["published_version"] == 1
    assert orders_result["relations"]["relations.children_tvd"] < 0.3
    assert orders_result["relations"]["relations.tstr"] > 0.8  # train-on-real near 1: the tier follows the orders
    # every real ticket names a customer; the DP counts may invent a few orphans (about one fit in 40)
    assert tickets_result["relations"]["relations.dangling_share"] < 0.03
    assert {"orders_synthetic.children_tvd_excess", "tickets_synthetic.dangling_excess"} <= set(result["gates"])
    model = mlflow.pyfunc.load_model(f"models:/synthgate-shop/{result['model_version']}", dst_path=str(workdir))
    request = pd.DataFrame({"rows": [30], "seed": [2]})
    assert len(model.predict(request)) == 30  # parents by default
    assert list(model.predict(request, params={"table": "tickets_synthetic"}).columns) == ["customer_id", "wait_hours"]
    with pytest.raises(ValueError, match="none of this model's tables: parents, orders_synthetic, tickets_synthetic"):
        model.predict(request, params={"table": "payments"})
    report = Path(tickets_result["report"]).read_text()
    assert "Relations with the parent table" in report and "relations.children_tvd" in report
    assert "Relations with the parent table" not in Path(result["report"]).read_text()

    customers = pd.read_sql_table("customers_synthetic", engine, schema=schema)
    orders = pd.read_sql_table("orders_synthetic", engine, schema=schema)
    assert set(customers.columns) == set(parents.columns) and set(orders.columns) == set(children.columns)
    assert customers["customer_id"].is_unique
    linked = orders["customer_id"].isin(customers["customer_id"])
    # every order names a synthetic customer, except NULL keys and keys no customer has, about as often as in the real
    # orders (2% and 8% there)
    assert orders["customer_id"].isna().mean() < 0.1 and (~linked & orders["customer_id"].notna()).mean() < 0.2
    gold = customers.loc[customers["tier"] == "gold", "customer_id"]
    per_customer = orders["customer_id"].value_counts()
    assert (
        per_customer.reindex(gold).fillna(0).mean()
        > 2 * per_customer.reindex(customers.loc[customers["tier"] == "basic", "customer_id"]).fillna(0).mean()
    )

    governed = engine.execution_options(schema_translate_map={None: schema}) if schema else engine
    rows = {r["published_table"]: r for r in governance.catalog_rows(governed, "shop")}
    assert (
        rows["orders_synthetic"]["parent_table"] == rows["tickets_synthetic"]["parent_table"] == "customers_synthetic"
    )
    assert "relations.children_tvd" in rows["tickets_synthetic"]["scores"]
    bounds = {table: row["max_rows_per_unit"] for table, row in rows.items()}  # each table states its own bound
    assert bounds["customers_synthetic"] == bounds["orders_synthetic"] + bounds["tickets_synthetic"]
    assert rows["orders_synthetic"]["mlflow_run_id"] == rows["customers_synthetic"]["run_id"]
    assert rows["customers_synthetic"]["privacy_unit"] == "customer_id"
    # one spend, counted against each source it read: a spec of its own on the orders sees it under its cap
    ledger = {r["source_table"]: r for r in governance.ledger_rows(governed, "shop")}
    assert set(ledger) == {"customers", "orders", "tickets"}
    assert {r["status"] for r in ledger.values()} == {"published"}
    assert (
        ledger["orders"]["epsilon_spent"] == ledger["tickets"]["epsilon_spent"] == ledger["customers"]["epsilon_spent"]
    )
    assert ledger["customers"]["epsilon_spent"] <= 8.0
    tickets = pd.read_sql_table("tickets_synthetic", engine, schema=schema)
    assert tickets["customer_id"].isin(customers["customer_id"]).mean() > 0.97
    steps = {s["step"]: s["text"] for s in chain(audit(load_spec(path), get_settings(), with_mlflow=False))}
    assert "with orders_synthetic (table orders_synthetic__v1)" in steps["published table"]
    assert "tickets_synthetic (table tickets_synthetic__v1)" in steps["published table"]
    assert "protecting each customer_id with all its rows" in steps["budget"]


def test_a_rollback_moves_the_parent_and_its_children_together(prefect_harness, workdir, tmp_path):
    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    engine = sa.create_engine(url)
    parents, children = customers_and_orders(1200)
    parents.to_sql("customers", engine, index=False)
    children.to_sql("orders", engine, index=False)
    path = linked_spec(Path(workdir), url, None, epsilon=4.0)  # two refreshes within the default cap of 10
    spec = load_spec(path)
    for _ in range(2):
        refresh_table(str(path), trigger="test")

    def pointed() -> dict[str, int | None]:
        with engine.connect() as conn:
            return {t: governance.current_version(conn, t) for t in ("customers_synthetic", "orders_synthetic")}

    assert pointed() == {"customers_synthetic": 2, "orders_synthetic": 2}
    with pytest.raises(PublishError, match="roll back 'customers_synthetic'"):
        rollback(spec.children[0].target)
    rollback(spec.target, reason="test")
    assert pointed() == {"customers_synthetic": 1, "orders_synthetic": 1}
    with engine.connect() as conn:
        view = conn.execute(sa.text("SELECT sql FROM sqlite_master WHERE name = 'orders_synthetic'")).scalar()
    assert "orders_synthetic__v1" in view
    engine.dispose()
