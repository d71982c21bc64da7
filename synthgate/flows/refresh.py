"""The refresh flow: extract, validate, train under DP, sample, check, log, publish.

Run it with ``synthgate refresh SPEC.yaml`` or as a Prefect deployment.
"""

# No `from __future__ import annotations`: the flows travel by value to Dask workers (cloudpickle), and their
# parameter annotations must be objects there, not names to resolve.
import logging
import traceback
from typing import Any

from prefect import flow, get_run_logger
from prefect.context import FlowRunContext
from prefect.states import Failed, State

from synthgate import lineage, tracking
from synthgate.deployments import run_trigger
from synthgate.errors import GateFailedError, PrivacyBudgetError, SynthgateError, one_line
from synthgate.flows import quiet
from synthgate.flows.linked import run_linked_refresh
from synthgate.flows.parameters import RefreshParameters, Trigger, apply_overrides
from synthgate.flows.run import refresh_run
from synthgate.gates import enforce
from synthgate.keys import fingerprint_key
from synthgate.outcome import RefreshResult, RunPrivacy
from synthgate.settings import get_settings
from synthgate.spec import TableSpec, load_spec
from synthgate.tasks.artifacts import publish_summary, summarised
from synthgate.tasks.budget import Spend, privacy_spend
from synthgate.tasks.extract import extract_holdout, extract_source, record_source
from synthgate.tasks.publish import publish_table
from synthgate.tasks.reuse import load_generator, resampling_seed, reusable_model
from synthgate.tasks.score import score_synthetic
from synthgate.tasks.track import log_run
from synthgate.tasks.train import sample_rows, train_generator
from synthgate.tasks.validate import profile_columns, validate_source, validate_synthetic

quiet.install()


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
        if spec.children:  # a parent with its child table: trained and published together
            return run_linked_refresh(spec, resolve_trigger(trigger))
        return run_refresh(spec, resolve_trigger(trigger), retrain=request.retrain)
    except TimeoutError:
        raise  # Prefect's own timeout handling
    except Exception as exc:  # noqa: BLE001 - every way out becomes a state
        # Prefect makes a returned State the run's final state, and a Python caller gets the dict or the error raised:
        # the annotation is the caller's view (Prefect's Flow typing passes it on), which a State is not part of
        return ended(exc)  # type: ignore[return-value]


def ended(exc: Exception) -> State:
    """The final state of a run that raised ``exc``: named after what happened, its message one line, the error as
    its data (in memory: raised again to a Python caller, never written to result storage, since Prefect pickles
    the exception of a flow that raises). A Synthgate error is logged as that line, without a traceback."""
    if isinstance(exc, SynthgateError):
        refused = "Refused" if isinstance(exc, PrivacyBudgetError) else "Failed"
        name = "Rejected" if isinstance(exc, GateFailedError) else refused
        message = one_line(exc)
        get_run_logger().log(logging.WARNING if name == "Rejected" else logging.ERROR, "%s: %s", name.lower(), message)
    else:  # a bug outside a task: the state and the log name its type, never its message (a library's message may
        # quote a value); where it happened at DEBUG (the run's log, without the message; the console stays one line),
        # and its traceback, message included, at DEBUG in this process only
        name, message = "Failed", f"unexpected {type(exc).__name__}"
        get_run_logger().error("failed: %s", message)
        get_run_logger().debug("%s at\n%s", message, "".join(traceback.format_tb(exc.__traceback__)))
        logging.getLogger(__name__).debug("unexpected %s", type(exc).__name__, exc_info=exc)
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


def run_refresh(spec: TableSpec, trigger: str, *, retrain: bool = False) -> dict[str, Any]:
    """The pipeline, one task per stage. The spend opens before a source row is read (or the run is refused) and
    closes on every way out; every way out leaves a summary artifact."""
    with refresh_run(spec, trigger) as (result, events, settings):
        key = fingerprint_key(settings)
        with summarised(result), privacy_spend(spec, result.run_id, trigger) as spend:
            with result.stage("extract"):
                result.source = extract_source(spec, key)
            spend.identify(result.fingerprint)
            record_source(spec, result.source, events)
            with result.stage("validate"):
                result.profiles = profile_columns(spec, result.source.columns)
                result.source_check = validate_source(
                    spec, result.source.frame, result.source.columns, result.profiles, settings.expectations_dir
                )
            events.source_assertions = lineage.assertions_from_gx(result.source_check.result)
            with result.stage("extract"):  # validated, the source's rows go to train and holdout (one copy at a time)
                result.train, result.holdout = extract_holdout(spec, result.source, key)
                result.source = result.source.without_rows()
            seed = _generator(result, spend, retrain)
            assert result.synthesizer is not None  # set by _generator, trained or loaded
            result.keep_evaluation_rows()  # the checks' sample of the real rows, not the whole tables
            with result.stage("sample"):
                result.synthetic = sample_rows(spec, result.synthesizer, seed)
            with result.stage("check"):
                result.synthetic_check = validate_synthetic(
                    spec,
                    result.synthetic,
                    result.source.columns,
                    result.profiles,
                    settings.expectations_dir,
                    result.synthesizer.unreleased,
                    result.synthesizer.repeating_keys,
                )
                result.evaluation, result.verdicts = score_synthetic(result)
            events.record_checks(
                result.synthetic, result.source.columns, result.synthetic_check.result, result.verdicts
            )
            with result.stage("log"):
                result.model_version = log_run(result)
            enforce(result.verdicts)
            with result.stage("publish"):
                result.published = publish_table(result)
            events.published_version, events.output_rows = result.published.version, result.rows
            tracking.tag_published(result.published)
    assert result.privacy is not None and result.scores is not None
    get_run_logger().info(
        "refresh of %s published: epsilon spent %.4f (guarantee %.4f), quality %.3f",
        spec.name,
        result.privacy.spent,
        result.privacy.epsilon,
        result.scores.quality,
    )
    publish_summary(result.summary("PUBLISHED"))
    return result.as_dict()


def _generator(result: RefreshResult, spend: Spend, retrain: bool) -> int | None:
    """Re-sample the published model when the source is unchanged (no spend), else train anew under DP; returns the
    sampling seed (None: the spec's own; a re-sampled model draws new rows with a seed of this run)."""
    spec = result.spec
    reuse = reusable_model(spec, result.fingerprint, retrain)
    if reuse is not None:
        spend.reused()
        result.synthesizer = load_generator(result.tracking_uri, reuse)
        result.privacy, result.model_version = RunPrivacy.resampled(reuse), reuse["model_version"]
        return resampling_seed(spec, result.run_id)
    spend.training()
    assert result.source is not None and result.train is not None
    with result.stage("train"):
        result.synthesizer = train_generator(spec, result.train, result.source.columns, result.profiles)
    assert result.synthesizer.summary is not None
    result.privacy = RunPrivacy.trained(result.synthesizer.summary)
    spend.trained(result.privacy.spent, result.privacy.accounting)
    return None
