"""OpenLineage run events for a refresh: START, then COMPLETE or FAIL, through the openlineage-python client.

The input is the source table (schema facet, keyed snapshot fingerprint as the dataset version, the source
GX suite's results as data-quality assertions); the output is the published name (schema facet,
version number, row count, and the synthetic suite and the gates as assertions). Events go to a
JSON-lines file under ``SYNTHGATE_HOME/lineage/`` by default, or to an HTTP endpoint (Marquez or any
OpenLineage backend) when ``SYNTHGATE_OPENLINEAGE_URL`` is set.

No value of a source row ever goes into an event: names, types, the published (synthetic) row count, keyed
fingerprints and pass/fail only.
A failure to emit is logged and never stops a refresh.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import make_url

from synthgate.errors import SynthgateError
from synthgate.schema import Column
from synthgate.settings import Settings
from synthgate.spec import TableSpec, WarehouseTable

log = logging.getLogger(__name__)

PRODUCER = "https://github.com/synthgate/synthgate"
_SCHEMES = {"postgresql": "postgres", "mysql": "mysql", "mariadb": "mysql", "sqlite": "sqlite", "duckdb": "duckdb"}


def dataset_id(table: WarehouseTable) -> tuple[str, str]:
    """(namespace, name) after OpenLineage's naming: ``postgres://host:port`` and ``database.schema.table``."""
    url = make_url(table.url)
    scheme = _SCHEMES.get(url.get_backend_name(), url.get_backend_name())
    if url.host:
        namespace = f"{scheme}://{url.host}:{url.port}" if url.port else f"{scheme}://{url.host}"
        parts = [url.database, table.db_schema, table.table]
    else:  # embedded: the database file is the namespace
        namespace = f"{scheme}://{url.database or 'memory'}"
        parts = [table.db_schema, table.table]
    return namespace, ".".join(p for p in parts if p)


def openlineage_run_id(run_id: str) -> str:
    """OpenLineage wants a UUID: the MLflow run id (32 hex digits) is one, else a stable UUID5 of it."""
    try:
        return str(uuid.UUID(hex=run_id))
    except ValueError:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"synthgate:{run_id}"))


def assertions_from_gx(result: dict[str, Any] | None) -> list[dict[str, Any]]:
    """(expectation, column, success) of each GX result: the expectation names, never observed values."""
    out = []
    for r in (result or {}).get("results", []):
        config = r.get("expectation_config", {})
        out.append(
            {
                "assertion": config.get("type", "unknown"),
                "column": config.get("kwargs", {}).get("column"),
                "success": bool(r.get("success")),
            }
        )
    return out


