import json
from pathlib import Path

import pytest

from synthgate.errors import SpecError
from synthgate.spec import load_spec, redact_url

MINIMAL = """
name: people
source: {url: "sqlite:///w.db", table: people}
target: {url: "sqlite:///w.db", table: people_synthetic}
privacy: {epsilon: 1.0, delta: 1.0e-5}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    return path


def test_minimal_spec_loads_with_defaults(tmp_path):
    spec = load_spec(write(tmp_path, MINIMAL))
    assert spec.name == "people"
    assert spec.holdout.fraction == 0.2
    assert spec.gates.min_quality == 0.75
    assert spec.policy("anything").policy is None


def test_unknown_key_is_named(tmp_path):
    with pytest.raises(SpecError, match=r"privacy\.epsilom: unknown key"):
        load_spec(write(tmp_path, MINIMAL.replace("epsilon: 1.0", "epsilom: 1.0, epsilon: 1.0")))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("epsilon: 1.0", "epsilon: -1"), r"privacy\.epsilon"),
        (("delta: 1.0e-5", "delta: 0.5"), r"privacy\.delta"),
        (("table: people}", "table: ''}"), r"source\.table"),
    ],
)
def test_bad_values_are_named(tmp_path, change, message):
    with pytest.raises(SpecError, match=message):
        load_spec(write(tmp_path, MINIMAL.replace(*change)))


def test_target_column_cannot_be_dropped(tmp_path):
    text = MINIMAL + "target_column: age\ncolumns: {age: {policy: drop}}\n"
    with pytest.raises(SpecError, match="cannot be dropped"):
        load_spec(write(tmp_path, text))


def test_literal_password_is_refused(tmp_path):
    text = MINIMAL.replace('"sqlite:///w.db", table: people}', '"postgresql://u:hunter2@db/x", table: people}')
    with pytest.raises(SpecError, match="literal password"):
        load_spec(write(tmp_path, text))


def test_credentials_come_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("WAREHOUSE_PASSWORD", "s3cret")
    text = MINIMAL.replace(
        '"sqlite:///w.db", table: people}', '"postgresql://u:${WAREHOUSE_PASSWORD}@db/x", table: people}'
    )
    spec = load_spec(write(tmp_path, text))
    assert "s3cret" in spec.source.url
    assert "s3cret" not in spec.source.display_url
    assert redact_url(spec.source.url) == "postgresql://u:***@db/x"


def test_missing_environment_variable_is_named(tmp_path):
    text = MINIMAL.replace('"sqlite:///w.db"', '"sqlite:///${NOT_SET_ANYWHERE_42}/w.db"', 1)
    with pytest.raises(SpecError, match="NOT_SET_ANYWHERE_42"):
        load_spec(write(tmp_path, text))


def test_defaults_in_placeholders(tmp_path):
    text = MINIMAL.replace('"sqlite:///w.db"', '"sqlite:///${NOT_SET_ANYWHERE_42:-/tmp}/w.db"', 1)
    assert load_spec(write(tmp_path, text)).source.url == "sqlite:////tmp/w.db"


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(SpecError, match="not found"):
        load_spec(tmp_path / "nope.yaml")
    with pytest.raises(SpecError, match="not valid YAML"):
        load_spec(write(tmp_path, "name: [unclosed"))


def test_shipped_demo_spec_is_valid(monkeypatch):
    monkeypatch.setenv("SYNTHGATE_HOME", "/tmp/sg")
    spec = load_spec(Path(__file__).resolve().parent.parent / "deployments" / "tables" / "adult.yaml")
    assert spec.privacy.epsilon == 1.0 and spec.privacy.delta == 1e-5
    assert spec.target_column == "income"


def test_keys_and_every_gate_threshold_load(tmp_path):
    text = (
        MINIMAL + "keys: [id, region]\ngates: {max_mia_auc: 0.55, max_inference_risk: 0.1, max_tvd_3way_excess: 0.05}\n"
    )
    spec = load_spec(write(tmp_path, text))
    assert spec.key_columns == ["id", "region"]
    assert dict(spec)["key_columns"] == ["id", "region"]  # Prefect turns parameters into dicts
    assert (spec.gates.max_mia_auc, spec.gates.max_inference_risk, spec.gates.max_tvd_3way_excess) == (0.55, 0.1, 0.05)
    assert spec.gates.max_duplicate_key_share == 0.0


def test_a_dropped_key_and_an_unknown_gate_are_named(tmp_path):
    with pytest.raises(SpecError, match=r"keys \['id'\] are dropped"):
        load_spec(write(tmp_path, MINIMAL + "keys: [id]\ncolumns: {id: {policy: drop}}\n"))
    with pytest.raises(SpecError, match=r"gates\.max_mia: unknown key"):
        load_spec(write(tmp_path, MINIMAL + "gates: {max_mia: 0.5}\n"))
    with pytest.raises(SpecError, match=r"gates\.max_mia_auc"):
        load_spec(write(tmp_path, MINIMAL + "gates: {max_mia_auc: 0.2}\n"))  # below a coin's 0.5


def test_schedule_is_optional_and_validated(tmp_path):
    assert load_spec(write(tmp_path, MINIMAL)).schedule is None
    spec = load_spec(write(tmp_path, MINIMAL + 'schedule: {cron: "15 3 * * 1-5", timezone: America/New_York}\n'))
    assert (spec.schedule.cron, spec.schedule.timezone, spec.schedule.active) == (
        "15 3 * * 1-5",
        "America/New_York",
        True,
    )
    assert load_spec(write(tmp_path, MINIMAL + 'schedule: {cron: "0 2 * * *"}\n')).schedule.timezone == "UTC"


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        ('{cron: "0 25 * * *"}', r"schedule\.cron: Value error, invalid cron"),
        ('{cron: "0 2 * *"}', r"schedule\.cron: Value error, cron '0 2 \* \*' must have five fields"),
        ('{cron: "0 2 * * 5L"}', r"schedule\.cron: .*reads no W in the day field .* nor L in the weekday field"),
        ('{cron: "0 2 LW * *"}', r"schedule\.cron: .*reads no W in the day field"),
        (
            '{cron: "0 2 * * *", timezone: Mars/Olympus}',
            r"schedule\.timezone: Value error, unknown time zone 'Mars/Olympus'",
        ),
        ('{cron: "0 2 * * *", every: day}', r"schedule\.every: unknown key"),
    ],
)
def test_bad_schedules_are_named(tmp_path, schedule, message):
    with pytest.raises(SpecError, match=message):
        load_spec(write(tmp_path, MINIMAL + f"schedule: {schedule}\n"))


# -- hostile input: each refused in one line, before anything else runs ------------------------------------------

BOMB = (
    "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    + "".join(f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 10) + "]\n" for i in range(8))
    + MINIMAL
)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (BOMB, r"YAML aliases \(\*name, line 2\) are not allowed"),
        (MINIMAL + "gates: &g {min_quality: 0.5}\nextra: *g\n", "YAML aliases"),
        (MINIMAL + "columns: " + "{a: " * 40 + "1" + "}" * 40 + "\n", "nested deeper than 20 levels"),
        (MINIMAL + "rows: " + "9" * 5000 + "\n", "not valid YAML: ValueError"),
        (MINIMAL + "# " + "x" * 1_000_001 + "\n", "larger than 1000 kB"),
    ],
    ids=["billion-laughs", "alias", "deep-nesting", "huge-integer", "huge-file"],
)
def test_hostile_yaml_is_refused_in_one_line(tmp_path, text, message):
    with pytest.raises(SpecError, match=message) as error:
        load_spec(write(tmp_path, text))
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("field", ["epsilon", "delta"])
@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf"])
def test_nan_and_infinity_are_refused(tmp_path, field, value):
    text = MINIMAL.replace(f"{field}: {'1.0' if field == 'epsilon' else '1.0e-5'}", f"{field}: {value}")
    with pytest.raises(SpecError, match=rf"privacy\.{field}: Input should be a finite number"):
        load_spec(write(tmp_path, text))


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ("gates: {min_quality: .nan}\n", "gates.min_quality"),
        ("columns: {age: {min: .nan}}\n", "columns.age.min"),
        ("training: {learning_rate: .inf}\n", "training.learning_rate"),
        ("privacy: {epsilon: 1.0, delta: 1.0e-5, cap: .inf}\n", "privacy.cap"),
    ],
)
def test_nan_and_infinity_are_refused_in_every_float(tmp_path, extra, named):
    text = MINIMAL.replace("privacy: {epsilon: 1.0, delta: 1.0e-5}\n", "") if extra.startswith("privacy") else MINIMAL
    with pytest.raises(SpecError, match="finite number") as error:
        load_spec(write(tmp_path, text + extra))
    assert named in str(error.value)


def test_unknown_key_lists_the_allowed_keys_and_points_at_real_help(tmp_path):
    with pytest.raises(SpecError) as error:
        load_spec(write(tmp_path, MINIMAL + "columns: {age: {polcy: keep}}\n"))
    message = str(error.value)
    assert "columns.age.polcy: unknown key" in message and "allowed here: categories, fake, max, min, policy" in message
    assert "README.md" in message and "spec --help" not in message and "\n" not in message
    with pytest.raises(SpecError, match=r"allowed here: cron, timezone, active|allowed here: active, cron, timezone"):
        load_spec(write(tmp_path, MINIMAL + 'schedule: {cron: "0 2 * * *", every: day}\n'))


# -- credentials: references only, and one redaction ------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("postgresql://u:hunter2@db/x", "literal password"),
        ("postgresql://u@db/x?password=hunter2", "literal value of query parameter 'password'"),
        ("postgresql://u@db/x?sslkey=/keys/hunter2", "query parameter 'sslkey'"),
        ("postgresql://u@db/x?access_token=hunter2", "query parameter 'access_token'"),
        ("postgresql://u:${PW:-hunter2}@db/x", "${PW:-...}, with a literal default"),
        ("postgresql://u:hunter2@${HOST}/x", "literal password"),
        ("postgresql://u:x${PW}hunter2@db/x", "literal password"),
        ("${WAREHOUSE_URL:-postgresql://u:hunter2@db/x}", "literal default"),
    ],
)
def test_credentials_written_in_the_spec_are_refused_without_their_value(tmp_path, url, named):
    text = MINIMAL.replace('"sqlite:///w.db", table: people}', f'"{url}", table: people}}')
    with pytest.raises(SpecError) as error:
        load_spec(write(tmp_path, text))
    assert "source.url" in str(error.value) and named in str(error.value)
    assert "hunter2" not in str(error.value)


def test_referenced_credentials_are_encoded_into_the_url(tmp_path, monkeypatch):
    from sqlalchemy.engine import make_url

    monkeypatch.setenv("SG_PW", "p@ss/w?rd&x=1")
    url = '"postgresql://u:${SG_PW}@db:5432/x?password=${SG_PW}&sslmode=${SG_MODE:-require}"'
    spec = load_spec(write(tmp_path, MINIMAL.replace('"sqlite:///w.db"', url, 1)))
    parsed = make_url(spec.source.url)
    assert (parsed.password, parsed.host, parsed.query["password"]) == ("p@ss/w?rd&x=1", "db", "p@ss/w?rd&x=1")
    assert spec.source.display_url == "postgresql://u:***@db:5432/x?password=***&sslmode=require"


@pytest.mark.parametrize(
    ("url", "shown", "dropped"),
    [
        (
            "postgresql+psycopg2://u:pw@h:5432/db?password=pw&sslmode=require&token=t",
            "postgresql+psycopg2://u:***@h:5432/db?password=***&sslmode=require&token=***",
            "postgresql+psycopg2://u@h:5432/db?sslmode=require",
        ),
        ("postgresql://u:p@w@h/db", "postgresql://u:***@h/db", "postgresql://u@h/db"),  # an unescaped @
        ("postgresql://u@h/db?options=-csearch_path%3Dx", "postgresql://u@h/db?options=***", "postgresql://u@h/db"),
        ("http://user:pw@mlflow:5000/api?api_key=k", "http://user:***@mlflow:5000/api?api_key=***", None),
        ("databricks-uc://tok:pw@host?token=t", "databricks-uc://tok:***@host?token=***", "databricks-uc://tok@host"),
        ("sqlite:///w.db", "sqlite:///w.db", "sqlite:///w.db"),
        ("/tmp/mlruns", "/tmp/mlruns", "/tmp/mlruns"),
    ],
)
def test_redact_url_masks_the_password_and_every_secret_query_value(url, shown, dropped):
    assert redact_url(url) == shown
    if dropped is not None:
        assert redact_url(url, drop=True) == dropped
    from synthgate.mlflow_dataset import credential_free_url

    assert "pw" not in credential_free_url(url).replace("mlruns", "")


def test_driver_messages_are_scrubbed_of_the_url_secrets():
    from synthgate.spec import scrub

    url = "postgresql://u:p%40ss@h/db?password=tok3n&sslmode=disable"
    assert scrub('invalid dsn: password=p@ss or tok3n (p%40ss), sslmode "disable"', url) == (
        'invalid dsn: password=*** or *** (***), sslmode "disable"'
    )


# -- the command line: one line, exit code 2 -----------------------------------------------------------------------


def test_bad_settings_are_named_in_one_line(monkeypatch):
    from typer.testing import CliRunner

    from synthgate.cli import app
    from synthgate.errors import SynthgateError
    from synthgate.settings import get_settings

    monkeypatch.setenv("SYNTHGATE_DEFAULT_BUDGET_CAP", "abc")
    with pytest.raises(SynthgateError, match="SYNTHGATE_DEFAULT_BUDGET_CAP: Input should be a valid number"):
        get_settings()
    result = CliRunner().invoke(app, ["report", "0123"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.stderr.strip().splitlines() == [
        "error: invalid setting in the environment: SYNTHGATE_DEFAULT_BUDGET_CAP: Input should be a valid number, "
        "unable to parse string as a number"
    ]
    monkeypatch.setenv("SYNTHGATE_DEFAULT_BUDGET_CAP", "nan")
    with pytest.raises(SynthgateError, match="SYNTHGATE_DEFAULT_BUDGET_CAP"):
        get_settings()


def test_a_misspelled_setting_is_refused_not_ignored(monkeypatch):
    from synthgate.errors import SynthgateError
    from synthgate.settings import get_settings

    monkeypatch.setenv("SYNTHGATE_REQUIRE_POSTGRES", "1")  # a tool's own variable, named like no setting: left alone
    assert get_settings().default_budget_cap == 10.0
    monkeypatch.setenv("SYNTHGATE_DEFAULT_BUDGETCAP", "2")  # ignored, it would leave every table's cap at 10
    with pytest.raises(
        SynthgateError, match=r"SYNTHGATE_DEFAULT_BUDGETCAP \(did you mean SYNTHGATE_DEFAULT_BUDGET_CAP"
    ):
        get_settings()


def test_refresh_refuses_a_bad_spec_before_prefect_starts(tmp_path):
    """Run as a user does: a new process, no Prefect server; the spec error comes in seconds, one line, exit 2."""
    import json
    import subprocess
    import sys
    import time

    bad = write(tmp_path, MINIMAL.replace("epsilon: 1.0", "epsilom: 1.0, epsilon: 1.0"))
    began = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "synthgate.cli", "refresh", str(bad), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert time.monotonic() - began < 15, "the spec must be read before the Prefect server starts"
    assert done.returncode == 2
    assert json.loads(done.stdout)["error_type"] == "SpecError"
    assert done.stderr.strip().splitlines() == [f"error: {json.loads(done.stdout)['error']}"]
    assert "privacy.epsilom: unknown key" in done.stderr and "temporary server" not in done.stderr


@pytest.mark.parametrize("command", ["check-spec", "refresh"])
def test_the_alias_bomb_returns_fast_in_bounded_memory(tmp_path, command):
    import resource
    import subprocess
    import sys
    import time

    bomb = write(tmp_path, BOMB.replace("[x, x", "[" + ", ".join(["xxxxxxxxxx"] * 10) + ", x, x"))

    def limit_memory() -> None:  # 2 GiB of address space: the unbounded bomb needed 5.9 GB
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))

    began = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "synthgate.cli", command, str(bomb)],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=limit_memory,
    )
    assert time.monotonic() - began < 15
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.strip().splitlines() == [
        f"error: {bomb}: YAML aliases (*name, line 2) are not allowed in a table spec: write the value out"
    ]


def test_every_cli_error_is_one_line_and_debug_shows_the_traceback(tmp_path):
    from typer.testing import CliRunner

    from synthgate.cli import app

    bad = write(tmp_path, MINIMAL.replace("epsilon: 1.0", "epsilon: .nan"))
    plain = CliRunner().invoke(app, ["check-spec", str(bad)])
    assert plain.exit_code == 2 and len(plain.stderr.strip().splitlines()) == 1
    assert "privacy.epsilon: Input should be a finite number" in plain.stderr
    debug = CliRunner().invoke(app, ["--debug", "check-spec", str(bad)])
    assert debug.exit_code == 2 and "Traceback" in debug.stderr


def test_an_unexpected_error_is_one_line_without_its_message(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    import synthgate.spec
    from synthgate.cli import app

    def broken(path):
        raise ValueError("could not convert 'Alice Smith, 1984-02-03' to float")  # a library quoting a row

    monkeypatch.setattr(synthgate.spec, "load_spec", broken)
    result = CliRunner().invoke(app, ["check-spec", str(write(tmp_path, MINIMAL))])
    assert result.exit_code == 2 and "Alice" not in result.output and "Traceback" not in result.output
    assert result.stderr.strip().splitlines() == [
        "error: unexpected ValueError; run `synthgate --debug ...` for the traceback"
    ]
    as_json = CliRunner().invoke(app, ["budget", str(write(tmp_path, MINIMAL)), "--json"])
    assert as_json.exit_code == 2 and as_json.stdout.count("{") == 1 and "Alice" not in as_json.output


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("target_column: customer_id\n", r"privacy\.unit 'customer_id' is the target_column"),
        ("columns: {customer_id: {policy: keep}}\n", r"published as a fake key"),
        ("columns: {customer_id: {policy: fake, fake: email}}\n", r"published as a fake key"),
        ("training: {engine: opacus}\n", r"needs training\.engine 'fast'"),
    ],
)
def test_a_privacy_unit_is_a_fake_key_and_trains_on_the_fast_engine(tmp_path, extra, message):
    unit = MINIMAL.replace("delta: 1.0e-5}", "delta: 1.0e-5, unit: customer_id}")
    assert load_spec(write(tmp_path, unit)).privacy.unit == "customer_id"
    with pytest.raises(SpecError, match=message):
        load_spec(write(tmp_path, unit + extra))


def test_a_unit_bound_needs_a_unit(tmp_path):
    with pytest.raises(SpecError, match=r"max_rows_per_unit needs privacy\.unit"):
        load_spec(write(tmp_path, MINIMAL.replace("delta: 1.0e-5}", "delta: 1.0e-5, max_rows_per_unit: 10}")))


LINKED = (
    MINIMAL.replace("delta: 1.0e-5}", "delta: 1.0e-5, unit: customer_id}")
    + """
