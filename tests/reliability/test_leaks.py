"""Canaries: unique marker values in a source table (categorical, numeric, free text, e-mail) and a warehouse password
given through ${ENV}; after a whole refresh none of them may appear in anything the run wrote or logged.

Searched: every file under the temporary SYNTHGATE_HOME, the expectations folder and the MLflow store (the SQLite
database byte by byte, artifacts, the report, GX results, the saved generator, OpenLineage event files if any), the
Prefect logs, artifacts and states of the flow run through the Prefect client API, the published table and every
other table the run wrote in the target schema (catalog, ledger).
"""

from __future__ import annotations

import struct
import uuid

import mlflow
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from tests.conftest import make_people
from tests.reliability.conftest import spec_dict, write_spec

pytestmark = pytest.mark.integration

TAG = uuid.uuid4().hex[:10]
CATEGORY = f"CanaryCat{TAG}"  # a rare category: 4 rows
TEXT = f"CanaryText{TAG}"  # free text, unique per row (prefix of every value)
EMAIL = f"canary{TAG}@example.org"  # personal data: must be faked
NUMBER = 73194286.40517  # a numeric outlier: 3 rows
PASSWORD = f"pw{TAG}Secret"


def canary_table(n: int = 1000) -> pd.DataFrame:
    frame = make_people(n, seed=11)
    rng = np.random.default_rng(11)
    frame["note"] = [f"{TEXT}-{i}-{rng.integers(1_000_000)}" for i in range(n)]
    frame.loc[[3, 70, 500, 900], "plan"] = CATEGORY
    frame.loc[[5, 600, 950], "income"] = NUMBER
    frame.loc[42, "email"] = EMAIL
    return frame


def needles() -> dict[str, list[bytes]]:
    """Byte patterns per marker: UTF-8 (and UTF-16 for SQLite text), and the number as text and as float64/float32."""
    found = {
        name: [value.encode(), value.encode("utf-16-le")]
        for name, value in {"category": CATEGORY, "text": TEXT, "email": EMAIL, "password": PASSWORD}.items()
    }
    found["number"] = [b"73194286.4", b"73194286.405", struct.pack("<d", NUMBER), struct.pack(">d", NUMBER)]
    return found


def hits(blob: bytes, where: str) -> list[str]:
    return [f"{name} in {where}" for name, patterns in needles().items() if any(p in blob for p in patterns)]


def prefect_records(flow_run_id: str) -> list[tuple[str, str]]:
    """Logs, artifacts and states of the flow run and its task runs, from the Prefect API."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, LogFilter, TaskRunFilter
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=30)  # logs go to the API in background batches: send what is queued
    records: list[tuple[str, str]] = []
    with get_client(sync_client=True) as client:
        run_id = uuid.UUID(flow_run_id)
        offset = 0
        while logs := client.read_logs(log_filter=LogFilter(flow_run_id={"any_": [run_id]}), limit=200, offset=offset):
            records += [("prefect log", log.message) for log in logs]
            offset += len(logs)
        artifacts = client.read_artifacts(flow_run_filter=FlowRunFilter(id={"any_": [run_id]}))
        records += [("prefect artifact", f"{a.key} {a.description} {a.data}") for a in artifacts]
        flow_run = client.read_flow_run(run_id)
        records.append(("prefect flow run", flow_run.model_dump_json()))
        for task_run in client.read_task_runs(task_run_filter=TaskRunFilter(flow_run_id={"any_": [run_id]})):
            records.append(("prefect task run", task_run.model_dump_json()))
    assert any("published" in m for _, m in records), "the Prefect logs were not found: the search would prove nothing"
    return records


def test_no_canary_leaves_the_boundary(prefect_harness, workdir, pg_engine, pg_schema, monkeypatch) -> None:
    from synthgate.flows.refresh import refresh_table

    source = canary_table()
    source.to_sql("people", pg_engine, schema=pg_schema, index=False)
    monkeypatch.setenv("SG_CANARY_PASSWORD", PASSWORD)  # trust authentication ignores it; the pipeline must not
    url = "postgresql+psycopg2://postgres:${SG_CANARY_PASSWORD}@127.0.0.1:5432/test"
    data = spec_dict(
        pg_schema,
        table="people",
        target="people_synthetic",
        name="canary",
        holdout={"fraction": 0.25},
        target_column="churned",
        rows=800,
        privacy={"epsilon": 2.0, "delta": 1e-5},
        training={"epochs": 2, "seed": 0, "device": "cpu"},
        columns={"note": {"policy": "keep"}, "plan": {"policy": "categorical"}},
    )
    data["source"]["url"] = data["target"]["url"] = url
    result = refresh_table(str(write_spec(workdir, data)), trigger="test")
    assert result["status"] == "published"

    # Every file the run wrote: home (MLflow artifacts, reports, lineage), expectations, the MLflow SQLite store.
    files = [p for p in workdir.rglob("*") if p.is_file() and p.name != "people.yaml"]
    assert any(p.suffix == ".html" for p in files) and any(p.name == "mlflow.db" for p in files)
    assert any("gx" in p.parts for p in files) and any(p.name.endswith("source.json") for p in files)
    leaks = [hit for p in files for hit in hits(p.read_bytes(), str(p.relative_to(workdir)))]

    # What MLflow returns through its API (params, tags, metrics of the run).
    run = mlflow.MlflowClient(result["mlflow_tracking_uri"]).get_run(result["mlflow_run_id"])
    leaks += hits(repr(run.data.params).encode() + repr(run.data.tags).encode(), "MLflow params and tags")
    assert "***" in run.data.params["source_url"]

    for where, text in prefect_records(run.data.tags["prefect.flow_run_id"]):
        leaks += hits(text.encode(), where)

    # The target schema: the published table, the catalog and the ledger (the source table excluded).
    with pg_engine.connect() as conn:
        written = set(sa.inspect(pg_engine).get_table_names(schema=pg_schema)) - {"people"}
        assert {
            "people_synthetic__v1",
            "synthgate_catalog",
            "synthgate_ledger",
            "synthgate_events",
        } <= written  # the name is a view
        for table in written:
            rows = conn.execute(sa.text(f'SELECT t::text FROM "{pg_schema}"."{table}" t')).scalars().all()
            leaks += hits("\n".join(rows).encode(), f"table {table}")
        published = pd.read_sql_table("people_synthetic", conn, schema=pg_schema)

    assert leaks == []
    # The checks above could fail: the markers are really in the source, and the run really published rows.
    assert (source["plan"] == CATEGORY).sum() == 4 and source["note"].str.startswith(TEXT).all()
    assert len(published) == 800 and not published["income"].isin([NUMBER]).any()
    assert not published["note"].astype(str).str.contains(TAG).any()