@dataclass
class RunLineage:
    """What a refresh has learned so far; the call sites fill it in, the context manager emits."""

    spec: TableSpec
    run_id: str
    settings: Settings
    flow_run_id: str | None = None
    source_columns: list[Column] | None = None
    source_fingerprint: str | None = None
    source_assertions: list[dict[str, Any]] = field(default_factory=list)
    output_columns: dict[str, str] | None = None
    output_assertions: list[dict[str, Any]] = field(default_factory=list)
    output_rows: int | None = None
    published_version: int | None = None
    children: list[RunLineage] = field(default_factory=list)  # a linked refresh: each child table's datasets

    def record_checks(
        self, frame: Any, columns: list[Column], gx_result: dict[str, Any] | None, verdicts: list[Any]
    ) -> None:
        """The synthetic table's schema, its suite's results and the gate verdicts (names and pass/fail)."""
        from synthgate.columns import sql_types

        self.output_columns = {name: str(kind.compile()) for name, kind in sql_types(columns, frame).items()}
        gates = [{"assertion": f"synthgate_gate_{v.name}", "success": bool(v.passed), "column": None} for v in verdicts]
        self.output_assertions = assertions_from_gx(gx_result) + gates

    def event(self, state: str, error: BaseException | None = None) -> Any:
        """This refresh's OpenLineage ``RunEvent`` in ``state`` (START, COMPLETE or FAIL), with ``error`` on FAIL."""
        from openlineage.client.event_v2 import Job, Run, RunEvent, RunState
        from openlineage.client.generated import error_message_run, job_type_job, parent_run

        run_facets: dict[str, Any] = {}
        if self.flow_run_id:
            run_facets["parent"] = parent_run.ParentRunFacet(
                run=parent_run.Run(runId=self.flow_run_id),
                job=parent_run.Job(namespace=self.settings.openlineage_namespace, name="prefect.refresh-table"),
            )
        if error is not None:
            message = str(error) if isinstance(error, SynthgateError) else type(error).__name__
            run_facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
                message=f"{type(error).__name__}: {message}", programmingLanguage="python"
            )
        job = Job(
            namespace=self.settings.openlineage_namespace,
            name=f"synthgate.refresh.{self.spec.name}",
            facets={
                "jobType": job_type_job.JobTypeJobFacet(processingType="BATCH", integration="SYNTHGATE", jobType="JOB")
            },
        )
        inputs = [self.input_dataset()] + [child.input_dataset() for child in self.children]
        outputs = [self.output_dataset()] + [child.output_dataset() for child in self.children]
        return RunEvent(
            eventType=getattr(RunState, state),
            eventTime=datetime.now(UTC).isoformat(),
            run=Run(runId=openlineage_run_id(self.run_id), facets=run_facets),
            job=job,
            inputs=inputs,
            outputs=outputs,
            producer=PRODUCER,
        )

    def input_dataset(self) -> Any:
        """The source table as an OpenLineage input: its schema, keyed fingerprint and source suite's verdicts."""
        from openlineage.client.event_v2 import InputDataset
        from openlineage.client.generated import dataset_version_dataset, datasource_dataset

        source_ns, source_name = dataset_id(self.spec.source)
        source_facets: dict[str, Any] = {
            "dataSource": datasource_dataset.DatasourceDatasetFacet(name=source_ns, uri=source_ns)
        }
        if self.source_columns is not None:
            source_facets["schema"] = _schema({c.name: c.sql_type for c in self.source_columns})
        if self.source_fingerprint:
            source_facets["version"] = dataset_version_dataset.DatasetVersionDatasetFacet(
                datasetVersion=self.source_fingerprint
            )
        input_facets = {"dataQualityAssertions": _assertions(self.source_assertions)} if self.source_assertions else {}
        return InputDataset(namespace=source_ns, name=source_name, facets=source_facets, inputFacets=input_facets)

    def output_dataset(self) -> Any:
        """The published table as an OpenLineage output: its schema, version, checks and (DP) row count."""
        from openlineage.client.event_v2 import OutputDataset
        from openlineage.client.generated import (
            dataset_version_dataset,
            datasource_dataset,
            output_statistics_output_dataset,
        )

        target_ns, target_name = dataset_id(self.spec.target)
        target_facets: dict[str, Any] = {
            "dataSource": datasource_dataset.DatasourceDatasetFacet(name=target_ns, uri=target_ns)
        }
        if self.output_columns is not None:
            target_facets["schema"] = _schema(self.output_columns)
        if self.published_version is not None:
            target_facets["version"] = dataset_version_dataset.DatasetVersionDatasetFacet(
                datasetVersion=str(self.published_version)
            )
        if self.output_assertions:
            target_facets["dataQualityAssertions"] = _assertions(self.output_assertions)
        output_facets: dict[str, Any] = (
            {
                "outputStatistics": output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
                    rowCount=self.output_rows
                )
            }
            if self.output_rows is not None and self.published_version is not None
            else {}
        )
        return OutputDataset(namespace=target_ns, name=target_name, facets=target_facets, outputFacets=output_facets)

    def emit(self, state: str, error: BaseException | None = None) -> None:
        """Send :meth:`event` to the configured client; a failure is logged as a warning, never raised."""
        try:
            client(self.settings).emit(self.event(state, error))
        except Exception as exc:  # noqa: BLE001 - lineage is best effort; the catalog and MLflow hold the record
            log.warning("OpenLineage %s event for %s not emitted: %s", state, self.spec.name, type(exc).__name__)


def _schema(columns: dict[str, str]) -> Any:
    from openlineage.client.generated import schema_dataset

    return schema_dataset.SchemaDatasetFacet(
        fields=[
            schema_dataset.SchemaDatasetFacetFields(name=n, type=t, ordinal_position=i + 1)
            for i, (n, t) in enumerate(columns.items())
        ]
    )


def _assertions(items: list[dict[str, Any]]) -> Any:
    from openlineage.client.generated import data_quality_assertions_dataset as dq

    return dq.DataQualityAssertionsDatasetFacet(
        assertions=[dq.Assertion(assertion=a["assertion"], success=a["success"], column=a.get("column")) for a in items]
    )


def client(settings: Settings) -> Any:
    """The OpenLineage client: HTTP when an endpoint is configured, else a JSON-lines file under home."""
    from openlineage.client import OpenLineageClient

    if settings.openlineage_url:
        from openlineage.client.transport.http import ApiKeyTokenProvider, HttpConfig, HttpTransport

        if settings.openlineage_api_key:
            auth = ApiKeyTokenProvider({"api_key": settings.openlineage_api_key})
            config = HttpConfig(url=settings.openlineage_url, auth=auth)
        else:
            config = HttpConfig(url=settings.openlineage_url)
        return OpenLineageClient(transport=HttpTransport(config))
    from openlineage.client.transport.file import FileConfig, FileTransport

    path = settings.lineage_file
    path.parent.mkdir(parents=True, exist_ok=True)
    return OpenLineageClient(transport=FileTransport(FileConfig(log_file_path=str(path.resolve()), append=True)))


@contextmanager
def run_events(
    spec: TableSpec, run_id: str, settings: Settings, flow_run_id: str | None = None
) -> Iterator[RunLineage]:
    """Emit START now, then COMPLETE when the block ends or FAIL (with the error's type) when it raises."""
    lineage = RunLineage(spec, run_id, settings, flow_run_id=_uuid_or_none(flow_run_id))
    lineage.emit("START")
    try:
        yield lineage
    except BaseException as exc:
        lineage.emit("FAIL", exc)
        raise
    lineage.emit("COMPLETE")


def _uuid_or_none(value: str | None) -> str | None:
    try:
        return str(uuid.UUID(value)) if value else None
    except ValueError:
        return None


def read_events(settings: Settings) -> list[dict[str, Any]]:
    """The events in the file transport's log (for the audit and tests)."""
    import json

    path = settings.lineage_file
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