children:
  - source: {url: "sqlite:///w.db", table: orders}
    target: {url: "sqlite:///w.db", table: orders_synthetic}
    key: customer_id
"""
)


def test_a_child_table_is_a_spec_of_its_own_with_the_parent_budget(tmp_path):
    spec = load_spec(write(tmp_path, LINKED))
    child = spec.child_spec(spec.children[0])
    assert child.source.table == "orders" and child.target.table == "orders_synthetic"
    assert child.privacy.unit == "customer_id" and child.privacy.epsilon == spec.privacy.epsilon
    assert child.name == "people-orders_synthetic"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("unit: customer_id}", "}"), r"children need privacy\.unit"),
        (("table: orders_synthetic}", "table: orders_synthetic, schema: other}"), r"parent target's warehouse"),
        (("table: orders_synthetic}", "table: people_synthetic}"), r"is the parent's target\.table"),
        (("key: customer_id", "key: customer_id\n    target_column: customer_id"), r"target_column 'customer_id' is"),
        (("key: customer_id", "key: customer_id\n    order_by: customer_id"), r"order_by 'customer_id' must be a"),
        (
            ("key: customer_id", "key: customer_id\n    order_by: at\n    columns: {at: {policy: drop}}"),
            r"order_by 'at' must be a learned column",
        ),
        (("privacy:", "holdout: {table: {url: 'sqlite:///w.db', table: h}}\nprivacy:"), r"use holdout\.fraction"),
        (("table: orders}", "table: people}"), r"child source 'people' is also read as the parent or as another"),
        (
            ("key: customer_id\n", "key: customer_id\n" + LINKED.split("children:\n")[1].replace("s_s", "s_t")),
            r"child source 'orders' is also read as the parent or as another child",
        ),
        (
            ("key: customer_id\n", "key: customer_id\n" + LINKED.split("children:\n")[1]),
            r"two children publish to target\.table 'orders_synthetic'",
        ),
        (
            ("key: customer_id\n", "key: customer_id\n" + LINKED.split("children:\n")[1].replace("s_s", "s s")),
            r"target\.table 'orders_synthetic' \(or to a name that differs only in characters",
        ),
    ],
)
def test_a_child_table_is_refused_where_it_cannot_be_published_with_its_parent(tmp_path, change, message):
    with pytest.raises(SpecError, match=message):
        load_spec(write(tmp_path, LINKED.replace(*change)))


def test_a_spec_without_children_keeps_its_learning_digest(tmp_path):
    """Published versions record the digest: a spec that did not change must not look changed (it would retrain),
    except once for the split's scheme (a model trained under another split is retrained)."""
    import hashlib
    import json

    spec = load_spec(write(tmp_path, MINIMAL))
    before = {
        "columns": {},
        "privacy": spec.privacy.model_dump(exclude={"cap"}),
        "training": spec.training.model_dump(exclude={"seed", "device"}),
        "target_column": None,
        "split": 2,
    }
    digest = hashlib.sha256(json.dumps(before, sort_keys=True, default=str).encode()).hexdigest()
    assert spec.learning_digest() == digest
    unit_only = load_spec(write(tmp_path, LINKED.split("children:")[0]))
    assert load_spec(write(tmp_path, LINKED)).learning_digest() != unit_only.learning_digest()


