"""The refresh of a parent table with its child tables (``children:`` in the spec): one budget per parent with all
its children, one linked generator, every table checked, logged and published together as one version.

:func:`synthgate.flows.refresh.refresh_table` runs it for a spec with children; the stages are those of
:func:`synthgate.flows.refresh.run_refresh`, each table going through the single-table tasks.
"""

# No `from __future__ import annotations`: see synthgate/flows/refresh.py.
import dataclasses
from pathlib import Path
from typing import Any

from prefect import get_run_logger

from synthgate import lineage, tracking
from synthgate.flows.run import refresh_run
from synthgate.gates import GateVerdict, enforce
from synthgate.keys import fingerprint_key
from synthgate.outcome import RefreshResult, RunPrivacy
from synthgate.spec import ChildTable, TableSpec
from synthgate.tasks.artifacts import publish_summary, summarised
from synthgate.tasks.budget import Spend, privacy_spend
from synthgate.tasks.extract import extract_source, record_source
from synthgate.tasks.linked import sample_linked, score_relations, split_linked, train_linked
from synthgate.tasks.publish import publish_table
from synthgate.tasks.score import score_synthetic
from synthgate.tasks.track import log_run
from synthgate.tasks.validate import profile_columns, validate_source, validate_synthetic


def run_linked_refresh(spec: TableSpec, trigger: str) -> dict[str, Any]:
    """The pipeline for a parent and its child tables. Always trains: a linked model is not re-sampled (yet)."""
    with refresh_run(spec, trigger) as (result, events, settings):
        run_id = result.run_id
        result.children = [
            RefreshResult(spec.child_spec(link), run_id, result.tracking_uri, trigger, _child_report(result, link))
            for link in spec.children
        ]
        key = fingerprint_key(settings)
        events.children = [lineage.RunLineage(child.spec, run_id, settings) for child in result.children]
        with summarised(result), privacy_spend(spec, run_id, trigger) as spend:
            tables = [(result, events, spend), *zip(result.children, events.children, spend.children, strict=True)]
            with result.stage("extract"):
                for table, _, _ in tables:
                    table.source = extract_source(table.spec, key)
            for table, seen, spent in tables:
                _record_source(table, seen, spent, parent=table is result)
            with result.stage("validate"):
                for table, seen, _ in tables:
                    _validate(table, seen, settings.expectations_dir)
            with result.stage("extract"):  # validated, each source's rows go to train and holdout
                (result.train, result.holdout), splits = split_linked(result, key)
                for child, (train, holdout) in zip(result.children, splits, strict=True):
                    child.train, child.holdout = train, holdout
                for table, _, _ in tables:
                    assert table.source is not None
                    table.source = table.source.without_rows()
            spend.training()
            with result.stage("train"):
                result.linked = train_linked(result)
            _trained(result, spend)
            with result.stage("sample"):
                result.synthetic, synthetic = sample_linked(spec, result.linked)
                for child, rows in zip(result.children, synthetic, strict=True):
                    child.synthetic = rows
            with result.stage("check"):
                for table, seen, _ in tables:
                    _check(table, seen, settings.expectations_dir)
                for child, link in zip(result.children, spec.children, strict=True):
                    child.relations, relation_verdicts = score_relations(result, child, link)
                    result.verdicts = [*result.verdicts, *_named(child, [*child.verdicts, *relation_verdicts])]
            with result.stage("log"):
                result.model_version = log_run(result)
                for child in result.children:
                    child.model_version = result.model_version
            enforce(result.verdicts)
            with result.stage("publish"):
                result.published = publish_table(result)
            for table, seen, _ in tables:
                seen.published_version, seen.output_rows = result.published.version, table.rows
            tracking.tag_published(result.published)
    assert result.privacy is not None and result.scores is not None
    get_run_logger().info(
        "refresh of %s published with %s: epsilon spent %.4f per %s, quality %s",
        spec.name,
        ", ".join(child.spec.target.table for child in result.children),
        result.privacy.spent,
        spec.privacy.unit,
        " and ".join(f"{table.scores.quality:.3f}" for table in (result, *result.children) if table.scores),
    )
    publish_summary(result.summary("PUBLISHED"))
    return result.as_dict()


def _child_report(parent: RefreshResult, link: ChildTable) -> Path:
    """Where a child's report goes: beside the parent's, named for the child's table (``<parent>.<table>.html``)."""
    return parent.report_path.with_suffix(f".{tracking.artifact_name(link.name)}.html")


def _record_source(table: RefreshResult, seen: lineage.RunLineage, spent: Spend, *, parent: bool) -> None:
    """A table's snapshot in its ledger row, its lineage and MLflow (the parent's as a single table's; the child's
    fingerprint under ``lineage/<child spec>/``)."""
    assert table.source is not None
    spent.identify(table.fingerprint)
    if parent:
        record_source(table.spec, table.source, seen)
        return
    seen.source_columns, seen.source_fingerprint = table.source.columns, table.fingerprint
    tracking.log_dict(table.source.fingerprint.as_dict(), f"lineage/{table.spec.name}/source_fingerprint.json")


def _validate(table: RefreshResult, seen: lineage.RunLineage, expectations_dir: Path) -> None:
    """One table's column policies and its source suite."""
    assert table.source is not None
    table.profiles = profile_columns(table.spec, table.source.columns)
    table.source_check = validate_source(
        table.spec, table.source.frame, table.source.columns, table.profiles, expectations_dir
    )
    seen.source_assertions = lineage.assertions_from_gx(table.source_check.result)


def _trained(result: RefreshResult, spend: Spend) -> None:
    """The linked fit's privacy on every table and in the ledger; each table's view of its model."""
    assert result.linked is not None and result.linked.summary is not None
    result.privacy = RunPrivacy.trained(result.linked.summary)
    spend.trained(result.privacy.spent, result.privacy.accounting)
    result.synthesizer, models = result.linked.tables()
    for child, model, fit in zip(result.children, models, result.linked.summary.children, strict=True):
        # the same spend, each table stating its own bound on a unit's rows (the parent's: their sum)
        child.synthesizer = model
        child.privacy = dataclasses.replace(result.privacy, max_rows_per_unit=fit.max_rows_per_unit)


def _check(table: RefreshResult, seen: lineage.RunLineage, expectations_dir: Path) -> None:
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
    seen.record_checks(table.synthetic, table.source.columns, table.synthetic_check.result, table.verdicts)


def _named(child: RefreshResult, verdicts: list[GateVerdict]) -> list[GateVerdict]:
    """The child's verdicts named after its table (``orders.quality``), beside the parent's own."""
    return [dataclasses.replace(v, name=f"{child.spec.target.table}.{v.name}") for v in verdicts]
