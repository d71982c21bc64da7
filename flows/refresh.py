"""The refresh flow: extract, validate, train under DP, sample, check, log, publish.

Run it with ``synthgate refresh SPEC.yaml`` or as a Prefect deployment.
"""

# No `from __future__ import annotations`: the flows travel by value to Dask workers (cloudpickle), and their
# parameter annotations must be objects there, not names to resolve.
import logging
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, runtime
from prefect.context import FlowRunContext
from prefect.states import Failed, State

from flows import quiet
from flows.parameters import RefreshParameters, Trigger, apply_overrides
from synthgate import lineage, tracking
from synthgate.deployments import run_trigger
from synthgate.errors import GateFailedError, OutputError, PrivacyBudgetError, SynthgateError, TrackingError
from synthgate.gates import GateVerdict, Scores, enforce
from synthgate.keys import fingerprint_key
from synthgate.mlflow_dataset import log_source_dataset
from synthgate.outcome import RunPrivacy
from synthgate.settings import get_settings
from synthgate.spec import TableSpec, load_spec, redact_url
from synthgate.warehouse import governance
from synthgate.warehouse.extract import Extract
from synthgate.warehouse.publish import Published
from tasks.artifacts import RunSummary, publish_summary
from tasks.budget import preflight, reserve_budget
from tasks.check import check_synthetic_suite, score_synthetic
from tasks.extract import extract_holdout, extract_source
from tasks.log import log_run
from tasks.publish import publish_table
from tasks.reuse import load_generator, reusable_model
from tasks.train import sample_rows, train_generator
from tasks.validate import check_source, profile_columns

quiet.install()


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

    A run that does not publish ends in a named failed state whose message is the error's one line: ``Rejected``
    (a gate failed), ``Refused`` (the privacy budget), ``Failed`` (anything else). Called from Python, the flow
    raises that error.

    Args:
        request: Which table spec to refresh, optional epsilon and row-count overrides for this run, and whether
            to retrain when the source is unchanged. Plain-Python callers may pass just the spec path.
        trigger: What started the run (cli, refresh-all, ...), recorded in the catalog and the ledger; default
            SYNTHGATE_TRIGGER. A deployment run records who created it instead (schedule, ui, api, automation).
    """
    try:
        spec = apply_overrides(load_spec(request.spec_path), request)
        return run_refresh(spec, resolve_trigger(trigger), retrain=request.retrain)
    except TimeoutError:
        raise  # Prefect's own timeout handling
    except Exception as exc:  # noqa: BLE001 - every way out becomes a state
        return ended(exc)


def ended(exc: Exception) -> State:
    """The final state of a run that raised ``exc``: named after what happened, its message one line, the error as
    its data (in memory: raised again to a Python caller, never written to result storage, since Prefect pickles
    the exception of a flow that raises). A Synthgate error is logged as that line, without a traceback."""
    if isinstance(exc, SynthgateError):
        name = "Rejected" if isinstance(exc, GateFailedError) else "Refused" if isinstance(exc, PrivacyBudgetError) else "Failed"
        message = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip()) or type(exc).__name__
        get_run_logger().log(logging.WARNING if name == "Rejected" else logging.ERROR, "%s: %s", name.lower(), message)
    else:  # a bug: the state names its type only (a library's message may quote a value); the log has its traceback
        name, message = "Failed", f"unexpected {type(exc).__name__}"
        get_run_logger().error("failed: %s", message, exc_info=exc)
        quiet.mark_logged(exc)
    return Failed(name=name, message=message, data=exc)


def resolve_trigger(given: str | None) -> str:
    """What the catalog and ledger record as the run's trigger: who created a deployment run (the server knows it;
    a trigger parameter cannot override it), else the caller's ``trigger``, else ``SYNTHGATE_TRIGGER``."""
    started_by = deployment_trigger()
    if started_by is None:
        return given or get_settings().trigger
    if given and given != started_by:
        get_run_logger().info("trigger %r not recorded: this deployment run was started by %s", given, started_by)
    return started_by


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
    """Who started this flow run, when it is a deployment's own run (not a subflow, not a direct call): from what the
    server recorded (:func:`synthgate.deployments.run_trigger`). None outside one."""
    context = FlowRunContext.get()
    flow_run = context.flow_run if context else None
    if flow_run is None or flow_run.deployment_id is None:
        return None
    first_message = None
    if not flow_run.auto_scheduled:
        try:
            from prefect import get_client

            with get_client(sync_client=True) as client:
                states = client.read_flow_run_states(flow_run.id)
            first_message = min(states, key=lambda s: s.timestamp).message if states else None
        except Exception:  # noqa: BLE001 - unknown: a run created through the API
            first_message = None
    created_by = flow_run.created_by.type if flow_run.created_by else None
    return run_trigger(flow_run.auto_scheduled, created_by, first_message)


