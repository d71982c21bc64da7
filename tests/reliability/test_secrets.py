"""Warehouse credentials: every accepted form is a reference and never comes out again; every literal is refused.

Accepted: ``${ENV}`` as the userinfo password, ``${ENV}`` as a ``?password=`` query value, ``${secret:BLOCK}`` (a
Prefect Secret block). Passwords are planted in each of them (PostgreSQL's trust authentication ignores them), a
refresh that FAILS (closed port, unknown database) and one that SUCCEEDS are run through the CLI, and every output of
the runs is searched for them: the CLI's stdout and stderr, every log record of the process (tracebacks included),
the Prefect server's logs, artifacts, flow and task runs (and its database file), MLflow params, tags and dataset
inputs, every file under SYNTHGATE_HOME (OpenLineage events, reports, the MLflow store), the catalog, ledger and
event rows and the table comments of the target schema.

Refused, by ``synthgate check-spec`` with exit code 2 and a message naming the section and the parameter but never
the value: a literal userinfo password, a literal ``?password=``, a ``${VAR:-literal}`` default for a password, a
literal ``?sslkey=``, and a literal password beside a ``${...}`` elsewhere in the URL.
"""

from __future__ import annotations

import json
import logging
import traceback
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import mlflow
import pytest
import sqlalchemy as sa
import yaml
from typer.testing import CliRunner

from synthgate.cli import app
from tests.conftest import make_people
from tests.reliability.conftest import spec_dict

pytestmark = pytest.mark.integration

TAG = uuid.uuid4().hex[:10]
# Distinctive cores, wrapped in characters a URL must percent-encode: a leak is found whether it is raw or encoded.
PW_USERINFO = f"Pw{TAG}User@a/b?c"
PW_QUERY = f"Pw{TAG}Query&x=y#z"
PW_BLOCK = f"Pw{TAG}Block%40:"
HOST = "postgresql+psycopg2://postgres"


def needles() -> dict[str, list[bytes]]:
    found = {}
    for name, value in {
        "userinfo password": PW_USERINFO,
        "query password": PW_QUERY,
        "block password": PW_BLOCK,
        "password core": f"Pw{TAG}",
    }.items():  # the core survives any encoding
        found[name] = [v.encode(enc) for v in {value, quote(value, safe="")} for enc in ("utf-8", "utf-16-le")]
    return found


def hits(blob: bytes | str, where: str) -> list[str]:
    data = blob.encode() if isinstance(blob, str) else blob
    return [f"{name} in {where}" for name, patterns in needles().items() if any(p in data for p in patterns)]


