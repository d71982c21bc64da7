"""Deployments on a real Prefect server: deploy from deployments/prefect.yaml, run through the API on a worker.

Starts ``prefect server start`` with its UI (own PREFECT_HOME, free port) and an MLflow tracking server (the worker's
and every command's MLFLOW_TRACKING_URI), ``synthgate deploy`` into a process work pool, and the worker command
``synthgate deploy`` prints, in a plain environment (no SYNTHGATE_PROJECT_DIR, no PYTHONPATH).

Then the users' three jobs in headless Chromium (issue 16, :mod:`tests.deployments.journey`): the operator clicks Run >
Quick run on the table deployment's page in the Prefect UI and fills in the form (spec path, epsilon, rows); the test
waits for the published table in PostgreSQL and checks the trigger recorded (``ui``, and the real UI's state message
is the one the flow reads), the MLflow run, the artifacts, and that no result was persisted; the operator reads the
flow run's page (Completed) and its summary artifact, whose MLflow link (an http URL on the tracking server) opens the
auditor's MLflow run page (name, metrics, parameters); the data steward opens the run's HTML report (``synthgate
report``) and reads its header, follows its MLflow link and reads each gate's explanation. Each step's wall time and
each screenshot's description are printed (``pytest -s``); the screenshots are kept under the test's tmp_path.

Then: a scheduled run (``schedule``), a run through the
API that the gates reject (``Rejected``, one line, no traceback, nothing pickled; ``api``), ``synthgate serve``
refusing the pooled deployments, ``synthgate serve --replace`` serving them and running one (refused by the budget,
one line), and ``synthgate deploy`` taking them back. Everything started is stopped, also on failure.

With SYNTHGATE_MEASURE_ADULT=1 it also runs the Adult demo deployment and prints the trigger-to-published time.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from uuid import UUID
from zoneinfo import ZoneInfo

import httpx
import mlflow
import pytest
import sqlalchemy as sa
from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.actions import DeploymentScheduleCreate
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterId,
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
    LogFilter,
    LogFilterFlowRunId,
)
from prefect.client.schemas.objects import StateType
from prefect.client.schemas.schedules import CronSchedule
from prefect.exceptions import ObjectNotFound
from prefect.results import ResultRecord
from prefect.states import Scheduled

from synthgate import tracking
from synthgate.deployments import UI_RUN_MESSAGE
from synthgate.warehouse import governance
from tests.browser import chromium, needs_chromium
from tests.deployments.journey import (
    Journey,
    check_flow_run_page,
    check_mlflow_run_page,
    check_report,
    first_state_message,
    quick_run,
    wait_published,
)
from tests.deployments.prefect_stack import PREFECT, ROOT, PrefectStack, prefect_stack
from tests.flows.test_refresh_flow import write_spec
from tests.mlflow_server import mlflow_server

pytestmark = [pytest.mark.integration, needs_chromium]
POOL = "synthgate-test"


def write_people_spec(folder: Path, schema: str) -> Path:
    """The flow tests' people spec with four epochs and no row count (runs here override it)."""
    return write_spec(folder, schema, training={"epochs": 4, "seed": 1}, rows=None)


def wait_final(client: SyncPrefectClient, flow_run_id: UUID, timeout: float) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = client.read_flow_run(flow_run_id)
        if run.state is not None and run.state.is_final():
            return run
        time.sleep(1)
    raise TimeoutError(f"flow run {flow_run_id} not finished after {timeout} s")


def trigger(client: SyncPrefectClient, name: str, parameters: dict, ui: bool = False) -> tuple[UUID, float]:
    """A run of deployment ``name`` created through the API: as the UI's Run button does (its state message) or as
    ``prefect deployment run`` and other clients do (none)."""
    deployment = client.read_deployment_by_name(name)
    began = time.monotonic()
    state = Scheduled(message=UI_RUN_MESSAGE) if ui else None
    run = client.create_flow_run_from_deployment(deployment.id, parameters=parameters, state=state)
    return run.id, began


def run_logs(client: SyncPrefectClient, flow_run_id: UUID, until: str, timeout: float = 30) -> list[str]:
    """The run's log messages in Prefect (they arrive in batches: wait for one holding ``until``)."""
    deadline = time.monotonic() + timeout
    while True:
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
        messages = [log.message for log in logs]
        if any(until in m for m in messages) or time.monotonic() > deadline:
            return messages
        time.sleep(1)


