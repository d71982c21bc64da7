"""``synthgate rollback`` and ``synthgate audit`` against real PostgreSQL (a spec file, or a table name)."""

import json

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
        publish_version(target, version_frame(marker, 10 * marker), f"run{marker:05d}")
    runner = CliRunner()

    moved = runner.invoke(app, ["rollback", "people", "--specs-dir", str(specs), "--json"])
    assert moved.exit_code == 0, moved.output
    assert json.loads(moved.stdout) == {"status": "rolled_back", "table": f"{pg_schema}.people_synthetic", "version": 1,
                                        "previous_version": 2, "version_table": "people_synthetic__v1"}

    audited = runner.invoke(app, ["audit", str(specs / "people.yaml"), "--json"])
    assert audited.exit_code == 0, audited.output
    record = json.loads(audited.stdout)
    assert record["current_version"] == 1 and record["kept_versions"] == [1, 2]
    assert [(v["version"], v["current"], v["rows"]) for v in record["versions"]] == [(1, True, 10), (2, False, 20)]
    assert [(e["action"], e["version"]) for e in record["events"]] == [("publish", 1), ("publish", 2), ("rollback", 1)]
    assert record["budget"]["cap"] == 5.0 and record["events"][-1]["trigger"] == "cli"

    text = runner.invoke(app, ["audit", "people", "--specs-dir", str(specs)])
    assert text.exit_code == 0 and "version 1 published; kept [1, 2]" in text.output and "rollback to v1 (from v2)" in text.output

    missing = runner.invoke(app, ["rollback", "nobody", "--specs-dir", str(specs)])
    assert missing.exit_code == 2 and "no spec" in missing.output
