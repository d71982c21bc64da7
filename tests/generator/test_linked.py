"""Parent and child tables under one budget: referential integrity, children per parent, children after parents."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from synthgate.generator.accounting import PrivacyAccountant, zcdp_rho
from synthgate.generator.linked import (
    CHILDREN,
    ORPHAN_GROUPS,
    PARENT,
    SHARES,
    LinkedChild,
    LinkedSynthesizer,
    _orphan_sizes,
    placed,
    rake,
    systematic,
    with_parents,
)
from synthgate.generator.noise import SecureNoise
from synthgate.generator.units import SIZE_EDGES, SizeHistogram, sibling_agreement
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


def tickets_of(parents: pd.DataFrame, seed=5) -> pd.DataFrame:
    """Gold customers open 2 to 6 support tickets and wait about 2 hours, basic ones 0 or 1 and wait about 30."""
    rng = np.random.default_rng(seed)
    gold = parents["tier"].eq("gold").to_numpy()
    per_customer = np.where(gold, rng.integers(2, 7, len(parents)), rng.integers(0, 2, len(parents)))
    return pd.DataFrame(
        {
            "customer_id": pd.array(np.repeat(parents["customer_id"].to_numpy(), per_customer), dtype="Int64"),
            "wait_hours": np.round(rng.exponential(np.where(np.repeat(gold, per_customer), 2.0, 30.0)), 1),
        }
    )


ORDERS = LinkedChild(
    "orders", CHILD_COLUMNS, "customer_id", policies={"order_id": ColumnPolicy(policy="fake", fake="id")}
)


@pytest.fixture(scope="module")
def fitted() -> tuple[LinkedSynthesizer, pd.DataFrame, pd.DataFrame]:
    parents, children = customers_and_orders()
    linked = LinkedSynthesizer(
        parent_columns=PARENT_COLUMNS,
        parent_policies={},
        parent_key="customer_id",
        children=[ORDERS],
        privacy=PrivacyBudget(epsilon=8.0, delta=1e-5),
        training=Training(epochs=12, seed=1),
    )
    linked.fit(parents, [children])
    return linked, parents, children


def test_the_pair_spends_one_budget_per_customer(fitted):
    linked, _, _ = fitted
    summary = linked.summary
    assert summary.epsilon <= 8.0 + 1e-9 and summary.delta <= 1e-5
    [child] = summary.children
    assert child.unit == "customer_id" and child.max_rows_per_unit == summary.max_rows_per_unit
    assert 12 <= summary.max_rows_per_unit <= 16  # 99% of the customers own at most 12 orders
    assert not any(c.name.startswith(CHILDREN) for c in linked.models[0].learned)
    # the parent model's unit is the key too, one row each: a key held by two parent rows is still one unit
    assert summary.parent.unit == "customer_id" and summary.parent.max_rows_per_unit == 1
    assert [c.name for c in linked.models[0].learned[:2]] == ["__parent__.tier", "__parent__.age"]  # parents first


def test_the_three_parts_compose_on_one_accountant_to_the_budget(fitted):
    # every release of the fit (the children histogram, both models' releases and DP-SGD) is composed together: the
    # whole spends the budget, the parent's stage ends below it, and the parts plan with their shares of the zCDP
    # budget, not with a third of it as when their epsilons were added up
    linked, _, _ = fitted
    summary = linked.summary
    [child] = summary.children
    assert summary.epsilon == pytest.approx(8.0, rel=0.01) and summary.accounting == child.accounting
    assert linked.counts[0].epsilon < summary.parent.epsilon < child.epsilon == summary.epsilon
    accountant = PrivacyAccountant(delta=1e-5, delta_selection=2.5e-6)
    rho = zcdp_rho(8.0, accountant.delta_composed)
    stages = linked._stages(accountant)
    assert list(stages) == ["sizes", "parent", "child:orders"] and sum(s.rho for s in stages.values()) == pytest.approx(
        rho
    )
    assert stages["child:orders"].epsilon == 8.0 > stages["parent"].epsilon > stages["sizes"].epsilon
    assert stages["parent"].selection_delta + stages["child:orders"].selection_delta == pytest.approx(2.5e-6)
    assert stages["sizes"].selection_delta == 0.0
    basic = zcdp_rho(8.0 * SHARES["children"], 1e-5 * 0.6)  # the child's rho when the parts' epsilons added up
    assert stages["child:orders"].rho > 1.4 * basic


def test_every_synthetic_order_refers_to_a_synthetic_customer_or_to_none_as_in_the_real_data(fitted):
    linked, parents, children = fitted
    synthetic_parents, [synthetic_children] = linked.sample(seed=3)
    assert synthetic_parents["customer_id"].is_unique
    assert not any(name.startswith(CHILDREN) for name in synthetic_parents)
    keys = synthetic_children["customer_id"]
    linked_share = keys.isin(set(synthetic_parents["customer_id"])).mean()
    real_linked = children["customer_id"].isin(set(parents["customer_id"])).mean()
    assert abs(linked_share - real_linked) < 0.05
    assert abs(keys.isna().mean() - children["customer_id"].isna().mean()) < 0.03
    orphans = keys.notna() & ~keys.isin(set(synthetic_parents["customer_id"]))
    assert 0 < orphans.mean() < 0.2  # keys no synthetic customer has, about as many as real ones


@pytest.mark.parametrize("times", [0.25, 2.0])
def test_orphans_and_null_keys_keep_their_share_whatever_the_number_of_parents(fitted, times):
    # counted beside the training parents, they scale with the parents sampled (rows:, or the source's estimate)
    linked, parents, children = fitted
    n_parents = round(linked.parent.summary.noisy_rows * times)
    synthetic_parents, [synthetic_children] = linked.sample(n_parents=n_parents, seed=5)
    keys = synthetic_children["customer_id"]
    real = children["customer_id"]
    assert abs(keys.isna().mean() - real.isna().mean()) < 0.03
    dangling = keys.notna() & ~keys.isin(set(synthetic_parents["customer_id"]))
    real_dangling = real.notna() & ~real.isin(set(parents["customer_id"]))
    assert abs(dangling.mean() - real_dangling.mean()) < 0.04


def test_orders_follow_their_customer(fitted):
    linked, _, _ = fitted
    synthetic_parents, [synthetic_children] = linked.sample(seed=4)
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
    orders = linked.models[0].sample(0, seed=5, given=given)
    assert len(orders) == 400 and "__parent__.tier" not in orders
    assert orders["amount"].median() > 50


def customers_with_channels(*, per_customer: bool, n: int = 2000) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Customers (an age) with 2 to 7 orders each, through one channel of three per customer (``per_customer``) or per
    order; the channel says nothing of age or amount."""
    rng = np.random.default_rng(7)
    parents = pd.DataFrame({"customer_id": np.arange(n), "age": rng.integers(20, 80, n)})
    sizes = rng.integers(2, 8, n)
    names, shares = ["web", "store", "phone"], [0.5, 0.3, 0.2]
    channel = (
        np.repeat(rng.choice(names, n, p=shares), sizes) if per_customer else rng.choice(names, sizes.sum(), p=shares)
    )
    children = pd.DataFrame(
        {
            "customer_id": pd.array(np.repeat(parents["customer_id"].to_numpy(), sizes), dtype="Int64"),
            "channel": channel,
            "amount": np.round(rng.lognormal(3.0, 0.5, sizes.sum()), 2),
        }
    )
    return parents, children