@dataclass
class RefreshResult:
    """What a refresh got to: filled stage by stage, summarised on every way out (aggregates only)."""

    spec: TableSpec
    run_id: str
    tracking_uri: str
    privacy: RunPrivacy | None = None
    rows: int | None = None
    scores: Scores | None = None
    verdicts: list[GateVerdict] = field(default_factory=list)
    model_version: str | None = None
    published: Published | None = None
    report_path: Path | None = None
    stage_seconds: dict[str, float] = field(default_factory=dict)

    def summary(self, verdict: str, error: str | None = None) -> RunSummary:
        """The Prefect summary artifact's content."""
        try:
            link = tracking.run_url(self.tracking_uri, self.run_id)
        except Exception:  # noqa: BLE001 - a link is a convenience
            link = f"{self.tracking_uri}#run={self.run_id}"
        return RunSummary(
            spec_name=self.spec.name,
            verdict=verdict,
            source_table=self.spec.source.table,
            target_table=self.spec.target.table,
            epsilon_budget=self.spec.privacy.epsilon,
            delta=self.spec.privacy.delta,
            mlflow_run_id=self.run_id,
            mlflow_link=link,
            epsilon_spent=None if self.privacy is None else self.privacy.spent,
            accounting=None if self.privacy is None else self.privacy.accounting,
            rows_published=self.rows if self.published is not None else None,
            scores=self.scores,
            verdicts=tuple(self.verdicts),
            error=error,
        )

    def as_dict(self) -> dict[str, Any]:
        """The CLI's and the flow's return value."""
        assert self.published is not None and self.privacy is not None and self.scores is not None
        scores = self.scores
        return {
            "status": "published",
            "source_table": self.spec.source.table,
            "published_table": self.published.name,
            "published_version": self.published.version,
            "rows_published": self.rows,
            "epsilon_spent": round(self.privacy.spent, 4),
            "epsilon_guarantee": round(self.privacy.epsilon, 4),
            "epsilon_budget": self.spec.privacy.epsilon,
            "delta": self.privacy.delta,
            "accounting": self.privacy.accounting,
            "resampled_from": self.privacy.resampled_from,
            "quality_score": round(scores.quality, 4),
            "column_shapes": round(scores.column_shapes, 4),
            "column_pair_trends": round(scores.column_pair_trends, 4),
            "tstr_auc": None if scores.tstr is None else round(scores.tstr, 4),
            "trtr_auc": None if scores.trtr is None else round(scores.trtr, 4),
            "dcr_share": round(scores.dcr_share, 4),
            "mia_auc": round(scores.mia_auc, 4),
            "risks": {k: round(getattr(scores, f"{k}_risk"), 4) for k in ("singling_out", "linkability", "inference")},
            "gates": {v.name: v.passed for v in self.verdicts},
            "mlflow_run_id": self.run_id,
            "mlflow_tracking_uri": self.tracking_uri,
            "model_version": self.model_version,
            "report": str(self.report_path.resolve()) if self.report_path else None,
            "stage_seconds": self.stage_seconds,
        }


def run_refresh(spec: TableSpec, trigger: str, *, retrain: bool = False) -> dict[str, Any]:
    """The pipeline. Budget first: the ledger reserves the spend (or refuses it) before a source row is read."""
    settings = get_settings()
    clock = StageClock()
    tracking_uri = settings.tracking_uri()
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
        result = RefreshResult(spec, run.info.run_id, tracking_uri, stage_seconds=clock.seconds)
        check_writable(settings.reports_dir / spec.name)  # before the data is touched: a report must be possible
        key = fingerprint_key(settings)
        entry = governance.LedgerEntry(
            result.run_id, spec.name, spec.source.table, spec.privacy.epsilon, spec.privacy.delta, result.run_id, trigger
        )
        cap = settings.budget_cap(spec.privacy.cap)
        try:
            preflight(spec, cap)
            with reserve_budget(spec, entry, cap) as spend:
                _pipeline(spec, result, spend, events, clock, key=key, trigger=trigger, retrain=retrain)
        except GateFailedError as exc:
            tracking.set_tags({"synthgate.status": "rejected"})
            publish_summary(result.summary("REJECTED", error=str(exc)))
            raise
        except BaseException as exc:
            publish_summary(result.summary("FAILED", error=str(exc) if isinstance(exc, SynthgateError) else type(exc).__name__))
            raise
        tracking.log_metrics({f"seconds_{k}": v for k, v in clock.seconds.items()})
    get_run_logger().info(
        "refresh of %s published: epsilon spent %.4f (guarantee %.4f), quality %.3f",
        spec.name, result.privacy.spent, result.privacy.epsilon, result.scores.quality,
    )
    publish_summary(result.summary("PUBLISHED"))
    return result.as_dict()


