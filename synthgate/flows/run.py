"""What every refresh flow opens first: the MLflow run, the OpenLineage run and the result the stages fill in."""

# No `from __future__ import annotations`: see synthgate/flows/refresh.py.
from collections.abc import Iterator
from contextlib import contextmanager

from prefect import runtime

from synthgate import lineage, tracking
from synthgate.outcome import RefreshResult
from synthgate.report import check_writable
from synthgate.settings import Settings, get_settings
from synthgate.spec import TableSpec


@contextmanager
def refresh_run(spec: TableSpec, trigger: str) -> Iterator[tuple[RefreshResult, lineage.RunLineage, Settings]]:
    """(the result, the lineage events, the settings) of a refresh of ``spec``: its MLflow run and OpenLineage run
    open (START now; COMPLETE, or FAIL with the error, when the block ends), its report folder checked writable before
    the data is touched, and the stages' seconds logged when the block ends without an error."""
    settings = get_settings()
    tracking_uri = settings.tracking_uri()
    tags = tracking.run_tags(spec, trigger, str(runtime.flow_run.id or ""), str(runtime.deployment.name or ""))
    with (
        tracking.start_run(tracking_uri, spec.name, tags, settings.artifacts_dir) as run,
        lineage.run_events(spec, run.info.run_id, settings, tags["prefect.flow_run_id"]) as events,
    ):
        run_id = run.info.run_id
        result = RefreshResult(spec, run_id, tracking_uri, trigger, settings.reports_dir / spec.name / f"{run_id}.html")
        check_writable(result.report_path.parent)  # before the data is touched: a report must be possible
        yield result, events, settings
        tracking.log_metrics(tracking.stage_metrics(result.stage_seconds))
