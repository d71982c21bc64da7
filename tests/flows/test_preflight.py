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
from synthgate.errors import DataValidationError, SpecError, WarehouseError
from synthgate.spec import load_spec
from synthgate.warehouse import governance
from tests.conftest import PG_URL, ROOT, login_role
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


def test_keys_that_are_no_columns_are_refused_before_any_spend(tmp_path, pg_engine, pg_schema, people):
    # they were found only when the synthetic rows were checked, after training had spent the budget
    people.head(200).to_sql("people", pg_engine, schema=pg_schema, index=False)
    spec = load_spec(write_spec(tmp_path, pg_schema, keys=["customer_id", "no_such_column"]))
    with pytest.raises(SpecError, match=r"keys \['no_such_column'\] are not columns of 'people': fix keys"):
        preflight.run(spec, 10.0)


def test_a_holdout_table_of_other_columns_is_refused_before_any_row_is_read(tmp_path, pg_engine, pg_schema, people):
    people.head(200).to_sql("people", pg_engine, schema=pg_schema, index=False)
    people.head(50).drop(columns=["plan"]).to_sql("people_holdout", pg_engine, schema=pg_schema, index=False)
    holdout = {"table": {"url": PG_URL, "table": "people_holdout", "schema": pg_schema}}
    spec = load_spec(write_spec(tmp_path, pg_schema, holdout=holdout))
    with pytest.raises(DataValidationError, match=r"holdout table's columns differ from the source: missing \['plan"):
        preflight.run(spec, 10.0)


@pytest.fixture
def reader_without_select(pg_engine, pg_schema):
    """A role that may log in and see the schema (USAGE) but read no table in it."""
    with login_role(pg_engine, pg_schema) as role:
        yield role


def test_a_source_the_role_may_not_read_is_refused_before_the_spend(
    tmp_path, pg_engine, pg_schema, people, reader_without_select
):
    # the preflight passed and the run reserved its spend, read for 21 s and failed on SQLSTATE 42501
    people.head(200).to_sql("people", pg_engine, schema=pg_schema, index=False)
    url = PG_URL.replace("postgres@", f"{reader_without_select}@")
    spec = load_spec(write_spec(tmp_path, pg_schema, source={"url": url, "table": "people", "schema": pg_schema}))
    with pytest.raises(WarehouseError, match=r"cannot read '.*people' .*InsufficientPrivilege.*grant the source role"):
        preflight.run(spec, 10.0)
    assert governance.ledger_rows(pg_engine.execution_options(schema_translate_map={None: pg_schema})) == []


def test_a_ledger_the_target_role_may_not_read_is_one_line_naming_it(pg_engine, pg_schema, reader_without_select):
    # it escaped as "unexpected ProgrammingError"
    governance.ensure_governance_tables(pg_engine.execution_options(schema_translate_map={None: pg_schema}))
    with pg_engine.begin() as conn:
        conn.execute(sa.text(f'GRANT CREATE ON SCHEMA "{pg_schema}" TO "{reader_without_select}"'))
    url = PG_URL.replace("postgres@", f"{reader_without_select}@")
    engine = sa.create_engine(url).execution_options(schema_translate_map={None: pg_schema})
    with pytest.raises(WarehouseError, match=r"cannot read Synthgate's ledger 'synthgate_ledger' .*InsufficientPriv"):
        governance.check_budget(engine, "people", 1.0, 10.0)
    engine.dispose()