def fit_orders(
    parents: pd.DataFrame, children: pd.DataFrame, column: Column, *, epsilon: float, order_by: str | None = None
) -> LinkedSynthesizer:
    """Customers (id, age) and their orders (customer_id, ``column``, amount), fitted at ``epsilon``."""
    amount = Column("amount", ColumnKind.FLOAT, "DOUBLE PRECISION")
    orders = [Column("customer_id", ColumnKind.INTEGER, "BIGINT"), column, amount]
    linked = LinkedSynthesizer(
        parent_columns=[Column("customer_id", ColumnKind.INTEGER, "BIGINT"), Column("age", ColumnKind.INTEGER, "INT")],
        parent_policies={},
        parent_key="customer_id",
        children=[LinkedChild("orders", orders, "customer_id", order_by=order_by)],
        privacy=PrivacyBudget(epsilon=epsilon, delta=1e-5),
        training=Training(epochs=12, seed=1),
    )
    linked.fit(parents, [children])
    return linked


def fit_channels(parents: pd.DataFrame, children: pd.DataFrame) -> LinkedSynthesizer:
    return fit_orders(parents, children, Column("channel", ColumnKind.CATEGORICAL, "TEXT"), epsilon=4.0)


def test_siblings_agree_as_their_parent_does(tmp_path):
    # each customer orders through one channel, whatever their age: a customer's synthetic orders agree as often as
    # real ones do (always); drawn independently given the customer, they agreed 71% of the time
    parents, children = customers_with_channels(per_customer=True)
    linked = fit_channels(parents, children)
    assert linked.siblings[0]["channel"] == pytest.approx(1.0, abs=0.05)  # released: every customer's orders agree
    synthetic_parents, [orders] = linked.sample(seed=2)
    assert list(synthetic_parents.columns) == ["customer_id", "age"]
    agree = sibling_agreement(orders, "customer_id", "channel")
    assert agree > 0.85, f"siblings agree {agree:.2f}"
    # taking the first sibling's channel keeps the channels' shares as the model draws them (DP-SGD's clipping leans
    # them to web, 0.67-0.68 for a real 0.50, with or without the siblings' mix)
    mixes, linked.mixes = linked.mixes, [{}]
    _, [drawn] = linked.sample(seed=2)
    linked.mixes = mixes
    assert sibling_agreement(drawn, "customer_id", "channel") < 0.8  # the model alone: about 0.71
    web = orders["channel"].eq("web").mean(), drawn["channel"].eq("web").mean()
    assert abs(web[0] - web[1]) < 0.05, web
    # the weight is calibrated once, after the fit, and saved with the model: a sample of ten customers mixes at it
    assert 0.5 < mixes[0]["channel"] <= 1.0
    loaded = LinkedSynthesizer.load(linked.save(tmp_path / "model"))
    assert loaded.mixes == mixes and loaded.siblings == linked.siblings
    _, [few] = loaded.sample(10, seed=3)
    assert sibling_agreement(few, "customer_id", "channel") > 0.85


