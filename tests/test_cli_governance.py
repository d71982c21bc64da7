"""``synthgate rollback`` and ``synthgate audit`` against real PostgreSQL and a real MLflow registry.

A rollback needs a reason, moves the table's name *and* the model's ``production`` alias, and records both; the
audit prints the auditor's chain (published table -> source snapshot -> code version -> budget -> gates -> model ->
MLflow run) and each rollback's reason.
"""

import json

import mlflow
import pytest
import yaml
from typer.testing import CliRunner

from synthgate.cli import app
from synthgate.spec import WarehouseTable
from tests.conftest import PG_URL
from tests.warehouse.publishing import publish_version, version_frame

pytestmark = pytest.mark.integration


def test_rollback_and_audit_from_the_command_line(pg_engine, pg_schema, workdir):
    specs = workdir / "specs"
    specs.mkdir()
    spec = {
        "name": "people",
        "source": {"url": PG_URL, "table": "people", "schema": pg_schema},
        "target": {"url": PG_URL, "table": "people_synthetic", "schema": pg_schema},
        "privacy": {"epsilon": 1.0, "delta": 1e-5, "cap": 5.0},
    }
    (specs / "people.yaml").write_text(yaml.safe_dump(spec))
    target = WarehouseTable(url=PG_URL, table="people_synthetic", schema=pg_schema)
    for marker in (1, 2):
        publish_version(target, version_frame(marker, 10 * marker), f"run{marker:05d}")  # model "m" v1, v2
    registry = mlflow.MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    registry.create_registered_model("m")
    for _ in (1, 2):
        registry.create_model_version("m", source="file:///nowhere")
    registry.set_registered_model_alias("m", "production", "2")
    runner = CliRunner()

    unexplained = runner.invoke(app, ["rollback", "people", "--specs-dir", str(specs)])
    assert unexplained.exit_code == 2 and "--reason is required" in unexplained.output
    assert len(unexplained.output.strip().splitlines()) == 1

    moved = runner.invoke(
        app,
        ["rollback", "people", "--specs-dir", str(specs), "--json", "--reason", "v2 has empty labels (ticket DATA-42)"],
    )
    assert moved.exit_code == 0, moved.output
    assert json.loads(moved.stdout) == {
        "status": "rolled_back",
        "table": f"{pg_schema}.people_synthetic",
        "version": 1,
        "previous_version": 2,
        "version_table": "people_synthetic__v1",
        "reason": "v2 has empty labels (ticket DATA-42)",
        "model": {"name": "m", "version": "1", "production": "1", "previous_production": "2"},
    }
    model = registry.get_registered_model("m")
    assert {k: str(v) for k, v in model.aliases.items()} == {"production": "1"}  # the alias moved with the table
    assert model.tags["synthgate.last_rollback"].endswith(
        f"{pg_schema}.people_synthetic rolled back from v2 to v1 (cli): v2 has empty labels (ticket DATA-42)"
    )

    audited = runner.invoke(app, ["audit", str(specs / "people.yaml"), "--json"])
    assert audited.exit_code == 0, audited.output
    record = json.loads(audited.stdout)
    assert record["current_version"] == 1 and record["kept_versions"] == [1, 2]
    assert [(v["version"], v["current"], v["rows"]) for v in record["versions"]] == [(1, True, 10), (2, False, 20)]
    assert [(e["action"], e["version"]) for e in record["events"]] == [("publish", 1), ("publish", 2), ("rollback", 1)]
    assert record["events"][-1]["detail"] == "v2 has empty labels (ticket DATA-42)"
    assert record["budget"]["cap"] == 5.0 and record["events"][-1]["trigger"] == "cli"
    assert record["versions"][0]["model"]["aliases"] == ["production"]
    assert [s["step"] for s in record["chain"]] == [
        "published table",
        "source snapshot",
        "code version",
        "budget",
        "gates",
        "model",
        "MLflow run",
    ]

    text = runner.invoke(app, ["audit", "people", "--specs-dir", str(specs)])
    assert text.exit_code == 0, text.output
    assert "version 1 published; kept [1, 2]" in text.output
    assert "rollback to v1 (from v2) (cli): v2 has empty labels (ticket DATA-42)" in text.output
    chain = text.output.split("audit chain of version 1")[1]
    assert f"{pg_schema}.people_synthetic version 1 (table people_synthetic__v1), 10 rows" in chain
    assert (
        "rolled back to this version on" in chain
        and "source snapshot  people, keyed fingerprint ffffffffffffffff" in chain
    )
    assert "model            m version 1 (alias production)" in chain
    assert "code version     unknown: the MLflow run could not be read" in chain  # these versions had no MLflow run

    again = runner.invoke(app, ["rollback", "people", "--specs-dir", str(specs), "--reason", "x"])
    assert again.exit_code == 2 and "no earlier version is kept" in again.output
    assert {k: str(v) for k, v in registry.get_registered_model("m").aliases.items()} == {"production": "1"}

    missing = runner.invoke(app, ["rollback", "nobody", "--specs-dir", str(specs), "--reason", "x"])
    assert missing.exit_code == 2 and "no spec" in missing.output