CHILD_URLS = """
name: customers
source: {url: "URL", table: customers}
target: {url: "URL", table: customers_synthetic}
privacy: {epsilon: 1.0, delta: 1.0e-5, unit: customer_id}
children:
  - {source: {url: "CHILD", table: orders}, target: {url: "URL", table: orders_synthetic}, key: customer_id}
"""


def test_a_child_table_s_urls_take_credentials_as_the_parent_s_do(tmp_path, monkeypatch):
    literal = CHILD_URLS.replace("URL", "postgresql://u:${SG_PW}@db/x").replace("CHILD", "postgresql://u:hunter2@db/x")
    with pytest.raises(SpecError, match=r"children\.0\.source\.url holds a literal password") as error:
        load_spec(write(tmp_path, literal))
    assert "hunter2" not in str(error.value)
    monkeypatch.setenv("SG_PW", "Sup3r@h:99secret")  # '@' and ':' : encoded, or the port would read "99secret@db"
    referenced = CHILD_URLS.replace("URL", "postgresql://u:${SG_PW}@db/x").replace("CHILD", "mysql://u:${SG_PW}@db/x")
    spec = load_spec(write(tmp_path, referenced))  # the child's target must equal the parent's, encoded alike
    assert spec.children[0].target.url == spec.target.url and "Sup3r" not in spec.children[0].source.display_url
    broken = CHILD_URLS.replace("URL", "postgresql://u:Sup3r@h:99secret@db/x").replace("CHILD", "sqlite:///w.db")
    with pytest.raises(SpecError) as error:  # written as is, it is a literal password, whose text is not echoed
        load_spec(write(tmp_path, broken))
    assert "99secret" not in str(error.value) and "Sup3r" not in str(error.value)


