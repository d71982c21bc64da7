"""Column policies.

A refresh decides from names and types alone; `synthgate profile --write` records SDV's proposals.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
import yaml
from typer.testing import CliRunner

from synthgate import profiling
from synthgate.cli import app
from synthgate.profiling import name_words, policies_from_schema, record_policies, rule_for
from synthgate.schema import Column, ColumnKind
from synthgate.spec import ColumnPolicy, load_spec, spec_from_dict
from tests.conftest import PEOPLE_COLUMNS, make_people

# one letter a kind keeps the expected-kind tables below readable
I, F, S, B, D = ColumnKind.INTEGER, ColumnKind.FLOAT, ColumnKind.CATEGORICAL, ColumnKind.BOOLEAN, ColumnKind.DATETIME  # noqa: E741
BASE = {
    "name": "people",
    "source": {"url": "sqlite:///w.db", "table": "people"},
    "target": {"url": "sqlite:///w.db", "table": "people_synthetic"},
    "privacy": {"epsilon": 1.0, "delta": 1e-5},
}


def spec(**overrides):
    return spec_from_dict(BASE | overrides)


def decided(name: str, kind: ColumnKind, sql_type: str | None = None, **overrides) -> tuple[str, str | None]:
    column = Column(name, kind, sql_type or {I: "BIGINT", F: "FLOAT", S: "TEXT", B: "BOOLEAN", D: "TIMESTAMP"}[kind])
    (profile,) = policies_from_schema(spec(**overrides), [column])
    return profile.proposed.policy, profile.proposed.fake


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("customer_id", ["customer", "id"]),
        ("customerId", ["customer", "id"]),
        ("CustomerID", ["customer", "id"]),
        ("E_Mail", ["email"]),
        ("EMail", ["email"]),
        ("firstname", ["first", "name"]),
        ("address_line_2", ["address", "line"]),
        ("phone2", ["phone"]),
        ("SSN", ["ssn"]),
    ],
)
def test_names_split_into_words(name, words):
    assert name_words(name) == words


@pytest.mark.parametrize(
    ("name", "kind", "expected"),
    [
        ("id", I, ("fake", "id")),
        ("customer_id", I, ("fake", "id")),
        ("customerId", I, ("fake", "id")),
        ("order_id", S, ("fake", "uuid")),
        ("AccountID", S, ("fake", "uuid")),
        ("uuid", S, ("fake", "uuid")),
        ("user_guid", S, ("fake", "uuid")),
        ("email", S, ("fake", "email")),
        ("e_mail", S, ("fake", "email")),
        ("contactEmailAddress", S, ("fake", "email")),
        ("first_name", S, ("fake", "first_name")),
        ("firstName", S, ("fake", "first_name")),
        ("given_name", S, ("fake", "first_name")),
        ("last_name", S, ("fake", "last_name")),
        ("surname", S, ("fake", "last_name")),
        ("family_name", S, ("fake", "last_name")),
        ("name", S, ("fake", "name")),
        ("full_name", S, ("fake", "name")),
        ("customer_name", S, ("fake", "name")),
        ("phone", S, ("fake", "phone_number")),
        ("phone_number", S, ("fake", "phone_number")),
        ("mobile", S, ("fake", "phone_number")),
        ("Telephone", S, ("fake", "phone_number")),
        ("address", S, ("fake", "address")),
        ("street_address", S, ("fake", "address")),
        ("street", S, ("fake", "address")),
        ("address_line_1", S, ("fake", "address")),
        ("ssn", S, ("fake", "ssn")),
        ("social_security_number", S, ("fake", "ssn")),
    ],
)
def test_identifiers_and_personal_data_are_faked_by_name(name, kind, expected):
    assert decided(name, kind) == expected


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("age", I),
        ("income", F),
        ("plan", S),
        ("region", S),
        ("signup", D),
        ("churned", B),
        ("plan_name", S),
        ("product_name", S),
        ("company_name", S),  # a name, but not a person's
        ("email_verified", B),
        ("email_domain", S),
        ("phone_type", S),
        ("ip_address", S),  # not the value itself
        ("paid", B),
        ("valid", S),
        ("amount_id", F),  # 'id' only as a word, and only for integer or string types
        ("phone", I),
        ("ssn", I),  # personal data in a numeric type: a fake string cannot be published into it
    ],
)
def test_other_columns_are_kept(name, kind):
    assert decided(name, kind) == ("keep", None)


def test_the_sql_uuid_type_is_an_identifier():
    assert decided("token", S, sql_type="UUID") == ("fake", "uuid")


def test_a_policy_declared_in_the_spec_wins():
    columns = [Column("customer_id", I, "BIGINT"), Column("email", S, "TEXT"), Column("age", I, "BIGINT")]
    declared = spec(
        columns={"customer_id": {"policy": "keep"}, "email": {"policy": "drop"}, "age": {"min": 0, "max": 120}}
    )
    by_name = {p.name: p for p in policies_from_schema(declared, columns)}
    assert by_name["customer_id"].proposed.policy == "keep" and by_name["customer_id"].declared
    assert by_name["email"].proposed.policy == "drop" and by_name["email"].reason == "declared in the spec"
    # a declared public domain without a policy: the name rule decides, and the domain is kept
    assert not by_name["age"].declared
    assert by_name["age"].proposed == ColumnPolicy(policy="keep", min=0, max=120)
    assert by_name["age"].reason.startswith("no policy recorded in the spec: decided from its name and type")


def test_the_target_column_is_never_faked():
    assert decided("name", S, target_column="name") == ("keep", None)


def test_the_refresh_path_reads_no_row(monkeypatch):
    # it does not even take a frame, and never reaches SDV's detection
    assert list(inspect.signature(policies_from_schema).parameters) == ["spec", "columns"]

    def no_detection(*_args, **_kwargs):
        raise AssertionError("a refresh must not read values to decide policies")

    monkeypatch.setattr(profiling, "detect_sdtypes", no_detection)
    monkeypatch.setattr(profiling, "propose", no_detection)
    profiles = policies_from_schema(spec(), PEOPLE_COLUMNS)
    assert {p.name: (p.proposed.policy, p.proposed.fake) for p in profiles if p.proposed.policy != "keep"} == {
        "customer_id": ("fake", "id"),
        "email": ("fake", "email"),
    }
    assert [p.name for p in profiles] == [c.name for c in PEOPLE_COLUMNS]


def test_the_task_logs_one_line_naming_the_undecided_columns(monkeypatch):
    from synthgate.tasks import validate

    class Lines:
        def __init__(self) -> None:
            self.lines: list[str] = []

        def info(self, message: str, *args: object) -> None:
            self.lines.append(message % args)

    logger = Lines()
    assert list(inspect.signature(validate.profile_columns.fn).parameters) == ["spec", "columns"]
    monkeypatch.setattr(validate, "get_run_logger", lambda: logger)
    monkeypatch.setattr(profiling, "detect_sdtypes", lambda *a: pytest.fail("read the data"))
    profiles = validate.profile_columns.fn(spec(columns={"plan": {"policy": "categorical"}}), PEOPLE_COLUMNS)
    assert len(profiles) == len(PEOPLE_COLUMNS)
    (line,) = logger.lines
    assert line.startswith(
        "columns decided from name and type (no policy in the spec; `synthgate profile SPEC --write`"
    )
    assert "fake id: customer_id" in line and "fake email: email" in line and "keep: " in line and "age" in line
    assert "plan" not in line


def test_a_wide_tables_undeclared_columns_are_grouped_and_a_group_names_at_most_twelve():
    columns = [Column(f"x{i:03d}", ColumnKind.FLOAT, "DOUBLE PRECISION") for i in range(500)]
    line = profiling.undeclared_decisions(policies_from_schema(spec(), [*PEOPLE_COLUMNS, *columns]))
    keep = next(group for group in line.split("; ") if group.startswith("keep: "))
    assert keep.endswith(f" and {len(PEOPLE_COLUMNS) + 500 - 2 - 12} more"), keep  # less the two faked
    assert keep.count(", ") == 11 and "x499" not in line


# -- recording proposals in the spec file ------------------------------------------------------------------------

SPEC_TEXT = """\
# people: the synthetic copy for analysts
name: people
source:
  url: sqlite:///${SG_PROFILE_DIR}/warehouse.db   # the warehouse (placeholder stays)
  table: people