def test_siblings_that_do_not_agree_are_not_made_to():
    # a channel per order: a customer's orders agree only by chance, and so do the synthetic ones
    parents, children = customers_with_channels(per_customer=False)
    linked = fit_channels(parents, children)
    _, [orders] = linked.sample(seed=2)
    real, synthetic = (sibling_agreement(frame, "customer_id", "channel") for frame in (children, orders))
    assert linked.siblings[0]["channel"] == pytest.approx(real, abs=0.05)  # released: the same measure
    assert abs(synthetic - real) < 0.08, f"siblings agree {synthetic:.2f} against {real:.2f}"


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
    placed_at = Column("placed_at", ColumnKind.DATETIME, "TIMESTAMP")
    linked = fit_orders(parents, children, placed_at, epsilon=8.0, order_by="placed_at")
    loaded = LinkedSynthesizer.load(linked.save(tmp_path / "linked"))
    _, [synthetic] = loaded.sample(seed=3)
    assert "__position__" not in synthetic and list(synthetic.columns) == ["customer_id", "placed_at", "amount"]
    ordered = synthetic.dropna(subset=["customer_id"]).sort_values("placed_at", kind="stable")
    ordered = ordered.assign(place=ordered.groupby("customer_id").cumcount())
    by_place = ordered.groupby("place")["amount"].median()
    assert by_place.iloc[0] < by_place.iloc[3] < by_place.iloc[6]  # real: 20, 80, 140
    assert ordered["amount"].corr(ordered["place"], method="spearman") > 0.5  # real: about 0.95


