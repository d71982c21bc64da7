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
    text = MINIMAL.replace('"sqlite:///w.db", table: people}', '"postgresql://u:${WAREHOUSE_PASSWORD}@db/x", table: people}')
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
    text = MINIMAL + "keys: [id, region]\ngates: {max_mia_auc: 0.55, max_inference_risk: 0.1, max_tvd_3way_excess: 0.05}\n"
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
    assert (spec.schedule.cron, spec.schedule.timezone, spec.schedule.active) == ("15 3 * * 1-5", "America/New_York", True)
    assert load_spec(write(tmp_path, MINIMAL + 'schedule: {cron: "0 2 * * *"}\n')).schedule.timezone == "UTC"


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        ('{cron: "0 25 * * *"}', r"schedule\.cron: Value error, invalid cron"),
        ('{cron: "0 2 * *"}', r"schedule\.cron: Value error, cron '0 2 \* \*' must have five fields"),
        ('{cron: "0 2 * * *", timezone: Mars/Olympus}', r"schedule\.timezone: Value error, unknown time zone 'Mars/Olympus'"),
        ('{cron: "0 2 * * *", every: day}', r"schedule\.every: unknown key"),
    ],
)
def test_bad_schedules_are_named(tmp_path, schedule, message):
    with pytest.raises(SpecError, match=message):
        load_spec(write(tmp_path, MINIMAL + f"schedule: {schedule}\n"))