def assert_nothing_persisted(stack: PrefectStack) -> None:
    storage = Path(stack.env["PREFECT_HOME"]) / "storage"
    records = sorted(storage.iterdir()) if storage.exists() else []
    assert not records, (
        "a task or flow result was persisted: "
        + "; ".join(map(describe_record, records))
        + (
            "\n"
            + "\n".join(f"{name}: {line}" for name in stack.log_names() for line in stack.log_lines(name, "exception"))
        )
    )


def describe_record(path: Path) -> str:
    """What Prefect pickled into its result storage: the object's type and message (a diagnosis of a failure)."""
    try:
        stored = ResultRecord.deserialize(path.read_bytes()).result
    except Exception as exc:  # noqa: BLE001 - describe what can be read
        return f"{path.name}: unreadable ({type(exc).__name__})"
    return f"{path.name}: {type(stored).__module__}.{type(stored).__name__}: {str(stored)[:300]}"


@pytest.mark.timeout(1800)
def test_deployment_runs_on_a_worker_through_the_api(tmp_path, pg_engine, pg_schema, people):
    people.to_sql("people", pg_engine, schema=pg_schema, index=False)
    spec = write_people_spec(tmp_path, pg_schema)
    env = {
        "SYNTHGATE_HOME": str(tmp_path / "home"),
        "SYNTHGATE_EXPECTATIONS_DIR": str(tmp_path / "expectations"),
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "GX_ANALYTICS_ENABLED": "false",
        "TQDM_DISABLE": "1",
        "PREFECT_UI_ENABLED": "true",
    }
    journey = Journey(tmp_path)
    began = time.monotonic()
    stack: PrefectStack
    with (
        mlflow_server(tmp_path / "mlflow", wait=False) as mlflow_ui,  # starts while the Prefect server starts
        prefect_stack(tmp_path, env | {"MLFLOW_TRACKING_URI": mlflow_ui.url}) as stack,
        SyncPrefectClient(stack.api_url) as client,
    ):
        tracking_uri = mlflow_ui.wait()
        journey.record("servers up (Prefect server with its UI, MLflow tracking server)", time.monotonic() - began)
        deploy = [*PREFECT[:1], "-m", "synthgate.cli", "deploy", "--pool", POOL]
        with journey.step("deploy (synthgate deploy, first time)"):
            deployed = stack.run(deploy)
        assert deployed.returncode == 0, deployed.stdout[-3000:] + deployed.stderr[-3000:]
        # the same file through Prefect's own CLI: same deployments; it resolves {{ $SYNTHGATE_PROJECT_DIR }} when set
        native = stack.run(
            [*PREFECT, "--no-prompt", "deploy", "--all", "--prefect-file", "deployments/prefect.yaml"],
            env={"SYNTHGATE_WORK_POOL": POOL},
        )
        assert native.returncode == 0, native.stdout[-3000:] + native.stderr[-3000:]
        by_prefect = client.read_deployment_by_name("refresh-table/adult")
        assert by_prefect.work_pool_name == POOL and by_prefect.enforce_parameter_schema
        assert by_prefect.pull_steps == [{"prefect.deployments.steps.set_working_directory": {"directory": str(ROOT)}}]
        assert [(s.schedule.cron, s.schedule.timezone) for s in by_prefect.schedules] == [
            ("0 2 * * *", "Europe/Berlin")
        ]
        with journey.step("deploy (synthgate deploy, again)"):
            deployed = stack.run(deploy)  # synthgate deploy again
        assert deployed.returncode == 0, deployed.stdout[-3000:] + deployed.stderr[-3000:]
        # it says where runs start and prints the exact command that starts a worker
        *_, where, next_step, worker_command = deployed.stdout.strip().splitlines()
        assert where == f"runs start in {ROOT}" and next_step == f"next: start a worker for work pool {POOL!r}:"
        assert worker_command.strip().endswith(f"prefect worker start --pool {POOL}"), deployed.stdout
        listing = stack.run([*PREFECT, "deployment", "ls"])
        print(listing.stdout)
        assert "refresh-table/adult" in listing.stdout and "refresh-all/all-tables" in listing.stdout
        # a spec renamed or deleted since: its deployment keeps firing until deploy --prune deletes it
        adult_now = client.read_deployment_by_name("refresh-table/adult")
        client.create_deployment(
            flow_id=adult_now.flow_id,
            name="renamed-away",
            entrypoint=adult_now.entrypoint,
            tags=["synthgate"],
            work_pool_name=POOL,
        )
        client.create_deployment(  # another project's, on another pool of the same server: never touched
            flow_id=adult_now.flow_id, name="theirs", entrypoint=adult_now.entrypoint, tags=["synthgate"]
        )
        with journey.step("deploy (a spec renamed since)"):
            deployed = stack.run(deploy)
        assert deployed.returncode == 0 and "warning: refresh-table/renamed-away is Synthgate's" in deployed.stderr
        assert client.read_deployment_by_name("refresh-table/renamed-away")
        deployed = stack.run([*deploy, "--prune"])
        assert "deleted refresh-table/renamed-away: no spec names it any more" in deployed.stderr, deployed.stderr
        with pytest.raises(ObjectNotFound):
            client.read_deployment_by_name("refresh-table/renamed-away")
        assert "theirs" not in deployed.stderr
        client.delete_deployment(client.read_deployment_by_name("refresh-table/theirs").id)

        adult = client.read_deployment_by_name("refresh-table/adult")
        assert adult.enforce_parameter_schema and adult.work_pool_name == POOL
        # a process worker runs flows in a temporary folder: the deployment names the project's, absolute
        assert adult.pull_steps == [{"prefect.deployments.steps.set_working_directory": {"directory": str(ROOT)}}]
        assert adult.parameters == {"request": {"spec_path": "deployments/tables/adult.yaml"}}  # no trigger to lie
        [schedule] = adult.schedules
        assert (schedule.schedule.cron, schedule.schedule.timezone) == ("0 2 * * *", "Europe/Berlin")
        assert schedule.parameters["trigger"] == "schedule"

        with pytest.raises(httpx.HTTPStatusError) as refused:  # the UI form's validation, enforced by the server
            client.create_flow_run_from_deployment(
                adult.id, parameters={"request": {"spec_path": str(spec), "epsilon": -1}}
            )
        assert refused.value.response.status_code in (409, 422)
        assert "epsilon" in refused.value.response.text

        scheduler_seconds = check_the_server_schedules(client, adult.id)
        journey.record("schedule registered to its first run created by the server", scheduler_seconds)

        # the printed command, as a user starts it from the project: no SYNTHGATE_PROJECT_DIR, no PYTHONPATH
        stack.start_shell(f"worker-{POOL}", worker_command.strip(), drop=("SYNTHGATE_PROJECT_DIR", "PYTHONPATH"))
        with chromium(1400, 1000) as driver:  # the operator: Run > Quick run in the Prefect UI, the form filled in
            flow_run_id = quick_run(driver, journey, stack.api_url, adult.id, str(spec), epsilon=3.0, rows=700)
        clicked = time.monotonic()
        governed = pg_engine.execution_options(schema_translate_map={None: pg_schema})
        catalog = wait_published(
            lambda: governance.catalog_rows(governed), lambda: client.read_flow_run(flow_run_id).state.is_final(), 720
        )
        journey.record("Quick run clicked to table published (its catalog row)", time.monotonic() - clicked)
        run = wait_final(client, flow_run_id, timeout=120)
        journey.record("Quick run clicked to flow run Completed", time.monotonic() - clicked)
        assert run.state.is_completed(), f"{run.state!r}\n{stack.log_tail(f'worker-{POOL}')}"

        with pg_engine.connect() as conn:
            count = conn.execute(sa.text(f'SELECT count(*) FROM "{pg_schema}".people_synthetic')).scalar()
        assert count == 700  # the rows typed into the form reached the flow
        # who started it: the real UI's Quick run writes the state message the flow reads (run_trigger), so "ui"
        assert first_state_message(stack.api_url, flow_run_id) == UI_RUN_MESSAGE
        assert [c["trigger"] for c in catalog] == ["ui"]
        assert catalog[0]["epsilon"] <= 3.0 + 1e-6  # the epsilon typed into the form, not the spec's 4.0

        mlflow_run = mlflow.MlflowClient(tracking_uri).get_run(catalog[0]["mlflow_run_id"])
        assert mlflow_run.data.tags["prefect.flow_run_id"] == str(flow_run_id)
        assert mlflow_run.data.tags["prefect.deployment"] == "adult"
        assert mlflow_run.data.tags["synthgate.trigger"] == "ui"
        assert mlflow_run.info.run_name == "people v1 (ui)"
        assert mlflow_run.info.status == "FINISHED"

        artifacts = {a.key: a for a in client.read_artifacts() if a.key}
        assert {"synthgate-people-summary", "synthgate-people-gates", "synthgate-people-training"} <= set(artifacts)
        summary = str(artifacts["synthgate-people-summary"].data)
        assert "PUBLISHED" in summary and catalog[0]["mlflow_run_id"] in summary
        assert "@example.org" not in summary  # aggregates only
        assert float(artifacts["synthgate-people-training"].data) == pytest.approx(100.0)
        assert_nothing_persisted(stack)

        check_the_three_jobs(journey, stack, run, catalog[0], mlflow_run, tracking_uri, governed, pg_schema, tmp_path)

        check_a_schedule_fires(client, adult.id, spec, pg_engine, pg_schema)
        check_a_rejection_reads_as_one(stack, client, tmp_path, pg_engine, pg_schema)
        check_serve(stack, client, spec)
        assert_nothing_persisted(stack)
        check_deploy_takes_served_deployments_back(stack, client)


