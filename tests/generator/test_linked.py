"""Parent and child tables under one budget: referential integrity, children per parent, children after parents."""

import numpy as np
import pandas as pd
import pytest

from synthgate.generator.accounting import PrivacyAccountant, zcdp_rho
from synthgate.generator.linked import CHILDREN, SHARES, LinkedSynthesizer
from synthgate.schema import Column, ColumnKind
from synthgate.spec import ColumnPolicy, PrivacyBudget, Training

PARENT_COLUMNS = [
    Column("customer_id", ColumnKind.INTEGER, "BIGINT"),
    Column("tier", ColumnKind.CATEGORICAL, "TEXT"),
    Column("age", ColumnKind.INTEGER, "INTEGER"),
]
CHILD_COLUMNS = [
    Column("order_id", ColumnKind.INTEGER, "BIGINT"),
    Column("customer_id", ColumnKind.INTEGER, "BIGINT"),
    Column("amount", ColumnKind.FLOAT, "DOUBLE PRECISION"),
    Column("channel", ColumnKind.CATEGORICAL, "TEXT"),
]


def customers_and_orders(n=2000, seed=0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Gold customers place 8 to 12 orders of about 150, basic ones 0 to 3 of about 7; some orders name no customer
    (NULL) or one missing from the customers table (orphans), as real foreign keys do."""
    rng = np.random.default_rng(seed)
    tier = rng.choice(["gold", "basic"], n, p=[0.3, 0.7])
    parents = pd.DataFrame({"customer_id": np.arange(n), "tier": tier, "age": rng.integers(20, 80, n)})
    orders = np.where(tier == "gold", rng.integers(8, 13, n), rng.integers(0, 4, n))
    owner = np.repeat(parents["customer_id"].to_numpy(), orders).astype(float)
    gold = np.repeat(tier == "gold", orders)
    owner = np.concatenate([owner, np.full(300, np.nan), np.repeat(np.arange(10**6, 10**6 + 150), 4)])
    gold = np.concatenate([gold, np.zeros(300 + 600, dtype=bool)])
    children = pd.DataFrame(
        {
            "order_id": np.arange(owner.size),
            "customer_id": pd.array(owner, dtype="Int64"),
            "amount": np.round(rng.lognormal(np.where(gold, 5.0, 2.0), 0.3), 2),
            "channel": rng.choice(["web", "store"], owner.size),
        }
    )
    return parents, children


@pytest.fixture(scope="module")
def fitted() -> tuple[LinkedSynthesizer, pd.DataFrame, pd.DataFrame]:
    parents, children = customers_and_orders()
    linked = LinkedSynthesizer(
        parent_columns=PARENT_COLUMNS,
        parent_policies={},
        parent_key="customer_id",
        child_columns=CHILD_COLUMNS,
        child_policies={"order_id": ColumnPolicy(policy="fake", fake="id")},
        foreign_key="customer_id",
        privacy=PrivacyBudget(epsilon=8.0, delta=1e-5),
        training=Training(epochs=12, seed=1),
    )
    linked.fit(parents, children)
    return linked, parents, children


def test_the_pair_spends_one_budget_per_customer(fitted):
    linked, _, _ = fitted
    summary = linked.summary
    assert summary.epsilon <= 8.0 + 1e-9 and summary.delta <= 1e-5
    assert summary.child.unit == "customer_id" and summary.child.max_rows_per_unit == summary.max_rows_per_unit
    assert 12 <= summary.max_rows_per_unit <= 16  # 99% of the customers own at most 12 orders
    assert CHILDREN not in [c.name for c in linked.child.learned]
    # the parent model's unit is the key too, one row each: a key held by two parent rows is still one unit
    assert summary.parent.unit == "customer_id" and summary.parent.max_rows_per_unit == 1
    assert [c.name for c in linked.child.learned[:2]] == ["__parent__.tier", "__parent__.age"]  # parents come first


def test_the_three_parts_compose_on_one_accountant_to_the_budget(fitted):
    # every release of the fit (the children histogram, both models' releases and DP-SGD) is composed together: the
    # whole spends the budget, the parent's stage ends below it, and the parts plan with their shares of the zCDP
    # budget, not with a third of it as when their epsilons were added up
    linked, _, _ = fitted
    summary = linked.summary
    assert summary.epsilon == pytest.approx(8.0, rel=0.01) and summary.accounting == summary.child.accounting
    assert linked.counts.epsilon < summary.parent.epsilon < summary.child.epsilon == summary.epsilon
    accountant = PrivacyAccountant(delta=1e-5, delta_selection=2.5e-6)
    rho = zcdp_rho(8.0, accountant.delta_composed)
    stages = linked._stages(accountant)
    assert list(stages) == list(SHARES) and sum(stage.rho for stage in stages.values()) == pytest.approx(rho)
    assert stages["child"].epsilon == 8.0 > stages["parent"].epsilon > stages["sizes"].epsilon
    assert stages["parent"].selection_delta + stages["child"].selection_delta == pytest.approx(2.5e-6)
    assert stages["sizes"].selection_delta == 0.0
    basic = zcdp_rho(8.0 * 0.6, 1e-5 * 0.6)  # the child's rho when the parts' epsilons and deltas added up
    assert stages["child"].rho > 1.4 * basic


def test_every_synthetic_order_refers_to_a_synthetic_customer_or_to_none_as_in_the_real_data(fitted):
    linked, parents, children = fitted
    synthetic_parents, synthetic_children = linked.sample(seed=3)
    assert synthetic_parents["customer_id"].is_unique and CHILDREN not in synthetic_parents
    keys = synthetic_children["customer_id"]
    linked_share = keys.isin(set(synthetic_parents["customer_id"])).mean()
    real_linked = children["customer_id"].isin(set(parents["customer_id"])).mean()
    assert abs(linked_share - real_linked) < 0.05
    assert abs(keys.isna().mean() - children["customer_id"].isna().mean()) < 0.03
    orphans = keys.notna() & ~keys.isin(set(synthetic_parents["customer_id"]))
    assert 0 < orphans.mean() < 0.2  # keys no synthetic customer has, about as many as real ones


def test_orders_follow_their_customer(fitted):
    linked, _, _ = fitted
    synthetic_parents, synthetic_children = linked.sample(seed=4)
    per_parent = synthetic_children["customer_id"].value_counts()
    counts = synthetic_parents.set_index("customer_id").assign(n=per_parent).fillna({"n": 0})
    mean_orders = counts.groupby("tier")["n"].mean()
    assert mean_orders["gold"] > 2.5 * mean_orders["basic"]  # real: 10 against 1.5
    joined = synthetic_children.merge(synthetic_parents, on="customer_id")
    amount = joined.groupby("tier")["amount"].median()
    assert amount["gold"] > 4 * amount["basic"]  # real: about 150 against 7


def test_a_fitted_child_samples_given_parent_columns_it_never_outputs(fitted):
    linked, _, _ = fitted
    given = pd.DataFrame({"__parent__.tier": ["gold"] * 400, "__parent__.age": [40] * 400})
    orders = linked.child.sample(0, seed=5, given=given)
    assert len(orders) == 400 and "__parent__.tier" not in orders
    assert orders["amount"].median() > 50


def test_children_learn_their_place_in_the_declared_order(tmp_path):
    # each customer's orders grow: the k-th order (by placed_at) is about 20 * (k + 1), whenever the customer started
    # (so the date alone says nothing of the amount); the model learns an order's amount with its place, and each
    # synthetic customer's orders follow placed_at in that order
    rng = np.random.default_rng(2)
    parents = pd.DataFrame({"customer_id": np.arange(1500), "age": rng.integers(20, 80, 1500)})
    sizes = rng.integers(1, 9, 1500)
    place = np.arange(sizes.sum()) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    start = np.repeat(rng.integers(0, 3 * 365, 1500), sizes)
    children = pd.DataFrame(
        {
            "customer_id": pd.array(np.repeat(parents["customer_id"].to_numpy(), sizes), dtype="Int64"),
            "placed_at": pd.Timestamp("2022-01-01")
            + pd.to_timedelta(start + place * 10 + rng.integers(0, 5, start.size), "D"),
            "amount": np.round(20.0 * (place + 1) + rng.normal(0, 5, place.size), 2),
        }
    ).sample(frac=1.0, random_state=1)  # rows in no particular order
    linked = LinkedSynthesizer(
        parent_columns=[Column("customer_id", ColumnKind.INTEGER, "BIGINT"), Column("age", ColumnKind.INTEGER, "INT")],
        parent_policies={},
        parent_key="customer_id",
        child_columns=[
            Column("customer_id", ColumnKind.INTEGER, "BIGINT"),
            Column("placed_at", ColumnKind.DATETIME, "TIMESTAMP"),
            Column("amount", ColumnKind.FLOAT, "DOUBLE PRECISION"),
        ],
        child_policies={},
        foreign_key="customer_id",
        privacy=PrivacyBudget(epsilon=8.0, delta=1e-5),
        training=Training(epochs=12, seed=1),
        order_by="placed_at",
    )
    linked.fit(parents, children)
    loaded = LinkedSynthesizer.load(linked.save(tmp_path / "linked"))
    _, synthetic = loaded.sample(seed=3)
    assert "__position__" not in synthetic and list(synthetic.columns) == ["customer_id", "placed_at", "amount"]
    ordered = synthetic.dropna(subset=["customer_id"]).sort_values("placed_at", kind="stable")
    ordered = ordered.assign(place=ordered.groupby("customer_id").cumcount())
    by_place = ordered.groupby("place")["amount"].median()
    assert by_place.iloc[0] < by_place.iloc[3] < by_place.iloc[6]  # real: 20, 80, 140
    assert ordered["amount"].corr(ordered["place"], method="spearman") > 0.5  # real: about 0.95