def test_two_child_tables_share_the_parent_and_its_one_budget(tmp_path):
    # gold customers place about 10 orders and open about 4 support tickets, basic ones about 1.5 orders and almost no
    # tickets; a ticket's wait is long for basic customers: both tables follow the customer, on one budget per
    # customer with all their orders and tickets
    parents, orders = customers_and_orders(n=1500, seed=4)
    tickets = tickets_of(parents)
    ticket_columns = [
        Column("customer_id", ColumnKind.INTEGER, "BIGINT"),
        Column("wait_hours", ColumnKind.FLOAT, "REAL"),
    ]
    linked = LinkedSynthesizer(
        parent_columns=PARENT_COLUMNS,
        parent_policies={},
        parent_key="customer_id",
        children=[ORDERS, LinkedChild("tickets", ticket_columns, "customer_id")],
        privacy=PrivacyBudget(epsilon=8.0, delta=1e-5),
        training=Training(epochs=12, seed=1),
    )
    summary = linked.fit(parents, [orders, tickets])
    assert summary.epsilon == pytest.approx(8.0, rel=0.01) and len(summary.children) == 2
    assert summary.parent.epsilon < summary.children[0].epsilon < summary.children[1].epsilon == summary.epsilon
    assert summary.max_rows_per_unit == sum(fit.max_rows_per_unit for fit in summary.children)  # a customer's rows
    stages = linked._stages(PrivacyAccountant(delta=1e-5, delta_selection=2.5e-6))
    assert list(stages) == ["sizes", "parent", "child:orders", "child:tickets"]
    assert stages["child:orders"].rho == pytest.approx(stages["child:tickets"].rho)
    assert sum(s.rho for s in stages.values()) == pytest.approx(zcdp_rho(8.0, 1e-5 * 0.75))

    loaded = LinkedSynthesizer.load(linked.save(tmp_path / "linked"))
    synthetic_parents, [synthetic_orders, synthetic_tickets] = loaded.sample(seed=6)
    assert list(synthetic_parents.columns) == ["customer_id", "tier", "age"]
    assert list(synthetic_tickets.columns) == ["customer_id", "wait_hours"]
    keys = set(synthetic_parents["customer_id"])
    # the real tickets all name a customer (the DP counts may invent a few orphans: about one fit in 40)
    assert synthetic_tickets["customer_id"].isin(keys).mean() > 0.97
    assert synthetic_orders["customer_id"].isna().any()  # the orders keep their NULL keys
    tiers = synthetic_parents.set_index("customer_id")["tier"]
    tickets_per = synthetic_tickets["customer_id"].value_counts().reindex(tiers.index, fill_value=0)
    assert tickets_per.groupby(tiers).mean()["gold"] > 3 * tickets_per.groupby(tiers).mean()["basic"]  # real 4 / 0.5
    wait = synthetic_tickets.assign(tier=synthetic_tickets["customer_id"].map(tiers)).groupby("tier")["wait_hours"]
    assert wait.median()["basic"] > 3 * wait.median()["gold"]  # real: about 21 against 1.4


def test_a_linked_model_saved_with_one_child_before_several_were_possible_still_samples():
    # saved by commit fb4b9bd (format 1: the child's model in child/, the parent's count column __children__), from
    # customers_and_orders(800) with epochs=2
    linked = LinkedSynthesizer.load(Path(__file__).parent / "data" / "linked_format1")
    parents, [orders] = linked.sample(500, seed=1)
    assert list(parents.columns) == ["customer_id", "tier", "age"] and parents["customer_id"].is_unique
    assert list(orders.columns) == ["order_id", "customer_id", "amount", "channel"]
    assert orders["customer_id"].isin(set(parents["customer_id"])).sum() > len(parents)  # gold customers order more
    assert linked.summary is not None and linked.summary.epsilon <= 8.0


