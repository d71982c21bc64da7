"""Faults injected for real: a PostgreSQL backend terminated mid-extract, an MLflow store that cannot be reached,
a report folder that cannot be written (permission denied, disk full)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from prefect.settings import PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW, temporary_settings

from synthgate.errors import OutputError, TrackingError, WarehouseError
from synthgate.warehouse import governance
from synthgate.warehouse.extract import extract_table
from tests.reliability.conftest import governed, load_frame, make_spec, spec_dict, tables_in, write_spec

pytestmark = pytest.mark.integration


def table_frame(n: int = 3000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"a": rng.integers(0, 50, n), "b": rng.choice(["x", "y", "z"], n), "c": rng.normal(size=n)})


def terminate_streaming_backends(pg_engine: sa.Engine) -> int:
    """pg_terminate_backend on every other session fetching from a cursor: the extract's connection drops."""
    with pg_engine.connect() as conn:
        pids = [
            r[0]
            for r in conn.execute(
                sa.text(
                    "SELECT pid FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND query ILIKE 'FETCH FORWARD%'"
                )
            )
        ]
        for pid in pids:
            conn.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": pid})
    return len(pids)


def test_connection_dropped_mid_extract_fails_cleanly(pg_engine, pg_schema) -> None:
    table = load_frame(pg_engine, pg_schema, "src", table_frame())
    killed: list[int] = []

    def progress(rows: int) -> None:
        if rows == 500:
            killed.append(terminate_streaming_backends(pg_engine))

    with pytest.raises(WarehouseError) as error:
        extract_table(table, chunk_size=500, progress=progress)
    assert killed == [1]
    assert f"reading '{pg_schema}.src'" in str(error.value) and "OperationalError" in str(error.value)
    # The pool replaced the dead connection: the next extract works.
    assert len(extract_table(table, chunk_size=500).frame) == 3000


def test_connection_dropped_mid_extract_is_retried_by_the_task(
    prefect_harness, pg_engine, pg_schema, monkeypatch
) -> None:
    """The extract task retries a transient warehouse error.

    The first attempt loses its backend, the second succeeds.
    """
    import synthgate.tasks.extract as extract_tasks

    load_frame(pg_engine, pg_schema, "src", table_frame())
    spec = make_spec(pg_schema, chunk_size=500)
    attempts: list[int] = []

    def extract_with_fault(table, chunk_size=50_000, progress=None, *, key=None, policies=None):
        attempts.append(len(attempts) + 1)

        def kill_once(rows: int) -> None:
            if len(attempts) == 1 and rows == 1000:
                assert terminate_streaming_backends(pg_engine) == 1

        return extract_table(table, chunk_size, progress=kill_once, key=key, policies=policies)

    monkeypatch.setattr(extract_tasks, "extract_table", extract_with_fault)  # the hook only; the fault is real
    # the task runs on its own here, outside a flow run: its log records have no flow run to go to, which is expected
    with temporary_settings({PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW: "ignore"}):
        extract = extract_tasks.extract_source(spec, b"k" * 32)
    assert attempts == [1, 2]
    assert len(extract.frame) == 3000
    assert extract.fingerprint.digest == extract_table(spec.source, key=b"k" * 32).fingerprint.digest