class Recorder(logging.Handler):
    """Every log record of the process, formatted with its traceback."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:  # noqa: BLE001 - a record whose arguments do not format: keep what there is
            text = f"{record.msg} {record.args}"
        if record.exc_info:
            text += "".join(traceback.format_exception(*record.exc_info))
        self.texts.append(text)


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    handler = Recorder()
    loggers = [
        logging.getLogger(),
        logging.getLogger("prefect"),
        logging.getLogger("mlflow"),
        logging.getLogger("synthgate"),
    ]
    for logger in loggers:
        logger.addHandler(handler)
    yield handler
    for logger in loggers:
        logger.removeHandler(handler)


@pytest.fixture
def secret_block(prefect_harness) -> str:
    from prefect.blocks.system import Secret

    name = f"sg-warehouse-{TAG}"
    Secret(value=PW_BLOCK).save(name, overwrite=True)
    return name


def write(folder: Path, name: str, data: dict) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def prefect_texts() -> list[tuple[str, str]]:
    """Everything the Prefect server holds about runs: logs, artifacts, flow runs and task runs (all of them)."""
    from prefect.client.orchestration import get_client
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=30)
    records: list[tuple[str, str]] = []
    with get_client(sync_client=True) as client:
        offset = 0
        while logs := client.read_logs(limit=200, offset=offset):
            records += [("prefect log", log.message) for log in logs]
            offset += len(logs)
        records += [("prefect artifact", f"{a.key} {a.description} {a.data}") for a in client.read_artifacts()]
        records += [("prefect flow run", run.model_dump_json()) for run in client.read_flow_runs(limit=200)]
        records += [("prefect task run", run.model_dump_json()) for run in client.read_task_runs(limit=200)]
    assert any(where == "prefect log" for where, _ in records), "no Prefect logs found: the search would prove nothing"
    return records


def prefect_database() -> list[Path]:
    import prefect.settings

    url = prefect.settings.PREFECT_SERVER_DATABASE_CONNECTION_URL.value() or ""
    path = Path(url.split(":///", 1)[-1]) if url.startswith("sqlite") else None
    return [p for p in (path.parent.glob(path.name + "*") if path else []) if p.is_file()]


def test_planted_passwords_never_come_out(
    prefect_harness, secret_block, recorder, workdir, pg_engine, pg_schema, monkeypatch
) -> None:
    make_people(400, seed=3).to_sql("people", pg_engine, schema=pg_schema, index=False)
    monkeypatch.setenv("SG_SECRET_PW_USER", PW_USERINFO)
    monkeypatch.setenv("SG_SECRET_PW_QUERY", PW_QUERY)
    source = f"{HOST}:${{SG_SECRET_PW_USER}}@127.0.0.1:5432/test?password=${{SG_SECRET_PW_QUERY}}&sslmode=disable"
    target = f"{HOST}:${{secret:{secret_block}}}@127.0.0.1:5432/test"

    def spec(name: str, source_url: str) -> Path:
        data = spec_dict(pg_schema, table="people", target="people_synthetic", name=name, rows=300)
        data["gates"].update(
            max_inference_risk=1.0,
            max_linkability_risk=1.0,
            max_singling_out_risk=1.0,
            max_mia_auc=1.0,
            min_nndr_ratio=0.0,
            max_exact_copy_excess=1.0,
        )  # this test is about leaks
        data["source"]["url"], data["target"]["url"] = source_url, target
        return write(workdir, name, data)

    runner = CliRunner()
    outputs: list[tuple[str, str]] = []
    runs = {
        "closed-port": spec("closedport", source.replace(":5432/", ":5433/")),
        "wrong-database": spec("wrongdb", source.replace("/test?", "/sg_no_such_db?")),
        "success": spec("success", source),
    }
    results = {}
    for case, path in runs.items():
        result = runner.invoke(app, ["refresh", str(path), "--json", "--trigger", "test"])
        results[case] = result
        outputs += [(f"{case}: CLI stdout", result.stdout), (f"{case}: CLI stderr", result.stderr)]
        if result.exception and not isinstance(result.exception, SystemExit):
            outputs.append((f"{case}: exception", "".join(traceback.format_exception(result.exception))))

    for case in ("closed-port", "wrong-database"):
        assert results[case].exit_code == 2, results[case].output
        assert json.loads(results[case].stdout)["error_type"] == "WarehouseError"
        assert "cannot connect" in results[case].stderr
        assert len(results[case].stderr.strip().splitlines()) == 1, results[case].stderr
    assert results["success"].exit_code == 0, results["success"].output
    summary = json.loads(results["success"].stdout)
    assert summary["status"] == "published"

    leaks = [hit for where, text in outputs for hit in hits(text, where)]
    leaks += [hit for i, text in enumerate(recorder.texts) for hit in hits(text, f"log record {i}: {text[:120]!r}")]
    for where, text in prefect_texts():
        leaks += hits(text, where)
    for path in prefect_database():
        leaks += [hit for hit in hits(path.read_bytes(), f"Prefect database {path.name}") if "block" not in hit]

    # MLflow: params, tags and dataset inputs of the run, through the API (and the store's bytes below).
    client = mlflow.MlflowClient(summary["mlflow_tracking_uri"])
    run = client.get_run(summary["mlflow_run_id"])
    leaks += hits(repr(run.data.params) + repr(run.data.tags), "MLflow params and tags")
    datasets = [d.dataset.to_dictionary() for d in run.inputs.dataset_inputs]
    assert datasets, "no dataset input: the search would prove nothing"
    leaks += hits(json.dumps(datasets), "MLflow dataset inputs")

    # Every file under the work folder: SYNTHGATE_HOME (lineage, reports, artifacts), expectations, the MLflow store.
    files = [p for p in workdir.rglob("*") if p.is_file() and p.suffix != ".yaml"]
    assert any("lineage" in p.parts for p in files) and any(p.name == "mlflow.db" for p in files)
    lineage = "\n".join(p.read_text() for p in files if "lineage" in p.parts)
    assert '"FAIL"' in lineage and '"COMPLETE"' in lineage, "the lineage of both outcomes must have been searched"
    leaks += [hit for p in files for hit in hits(p.read_bytes(), str(p.relative_to(workdir)))]

    # The target schema: catalog, ledger, events, the published table, and every table and view comment.
    with pg_engine.connect() as conn:
        written = set(sa.inspect(pg_engine).get_table_names(schema=pg_schema)) - {"people"}
        assert {"synthgate_catalog", "synthgate_ledger", "synthgate_events"} <= written
        for table in written:
            rows = conn.execute(sa.text(f'SELECT t::text FROM "{pg_schema}"."{table}" t')).scalars().all()
            leaks += hits("\n".join(rows), f"table {table}")
        comments = conn.execute(
            sa.text(
                "SELECT c.relname, obj_description(c.oid) "
                "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = :schema AND obj_description(c.oid) IS NOT NULL"
            ),
            {"schema": pg_schema},
        ).all()
        assert comments, "no table comment found: the search would prove nothing"
        for name, comment in comments:
            leaks += hits(comment, f"comment on {name}")

    assert leaks == []
    # The URLs are shown, their passwords masked: the search above looked where they are written.
    assert all("***" in results[case].stderr for case in ("closed-port", "wrong-database"))
    assert "***" in run.data.params["source_url"] and "***" in run.data.params["target_url"]


REFUSED = {
    "literal-userinfo": (f"{HOST}:LITERALPW1@127.0.0.1:5432/test", "LITERALPW1", "literal password"),
    "literal-query": (f"{HOST}@127.0.0.1:5432/test?password=LITERALPW2", "LITERALPW2", "query parameter 'password'"),
    "default-for-password": (
        f"{HOST}:${{SG_UNSET_PW:-LITERALPW3}}@127.0.0.1:5432/test",
        "LITERALPW3",
        "literal default",
    ),
    "default-for-query": (
        f"{HOST}@127.0.0.1:5432/test?password=${{SG_UNSET_PW:-LITERALPW4}}",
        "LITERALPW4",
        "literal default",
    ),
    "literal-sslkey": (
        f"{HOST}@127.0.0.1:5432/test?sslkey=/keys/LITERALPW5.key",
        "LITERALPW5",
        "query parameter 'sslkey'",
    ),
    "placeholder-elsewhere": (f"{HOST}:LITERALPW6@${{SG_HOST:-127.0.0.1}}:5432/test", "LITERALPW6", "literal password"),
    "default-smuggles-userinfo": (
        "postgresql+psycopg2://${SG_HOST:-postgres:LITERALPW7@127.0.0.1}/test",
        "LITERALPW7",
        "literal default",
    ),
    "api-key": (f"{HOST}@127.0.0.1:5432/test?api_key=LITERALPW8", "LITERALPW8", "query parameter 'api_key'"),
}


@pytest.mark.parametrize("section", ["source", "target", "holdout.table"])
@pytest.mark.parametrize("case", list(REFUSED))
def test_check_spec_refuses_a_literal_credential(tmp_path: Path, case: str, section: str) -> None:
    url, value, named = REFUSED[case]
    data = spec_dict("public")
    if section == "holdout.table":
        data["holdout"] = {"table": {"url": url, "table": "holdout"}}
    else:
        data[section]["url"] = url
    result = CliRunner().invoke(app, ["check-spec", str(write(tmp_path, "spec", data))])
    assert result.exit_code == 2, result.output
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1 and message.startswith("error: ")
    assert f"{section}.url" in message and named in message and "Traceback" not in result.output
    assert value not in result.output
