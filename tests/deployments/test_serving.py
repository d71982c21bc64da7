"""Deploy and serve decisions without a server: where runs start, who started a run, what deploy prints next, and
what a flow process logs (tests/deployments/test_prefect_server.py runs them against a real server)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from synthgate.deployments import (
    PROJECT_DIR_PLACEHOLDER,
    UI_RUN_MESSAGE,
    all_tables_deployment,
    run_directory,
    run_trigger,
    table_deployment,
)
from synthgate.errors import GateFailedError, SpecError
from synthgate.flows import quiet
from synthgate.flows.deploy import worker_command
from synthgate.spec import Schedule
from synthgate.tasks.train import logged_epoch
from tests.conftest import ROOT


@pytest.mark.parametrize(
    ("auto_scheduled", "created_by", "message", "trigger"),
    [
        (True, None, None, "schedule"),
        (False, "AUTOMATION", None, "automation"),
        (False, None, "Run from the Prefect UI", "ui"),
        (False, None, "Run from the Prefect UI with defaults", "ui"),
        (False, None, None, "api"),  # prefect deployment run, run_deployment, a client
        (False, None, "", "api"),  # the UI's custom-run form with its message left empty
    ],
)
def test_the_trigger_is_who_created_the_run(auto_scheduled, created_by, message, trigger):
    assert run_trigger(auto_scheduled, created_by, message) == trigger


def test_deployments_pass_no_trigger_their_schedules_say_schedule():
    table = table_deployment(
        "people", "people", Schedule(cron="0 2 * * *", timezone="UTC"), "deployments/tables/p.yaml"
    )
    assert table["parameters"] == {"request": {"spec_path": "deployments/tables/p.yaml"}}
    assert table["schedules"][0]["parameters"]["trigger"] == "schedule"
    assert "trigger" not in all_tables_deployment("deployments/tables")["parameters"]
    assert UI_RUN_MESSAGE == "Run from the Prefect UI"  # what Prefect 3.8's UI writes into a run's first state


def test_process_workers_get_the_absolute_project_folder_containers_resolve_it(tmp_path: Path):
    assert run_directory("process", None, ROOT) == str(ROOT.resolve())
    assert run_directory("process", str(tmp_path), ROOT) == str(tmp_path.resolve())
    assert run_directory("kubernetes", None, ROOT) == PROJECT_DIR_PLACEHOLDER
    assert run_directory("docker", "/opt/synthgate", ROOT) == "/opt/synthgate"


def test_the_next_command_starts_a_worker_of_the_pool(monkeypatch):
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:4200/api")
    command = worker_command("synthgate", "process")
    assert command.startswith("PREFECT_API_URL=http://127.0.0.1:4200/api ")
    assert command.endswith("prefect worker start --pool synthgate")
    assert worker_command("k8s", "kubernetes").endswith("worker start --pool k8s --type kubernetes")
    monkeypatch.setenv("PREFECT_API_URL", "http://admin:s3cr3t@127.0.0.1:4200/api")
    command = worker_command("synthgate", "process")
    assert "s3cr3t" not in command and command.startswith('PREFECT_API_URL="$PREFECT_API_URL" ')


def _synthgate(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "synthgate.cli", *args], capture_output=True, text=True, cwd=ROOT, env=env, timeout=120
    )


def test_deploy_and_serve_refuse_a_temporary_server_in_one_line(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")} | {"PREFECT_HOME": str(tmp_path)}
    for command in ("deploy", "serve"):
        done = _synthgate(command, env=env)
        assert done.returncode == 2, done.stderr
        [line] = done.stderr.strip().splitlines()
        assert line.startswith("error: no Prefect server configured") and "PREFECT_API_URL" in line
    down = env | {"PREFECT_API_URL": "http://user:hunter2@127.0.0.1:9/api"}  # nothing listens on port 9
    done = _synthgate("deploy", env=down)
    assert done.returncode == 2 and "hunter2" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        "error: the Prefect server at PREFECT_API_URL=http://user:***@127.0.0.1:9/api does not answer (ConnectError): "
        "start it (`prefect server start`), or point PREFECT_API_URL at one that runs"
    ]
    # a refresh says the same before the flow starts (it failed later as "unexpected RuntimeError")
    done = _synthgate("refresh-all", "deployments/tables", env=down)
    assert done.returncode == 2 and "hunter2" not in done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("error: the Prefect server at PREFECT_API_URL=http://user:***@127.0.0.1:9/api does not")


def _record(logger: str, message: str, error: BaseException | None) -> logging.LogRecord:
    exc_info = (type(error), error, None) if error else None
    return logging.LogRecord(logger, logging.ERROR, __file__, 1, message, None, exc_info)


def test_a_synthgate_error_is_one_line_in_prefect_logs_other_errors_keep_their_traceback():
    one_line = quiet.OneLineSynthgateErrors()
    rejected = GateFailedError("nothing published: quality FAILED")
    engine_exit = _record("prefect.flow_runs", "Engine execution exited with unexpected exception", rejected)
    assert not one_line.filter(engine_exit)  # an expected outcome is no "unexpected exception"
    task_failed = _record("prefect.task_runs", "Task run failed with exception: GateFailedError(...)", rejected)
    assert one_line.filter(task_failed) and task_failed.exc_info is None
    bug = _record("prefect.flow_runs", "Engine execution exited with unexpected exception", KeyError("x"))
    assert one_line.filter(bug) and bug.exc_info is not None
    logged = KeyError("y")
    quiet.mark_logged(logged)  # the flow logged it with its traceback: the engine's record would repeat it
    assert not one_line.filter(
        _record("prefect.flow_runs", "Engine execution exited with unexpected exception", logged)
    )
    assert one_line.filter(_record("prefect.task_runs", "Task run failed with exception: KeyError('y')", logged))


def test_library_warnings_are_quiet_in_flow_processes():
    quiet.install()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        quiet._installed = False  # catch_warnings reset the filters: install them again inside it
        quiet.install()
        warnings.warn_explicit(
            "deprecated",
            FutureWarning,
            "sdmetrics/reports/single_table/__init__.py",
            12,
            module="sdmetrics.reports.single_table",
        )
        warnings.warn_explicit(
            "Hint: integer column", UserWarning, "mlflow/types/utils.py", 440, module="mlflow.types.utils"
        )
        warnings.warn_explicit("ours", UserWarning, "synthgate/x.py", 1, module="synthgate.x")
    assert [str(w.message) for w in caught] == ["ours"]
    assert logging.getLogger("mlflow").propagate and logging.getLogger("mlflow.pyfunc").level == logging.ERROR


@pytest.mark.parametrize(
    ("epochs", "logged"),
    [(6, [1, 2, 3, 4, 5, 6]), (40, [4, 8, 12, 16, 20, 24, 28, 32, 36, 40]), (25, [3, 6, 9, 12, 15, 18, 21, 24, 25])],
)
def test_training_logs_about_ten_epochs(epochs, logged):
    assert [e for e in range(1, epochs + 1) if logged_epoch(e, epochs)] == logged


def test_a_project_dir_is_checked_only_where_it_exists_on_this_machine(tmp_path: Path, monkeypatch):
    # --project-dir names the folder as the workers' machine has it; one that exists here without specs is wrong
    from synthgate.flows.deploy import deploy

    with pytest.raises(SpecError, match=r"holds no deployments/tables/"):
        deploy("synthgate", "process", {}, str(tmp_path))

    class Reached(Exception):
        pass

    def server(*args, **kwargs):
        raise Reached

    monkeypatch.setattr("prefect.client.orchestration.get_client", server)
    with pytest.raises(Reached):  # a folder of the workers' machine only: on to the server
        deploy("synthgate", "process", {}, "/srv/workers/synthgate")