def scheduled_runs(client: SyncPrefectClient, deployment_id: UUID, *states: StateType) -> list:
    """The deployment's runs in ``states`` that the server's scheduler created (not the API or the UI)."""
    runs = client.read_flow_runs(
        deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])),
        flow_run_filter=FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=list(states)))),
    )
    return [r for r in runs if r.auto_scheduled]


def check_the_server_schedules(client: SyncPrefectClient, deployment_id: UUID) -> float:
    """The server's own scheduler turns the cron schedule into scheduled runs (Prefect 3.8.8 on SQLAlchemy 2.1 shows
    the schedule but creates none: only a test that waits for them catches it). Returns the seconds from the
    schedule's last registration (its ``updated`` time on the server) to the oldest of them (its ``created`` time)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not scheduled_runs(client, deployment_id, StateType.SCHEDULED):
        time.sleep(1)
    runs = scheduled_runs(client, deployment_id, StateType.SCHEDULED)
    assert runs, "the server created no scheduled run for the daily cron schedule in 60 s"
    assert all(r.expected_start_time.astimezone(ZoneInfo("Europe/Berlin")).hour == 2 for r in runs)
    [schedule] = client.read_deployment(deployment_id).schedules
    return (min(r.created for r in runs) - schedule.updated).total_seconds()


def check_the_three_jobs(
    journey: Journey,
    stack: PrefectStack,
    flow_run: object,
    published: dict,
    mlflow_run: object,
    tracking_uri: str,
    governed: sa.Engine,
    schema: str,
    folder: Path,
) -> None:
    """Issue 16 in a browser, after the Quick run published: the operator's flow run page and summary artifact, its
    MLflow link to the auditor's run page, and the data steward's report (fetched with ``synthgate report``)."""
    run_id = mlflow_run.info.run_id
    ledger = governance.ledger_rows(governed)
    total = sum(r["epsilon_spent"] for r in ledger)
    spent = mlflow_run.data.metrics["epsilon_spent"]
    assert [r["mlflow_run_id"] for r in ledger] == [run_id] and published["epsilon"] == pytest.approx(spent, abs=1e-4)
    # the MLflow budget metrics: this run's spend, the ledger's total for the table, its cap; epsilon_this_run is
    # the accountant after each epoch of this run's training, so its last value is this run's spend (not the ledger's)
    metrics = mlflow_run.data.metrics
    assert metrics["epsilon_table_total"] == pytest.approx(total, abs=1e-6) and metrics["epsilon_table_cap"] == 10.0
    history = mlflow.MlflowClient(tracking_uri).get_metric_history(run_id, "epsilon_this_run")
    assert [m.step for m in history] == [1, 2, 3, 4] and history[-1].value == pytest.approx(spent)

    # the run's report artifact, as MLflow lists it (its bytes sit under the worker's SYNTHGATE_HOME: Synthgate gives
    # each experiment a file:// artifact location, also on a tracking server)
    with journey.step("synthgate report RUN_ID (the run's report artifact, through MLflow)"):
        fetched = stack.run([sys.executable, "-m", "synthgate.cli", "report", run_id, "--out", str(folder / "a.html")])
    assert fetched.returncode == 0, fetched.stderr[-3000:]
    report = Path(fetched.stdout.strip().splitlines()[-1])
    written = Path(stack.env["SYNTHGATE_HOME"]) / "reports" / "people" / f"{run_id}.html"  # the worker's own copy
    assert report == folder / "a.html" and report.read_bytes() == written.read_bytes()

    link = tracking.run_url(tracking_uri, run_id)
    assert link.startswith(f"{tracking_uri}/#/experiments/{mlflow_run.info.experiment_id}/runs/{run_id}")
    table = f"{schema}.people_synthetic"
    gates = len([k for k in metrics if k.startswith("gate_")])
    with chromium(1400, 1000) as driver:
        href = check_flow_run_page(driver, journey, stack.api_url, flow_run.id, flow_run.name, tracking_uri, run_id)
        assert href == link
        check_mlflow_run_page(driver, journey, mlflow_run)
        check_report(
            driver,
            journey,
            report,
            expected={
                "Table": f"{table}, a synthetic copy of {schema}.people",
                "Version": "1, published if every gate passed (never published before; the catalog says)",
                "Rows": "700 synthetic rows",
            },
            budget_prefix=(
                f"epsilon {spent:.3g} spent by this run; {total:.3g} spent on this table in all, of its cap 10 "
                f"({10 - total:.3g} left)"
            ),
            verdict=(
                f"Verdict: PASSED. All {gates} gates passed: the synthetic rows are cleared for "
                f"publishing as version 1 of {table}."
            ),
            mlflow_href=link,
            run_name=mlflow_run.info.run_name,
        )
    print(journey.summary(), flush=True)


def check_a_schedule_fires(
    client: SyncPrefectClient, deployment_id: UUID, spec: Path, pg_engine: sa.Engine, schema: str
) -> None:
    """A schedule due every minute: a run the server created, started by the worker, publishes (trigger: schedule)."""
    parameters = {"request": {"spec_path": str(spec), "epsilon": 3.0, "rows": 500}, "trigger": "schedule"}
    [minutely] = client.create_deployment_schedules(
        deployment_id,
        [
            DeploymentScheduleCreate(
                schedule=CronSchedule(cron="* * * * *", timezone="UTC"), active=True, parameters=parameters
            )
        ],
    )
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and not scheduled_runs(client, deployment_id, StateType.COMPLETED):
            time.sleep(2)
    finally:
        client.update_deployment_schedule(deployment_id, minutely.id, active=False)
        drop_leftover_runs(client, deployment_id, parameters)
    assert scheduled_runs(client, deployment_id, StateType.COMPLETED), "no scheduled run completed in 600 s"
    catalog = governance.catalog_rows(pg_engine.execution_options(schema_translate_map={None: schema}))
    assert "schedule" in [c["trigger"] for c in catalog]


def drop_leftover_runs(client: SyncPrefectClient, deployment_id: UUID, parameters: dict) -> None:
    """The runs the minutely schedule created before it was switched off: the server keeps them, and the worker
    would start them later (a run is slower than a minute on 2 busy cores). Those not started are deleted, those
    started are waited for, so that the next checks see only their own runs."""
    waiting = (StateType.SCHEDULED, StateType.PENDING, StateType.RUNNING)
    for run in scheduled_runs(client, deployment_id, *waiting):
        if run.parameters.get("request") != parameters["request"]:  # the daily schedule's
            continue
        if run.state.type == StateType.SCHEDULED:
            client.delete_flow_run(run.id)
        else:
            wait_final(client, run.id, timeout=600)


def wait_idle(client: SyncPrefectClient, deployment_ids: list[UUID], timeout: float = 600) -> None:
    """Until no run of these deployments is pending or running (a late run of the minutely schedule, say), before
    they are deleted. Prefect's engine pickles into its result storage any exception that escapes a flow function's
    run (an API error while it sets the final state, say), whatever ``persist_result`` says; one CI run found such a
    record after ``serve --replace`` and none could be made since, so this takes away the likeliest cause, a run
    whose deployment is deleted under it, and :func:`assert_nothing_persisted` names what was pickled."""
    busy = FlowRunFilter(
        state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PENDING, StateType.RUNNING]))
    )
    deadline = time.monotonic() + timeout
    for run in client.read_flow_runs(
        deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=deployment_ids)), flow_run_filter=busy
    ):
        wait_final(client, run.id, timeout=max(deadline - time.monotonic(), 1))


def check_a_rejection_reads_as_one(
    stack: PrefectStack, client: SyncPrefectClient, folder: Path, pg_engine: sa.Engine, schema: str
) -> None:
    """A run through the API (no UI message: trigger ``api``) whose gates fail: it re-samples the published model
    (same source and settings, so no epsilon), is rejected, and ends ``Rejected`` with the error's one line: no
    traceback and no "unexpected exception" in its logs, nothing pickled into Prefect's result storage."""
    strict = folder / "strict"
    strict.mkdir()
    spec = write_spec(
        strict,
        schema,
        training={"epochs": 4, "seed": 1},
        rows=None,
        gates={"min_quality": 0.9999, "max_dcr_share": 0.7, "max_inference_risk": 0.4},
    )
    flow_run_id, _ = trigger(
        client, "refresh-table/adult", {"request": {"spec_path": str(spec), "epsilon": 3.0, "rows": 500}}
    )
    run = wait_final(client, flow_run_id, timeout=600)
    assert run.state.is_failed() and run.state.name == "Rejected", f"{run.state!r}\n{stack.log_tail(f'worker-{POOL}')}"
    assert run.state.message.startswith("nothing published: quality FAILED") and "\n" not in run.state.message
    messages = run_logs(client, flow_run_id, until="Finished in state Rejected")
    assert any(m.startswith("rejected: nothing published: quality FAILED") for m in messages), messages
    assert not [m for m in messages if "Traceback" in m or "unexpected exception" in m], messages
    ledger = governance.ledger_rows(pg_engine.execution_options(schema_translate_map={None: schema}))
    rejected = [r for r in ledger if r["status"] == "rejected"]
    assert [(r["trigger"], r["epsilon_spent"]) for r in rejected] == [("api", 0.0)]  # re-sampled: nothing spent
    assert_nothing_persisted(stack)