def test_a_child_table_without_orphans_almost_never_gets_invented_ones():
    # a foreign key the warehouse enforces has no orphans, and the synthetic copy must load there too: at twice the
    # noise of the orphan groups' sum, one fit in 40 invented some (about a hundred dangling rows in a test refresh)
    sigma, groups = 4.0, len(ORPHAN_GROUPS)
    noise = SecureNoise()
    shape = SizeHistogram(tuple(1.0 for _ in SIZE_EDGES), float(len(SIZE_EDGES)))
    invented = [_orphan_sizes(noise.normal(sigma, (groups,)), shape, sigma).total > 0 for _ in range(2000)]
    assert np.mean(invented) < 0.005
    assert _orphan_sizes(np.full(groups, 20.0), shape, sigma).total == pytest.approx(120.0)  # real orphans stay


def test_parents_are_drawn_to_every_child_tables_histogram_at_once():
    # a pool whose orders and tickets per parent are off (too many with none of either): raking weighs it so that both
    # histograms hold at once, and systematic sampling draws distinct parents at those weights
    rng = np.random.default_rng(7)
    orders = rng.choice(4, 8000, p=[0.55, 0.25, 0.15, 0.05])
    tickets = np.minimum(orders + rng.choice(2, 8000, p=[0.7, 0.3]), 3)
    want_orders, want_tickets = np.array([0.3, 0.3, 0.25, 0.15]), np.array([0.2, 0.3, 0.3, 0.2])
    weights = rake([(orders, want_orders), (tickets, want_tickets)], orders.size)
    taken = systematic(weights, 2000, np.random.default_rng(8))
    assert taken.size == np.unique(taken).size == 2000
    assert np.abs(np.bincount(orders[taken], minlength=4) / 2000 - want_orders).max() < 0.02
    assert np.abs(np.bincount(tickets[taken], minlength=4) / 2000 - want_tickets).max() < 0.02
    # a row heavier than one draw's share is taken for certain, never twice
    heavy = systematic(np.r_[np.full(5, 1e6), np.ones(995)], 50, np.random.default_rng(9))
    assert set(range(5)) <= set(heavy) and heavy.size == np.unique(heavy).size == 50

    with pytest.raises(ValueError, match="finite and non-negative"):
        systematic(np.array([np.nan, 1.0, 1.0]), 2, np.random.default_rng(0))


@pytest.mark.parametrize("dtype", ["float64", "Int64", "object"])
def test_a_parent_with_a_null_key_is_no_child_s_parent(dtype):
    # pandas joins NaN to NaN: one parent would sit in every NULL-key child's row, each a unit of its own
    keys = pd.Series([1, 2, None], dtype=dtype) if dtype != "object" else pd.Series(["a", "b", None], dtype=object)
    foreign = [keys[0], keys[1], None, None, keys[1] if dtype == "object" else 7]
    parents = pd.DataFrame({"id": keys, "salary": [50, 60, 987654]})
    children = pd.DataFrame({"cid": pd.Series(foreign, dtype=dtype), "amount": range(5)})
    joined = with_parents(children, parents, key="id", foreign_key="cid", columns=["salary"])
    salary = joined[PARENT + "salary"]
    assert salary.iloc[:2].tolist() == [50, 60] and salary.iloc[2:4].isna().all()
    assert 987654 not in salary.tolist()


def test_children_are_placed_among_the_rows_that_train():
    # a customer of 400 orders bounded at 24 keeps 24 of them, placed 0 to 23 in their order, as sampling places them
    rng = np.random.default_rng(0)
    sizes = np.array([400, 3, 1])
    children = pd.DataFrame(
        {
            "customer_id": np.repeat([1, 2, 3], sizes),
            "placed_at": pd.Timestamp("2022-01-01") + pd.to_timedelta(rng.permutation(sizes.sum()), "h"),
        }
    ).sample(frac=1.0, random_state=1)
    kept = placed(children, "customer_id", "placed_at", bound=24, noise=SecureNoise())
    assert kept.groupby("customer_id").size().to_dict() == {1: 24, 2: 3, 3: 1}
    for _, rows in kept.groupby("customer_id"):
        assert sorted(rows["__position__"]) == list(range(len(rows)))
        assert rows.sort_values("placed_at")["__position__"].tolist() == list(range(len(rows)))