def _pipeline(
    spec: TableSpec,
    result: RefreshResult,
    spend: governance.Spend,
    events: lineage.RunLineage,
    clock: StageClock,
    *,
    key: bytes,
    trigger: str,
    retrain: bool,
) -> None:
    """Extract, validate, train (or re-sample), sample, check, log, publish: one task call each."""
    settings = get_settings()
    with clock.stage("extract"):
        source = extract_source(spec, key)
        train, holdout = extract_holdout(spec, source, key)
    spend.identify(source.fingerprint.digest)
    record_source(spec, source, events)
    with clock.stage("validate"):
        profiles = profile_columns(spec, source.columns)
        source_outcome = check_source(spec, source.frame, source.columns, profiles, settings.expectations_dir)
    events.source_assertions = lineage.assertions_from_gx(source_outcome.result)
    reuse = reusable_model(spec, source.fingerprint.digest, retrain)
    if reuse is not None:
        spend.reused()
        synthesizer = load_generator(result.tracking_uri, reuse)
        result.privacy, result.model_version = RunPrivacy.resampled(reuse), reuse["model_version"]
    else:
        spend.training()
        with clock.stage("train"):
            synthesizer = train_generator(spec, train, source.columns, profiles)
        assert synthesizer.summary is not None
        result.privacy = RunPrivacy.trained(synthesizer.summary)
        spend.trained(result.privacy.spent, result.privacy.accounting)
    with clock.stage("sample"):  # a re-sampled model draws new rows: its seed also depends on this run
        synthetic = sample_rows(spec, synthesizer, None if reuse is None else resampling_seed(spec, result.run_id))
    result.rows = len(synthetic)
    with clock.stage("check"):
        synthetic_outcome = check_synthetic_suite(spec, synthetic, source.columns, profiles, settings.expectations_dir)
        evaluation, result.verdicts = score_synthetic(spec, train, holdout, synthetic, synthesizer, synthetic_outcome.failed)
    result.scores = evaluation.scores
    events.record_checks(synthetic, source.columns, synthetic_outcome.result, result.verdicts)
    result.report_path = settings.reports_dir / spec.name / f"{result.run_id}.html"
    with clock.stage("log"), explained_log_failures(result.tracking_uri, result.report_path):
        result.model_version = log_run(
            spec, result.run_id, result.tracking_uri, result.report_path, train, synthetic, synthesizer, evaluation,
            result.verdicts, source_outcome, synthetic_outcome, clock.seconds, result.privacy, result.model_version,
        )
    enforce(result.verdicts)
    with clock.stage("publish"):
        result.published = publish_table(
            spec, result.run_id, synthetic, source.columns, source.fingerprint.digest, result.privacy, result.scores,
            result.verdicts, result.model_version, trigger,
        )
    events.published_version, events.output_rows = result.published.version, len(synthetic)
    tracking.set_tags({
        "synthgate.status": "published", "synthgate.published_table": result.published.name,
        "synthgate.published_version": str(result.published.version),
        "synthgate.published_version_table": result.published.version_table,
    })


def resampling_seed(spec: TableSpec, run_id: str) -> int:
    """The sampling seed of a re-sampling run: ``training.seed`` and the run id (repeatable, no secret involved)."""
    return (spec.training.seed + int(run_id[:8], 16)) % 2**31


def record_source(spec: TableSpec, source: Extract, events: lineage.RunLineage) -> None:
    """The source's lineage: its columns and keyed fingerprint (never a count or an unkeyed hash)."""
    tracking.set_tags({"synthgate.source_fingerprint": source.fingerprint.digest})
    events.source_columns, events.source_fingerprint = source.columns, source.fingerprint.digest
    tracking.log_dict(source.fingerprint.as_dict(), "lineage/source_fingerprint.json")
    log_source_dataset(spec.source, source.fingerprint.digest, source.fingerprint.columns)
