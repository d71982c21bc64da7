"""What a person sees of a run in MLflow: its name, its description (the auditor's chain), the experiment's view, the
model versions a run registers (only when its gates passed) and their tags, the link to the run."""

from __future__ import annotations

import subprocess
from pathlib import Path
from types import SimpleNamespace

import mlflow
import pandas as pd
import pytest

from synthgate import tracking
from synthgate.errors import PrivacyBudgetError, TrackingError
from synthgate.spec import spec_from_dict

SPEC = {
    "name": "people",
    "source": {"url": "postgresql://reader:s3cret@db.example:5432/prod?sslmode=require&password=x", "table": "people"},
    "target": {
        "url": "postgresql://writer:hunter2@db.example:5432/analytics",
        "table": "people_synthetic",
        "schema": "synth",
    },
    "privacy": {"epsilon": 1.0, "delta": 1e-5, "cap": 5.0},
    "columns": {"email": {"policy": "fake", "fake": "email"}},
}


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    """One store for the module (creating one takes seconds); the tests use names of their own where they collide."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
    yield uri
    while mlflow.active_run():
        mlflow.end_run()


def run_of(uri: str, run_id: str):
    return mlflow.MlflowClient(uri).get_run(run_id)


def test_run_names_say_table_version_and_trigger():
    assert tracking.run_name("people", "cli") == "people running (cli)"
    assert tracking.run_name("people", "schedule", "published", "5") == "people v5 (schedule)"
    assert tracking.run_name("people", "cli", "published", 6, resampled=True) == "people v6 (cli, re-sampled)"
    assert tracking.run_name("people", "ui", "rejected") == "people rejected (ui)"
    assert tracking.run_name("people", "cli", "failed") == "people failed (cli)"


def test_a_published_run_is_renamed_described_and_its_experiment_opens_on_runs(store, tmp_path):
    tags = {"synthgate.trigger": "cli", "synthgate.source_table": "people"}
    with tracking.start_run(store, "people", tags, tmp_path / "artifacts") as run:
        assert mlflow.active_run().info.run_name == "people running (cli)"
        tracking.set_tags({"synthgate.source_fingerprint": "ab" * 32})
        tracking.log_metrics(
            {
                "epsilon_spent": 0.97,
                "epsilon_table_total": 2.5,
                "epsilon_table_cap": 5.0,
                "gate_quality": 1.0,
                "gate_mia_auc": 1.0,
            }
        )
        tracking.set_tags(
            {
                "synthgate.status": "published",
                "synthgate.published_version": "3",
                "synthgate.published_table": "synth.people_synthetic",
                "synthgate.published_version_table": "people_synthetic__v3",
            }
        )
    finished = run_of(store, run.info.run_id)
    assert finished.info.run_name == "people v3 (cli)" and finished.info.status == "FINISHED"
    note = finished.data.tags[tracking.NOTE_TAG]
    assert "1. Published table: `synth.people_synthetic` version 3 (table `people_synthetic__v3`)" in note
    steps = [line.split(":", 1)[0] for line in note.splitlines() if line[:2] in {f"{i}." for i in range(1, 7)}]
    assert steps == ["1. Published table", "2. Source snapshot", "3. Code", "4. Budget", "5. Gates", "6. Model"]
    assert "keyed fingerprint `abababababababab`" in note
    assert "epsilon 0.97 spent by this run; 2.5 spent on this table in all, of its cap 5" in note
    assert "all 2 passed" in note
    experiment = mlflow.MlflowClient(store).get_experiment(finished.info.experiment_id)
    assert experiment.tags[tracking.EXPERIMENT_KIND_TAG] == "custom_model_development"
    assert "one run per refresh" in experiment.tags[tracking.NOTE_TAG]
    # the code version, with the working tree's state beside the commit (this checkout is a git repository)
    commit = finished.data.tags.get("synthgate.git_commit")
    if commit:
        assert finished.data.tags["synthgate.git_dirty"] in ("true", "false")
        assert f"commit `{commit[:12]}`" in note


def test_failed_and_rejected_runs_are_named_so(store):
    with pytest.raises(RuntimeError), tracking.start_run(store, "people", {"synthgate.trigger": "schedule"}) as run:
        raise RuntimeError("boom")
    failed = run_of(store, run.info.run_id)
    assert failed.info.run_name == "people failed (schedule)" and failed.data.tags["synthgate.status"] == "failed"
    assert failed.info.status == "FAILED"
    assert "1. Published table: none: the run failed without publishing" in failed.data.tags[tracking.NOTE_TAG]
    # the run under test must see the exception raised inside it, after a tag set during the run
    with (  # noqa: PT012
        pytest.raises(ValueError, match="a gate failed"),
        tracking.start_run(store, "people", {"synthgate.trigger": "cli"}) as run,
    ):
        tracking.set_tags({"synthgate.status": "rejected"})
        raise ValueError("a gate failed")
    assert run_of(store, run.info.run_id).info.run_name == "people rejected (cli)"
    with pytest.raises(PrivacyBudgetError), tracking.start_run(store, "people", {"synthgate.trigger": "cli"}) as run:
        raise PrivacyBudgetError("over the cap")
    assert run_of(store, run.info.run_id).info.run_name == "people refused (cli)"


def test_an_older_experiment_is_switched_to_runs(store):
    client = mlflow.MlflowClient(store)
    client.create_experiment(tracking.experiment_name("legacy"))
    with tracking.start_run(store, "legacy", {"synthgate.trigger": "cli"}):
        pass
    tags = client.get_experiment_by_name(tracking.experiment_name("legacy")).tags
    assert tags[tracking.EXPERIMENT_KIND_TAG] == "custom_model_development" and tracking.NOTE_TAG in tags


class _Synth:
    def save(self, directory: Path) -> Path:
        directory.mkdir(parents=True)
        (directory / "synthesizer.json").write_text("{}")
        return directory


def test_only_a_run_whose_gates_passed_registers_a_model_version_and_it_carries_its_tags(store, tmp_path):
    spec = spec_from_dict(SPEC)
    privacy = SimpleNamespace(epsilon=0.97, delta=1e-5, accounting="prv", resampled_from=None)
    sample = pd.DataFrame({"age": [30, 40]})
    with tracking.start_run(store, "people", {"synthgate.trigger": "cli"}) as rejected:
        tags = {
            "synthgate.source_fingerprint": "cd" * 32,
            "synthgate.git_commit": "f" * 40,
            "synthgate.git_dirty": "true",
        }
        assert (
            tracking.record_model(spec, rejected.info.run_id, _Synth(), sample, privacy, tags, register=False) is None
        )
        tracking.set_tags({"synthgate.status": "rejected"})
    client = mlflow.MlflowClient(store)
    assert client.search_model_versions(f"name='{tracking.model_name('people')}'") == []
    assert "synthgate.model_version" not in run_of(store, rejected.info.run_id).data.tags

    with tracking.start_run(store, "people", {"synthgate.trigger": "cli"}) as passed:
        version = tracking.record_model(spec, passed.info.run_id, _Synth(), sample, privacy, tags, register=True)
        tracking.log_metrics({"epsilon_spent": 0.97, "gate_quality": 1.0})
        tracking.set_tags(
            {
                "synthgate.status": "published",
                "synthgate.published_version": "1",
                "synthgate.published_table": "synth.people_synthetic",
            }
        )
    assert version == "1"
    model = client.get_model_version("synthgate-people", version)
    assert model.run_id == passed.info.run_id
    assert {
        k: model.tags[k]
        for k in (
            "synthgate.table_version",
            "synthgate.epsilon",
            "synthgate.source_fingerprint",
            "synthgate.verdict",
            "synthgate.git_dirty",
            "synthgate.published_table",
        )
    } == {
        "synthgate.table_version": "1",
        "synthgate.epsilon": "0.97",
        "synthgate.source_fingerprint": "cd" * 32,
        "synthgate.verdict": "passed",
        "synthgate.git_dirty": "true",
        "synthgate.published_table": "synth.people_synthetic",
    }
    assert "1. Published table: `synth.people_synthetic` version 1" in model.description
    assert "table version" in client.get_registered_model("synthgate-people").description

    # a re-sampling run registers nothing and adds its table version to the model version it re-sampled
    resampled = SimpleNamespace(epsilon=0.97, delta=1e-5, accounting="reused", resampled_from=passed.info.run_id)
    with tracking.start_run(store, "people", {"synthgate.trigger": "schedule"}) as again:
        assert (
            tracking.record_model(
                spec, again.info.run_id, _Synth(), sample, resampled, tags, register=True, model_version="1"
            )
            == "1"
        )
        tracking.set_tags(
            {
                "synthgate.status": "published",
                "synthgate.published_version": "2",
                "synthgate.published_table": "synth.people_synthetic",
            }
        )
    assert client.get_model_version("synthgate-people", "1").tags["synthgate.table_version"] == "1, 2"
    assert run_of(store, again.info.run_id).info.run_name == "people v2 (schedule, re-sampled)"
    assert len(client.search_model_versions("name='synthgate-people'")) == 1


def test_the_logged_spec_has_every_url_redacted():
    logged = tracking.redacted_spec(spec_from_dict(SPEC))
    text = repr(logged)
    assert "s3cret" not in text and "hunter2" not in text and "password=x" not in text
    assert logged["source"]["url"] == "postgresql://reader:***@db.example:5432/prod?sslmode=require&password=***"
    assert logged["target"]["schema"] == "synth" and logged["columns"]["email"] == {"policy": "fake", "fake": "email"}


def test_column_policies_say_who_decided_them():
    spec = spec_from_dict(SPEC)
    columns = [SimpleNamespace(name="email", sql_type="TEXT"), SimpleNamespace(name="age", sql_type="BIGINT")]
    synth = SimpleNamespace(
        columns=columns, policies={"email": spec.columns["email"], "age": type(spec.columns["email"])(policy="keep")}
    )
    assert tracking.column_policies(spec, synth) == {
        "email": {"policy": "fake", "fake": "email", "decided_by": "spec", "sql_type": "TEXT"},
        "age": {"policy": "keep", "decided_by": "name and SQL type", "sql_type": "BIGINT"},
    }


def test_ledger_metrics_show_the_tables_total():
    assert tracking.ledger_metrics({"epsilon_total": 2.5, "cap": 5.0}) == {
        "epsilon_table_total": 2.5,
        "epsilon_table_cap": 5.0,
        "epsilon_table_remaining": 2.5,
    }
    assert tracking.ledger_metrics({"epsilon_total": 2.5, "cap": None}) == {"epsilon_table_total": 2.5}
    assert tracking.ledger_metrics({"epsilon_total": None, "cap": 5.0}) == {}


def test_links_open_a_browser_on_a_server_and_print_the_command_otherwise(store, tmp_path, monkeypatch):
    store_path = store[len("sqlite:///") :]
    server = tracking.run_link("https://user:tok@mlflow.example/", "abc", experiment_id="7")
    assert server.command is None
    assert server.url == "https://user:***@mlflow.example/#/experiments/7/runs/abc?workflowType=machine_learning"
    local = tracking.run_link(store, "abc", experiment_id="7")
    assert local.command == f"mlflow ui --backend-store-uri sqlite:///{store_path}"
    assert local.url == "http://127.0.0.1:5000/#/experiments/7/runs/abc?workflowType=machine_learning"
    assert tracking.RunLink.from_text(local.text) == local and tracking.RunLink.from_text(server.text) == server
    assert local.markdown("run") == f"run: run `{local.command}`, then open {local.url}"
    monkeypatch.chdir(tmp_path)
    relative = tracking.run_link("sqlite:///rel dir/m.db", "abc", experiment_id="1")
    assert relative.command == f"mlflow ui --backend-store-uri 'sqlite:///{tmp_path / 'rel dir' / 'm.db'}'"
    unknown = tracking.run_link(store, "no-such-run")  # never raises: MLflow's direct route finds the experiment
    assert unknown.url.endswith("/#/runs/no-such-run?workflowType=machine_learning")


def test_a_dirty_working_tree_is_flagged(tmp_path):
    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "a.py").write_text("x = 1\n")
    git("add", "a.py")
    git("-c", "user.email=t@example.org", "-c", "user.name=t", "commit", "-qm", "one")
    assert tracking.code_version_tags(tmp_path)["synthgate.git_dirty"] == "false"
    (tmp_path / "untracked.txt").write_text("not code that ran")
    assert tracking.git_dirty(tmp_path) is False
    (tmp_path / "a.py").write_text("x = 2\n")
    tags = tracking.code_version_tags(tmp_path)
    assert tags["synthgate.git_dirty"] == "true" and len(tags["synthgate.git_commit"]) == 40
    assert tracking.code_version_tags(Path("/")) == {}  # not a git checkout


def test_the_production_alias_moves_back_and_the_reason_is_kept(store, monkeypatch):
    client = mlflow.MlflowClient(store)
    client.create_registered_model("m")
    for _ in range(2):
        client.create_model_version("m", source="file:///nowhere")
    client.set_registered_model_alias("m", "production", "2")
    assert tracking.move_production_alias(store, "m", "1", "rolled back: bad data") == {"previous": "2", "now": "1"}
    model = client.get_registered_model("m")
    assert {k: str(v) for k, v in model.aliases.items()} == {"production": "1"}
    assert model.tags["synthgate.last_rollback"] == "rolled back: bad data"
    # a version with no registered model (or one deleted since): the alias is removed, not left on another model
    assert tracking.move_production_alias(store, "m", "9", "to v9") == {"previous": "1", "now": None}
    assert not client.get_registered_model("m").aliases
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    with pytest.raises(TrackingError, match="unreachable"):
        tracking.check_registry("http://127.0.0.1:9/")


@pytest.mark.parametrize(
    ("request_frame", "message"),
    [
        ({"rows": [-3]}, r"`rows` must be a whole number from 1 to 100,000,000"),
        ({"rows": [10**12]}, r"`rows` must be a whole number from 1"),
        ({"rows": [2.5]}, r"`rows` must be a whole number"),
        ({"rows": [5], "seed": [-1]}, r"`seed` must be a whole number from 0"),
        ({"rows": [3, 7]}, r"the request is one row \(`rows`, `seed`\), not 2"),
        ({"rows": [5], "plan": ["basic"]}, r"takes `rows` and `seed` only, not \['plan'\]: this model samples rows"),
        ({"seed": [1]}, r"`rows` is missing"),
    ],
)
def test_a_request_to_the_model_is_checked_field_by_field(request_frame, message):
    # a negative count crashed in torch, a huge one ran out of memory, extra rows and conditions were dropped silently
    with pytest.raises(ValueError, match=message):
        tracking.sampling_request(pd.DataFrame(request_frame))
    assert tracking.sampling_request(pd.DataFrame({"rows": [5]})) == (5, None)
    assert tracking.sampling_request(pd.DataFrame({"rows": [5.0], "seed": [7]})) == (5, 7)
    assert tracking.sampling_request(pd.DataFrame({"rows": [5], "seed": [2**63 - 1]})) == (5, 2**63 - 1)  # no float
