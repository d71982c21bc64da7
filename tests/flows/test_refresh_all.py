"""refresh-all: every spec in a folder at once on a Dask LocalCluster of worker processes; one failure stops none."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from prefect.task_runners import ThreadPoolTaskRunner

from synthgate.errors import SpecError
from synthgate.flows.parameters import RefreshAllParameters
from synthgate.flows.refresh_all import build_task_runner, refresh_all
from synthgate.settings import Settings
from tests.conftest import PG_URL
from tests.flows.test_refresh_flow import GATES, write_spec

pytestmark = pytest.mark.integration


def test_task_runner_follows_the_settings():
    from prefect_dask import DaskTaskRunner

    assert isinstance(build_task_runner(Settings(max_parallel_tables=3)), ThreadPoolTaskRunner)
    remote = build_task_runner(Settings(dask_address="tcp://10.0.0.5:8786"))
    assert isinstance(remote, DaskTaskRunner) and remote.address == "tcp://10.0.0.5:8786"
    local = build_task_runner(Settings(dask_workers=3))
    assert local.cluster_kwargs["n_workers"] == 3 and local.cluster_kwargs["processes"] is True


def test_refresh_all_on_a_dask_cluster(prefect_harness, workdir, pg_engine, pg_schema, people):
    people.to_sql("people", pg_engine, schema=pg_schema, index=False)
    specs = workdir / "specs"
    specs.mkdir()
    # Three epochs keep it short; their TSTR varies around the shared gate's 0.5 with the fresh DP noise, and this
    # test is about the cluster, not the model: the TSTR gate is off here.
    gates = GATES | {"min_tstr_auc": 0.0}
    write_spec(workdir, pg_schema, training={"epochs": 3, "seed": 1}, rows=500, gates=gates).rename(
        specs / "people.yaml"
    )
    ghost = {"url": PG_URL, "table": "no_such_table", "schema": pg_schema}
    write_spec(workdir, pg_schema, name="ghost", source=ghost).rename(specs / "ghost.yaml")

    runner = build_task_runner(Settings(dask_workers=2))
    outcomes = refresh_all.with_options(task_runner=runner)(RefreshAllParameters(specs_dir=str(specs)), trigger="test")

    by_table = {o["table"]: o for o in outcomes}
    assert set(by_table) == {"people", "ghost"}
    assert by_table["people"]["status"] == "published" and by_table["people"]["rows_published"] == 500
    assert by_table["ghost"]["status"] == "failed" and by_table["ghost"]["error_type"] == "MissingTableError"
    assert by_table["ghost"]["state"] == "FAILED" and by_table["people"]["state"] == "COMPLETED"
    assert by_table["people"]["flow_run_id"] != by_table["ghost"]["flow_run_id"]
    with pg_engine.connect() as conn:
        assert conn.execute(sa.text(f'SELECT count(*) FROM "{pg_schema}".people_synthetic')).scalar() == 500

    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:  # each table ran as a subflow of the parent, in its own process
        runs = {str(r.id): r for r in client.read_flow_runs()}
    people_run, ghost_run = runs[by_table["people"]["flow_run_id"]], runs[by_table["ghost"]["flow_run_id"]]
    assert people_run.parent_task_run_id is not None and ghost_run.state.is_failed()


def test_an_empty_folder_is_an_error(prefect_harness, tmp_path: Path):
    with pytest.raises(SpecError, match="no table specs"):
        refresh_all(RefreshAllParameters(specs_dir=str(tmp_path)))
