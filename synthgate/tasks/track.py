"""Stage 6: the run into MLflow (params, metrics, report, GX results, the generator) and its verdict artifact.

What is logged is decided in the core (:func:`synthgate.tracking.log_refresh`,
:func:`synthgate.report.refresh_context`); this task only runs it on the orchestrator.
"""

from __future__ import annotations

from prefect import get_run_logger, task

from synthgate import tracking
from synthgate.audit import table_state
from synthgate.outcome import RefreshResult
from synthgate.report import refresh_context, write_report
from synthgate.settings import get_settings
from synthgate.tasks import PRIVATE, withheld
from synthgate.tasks.artifacts import verdict_artifact


@task(name="log-run", **PRIVATE)
@withheld
def log_run(result: RefreshResult) -> str | None:
    """Log the run, its report and its generator; returns the model version to publish.

    A model version is registered only when every gate passed (a rejected run logs its model, registers none, and
    returns None). A re-sampled model (``privacy.resampled_from``) is not registered again: ``result.model_version``
    is returned. A failure to reach the store or write the report is a :class:`~synthgate.errors.TrackingError` or
    :class:`~synthgate.errors.OutputError` naming it (:func:`tracking.explained_log_failures`), here in the task,
    before any other error is withheld (:func:`~synthgate.tasks.withheld`).
    """
    with tracking.explained_log_failures(result.tracking_uri, result.report_path):
        return _logged(result)


def _logged(result: RefreshResult) -> str | None:
    assert result.synthetic is not None and result.synthesizer is not None and result.privacy is not None
    assert result.train is not None
    state = table_state(result.spec, get_settings())
    run = tracking.active_run_facts()
    tracking.log_refresh(result, state)
    context = refresh_context(result, state, run)
    written = write_report(result.report_path, context, result.train, result.synthetic, result.synthesizer)
    tracking.log_report(result.report_path, written.plots)
    for child in result.children:  # a linked refresh: each child's scores, suites and report beside the parent's
        assert child.train is not None and child.synthetic is not None and child.synthesizer is not None
        tracking.log_child(child)
        child_report = write_report(
            child.report_path, refresh_context(child, state, run), child.train, child.synthetic, child.synthesizer
        )
        tracking.log_report(
            child.report_path, child_report.plots, f"{tracking.child_folder(child.spec.target.table)}/report"
        )
    verdict_artifact(result.spec.name, result.verdicts, context.mlflow_link, result.privacy.epsilon)
    model_version = tracking.record_model(
        result.spec,
        result.run_id,
        result.linked or result.synthesizer,
        result.synthetic,
        result.privacy,
        run["tags"],
        register=result.passed,
        model_version=result.model_version,
    )
    tracking.log_details(result)
    get_run_logger().info(
        "logged run %s to %s (%s)",
        result.run_id,
        tracking.safe_uri(result.tracking_uri),
        f"model version {model_version}" if model_version else "no model version registered: a gate failed",
    )
    return model_version
