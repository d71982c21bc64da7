"""OpenLineage events: naming, the file transport, and a real HTTP endpoint receiving them."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from synthgate.errors import GateFailedError
from synthgate.lineage import dataset_id, read_events, run_events
from synthgate.schema import Column, ColumnKind
from synthgate.settings import Settings
from synthgate.spec import WarehouseTable, spec_from_dict

SPEC = spec_from_dict(
    {
        "name": "people",
        "source": {
            "url": "postgresql+psycopg2://etl:hunter2@db.internal:5432/prod",
            "table": "people",
            "schema": "crm",
        },
        "target": {"url": "sqlite:////data/warehouse.db", "table": "people_synthetic"},
        "privacy": {"epsilon": 1.0, "delta": 1e-5},
    }
)
RUN_ID = "0123456789abcdef0123456789abcdef"


def test_dataset_names_follow_openlineage_naming_without_credentials():
    assert dataset_id(SPEC.source) == ("postgres://db.internal:5432", "prod.crm.people")
    assert dataset_id(SPEC.target) == ("sqlite:///data/warehouse.db", "people_synthetic")
    assert dataset_id(WarehouseTable(url="mysql+pymysql://u@h/db", table="t")) == ("mysql://h", "db.t")


def test_file_transport_gets_start_then_fail_with_the_error_type(tmp_path):
    settings = Settings(home=tmp_path)
    # the events under test must see the exception raised inside the block, after the columns were recorded
    with pytest.raises(GateFailedError), run_events(SPEC, RUN_ID, settings, "not-a-uuid") as events:  # noqa: PT012
        events.source_columns = [Column("age", ColumnKind.INTEGER, "BIGINT")]
        events.source_assertions = [
            {"assertion": "expect_column_values_to_not_be_null", "column": "age", "success": True}
        ]
        raise GateFailedError("quality FAILED: measured 0.5, required >= 0.8")
    start, fail = read_events(settings)
    assert (start["eventType"], fail["eventType"]) == ("START", "FAIL")
    assert start["run"]["runId"] == fail["run"]["runId"] == "01234567-89ab-cdef-0123-456789abcdef"
    assert fail["run"]["facets"]["errorMessage"]["message"].startswith("GateFailedError: quality FAILED")
    assert fail["inputs"][0]["facets"]["schema"]["fields"] == [
        {"name": "age", "type": "BIGINT", "ordinal_position": 1, "fields": []}
    ]
    assert fail["inputs"][0]["inputFacets"]["dataQualityAssertions"]["assertions"][0]["column"] == "age"
    assert "hunter2" not in settings.lineage_file.read_text()


def test_http_transport_posts_the_events_when_configured(tmp_path):
    received: list[dict] = []

    class Collector(BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(
                {
                    "path": self.path,
                    "auth": self.headers.get("Authorization"),
                    "event": json.loads(self.rfile.read(int(self.headers["Content-Length"]))),
                }
            )
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        settings = Settings(
            home=tmp_path, openlineage_url=f"http://127.0.0.1:{server.server_port}", openlineage_api_key="k3y"
        )
        with run_events(SPEC, RUN_ID, settings) as events:
            events.published_version, events.output_rows = 4, 1000
    finally:
        server.shutdown()
        server.server_close()
    assert [r["event"]["eventType"] for r in received] == ["START", "COMPLETE"]
    assert received[0]["path"] == "/api/v1/lineage" and received[0]["auth"] == "Bearer k3y"
    output = received[1]["event"]["outputs"][0]
    assert output["facets"]["version"]["datasetVersion"] == "4"
    assert output["outputFacets"]["outputStatistics"]["rowCount"] == 1000
    assert not settings.lineage_file.exists()