target: {url: "sqlite:///${SG_PROFILE_DIR}/warehouse.db", table: people_synthetic}
keys:
  - customer_id
columns:
  plan: {policy: categorical, categories: [basic, plus, premium]}  # public domain
  region: {policy: drop}
  age: {min: 0, max: 120}

# the budget of one refresh
privacy: {epsilon: 1.0, delta: 1.0e-5}
"""


@pytest.fixture
def people_spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SG_PROFILE_DIR", str(tmp_path))
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'warehouse.db'}")
    make_people(300).to_sql("people", engine, index=False)
    engine.dispose()
    path = tmp_path / "people.yaml"
    path.write_text(SPEC_TEXT)
    return path


def test_profile_proposes_without_writing(people_spec):
    result = CliRunner().invoke(app, ["profile", str(people_spec)])
    assert result.exit_code == 0, result.output
    assert "customer_id" in result.output and "fake (id)" in result.output and "--write" in result.output
    assert people_spec.read_text() == SPEC_TEXT


def test_profile_write_records_the_proposals_in_the_spec(people_spec):
    result = CliRunner().invoke(app, ["profile", str(people_spec), "--write"])
    assert result.exit_code == 0, result.output
    assert "recorded human decision" in result.output

    text = people_spec.read_text()
    # placeholders and comments as written, declared columns untouched
    assert "url: sqlite:///${SG_PROFILE_DIR}/warehouse.db   # the warehouse (placeholder stays)" in text
    assert 'target: {url: "sqlite:///${SG_PROFILE_DIR}/warehouse.db", table: people_synthetic}' in text
    assert text.startswith("# people: the synthetic copy for analysts\n")
    assert "\n# the budget of one refresh\nprivacy:" in text
    assert "  plan: {policy: categorical, categories: [basic, plus, premium]}  # public domain\n" in text
    assert "  region: {policy: drop}\n" in text

    columns = yaml.safe_load(text)["columns"]
    assert columns["customer_id"] == {"policy": "fake", "fake": "id"}
    assert columns["email"] == {"policy": "fake", "fake": "email"}
    assert columns["age"] == {"policy": "keep", "min": 0, "max": 120}  # the declared bounds, nothing from the data
    assert set(columns) == {c.name for c in PEOPLE_COLUMNS}
    for name in ("income", "visits", "signup", "churned"):
        assert set(columns[name]) <= {"policy", "fake"}, "nothing SDV saw in the data is written"

    loaded = load_spec(people_spec)
    assert all(p.declared for p in policies_from_schema(loaded, PEOPLE_COLUMNS))
    assert loaded.policy("plan").categories == ["basic", "plus", "premium"]

    again = CliRunner().invoke(app, ["profile", str(people_spec), "--write"])
    assert again.exit_code == 0 and "nothing to record" in again.output
    assert people_spec.read_text() == text


def test_recorded_keys_are_read_back_as_the_column_names(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(BASE, sort_keys=False) + "columns:\n")
    names = ["on", "yes", "null", "1", "a: b", "#x"]
    profiles = [profiling.ColumnProfile(n, S, "categorical", False, ColumnPolicy(policy="keep"), "r") for n in names]
    assert list(record_policies(path, profiles)) == names
    assert list(load_spec(path).columns) == names


def test_sdv_proposals_are_never_weaker_than_the_name_rule():
    frame = pd.DataFrame({"customer_name": ["alpha", "beta", "gamma", "delta"] * 25, "plan": ["basic", "plus"] * 50})
    columns = [Column("customer_name", S, "TEXT"), Column("plan", S, "TEXT")]
    by_name = {p.name: p for p in profiling.propose(spec(), frame, columns)}
    assert by_name["customer_name"].proposed == ColumnPolicy(policy="fake", fake="name")
    assert by_name["plan"].proposed.policy == "keep" and not by_name["plan"].declared


def test_a_spec_that_would_not_load_is_left_as_it_was(tmp_path, monkeypatch):
    import synthgate.spec
    from synthgate.errors import SpecError

    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(BASE, sort_keys=False))
    before = path.read_text()

    def refuse(_path):
        raise SpecError("invalid table spec")

    monkeypatch.setattr(synthgate.spec, "load_spec", refuse)
    profile = profiling.ColumnProfile("email", S, "email", True, ColumnPolicy(policy="fake", fake="email"), "r")
    with pytest.raises(SpecError, match="the proposals were not recorded"):
        profiling.write_policies(path, [profile])
    assert path.read_text() == before


@pytest.mark.parametrize(
    ("name", "kind", "fake"),
    [
        ("case_no", ColumnKind.INTEGER, "id"),
        ("claimNumber", ColumnKind.CATEGORICAL, "uuid"),
        ("account_key", ColumnKind.INTEGER, "id"),
        ("order_nr", ColumnKind.CATEGORICAL, "uuid"),
        ("phone_number", ColumnKind.CATEGORICAL, "phone_number"),
        ("education_num", ColumnKind.INTEGER, None),
        ("zip_code", ColumnKind.CATEGORICAL, None),
    ],
)
def test_key_names_are_faked_and_figures_kept(name, kind, fake):
    policy = rule_for(Column(name, kind, "TEXT"))[0]
    assert policy.fake == fake and policy.policy == ("fake" if fake else "keep")


def test_profile_warns_of_a_repeating_person_key_and_names_no_value(tmp_path, monkeypatch):
    # orders: a customer owns several rows. profile says so (names only) until the spec names the unit.
    monkeypatch.setenv("SG_PROFILE_DIR", str(tmp_path))
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'warehouse.db'}")
    orders = make_people(300).drop(columns=["customer_id"])
    orders.insert(0, "order_no", range(500_000, 500_300))  # unique: a row's key, no warning
    orders.insert(1, "customer_id", [700_000 + i // 3 for i in range(300)])  # three orders a customer
    orders.to_sql("people", engine, index=False)
    engine.dispose()
    path = tmp_path / "orders.yaml"
    path.write_text(SPEC_TEXT.replace("  - customer_id\n", "  - order_no\n"))
    result = CliRunner().invoke(app, ["profile", str(path)])
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "customer_id looks like the key of a person" in warnings[0]
    assert "privacy: {unit: customer_id}" in warnings[0] and "700" not in result.output
    path.write_text(path.read_text().replace("delta: 1.0e-5}", "delta: 1.0e-5, unit: customer_id}"))
    named = CliRunner().invoke(app, ["profile", str(path)])
    assert named.exit_code == 0 and "warning:" not in named.output
    assert "the privacy unit" in named.output


def test_profile_proposes_and_records_each_child_tables_policies(tmp_path):
    # customers and their orders: the child is profiled after the parent, its proposals go to its own columns:
    from tests.generator.test_linked import customers_and_orders

    url = f"sqlite:///{tmp_path / 'shop.db'}"
    engine = sa.create_engine(url)
    parents, orders = customers_and_orders(200)
    parents.to_sql("customers", engine, index=False)
    orders.to_sql("orders", engine, index=False)
    engine.dispose()
    text = (
        "name: shop\n"
        f"source: {{url: '{url}', table: customers}}\n"
        f"target: {{url: '{url}', table: customers_synthetic}}\n"
        "privacy: {epsilon: 1.0, delta: 1.0e-5, unit: customer_id}\n"
        "children:\n"
        f"  - source: {{url: '{url}', table: orders}}\n"
        f"    target: {{url: '{url}', table: orders_synthetic}}\n"
        "    key: customer_id  # the parent's unit\n"
    )
    path = tmp_path / "shop.yaml"
    path.write_text(text)
    shown = CliRunner().invoke(app, ["profile", str(path)])
    assert shown.exit_code == 0, shown.output
    assert "child table orders (children[0])" in shown.output and "order_id" in shown.output
    assert path.read_text() == text

    written = CliRunner().invoke(app, ["profile", str(path), "--write"])
    assert written.exit_code == 0, written.output
    assert "(children[0].columns:)" in written.output
    child = yaml.safe_load(path.read_text())["children"][0]
    assert child["columns"]["order_id"] == {"policy": "fake", "fake": "id"}
    assert child["columns"]["customer_id"] == {"policy": "fake", "fake": "id"}  # the unit: a fake key
    assert child["columns"]["amount"] == {"policy": "keep"}
    assert "    key: customer_id  # the parent's unit\n" in path.read_text()
    loaded = load_spec(path)
    assert set(loaded.columns) == set(parents.columns) and set(loaded.children[0].columns) == set(orders.columns)
    again = CliRunner().invoke(app, ["profile", str(path), "--write"])
    assert again.exit_code == 0 and again.output.count("nothing to record") == 2


def test_a_childs_columns_shared_with_the_parent_through_an_alias_are_not_written(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text(
        "name: shop\nsource: {url: 'sqlite:///w.db', table: customers}\ntarget: {url: 'sqlite:///w.db', table: c2}\n"
        "columns: &shared\n  tier: {policy: keep}\nprivacy: {epsilon: 1.0, delta: 1.0e-5, unit: customer_id}\n"
        "children:\n  - source: {url: 'sqlite:///w.db', table: orders}\n"
        "    target: {url: 'sqlite:///w.db', table: o2}\n    key: customer_id\n    columns: *shared\n"
    )
    before = path.read_text()
    profile = profiling.ColumnProfile("amount", F, "numerical", False, ColumnPolicy(policy="keep"), "r")
    with pytest.raises(TypeError, match="YAML anchor"):
        record_policies(path, [profile], child=0)
    assert path.read_text() == before
