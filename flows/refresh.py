"""The refresh flow: extract, validate, train under DP, sample, check, log, publish.

Run it with ``synthgate refresh SPEC.yaml`` or as a Prefect deployment.
"""

# No `from __future__ import annotations`: the flows travel by value to Dask workers (cloudpickle), and their
# parameter annotations must be objects there, not names to resolve.
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, runtime

from flows.parameters import RefreshParameters, Trigger, apply_overrides
from synthgate import lineage, tracking
from synthgate.errors import GateFailedError, OutputError, SynthgateError, TrackingError
from synthgate.gates import enforce
from synthgate.mlflow_dataset import log_source_dataset
from synthgate.settings import get_settings
from synthgate.spec import TableSpec, load_spec, redact_url
from synthgate.warehouse import governance
from synthgate.warehouse.engine import governed_engine
from tasks.artifacts import RunSummary, publish_summary
from tasks.check import check_synthetic_suite, score_synthetic
from tasks.extract import extract_holdout, extract_source
from tasks.log import log_run
from tasks.publish import publish_table
from tasks.train import sample_rows, train_generator
from tasks.validate import check_source, profile_columns


class StageClock:
    """Wall time of each stage, for the summary and the report."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        began = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = round(time.perf_counter() - began, 2)


@flow(name="refresh-table", log_prints=False, validate_parameters=True, persist_result=False)
def refresh_table(request: RefreshParameters, trigger: Trigger | None = None) -> dict[str, Any]:
    """Refresh the synthetic copy of one table from its spec; returns the run summary (aggregates only).

    Args:
        request: Which table spec to refresh, and optional epsilon and row-count overrides for this run.
            Plain-Python callers may pass just the spec path.
        trigger: What started the run (cli, schedule, deployment, ui, api, refresh-all, ...), recorded in the
            catalog and the ledger; default SYNTHGATE_TRIGGER.
    """
    spec = apply_overrides(load_spec(request.spec_path), request)
    return run_refresh(spec, trigger or deployment_trigger() or get_settings().trigger)


def check_writable(folder: Path) -> None:
    """Create ``folder`` and write a probe file in it, or raise :class:`OutputError` naming the folder and the cause."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-check-") as probe:
            probe.write(b"synthgate")
            probe.flush()
            os.fsync(probe.fileno())
    except OSError as exc:
        raise OutputError(
            f"cannot write reports to {folder}: {exc.strerror or type(exc).__name__}. Check the permissions and free "
            "space of SYNTHGATE_HOME; nothing was read or trained"
        ) from None


@contextmanager
def explained_log_failures(tracking_uri: str, report_path: Path) -> Iterator[None]:
    """Turn a failure to write the report or reach MLflow into a Synthgate error: the run then stops unpublished."""
    try:
        yield
    except SynthgateError:
        raise
    except OSError as exc:
        raise OutputError(
            f"writing the report {report_path} or the run's artifacts failed: {exc.strerror or type(exc).__name__}"
            f"{f' ({exc.filename})' if exc.filename else ''}. Free space or fix permissions under SYNTHGATE_HOME; "
            "nothing was published"
        ) from None
    except Exception as exc:
        if type(exc).__module__.split(".")[0] not in ("mlflow", "requests", "urllib3", "sqlalchemy"):
            raise
        raise TrackingError(
            f"logging the run to the MLflow store {redact_url(tracking_uri)} failed ({type(exc).__name__}): nothing "
            "was published, since every published table must have its audited run. Check MLFLOW_TRACKING_URI"
        ) from None


def deployment_trigger() -> str | None:
    """``schedule`` for a scheduled deployment run, ``ui`` for one started by hand (UI or API); None outside one."""
    if not runtime.deployment.id:
        return None
    try:
        from prefect import get_client

        with get_client(sync_client=True) as client:
            flow_run = client.read_flow_run(runtime.flow_run.id)
    except Exception:  # noqa: BLE001 - unknown: fall back to the setting
        return None
    if flow_run.auto_scheduled:
        return "schedule"
    created_by = flow_run.created_by.type if flow_run.created_by else None
    return "automation" if created_by == "AUTOMATION" else "ui"


