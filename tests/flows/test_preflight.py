"""The preflight: a missing target schema is created when the spec says so, else refused in seconds, before Prefect."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

import pytest
import sqlalchemy as sa

from synthgate import preflight
from synthgate.errors import WarehouseError
from synthgate.spec import load_spec
from synthgate.warehouse import governance
from tests.conftest import PG_URL, ROOT
from tests.flows.test_refresh_flow import write_spec

pytestmark = pytest.mark.integration


@pytest.fixture
def new_schema(pg_engine):
    name = f"sg_new_{uuid.uuid4().hex[:8]}"
    yield name
    with pg_engine.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))


def test_a_missing_target_schema_is_created_when_the_spec_says_so(tmp_path, pg_engine, pg_schema, people, new_schema):
    people.head(200).to_sql("people", pg_engine, schema=pg_schema, index=False)
    target = {"url": PG_URL, "table": "people_synthetic"}
    spec = load_spec(write_spec(tmp_path, pg_schema, target=target | {"schema": new_schema}))
    with pytest.raises(WarehouseError, match=f"schema '{new_schema}' does not exist in .*set `create_schema: true`"):
        preflight.run(spec, 10.0)
    assert not sa.inspect(pg_engine).has_schema(new_schema)

    spec = load_spec(write_spec(tmp_path, pg_schema, target=target | {"schema": new_schema, "create_schema": True}))
    assert preflight.run(spec, 10.0) is True
    assert sa.inspect(pg_engine).has_schema(new_schema)
    assert preflight.run(spec, 10.0) is False  # there now
    assert governance.ledger_rows(pg_engine.execution_options(schema_translate_map={None: new_schema})) == []


def test_refresh_refuses_before_prefect_starts(tmp_path, pg_engine, pg_schema, people):
    """`synthgate refresh` runs the preflight before it starts Prefect: one line, exit 2, in seconds (the flow's own
    preflight would answer after a temporary Prefect server started, some 30 s later)."""
    people.head(200).to_sql("people", pg_engine, schema=pg_schema, index=False)
    spec = write_spec(tmp_path, pg_schema, target={"url": PG_URL, "table": "t", "schema": "sg_no_such_schema"})
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")} | {
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "SYNTHGATE_HOME": str(tmp_path / "home"),
        "SYNTHGATE_MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
    }
    began = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "synthgate.cli", "refresh", str(spec)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
    )
    seconds = time.monotonic() - began
    assert done.returncode == 2, done.stderr
    [line] = done.stderr.strip().splitlines()  # no Prefect server started, no flow run logged
    assert line.startswith("error: schema 'sg_no_such_schema' does not exist in postgresql"), line
    assert seconds < 20, f"the refusal took {seconds:.1f} s"
