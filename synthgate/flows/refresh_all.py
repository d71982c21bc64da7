"""The parent flow: refresh every table spec in a folder at once, each table a subflow with its own state.

Tables run in parallel on the flow's task runner: threads of one process by default, or a Dask cluster when
``SYNTHGATE_DASK_ADDRESS`` (an existing scheduler) or ``SYNTHGATE_DASK_WORKERS`` (a local cluster of worker
processes) is set. One table failing never stops the others; the result lists every table's outcome.
"""

# No `from __future__ import annotations`: the flows travel by value to Dask workers (cloudpickle), and their
# parameter annotations must be objects there, not names to resolve.
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from synthgate import tracking
from synthgate.errors import GateFailedError, SpecError, SynthgateError, TrackingError
from synthgate.flows.parameters import RefreshAllParameters, RefreshParameters, Trigger
from synthgate.flows.refresh import deployment_trigger, refresh_table
from synthgate.settings import Settings, get_settings
from synthgate.tasks import PRIVATE, withheld


def build_task_runner(settings: Settings | None = None) -> TaskRunner[Any]:
    """Dask (a scheduler address or a local cluster of processes) when configured, else a thread pool."""
    settings = settings or get_settings()
    if settings.dask_address or settings.dask_workers:
        from prefect_dask import DaskTaskRunner

        if settings.dask_address:
            return DaskTaskRunner(address=settings.dask_address)
        return DaskTaskRunner(
            cluster_class="distributed.LocalCluster",
            cluster_kwargs={
                "n_workers": settings.dask_workers,
                "processes": True,
                "threads_per_worker": 1,
                "dashboard_address": None,
            },
        )
    return ThreadPoolTaskRunner(max_workers=settings.max_parallel_tables)


def _outcome(spec_path: str, state: Any) -> dict[str, Any]:
    """One table's outcome: aggregates, names and the error's type (a SynthgateError's message names no values)."""
    outcome: dict[str, Any] = {
        "table": Path(spec_path).stem,
        "spec_path": spec_path,
        "flow_run_id": str(state.state_details.flow_run_id),
        "state": state.type.value,
    }
    if state.is_completed():
        result = state.result()
        keys = ("status", "published_table", "rows_published", "epsilon_spent", "quality_score", "mlflow_run_id")
        return outcome | {k: result[k] for k in keys}
    error = state.result(raise_on_failure=False)
    status = "rejected" if isinstance(error, GateFailedError) else "failed"
    message = str(error) if isinstance(error, SynthgateError) else state.message or ""
    return outcome | {"status": status, "error_type": type(error).__name__, "error": message}


def _prepare_tracking_store(tracking_uri: str) -> None:
    """Create a database-backed MLflow store's schema once, before the tables' processes race to migrate it."""
    if tracking_uri.startswith(("http://", "https://", "databricks")):
        return
    import mlflow

    try:
        mlflow.MlflowClient(tracking_uri).search_experiments(max_results=1)
    except Exception as exc:  # noqa: BLE001 - the same failure each table would meet, said once
        raise TrackingError(
            f"MLflow tracking store {tracking.safe_uri(tracking_uri)!r} is unreachable ({type(exc).__name__})"
        ) from None


@task(name="refresh-one-table", **PRIVATE)
@withheld
def refresh_one(spec_path: str, trigger: str) -> dict[str, Any]:
    """Run one table's refresh as a subflow; its failure is recorded, not raised."""
    subflow = refresh_table.with_options(flow_run_name=f"refresh-{Path(spec_path).stem}")
    state = subflow(RefreshParameters(spec_path=spec_path), trigger=trigger, return_state=True)
    return _outcome(spec_path, state)


#: The default request: every ``*.yaml`` in the tables folder (a frozen model, shared by every call).
_EVERY_SPEC = RefreshAllParameters()


@flow(
    name="refresh-all",
    log_prints=False,
    validate_parameters=True,
    persist_result=False,
    task_runner=build_task_runner(),
)
def refresh_all(request: RefreshAllParameters = _EVERY_SPEC, trigger: Trigger | None = None) -> list[dict[str, Any]]:
    """Refresh every table spec in a folder in parallel; returns each table's outcome.

    Args:
        request: The folder of table specs (and a glob inside it).
        trigger: What started the run, recorded by every table's refresh (default: refresh-all). A deployment run
            records who created it instead (schedule, ui, api, automation).
    """
    paths = sorted(str(p) for p in Path(request.specs_dir).glob(request.pattern) if p.is_file())
    if not paths:
        raise SpecError(f"no table specs match {request.pattern!r} in {request.specs_dir}")
    logger = get_run_logger()
    _prepare_tracking_store(get_settings().tracking_uri())
    logger.info("refreshing %d tables: %s", len(paths), ", ".join(Path(p).stem for p in paths))
    recorded = deployment_trigger() or trigger or "refresh-all"
    futures = [refresh_one.submit(path, recorded) for path in paths]
    outcomes = [future.result() for future in futures]
    failed = [o["table"] for o in outcomes if o["status"] != "published"]
    logger.info(
        "%d of %d tables published%s",
        len(outcomes) - len(failed),
        len(outcomes),
        f"; not published: {', '.join(failed)}" if failed else "",
    )
    try:
        create_table_artifact(
            [
                {
                    k: o.get(k)
                    for k in ("table", "status", "epsilon_spent", "quality_score", "error_type", "flow_run_id")
                }
                for o in outcomes
            ],
            key="synthgate-refresh-all",
            description=f"{len(outcomes) - len(failed)} of {len(outcomes)} tables published",
        )
    except Exception as exc:  # noqa: BLE001 - the artifact is a view of the result
        logger.warning("could not write the refresh-all artifact: %s", type(exc).__name__)
    return outcomes