def run_refresh(spec: TableSpec, trigger: str) -> dict[str, Any]:
    settings = get_settings()
    logger = get_run_logger()
    clock = StageClock()
    tracking_uri = settings.tracking_uri()
    target_engine = governed_engine(spec.target)
    tags = {
        "synthgate.spec": spec.name,
        "synthgate.source_table": spec.source.table,
        "synthgate.trigger": trigger,
        "prefect.flow_run_id": str(runtime.flow_run.id or ""),
        "prefect.deployment": str(runtime.deployment.name or ""),
    }
    if commit := tracking.git_commit():
        tags |= {"synthgate.git_commit": commit, "mlflow.source.git.commit": commit}
    with (
        tracking.start_run(tracking_uri, spec.name, tags, settings.artifacts_dir) as run,
        lineage.run_events(spec, run.info.run_id, settings, tags["prefect.flow_run_id"]) as events,
    ):
        run_id = run.info.run_id
        check_writable(settings.reports_dir / spec.name)  # before the data is touched: a report must be possible
        with clock.stage("extract"):
            source = extract_source(spec)
            train, holdout = extract_holdout(spec, source)
        tracking.set_tags({"synthgate.source_fingerprint": source.fingerprint.content_hash})
        events.source_columns, events.source_fingerprint = source.columns, source.fingerprint.content_hash
        tracking.log_dict(source.fingerprint.as_dict(), "lineage/source_fingerprint.json")
        log_source_dataset(spec.source, source.fingerprint.content_hash, source.fingerprint.columns)
        with clock.stage("validate"):
            profiles = profile_columns(spec, source.frame, source.columns)
            source_outcome = check_source(spec, source.frame, source.columns, profiles, settings.expectations_dir)
        events.source_assertions = lineage.assertions_from_gx(source_outcome.result)
        entry = governance.LedgerEntry(
            run_id, spec.name, spec.source.table, spec.privacy.epsilon, spec.privacy.delta, run_id, trigger
        )
        governance.open_spend(target_engine, entry, source.fingerprint.content_hash, settings.budget_cap(spec.privacy.cap))
        try:
            with clock.stage("train"):
                synthesizer = train_generator(spec, train, source.columns, profiles)
            summary = synthesizer.summary
            assert summary is not None
            governance.close_spend(target_engine, run_id, "trained", summary.epsilon, summary.accounting)
            with clock.stage("sample"):
                synthetic = sample_rows(spec, synthesizer)
            with clock.stage("check"):
                synthetic_outcome = check_synthetic_suite(spec, synthetic, source.columns, profiles, settings.expectations_dir)
                evaluation, verdicts = score_synthetic(spec, train, holdout, synthetic, synthesizer, synthetic_outcome.failed)
            scores = evaluation.scores
            events.record_checks(synthetic, source.columns, synthetic_outcome.result, verdicts)
            report_path = settings.reports_dir / spec.name / f"{run_id}.html"
            with clock.stage("log"), explained_log_failures(tracking_uri, report_path):
                model_version = log_run(
                    spec, run_id, tracking_uri, report_path, train, synthetic, synthesizer, evaluation, verdicts,
                    source_outcome, synthetic_outcome, clock.seconds,
                )
            enforce(verdicts)
            with clock.stage("publish"):
                published = publish_table(
                    spec, run_id, synthetic, source.columns, source.fingerprint, summary.epsilon, summary.accounting,
                    scores, verdicts, model_version, tracking.model_name(spec.name), trigger,
                )
        except GateFailedError as exc:
            governance.close_spend(target_engine, run_id, "rejected", detail=str(exc))
            tracking.set_tags({"synthgate.status": "rejected"})
            publish_summary(_summary(spec, run_id, tracking_uri, "REJECTED", locals(), error=str(exc)))
            raise
        except BaseException as exc:
            detail = str(exc) if isinstance(exc, SynthgateError) else type(exc).__name__
            governance.close_spend(target_engine, run_id, "failed", detail=detail)
            publish_summary(_summary(spec, run_id, tracking_uri, "FAILED", locals(), error=detail))
            raise
        events.published_version, events.output_rows = published.version, len(synthetic)
        tracking.set_tags({
            "synthgate.status": "published", "synthgate.published_table": published.name,
            "synthgate.published_version": str(published.version), "synthgate.published_version_table": published.version_table,
        })
        tracking.log_metrics({f"seconds_{k}": v for k, v in clock.seconds.items()})
    result = {
        "status": "published",
        "source_table": spec.source.table,
        "published_table": published.name,
        "published_version": published.version,
        "rows_published": len(synthetic),
        "epsilon_spent": round(summary.epsilon, 4),
        "epsilon_budget": spec.privacy.epsilon,
        "delta": spec.privacy.delta,
        "accounting": summary.accounting,
        "quality_score": round(scores.quality, 4),
        "column_shapes": round(scores.column_shapes, 4),
        "column_pair_trends": round(scores.column_pair_trends, 4),
        "tstr_auc": None if scores.tstr is None else round(scores.tstr, 4),
        "trtr_auc": None if scores.trtr is None else round(scores.trtr, 4),
        "dcr_share": round(scores.dcr_share, 4),
        "mia_auc": round(scores.mia_auc, 4),
        "risks": {k: round(getattr(scores, f"{k}_risk"), 4) for k in ("singling_out", "linkability", "inference")},
        "gates": {v.name: v.passed for v in verdicts},
        "mlflow_run_id": run_id,
        "mlflow_tracking_uri": tracking_uri,
        "model_version": model_version,
        "report": str(report_path.resolve()),
        "stage_seconds": clock.seconds,
    }
    logger.info("refresh of %s published: epsilon %.4f, quality %.3f", spec.name, summary.epsilon, scores.quality)
    publish_summary(_summary(spec, run_id, tracking_uri, "PUBLISHED", locals()))
    return result


def _summary(spec: TableSpec, run_id: str, tracking_uri: str, verdict: str, stage: dict[str, Any], error: str | None = None) -> RunSummary:
    """The summary artifact's content from what the run got to (``stage``: the refresh's locals at that point)."""
    fit = stage.get("summary")
    try:
        link = tracking.run_url(tracking_uri, run_id)
    except Exception:  # noqa: BLE001 - a link is a convenience
        link = f"{tracking_uri}#run={run_id}"
    synthetic = stage.get("synthetic") if verdict == "PUBLISHED" else None
    return RunSummary(
        spec_name=spec.name,
        verdict=verdict,
        source_table=spec.source.table,
        target_table=spec.target.table,
        epsilon_budget=spec.privacy.epsilon,
        delta=spec.privacy.delta,
        mlflow_run_id=run_id,
        mlflow_link=link,
        epsilon_spent=None if fit is None else fit.epsilon,
        accounting=None if fit is None else fit.accounting,
        rows_published=None if synthetic is None else len(synthetic),
        scores=stage.get("scores"),
        verdicts=tuple(stage.get("verdicts") or ()),
        error=error,
    )

