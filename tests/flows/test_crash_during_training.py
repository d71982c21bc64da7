"""A refresh SIGKILLed during training: its spend stays in the ledger and counts toward the cap."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest

from synthgate.errors import PrivacyBudgetError
from synthgate.flows.refresh import refresh_table
from synthgate.warehouse import governance
from tests.flows.test_refresh_flow import governed, has_table, source, write_spec  # noqa: F401 - fixture

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def wait_for(condition, seconds: float, what: str, proc: subprocess.Popen):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the refresh exited ({proc.returncode}) before {what}: {proc.stderr.read()[-2000:]}")
        if value := condition():
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_refresh_killed_during_training_still_counts(prefect_harness, workdir, pg_engine, source):  # noqa: F811
    from prefect.settings import PREFECT_API_URL

    spec = write_spec(
        workdir, source, privacy={"epsilon": 1.0, "delta": 1e-5, "cap": 1.5}, training={"epochs": 60, "seed": 1}
    )  # more epochs than it gets to run
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    proc = subprocess.Popen(
        [sys.executable, "-m", "synthgate.cli", "refresh", str(spec)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    engine = governed(pg_engine, source)
    try:
        run_id = wait_for(
            lambda: next((r["mlflow_run_id"] for r in governance.ledger_rows(engine)), None),
            300,
            "the ledger row",
            proc,
        )
        client = mlflow.MlflowClient(os.environ["SYNTHGATE_MLFLOW_TRACKING_URI"])
        wait_for(lambda: client.get_metric_history(run_id, "epsilon_this_run"), 240, "the first training epoch", proc)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL

    [row] = governance.ledger_rows(engine)
    assert (row["status"], row["epsilon_spent"], row["finished_at"]) == ("started", pytest.approx(1.0), None)
    assert governance.budget_summary(engine, "people", cap=1.5)["remaining"] == pytest.approx(0.5)
    assert not has_table(pg_engine, source, "people_synthetic")
    # The next refresh is refused before training: the killed run's spend counts.
    with pytest.raises(PrivacyBudgetError, match=r"spent 1 \+ asked 1 exceeds the cap 1\.5"):
        refresh_table(str(spec))
    assert [r["status"] for r in governance.ledger_rows(engine)] == ["started"]