def check_serve(stack: PrefectStack, client: SyncPrefectClient, spec: Path) -> None:
    """`synthgate serve` refuses the deployments `synthgate deploy` registered (one line); `--replace` registers the
    same deployments, schedules included, without a work pool, and runs them from its own process."""
    serve = [sys.executable, "-m", "synthgate.cli", "serve"]
    refused = stack.run(serve, timeout=120)
    assert refused.returncode == 2, refused.stderr[-3000:]
    [line] = refused.stderr.strip().splitlines()
    assert "deployed to work pool" in line and "synthgate serve --replace" in line, line

    before = {
        name: client.read_deployment_by_name(name).id for name in ("refresh-table/adult", "refresh-all/all-tables")
    }
    wait_idle(client, list(before.values()))  # --replace deletes these deployments: none of their runs in flight
    stack.start_serve("--replace")
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        served = {name: _deployment(client, name) for name in before}
        if all(d is not None and d.id != before[n] for n, d in served.items()) and "being served" in stack.log_tail(
            "serve"
        ):
            break
        time.sleep(1)
    else:
        raise AssertionError(f"synthgate serve did not register its deployments:\n{stack.log_tail('serve')}")
    adult = served["refresh-table/adult"]
    assert adult.work_pool_name is None and not adult.pull_steps
    assert (
        adult.enforce_parameter_schema and adult.parameters["request"]["spec_path"] == "deployments/tables/adult.yaml"
    )
    assert [(s.schedule.cron, s.schedule.timezone) for s in adult.schedules] == [("0 2 * * *", "Europe/Berlin")]
    log = stack.log_tail("serve")
    assert "replaced refresh-table/adult" in log and "refresh-all/all-tables" in log

    # a run of a served deployment starts in the serve process: refused by the budget cap (3 spent + 8 > 10) in
    # the preflight, as one line, not "Downloading flow code from storage at None"
    flow_run_id, _ = trigger(
        client, "refresh-table/adult", {"request": {"spec_path": str(spec), "epsilon": 8.0}}, ui=True
    )
    run = wait_final(client, flow_run_id, timeout=300)
    assert run.state.name == "Refused", f"{run.state!r}\n{stack.log_tail('serve')}"
    assert "exceeds the cap 10" in run.state.message and "\n" not in run.state.message


def check_deploy_takes_served_deployments_back(stack: PrefectStack, client: SyncPrefectClient) -> None:
    deployed = stack.run([sys.executable, "-m", "synthgate.cli", "deploy", "--pool", POOL])
    assert deployed.returncode == 0, deployed.stderr[-3000:]
    assert "replaced refresh-table/adult, which `synthgate serve` had registered" in deployed.stderr
    assert client.read_deployment_by_name("refresh-table/adult").work_pool_name == POOL


def _deployment(client: SyncPrefectClient, name: str):

    try:
        return client.read_deployment_by_name(name)
    except ObjectNotFound:
        return None
