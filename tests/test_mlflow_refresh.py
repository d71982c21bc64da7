"""What two real refreshes leave in MLflow (real PostgreSQL, MLflow store, Prefect harness): a rejected run registers
no model version, so the first published table version goes with model version 1; runs are named after table,
version and trigger, and describe the auditor's chain; the published model version carries its tags; the spec
(redacted) and the column policies are logged; the ledger's total sits beside this run's epsilon; the report's
header names table, version, rows and budget."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pytest
import yaml
from typer.testing import CliRunner

from synthgate import tracking
from synthgate.cli import app
from synthgate.errors import GateFailedError
from synthgate.flows.refresh import refresh_table
from synthgate.spec import load_spec
from synthgate.warehouse import governance
from tests.flows.test_refresh_flow import GATES  # a 6-epoch generator on 1,500 rows: looser thresholds
from tests.flows.test_refresh_flow import write_spec as flow_spec

pytestmark = pytest.mark.integration


def write_spec(tmp_path: Path, schema: str, gates: dict) -> Path:
    """The flow tests' people spec, with a cap, four epochs at epsilon 2 and these gates."""
    return flow_spec(
        tmp_path,
        schema,
        privacy={"epsilon": 2.0, "delta": 1e-5, "cap": 10.0},
        training={"epochs": 4, "seed": 1},
        gates=gates,
    )


def test_a_rejected_run_registers_nothing_and_a_published_one_is_walkable(
    prefect_harness, workdir, pg_engine, pg_schema, people
):
    people.to_sql("people", pg_engine, schema=pg_schema, index=False)
    client = mlflow.MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")

    with pytest.raises(GateFailedError):
        refresh_table(str(write_spec(workdir, pg_schema, GATES | {"min_quality": 0.999})), trigger="test")
    assert client.search_model_versions("name='synthgate-people'") == []  # rejected: no model version
    experiment = client.get_experiment_by_name("synthgate/people")
    assert experiment.tags[tracking.EXPERIMENT_KIND_TAG] == "custom_model_development"
    [rejected] = client.search_runs([experiment.experiment_id])
    assert rejected.info.run_name == "people rejected (test)" and rejected.data.tags["synthgate.status"] == "rejected"
    assert "none: the run was rejected" in rejected.data.tags[tracking.NOTE_TAG]
    held = next((workdir / "home" / "reports" / "people").glob("*.html")).read_text()
    assert (
        f"nothing from this run is published; <code>{pg_schema}.people_synthetic</code> has no published version yet"
        in held
    )

    spec_path = write_spec(workdir, pg_schema, GATES)
    result = refresh_table(str(spec_path), trigger="test")
    assert result["published_version"] == 1 and result["model_version"] == "1"  # table v1 <-> model v1
    run = client.get_run(result["mlflow_run_id"])
    assert run.info.run_name == "people v1 (test)"
    note = run.data.tags[tracking.NOTE_TAG]
    for step in (
        f"1. Published table: `{pg_schema}.people_synthetic` version 1",
        "2. Source snapshot: table `people`",
        "3. Code: ",
        "4. Budget: epsilon ",
        "5. Gates: all ",
        "6. Model: `synthgate-people` version 1",
    ):
        assert step in note, step
    model = client.get_model_version("synthgate-people", "1")
    assert model.run_id == run.info.run_id and model.tags["synthgate.table_version"] == "1"
    assert model.tags["synthgate.verdict"] == "passed"
    assert model.tags["synthgate.source_fingerprint"] == run.data.tags["synthgate.source_fingerprint"]
    assert float(model.tags["synthgate.epsilon"]) == pytest.approx(result["epsilon_guarantee"], abs=1e-3)
    # the table's ledger total beside this run's spend: the rejected run's epsilon counts too
    ledger = governance.ledger_rows(pg_engine.execution_options(schema_translate_map={None: pg_schema}))
    assert [r["status"] for r in ledger] == ["rejected", "published"]
    metrics = run.data.metrics
    assert metrics["epsilon_table_total"] == pytest.approx(sum(r["epsilon_spent"] for r in ledger), abs=1e-6)
    assert metrics["epsilon_table_total"] > metrics["epsilon_spent"] and metrics["epsilon_table_cap"] == 10.0
    # the spec (URLs redacted) and the column policies used
    artifacts = Path(client.download_artifacts(run.info.run_id, "", str(workdir / "dl")))
    assert yaml.safe_load((artifacts / "spec.yaml").read_text()) == tracking.redacted_spec(load_spec(spec_path))
    policies = json.loads((artifacts / "column_policies.json").read_text())
    assert policies["plan"]["decided_by"] == "spec" and policies["email"]["decided_by"] == "name and SQL type"
    assert policies["email"]["policy"] == "fake"
    # the report's header
    page = Path(result["report"]).read_text()
    assert (
        f"All {len(result['gates'])} gates passed: the synthetic rows are cleared for publishing as version 1 of "
        f"<code>{pg_schema}.people_synthetic</code>"
    ) in page
    assert "1,500 synthetic rows" in page and "spent on this table in all, of its cap 10" in page
    assert "mlflow ui --backend-store-uri" in page and "workflowType=machine_learning" in page
    # `synthgate audit` prints the same chain, the code version and the run read back from MLflow
    audited = CliRunner().invoke(app, ["audit", str(spec_path)])
    assert audited.exit_code == 0, audited.output
    chain = audited.output.split("audit chain of version 1")[1]
    commit = run.data.tags.get("synthgate.git_commit")
    assert (f"code version     commit {commit[:12]}" if commit else "code version     not a git checkout") in chain
    assert (
        "gates            all " in chain and "model            synthgate-people version 1 (alias production)" in chain
    )
    assert f"MLflow run       {run.info.run_id} (people v1 (test)): mlflow ui --backend-store-uri" in chain
