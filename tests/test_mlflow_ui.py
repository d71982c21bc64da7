"""The MLflow run a report points to opens in a browser: the `mlflow ui` command printed for a local store starts a UI
on which the printed page shows the run, and on a tracking server (an http URI) the report's link itself opens it.

One real MLflow UI process (the report's own command, on a free port) serves both cases. The run is recorded the way
a refresh records it (``tracking.start_run`` and the tags and metrics the flow sets), without training a model. The
auditor's path is read off the run's page: its name, then the description walking table -> source -> code ->
budget -> gates -> model.
"""

from __future__ import annotations

import shlex
from datetime import UTC, datetime
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from synthgate import tracking
from synthgate.gates import GateVerdict, Scores
from synthgate.report import ReportContext, RunFacts, render
from tests.browser import chromium, needs_chromium
from tests.mlflow_server import MLFLOW, mlflow_process

pytestmark = needs_chromium

SCORES = Scores(
    quality=0.87,
    column_shapes=0.9,
    column_pair_trends=0.84,
    dcr_share=0.51,
    exact_copies_training=0.0,
    exact_copies_holdout=0.0,
    synthetic_suite_passed=True,
)
VERDICTS = [GateVerdict("quality", True, 0.87, 0.75, ">="), GateVerdict("dcr_share", True, 0.51, 0.6, "<=")]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> tuple[str, str, str]:
    """A published refresh's run in a local (sqlite) store: (store URI, run id, experiment id)."""
    home = tmp_path_factory.mktemp("mlflow")
    store = f"sqlite:///{home / 'mlflow.db'}"
    tags = {"synthgate.trigger": "schedule", "synthgate.source_table": "people"}
    with tracking.start_run(store, "people", tags, home / "artifacts") as run:
        tracking.set_tags({"synthgate.source_fingerprint": "9f" * 32})
        tracking.log_metrics(
            {
                "epsilon_spent": 0.97,
                "epsilon_table_total": 2.91,
                "epsilon_table_cap": 10.0,
                "gate_quality": 1.0,
                "gate_dcr_share": 1.0,
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
    return store, run.info.run_id, run.info.experiment_id


def report_page(tmp_path: Path, link: str) -> Path:
    facts = RunFacts(
        table="synth.people_synthetic",
        source_table="people",
        rows=1500,
        epsilon_spent=0.97,
        started_at=datetime(2024, 5, 1, tzinfo=UTC),
        trigger="schedule",
        next_version=3,
        current_version=2,
        epsilon_total=2.91,
        epsilon_cap=10.0,
    )
    ctx = ReportContext("people", "run", 0.97, 1e-5, "prv", SCORES, VERDICTS, {}, link, facts=facts)
    path = tmp_path / "report.html"
    path.write_text(render(ctx, {}, "", pd.DataFrame({"age": [31]}), learned=1), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def ui(recorded, tmp_path_factory):
    """The MLflow UI, started with the very command the report prints for the local store (on a free port)."""
    store, run_id, _ = recorded
    command = tracking.run_link(store, run_id).command
    argv = shlex.split(command)
    argv[0] = MLFLOW
    try:
        with mlflow_process(argv, tmp_path_factory.mktemp("ui") / "ui.log") as process:
            yield process.url
    except RuntimeError as exc:  # it did not serve
        pytest.fail(f"`{command}` did not serve: {exc}")


def wait_for_text(driver, text: str, seconds: float = 60) -> str:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, seconds).until(lambda d: text in d.find_element(By.TAG_NAME, "body").text)
    return driver.find_element(By.TAG_NAME, "body").text


def test_the_printed_command_and_page_and_a_servers_link_open_the_run(recorded, ui, tmp_path):
    from selenium.webdriver.common.by import By

    store, run_id, experiment_id = recorded
    local = report_page(tmp_path, tracking.run_url(store, run_id))
    with chromium(1400, 1000) as driver:
        # a local store: the report prints the command (the one `ui` started) and the page to open once it runs
        driver.get(local.resolve().as_uri())
        assert driver.find_element(By.ID, "mlflow-command").text == tracking.run_link(store, run_id).command
        page = driver.find_element(By.ID, "mlflow-link").get_attribute("href")
        assert page.startswith(tracking.LOCAL_UI + "/#/experiments/")
        driver.get(page.replace(tracking.LOCAL_UI, ui))
        wait_for_text(driver, "people v3 (schedule)")
        driver.find_element(By.XPATH, "//*[normalize-space(text())='Show more']").click()  # the description, unfolded
        body = wait_for_text(driver, "Model: none registered")
        for step in (
            "Published table: synth.people_synthetic version 3",
            "Source snapshot: table people, keyed fingerprint",
            "Code:",
            "Budget: epsilon 0.97 spent by this run; 2.91 spent on this table in all, of its cap 10",
            "Gates: all 2 passed",
            "Model: none registered",
        ):
            assert step in body, step
        # a tracking server: the report's link is the run's page there, and clicking it opens the run
        served = report_page(tmp_path, tracking.run_url(ui, run_id))
        driver.get(served.resolve().as_uri())
        link = driver.find_element(By.ID, "mlflow-link")
        assert driver.find_elements(By.ID, "mlflow-command") == []
        assert link.get_attribute("href") == f"{ui}/#/experiments/{experiment_id}/runs/{run_id}{tracking.UI_QUERY}"
        link.click()
        wait_for_text(driver, "people v3 (schedule)")
        assert "workflowType=machine_learning" in driver.current_url
        # the experiment, opened the way Synthgate links it, shows its runs (not the GenAI traces overview)
        driver.get(f"{ui}/#/experiments/{experiment_id}{tracking.UI_QUERY}")
        wait_for_text(driver, "people v3 (schedule)")
        assert f"/experiments/{experiment_id}/runs" in driver.current_url
    experiment = mlflow.MlflowClient(store).get_experiment(experiment_id)
    assert experiment.tags[tracking.EXPERIMENT_KIND_TAG] == tracking.EXPERIMENT_KIND