def test_a_yaml_syntax_error_names_its_place_not_its_line(tmp_path):
    text = 'name: people\nsource: {url: "postgresql://u:hunter2@db/x", table: people\ntarget: [\n'
    with pytest.raises(SpecError, match=r"not valid YAML: .* at line \d+, column \d+") as error:
        load_spec(write(tmp_path, text))
    assert "hunter2" not in str(error.value)


def test_a_duckdb_target_is_refused_before_anything_runs(tmp_path):
    with pytest.raises(SpecError, match="in DuckDB, which Synthgate reads from but does not publish to"):
        load_spec(
            write(
                tmp_path,
                MINIMAL.replace(
                    '{url: "sqlite:///w.db", table: people_synthetic}',
                    '{url: "duckdb:///w.duckdb", table: people_synthetic}',
                ),
            )
        )


def test_a_table_is_found_by_name_beside_files_that_are_no_spec(tmp_path):
    from synthgate.audit import resolve_spec

    (tmp_path / "binary.yaml").write_bytes(b"\xff\xfe\x00name: x")  # not UTF-8: once made every lookup fail
    (tmp_path / "aliases.yaml").write_text("a: &x [1]\nb: *x\n")
    (tmp_path / "people.yaml").write_text(MINIMAL)
    assert resolve_spec("people_synthetic", tmp_path).name == "people"
    with pytest.raises(SpecError, match=r"no spec in .* name table 'nobody'"):
        resolve_spec("nobody", tmp_path)


