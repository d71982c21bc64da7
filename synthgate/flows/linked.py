"""The refresh of a parent table with its child table (``children:`` in the spec): one budget per parent with all
its children, one linked generator, both tables checked, logged and published together as one version.

:func:`synthgate.flows.refresh.refresh_table` runs it for a spec with children; the stages are those of
:func:`synthgate.flows.refresh.run_refresh`, each table going through the single-table tasks.
"""

# No `from __future__ import annotations`: see synthgate/flows/refresh.py.
from pathlib import Path
from typing import Any

from prefect import get_run_logger, runtime

from synthgate import lineage, tracking
from synthgate.gates import GateVerdict, enforce
from synthgate.keys import fingerprint_key
from synthgate.outcome import RefreshResult, RunPrivacy
from synthgate.report import check_writable
from synthgate.settings import get_settings
from synthgate.spec import TableSpec
from synthgate.tasks.artifacts import publish_summary, summarised
from synthgate.tasks.budget import privacy_spend
from synthgate.tasks.extract import extract_source, record_source
from synthgate.tasks.linked import sample_linked, score_relations, split_linked, train_linked
from synthgate.tasks.publish import publish_table
from synthgate.tasks.score import score_synthetic
from synthgate.tasks.track import log_run
from synthgate.tasks.validate import profile_columns, validate_source, validate_synthetic


def run_linked_refresh(spec: TableSpec, trigger: str) -> dict[str, Any]:
    """The pipeline for a parent and its child table. Always trains: a linked model is not re-sampled (yet)."""
    settings = get_settings()
    tracking_uri = settings.tracking_uri()
    tags = tracking.run_tags(spec, trigger, str(runtime.flow_run.id or ""), str(runtime.deployment.name or ""))
    with (
        tracking.start_run(tracking_uri, spec.name, tags, settings.artifacts_dir) as run,
        lineage.run_events(spec, run.info.run_id, settings, tags["prefect.flow_run_id"]) as events,
    ):
        run_id = run.info.run_id
        reports = settings.reports_dir / spec.name
        result = RefreshResult(spec, run_id, tracking_uri, trigger, reports / f"{run_id}.html")
        child = RefreshResult(
            spec.child_spec(spec.children[0]), run_id, tracking_uri, trigger, reports / f"{run_id}.child.html"
        )
        result.children = [child]
        tables = (result, child)
        check_writable(result.report_path.parent)
        key = fingerprint_key(settings)
        with summarised(result), privacy_spend(spec, run_id, trigger) as spend:
            with result.stage("extract"):
                result.source = extract_source(spec, key)
                child.source = extract_source(child.spec, key)
                split_linked(result, child, key)
            spend.identify(result.fingerprint)
            spend.children[0].identify(child.fingerprint)
            record_source(spec, result.source, events)
            child_events = lineage.RunLineage(child.spec, run_id, settings)
            child_events.source_columns, child_events.source_fingerprint = child.source.columns, child.fingerprint
            events.children = [child_events]
            tracking.log_dict(child.source.fingerprint.as_dict(), f"lineage/{child.spec.name}/source_fingerprint.json")
            with result.stage("validate"):
                for table in tables:
                    _validate(table, settings.expectations_dir)
            assert result.source_check is not None and child.source_check is not None
            events.source_assertions = lineage.assertions_from_gx(result.source_check.result)
            child_events.source_assertions = lineage.assertions_from_gx(child.source_check.result)
            spend.training()
            with result.stage("train"):
                result.linked = train_linked(result, child)
            assert result.linked.summary is not None
            result.privacy = child.privacy = RunPrivacy.trained(result.linked.summary)
            spend.trained(result.privacy.spent, result.privacy.accounting)
            result.synthesizer, child.synthesizer = result.linked.tables()
            with result.stage("sample"):
                result.synthetic, child.synthetic = sample_linked(spec, result.linked)
            with result.stage("check"):
                for table in tables:
                    _check(table, settings.expectations_dir)
                result.relations, relation_verdicts = score_relations(result, child)
                result.verdicts = [*result.verdicts, *_named(child, child.verdicts), *relation_verdicts]
            assert result.synthetic_check is not None
            events.record_checks(
                result.synthetic, result.source.columns, result.synthetic_check.result, result.verdicts
            )
            assert child.synthetic_check is not None
            child_events.record_checks(
                child.synthetic, child.source.columns, child.synthetic_check.result, child.verdicts
            )
            with result.stage("log"), tracking.explained_log_failures(result.tracking_uri, result.report_path):
                result.model_version = child.model_version = log_run(result)
            enforce(result.verdicts)
            with result.stage("publish"):
                result.published = publish_table(result)
            events.published_version, events.output_rows = result.published.version, result.rows
            child_events.published_version, child_events.output_rows = result.published.version, child.rows
            tracking.set_tags(tracking.published_tags(result.published))
        tracking.log_metrics(tracking.stage_metrics(result.stage_seconds))
    assert result.privacy is not None and result.scores is not None and child.scores is not None
    get_run_logger().info(
        "refresh of %s published with %s: epsilon spent %.4f per %s, quality %.3f and %.3f",
        spec.name,
        child.spec.target.table,
        result.privacy.spent,
        spec.privacy.unit,
        result.scores.quality,
        child.scores.quality,
    )
    publish_summary(result.summary("PUBLISHED"))
    return result.as_dict()


def _validate(table: RefreshResult, expectations_dir: Path) -> None:
    """One table's column policies and its source suite."""
    assert table.source is not None
    table.profiles = profile_columns(table.spec, table.source.columns)
    table.source_check = validate_source(
        table.spec, table.source.frame, table.source.columns, table.profiles, expectations_dir
    )


def _check(table: RefreshResult, expectations_dir: Path) -> None:
    """One table's synthetic suite, scores and gates."""
    assert table.source is not None and table.synthetic is not None and table.synthesizer is not None
    table.synthetic_check = validate_synthetic(
        table.spec,
        table.synthetic,
        table.source.columns,
        table.profiles,
        expectations_dir,
        table.synthesizer.unreleased,
        table.synthesizer.repeating_keys,
    )
    table.evaluation, table.verdicts = score_synthetic(table)


def _named(child: RefreshResult, verdicts: list[GateVerdict]) -> list[GateVerdict]:
    """The child's verdicts named after its table (``orders.quality``), beside the parent's own."""
    import dataclasses

    return [dataclasses.replace(v, name=f"{child.spec.target.table}.{v.name}") for v in verdicts]