@pytest.fixture
def flow_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SYNTHGATE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SYNTHGATE_EXPECTATIONS_DIR", str(tmp_path / "expectations"))
    monkeypatch.setenv("SYNTHGATE_MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    return tmp_path


def assert_untouched(pg_engine: sa.Engine, schema: str, ledger: list[str]) -> None:
    assert "src_synthetic" not in tables_in(pg_engine, schema)
    assert [r["status"] for r in governance.ledger_rows(governed(pg_engine, schema))] == ledger
    assert governance.catalog_rows(governed(pg_engine, schema)) == []


@pytest.mark.parametrize(
    "uri",
    ["http://127.0.0.1:1", "http://sg:pwMlflowCanary@127.0.0.1:1", "sqlite:////proc/no-such-folder/mlflow.db"],
    ids=["server-refuses", "server-with-credentials-refuses", "store-path-unwritable"],
)
def test_unreachable_mlflow_stops_before_anything(
    prefect_harness, flow_home, pg_engine, pg_schema, monkeypatch, uri
) -> None:
    from synthgate.flows.refresh import refresh_table

    monkeypatch.setenv("SYNTHGATE_MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    load_frame(pg_engine, pg_schema, "src", table_frame(400))
    with pytest.raises(TrackingError) as error:
        refresh_table(str(write_spec(flow_home, spec_dict(pg_schema))), trigger="test")
    message = str(error.value)
    assert "is unreachable" in message and "nothing was trained" in message
    assert ("127.0.0.1:1" in message) != ("/proc/no-such-folder" in message)  # the store is named
    assert "pwMlflowCanary" not in message
    assert_untouched(pg_engine, pg_schema, [])


@pytest.fixture
def immutable_folder(tmp_path: Path) -> Iterator[Path]:
    """A folder no one may write into, root included (``chattr +i``; plain permissions where not root)."""
    folder = tmp_path / "locked"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    if not shutil.which("chattr") or subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode:
        pytest.skip("cannot make a folder unwritable for root here (chattr +i refused)")
    try:
        yield folder
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=False)


def test_report_folder_permission_denied(
    prefect_harness, flow_home, immutable_folder, pg_engine, pg_schema, monkeypatch
) -> None:
    from synthgate.flows.refresh import refresh_table

    monkeypatch.setenv("SYNTHGATE_HOME", str(immutable_folder))  # reports go to <home>/reports/<spec>
    load_frame(pg_engine, pg_schema, "src", table_frame(400))
    with pytest.raises(OutputError) as error:
        refresh_table(str(write_spec(flow_home, spec_dict(pg_schema))), trigger="test")
    message = str(error.value)
    assert f"cannot write reports to {immutable_folder}/reports/rel" in message
    assert "ermi" in message or "not permitted" in message  # Permission denied / Operation not permitted
    assert_untouched(pg_engine, pg_schema, [])  # refused before the data was read: no spend


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 256 KiB tmpfs: room for the probe file, not for a report with its plots."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], capture_output=True)
    if done.returncode:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_disk_full_while_writing_the_report(
    prefect_harness, flow_home, tiny_disk, pg_engine, pg_schema, monkeypatch
) -> None:
    from synthgate.flows.refresh import refresh_table

    monkeypatch.setenv("SYNTHGATE_HOME", str(tiny_disk))
    (tiny_disk / "filler").write_bytes(b"\0" * (200 * 1024))  # what is left fits the probe, not the report
    load_frame(pg_engine, pg_schema, "src", table_frame(400))
    with pytest.raises(OutputError) as error:
        refresh_table(str(write_spec(flow_home, spec_dict(pg_schema, target_column="b"))), trigger="test")
    message = str(error.value)
    assert "No space left on device" in message and "nothing was published" in message
    ledger = governance.ledger_rows(governed(pg_engine, pg_schema))
    assert [r["status"] for r in ledger] == ["failed"] and "No space left" in ledger[0]["detail"]
    assert "src_synthetic" not in tables_in(pg_engine, pg_schema)
    assert governance.catalog_rows(governed(pg_engine, pg_schema)) == []


def test_mlflow_lost_after_training_is_a_clear_error(monkeypatch) -> None:
    """The log stage's guard.

    An MLflow call that fails for real (store gone) becomes a TrackingError, nothing published.
    """
    import mlflow

    from synthgate.tracking import explained_log_failures

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    uri = "http://sg:pwMlflowCanary@127.0.0.1:1"
    with pytest.raises(TrackingError) as error, explained_log_failures(uri, Path("report.html")):
        mlflow.MlflowClient(uri).get_run("0" * 32)
    message = str(error.value)
    assert "logging the run to the MLflow store" in message and "nothing was published" in message
    assert "pwMlflowCanary" not in message and "***" in message
    with pytest.raises(ZeroDivisionError), explained_log_failures(uri, Path("report.html")):
        _ = 1 / 0  # a bug elsewhere is not disguised as a tracking failure