def test_an_unknown_option_of_the_command_itself_is_one_line():
    from typer.testing import CliRunner

    from synthgate.cli import app

    result = CliRunner().invoke(app, ["--bogus", "check-spec", "spec.yaml"])
    assert result.exit_code == 2
    [line] = result.stderr.strip().splitlines()  # CliRunner names the program "root"
    assert line.startswith("error: No such option: --bogus (see `") and line.endswith(" --help`)")
    as_json = CliRunner().invoke(app, ["--bogus", "check-spec", "spec.yaml", "--json"])
    assert as_json.exit_code == 2 and as_json.stdout.count("{") == 1 and '"UsageError"' in as_json.stdout


def test_refresh_all_of_a_folder_without_specs_is_refused_before_the_flow(tmp_path):
    from typer.testing import CliRunner

    from synthgate.cli import app

    result = CliRunner().invoke(app, ["refresh-all", str(tmp_path / "nowhere")])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [f"error: no table specs match '*.yaml' in {tmp_path / 'nowhere'}"]


def test_budget_and_audit_read_a_warehouse_that_does_not_exist_yet_without_creating_it(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from synthgate.cli import app

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SYNTHGATE_HOME", str(tmp_path / "home"))
    spec = write(tmp_path, MINIMAL)
    budget = CliRunner().invoke(app, ["budget", str(spec), "--json"])
    assert budget.exit_code == 0, budget.output
    assert json.loads(budget.stdout)["refreshes"] == 0
    audit = CliRunner().invoke(app, ["audit", str(spec), "--json"])
    assert audit.exit_code == 0, audit.output
    assert json.loads(audit.stdout)["current_version"] is None
    assert not (tmp_path / "w.db").exists()  # the first refresh creates the warehouse, not a look at its budget
