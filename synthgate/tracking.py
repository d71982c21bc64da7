"""MLflow: one experiment per table, a run per refresh, the generator as a registered pyfunc model.

What a person sees in the MLflow UI is decided here:

- the experiment ``synthgate/<table>`` opens on its runs: tag ``mlflow.experimentKind`` = ``custom_model_development``
  (without it MLflow 3 guesses the kind and may open on the GenAI traces view), and every link Synthgate prints
  carries ``?workflowType=machine_learning``, which MLflow 3.17's navigation reads before the tag;
- each run is named after its table, the version it published (or ``rejected``/``failed``) and its trigger:
  ``people v5 (cli)``; its description (``mlflow.note.content``) walks the auditor's chain: published table ->
  source snapshot -> code version -> budget -> gates -> model;
- a model version is registered only for a run whose gates all passed; it carries the table version, epsilon,
  the keyed fingerprint and the verdict as tags, and the same chain as its description.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
import shlex
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import mlflow
import mlflow.pyfunc
import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel, PythonModelContext

from synthgate.errors import SynthgateError, TrackingError

log = logging.getLogger(__name__)

#: The experiment tag MLflow 3's UI reads to choose an experiment's views (its JS: ``mlflow.experimentKind``):
#: ``custom_model_development`` opens on the runs table, ``genai_development`` on traces; unset, the UI infers one and
#: may open on traces. MLflow 3.17's workflow-based navigation reads the link's ``workflowType`` first (UI_QUERY).
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"
#: The description MLflow shows on a run's, an experiment's or a registered model's page.
NOTE_TAG = "mlflow.note.content"
#: Where ``mlflow ui`` serves by default: the page to open after starting it on a local store.
LOCAL_UI = "http://127.0.0.1:5000"
#: MLflow 3.17's UI shows an experiment in its "GenAI" or its "Model training" navigation after the page's
#: ``workflowType`` parameter, else after the browser's last choice (localStorage ``mlflow.workflowType``, GenAI by
#: default: an experiment then opens on its traces overview). Links carry the parameter so that they open on runs.
UI_QUERY = "?workflowType=machine_learning"


def model_name(spec_name: str) -> str:
    """The registered model of a table spec: ``synthgate-<name>``."""
    return f"synthgate-{spec_name}"


def experiment_name(spec_name: str) -> str:
    """The MLflow experiment of a table spec: ``synthgate/<name>``."""
    return f"synthgate/{spec_name}"


def safe_uri(uri: str) -> str:
    """The tracking URI with any password masked, for messages (:func:`synthgate.spec.redact_url`)."""
    from synthgate.spec import redact_url

    return redact_url(uri)


def _mlflow() -> ModuleType:
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    return mlflow


# --- names and descriptions --------------------------------------------------------------------------------------


def run_name(
    spec_name: str,
    trigger: str | None,
    status: str | None = None,
    version: str | int | None = None,
    resampled: bool = False,
) -> str:
    """``people v5 (cli)`` for a run that published version 5; ``people rejected (schedule)`` for one held back;
    ``people running (cli)`` while it runs."""
    what = {"published": f"v{version}", "rejected": "rejected", "refused": "refused", "failed": "failed"}.get(
        status or "", "running"
    )
    if status == "published" and version is None:
        what = "published"
    how = ", ".join(p for p in (trigger or "", "re-sampled" if resampled else "") if p)
    return f"{spec_name} {what}" + (f" ({how})" if how else "")


def experiment_note(spec_name: str) -> str:
    """The experiment's description: how its runs are named and how to audit a published version from them."""
    return (
        f"Synthetic copies of table spec `{spec_name}`: one run per refresh, named `{spec_name} v<N> (<trigger>)` "
        f"after the version it published (`rejected`, `failed` otherwise).\n\n"
        "**Audit a published version:** open its run. Its description walks the chain published table -> source "
        "snapshot -> code version -> budget -> gates -> model; the tags `synthgate.*` and the metrics "
        "`epsilon_*` and `gate_*` hold the same facts (`epsilon_this_run`: this run's spend after each epoch; "
        "`epsilon_table_total`: the ledger's total on the table), the artifact `report/` the full report. The "
        "registered model "
        f"`{model_name(spec_name)}` holds one version per published model (alias `production`: the model of the "
        "version the table points at)."
    )


def audit_note(tags: dict[str, str], metrics: dict[str, float]) -> str:
    """The run's description: the auditor's chain, from the run's own tags and metrics (aggregates only)."""
    lines = [f"1. Published table: {_published(tags)}"]
    fingerprint = tags.get("synthgate.source_fingerprint")
    lines.append(
        f"2. Source snapshot: table `{tags.get('synthgate.source_table', '?')}`, "
        + (
            f"keyed fingerprint `{fingerprint[:16]}` (tag `synthgate.source_fingerprint`)"
            if fingerprint
            else "not read"
        )
    )
    lines.append(f"3. Code: {code_description(tags)}")
    lines.append(f"4. Budget: {budget_description(metrics, tags)}")
    lines.append(f"5. Gates: {gates_description(metrics)}")
    model, version = tags.get("synthgate.model_name"), tags.get("synthgate.model_version")
    if model and version:
        how = (
            "re-sampled, registered by an earlier run"
            if tags.get("synthgate.resampled_from")
            else "registered by this run"
        )
        lines.append(f"6. Model: `{model}` version {version} ({how}; Models tab)")
    else:
        lines.append("6. Model: none registered (only a run whose gates all pass registers one)")
    lines.append(
        f"\nTrigger `{tags.get('synthgate.trigger', '?')}`; report: artifact `report/`; spec: artifact `spec.yaml`; "
        "column policies: artifact `column_policies.json`."
    )
    return "\n".join(lines)


def _published(tags: dict[str, str]) -> str:
    status = tags.get("synthgate.status", "running")
    if status == "published":
        return (
            f"`{tags.get('synthgate.published_table', '?')}` version {tags.get('synthgate.published_version', '?')} "
            f"(table `{tags.get('synthgate.published_version_table', '?')}`)"
        )
    if status == "rejected":
        return "none: the run was rejected (a gate failed), so nothing was published and no model version registered"
    if status == "refused":
        return "none: the privacy budget refused the run (its epsilon does not fit under the cap, or cannot train)"
    return f"none: the run {status} without publishing"


def code_description(tags: dict[str, str], markdown: bool = True) -> str:
    """The code version: commit and whether the working tree had uncommitted changes (``markdown``: commit as code)."""
    commit = tags.get("synthgate.git_commit")
    if not commit:
        return "not a git checkout (no commit recorded)"
    dirty = tags.get("synthgate.git_dirty")
    state = {"true": "with uncommitted changes (dirty working tree)", "false": "clean working tree"}.get(
        dirty or "", ""
    )
    quote = "`" if markdown else ""
    return f"commit {quote}{commit[:12]}{quote}" + (f", {state}" if state else "")


def budget_description(metrics: dict[str, float], tags: dict[str, str] | None = None) -> str:
    """The run's privacy spend: epsilon of this run, and of the table in all against its cap, from the metrics."""
    spent, total, cap = (
        metrics.get("epsilon_spent"),
        metrics.get("epsilon_table_total"),
        metrics.get("epsilon_table_cap"),
    )
    if spent is None:
        return "nothing spent (the run stopped before training)"
    text = f"epsilon {spent:.4g} spent by this run"
    if (tags or {}).get("synthgate.resampled_from"):
        text += " (re-sampled an earlier model: no new spend)"
    if total is not None:
        text += f"; {total:.4g} spent on this table in all" + (
            f", of its cap {cap:.4g}" if cap is not None else " (no cap)"
        )
    return text


def gates_description(metrics: dict[str, float]) -> str:
    """The gates' outcome from the ``gate_*`` metrics: all passed, or which failed."""
    gates = {k[len("gate_") :]: v for k, v in metrics.items() if k.startswith("gate_")}
    if not gates:
        return "not evaluated"
    failed = sorted(k for k, v in gates.items() if v < 1)
    if not failed:
        return f"all {len(gates)} passed (metrics `gate_*`, artifact `gates.json`)"
    return f"{len(failed)} of {len(gates)} failed: {', '.join(failed)} (metrics `gate_*`, artifact `gates.json`)"


# --- code version ------------------------------------------------------------------------------------------------


def _git(args: list[str], where: Path) -> str | None:
    import subprocess

    try:
        out = subprocess.run(["git", *args], cwd=where, capture_output=True, text=True, timeout=5, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout


def _checkout() -> Path | None:
    """The git checkout this package runs from, or None for an installed package (its folder holds no ``.git``: git
    is never asked about a repository that the site-packages folder happens to sit in)."""
    root = Path(__file__).resolve().parent.parent
    return root if (root / ".git").exists() else None


def git_commit(repo: Path | None = None) -> str | None:
    """The commit of the code that ran, when it runs from a git checkout (None otherwise)."""
    where = repo or _checkout()
    out = _git(["rev-parse", "HEAD"], where) if where else None
    commit = (out or "").strip()
    return commit if len(commit) == 40 else None


def git_dirty(repo: Path | None = None) -> bool | None:
    """Whether tracked files differ from the commit (``git describe --dirty``'s sense); None outside a checkout."""
    where = repo or _checkout()
    out = _git(["status", "--porcelain", "--untracked-files=no"], where) if where else None
    return None if out is None else bool(out.strip())


def code_version_tags(repo: Path | None = None) -> dict[str, str]:
    """The commit and whether the working tree was dirty, as run tags ({} outside a git checkout)."""
    commit = git_commit(repo)
    if commit is None:
        return {}
    tags = {"synthgate.git_commit": commit, "mlflow.source.git.commit": commit}
    dirty = git_dirty(repo)
    if dirty is not None:
        tags["synthgate.git_dirty"] = str(dirty).lower()
    return tags


# --- runs --------------------------------------------------------------------------------------------------------


def _experiment(client: Any, tracking_uri: str, spec_name: str, artifact_root: Path | None) -> str:
    """The table's experiment, created (or fixed) so that the UI opens on its runs."""
    name = experiment_name(spec_name)
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        # A tracking server keeps the artifacts (its own store, readable from the UI and every worker); a local store
        # keeps them under SYNTHGATE_HOME
        local = artifact_root is not None and not is_server(tracking_uri)
        location = (artifact_root / spec_name).resolve().as_uri() if local and artifact_root else None
        return client.create_experiment(
            name,
            artifact_location=location,
            tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND, NOTE_TAG: experiment_note(spec_name)},
        )
    if experiment.tags.get(EXPERIMENT_KIND_TAG) != EXPERIMENT_KIND:  # an experiment an older release created
        client.set_experiment_tag(experiment.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
    if NOTE_TAG not in experiment.tags:
        client.set_experiment_tag(experiment.experiment_id, NOTE_TAG, experiment_note(spec_name))
    return experiment.experiment_id


@contextmanager
def start_run(
    tracking_uri: str, spec_name: str, tags: dict[str, str], artifact_root: Path | None = None
) -> Iterator[Any]:
    """Open an MLflow run, or raise :class:`TrackingError` naming the store when it is unreachable.

    The run is named after the table and ``tags['synthgate.trigger']``, and carries the code version (commit, dirty
    flag). On the way out it is renamed after its outcome (``people v5 (cli)``), its description is set to the
    auditor's chain, and the model version it published is tagged with the table version.
    """
    mlflow = _mlflow()
    tags = code_version_tags() | {"synthgate.spec": spec_name} | tags
    try:
        mlflow.set_tracking_uri(tracking_uri)
        client = mlflow.MlflowClient(tracking_uri)
        experiment_id = _experiment(client, tracking_uri, spec_name, artifact_root)
        run = mlflow.start_run(
            experiment_id=experiment_id, tags=tags, run_name=run_name(spec_name, tags.get("synthgate.trigger"))
        )
    except Exception as exc:  # noqa: BLE001 - any failure to open the store stops the run before the data is used
        raise TrackingError(
            f"MLflow tracking store {safe_uri(tracking_uri)!r} is unreachable ({type(exc).__name__}): nothing was "
            "trained or published. Check MLFLOW_TRACKING_URI"
        ) from None
    try:
        yield run
    except BaseException as exc:
        finish_run(tracking_uri, run.info.run_id, failed=True, error=exc)
        mlflow.end_run(status="FAILED")
        raise
    else:
        finish_run(tracking_uri, run.info.run_id, failed=False)
        mlflow.end_run(status="FINISHED")


def finish_run(tracking_uri: str, run_id: str, failed: bool, error: BaseException | None = None) -> None:
    """Name the run after its outcome, describe it with the auditor's chain, tag the model version it published.

    Never raises: the run's outcome is decided already; a store that fails now leaves the run named ``running``.
    """
    from synthgate.errors import GateFailedError, PrivacyBudgetError

    try:
        client = _mlflow().MlflowClient(tracking_uri)
        run = client.get_run(run_id)
        tags, metrics = dict(run.data.tags), dict(run.data.metrics)
        if "synthgate.status" not in tags:
            tags["synthgate.status"] = (
                "rejected"
                if isinstance(error, GateFailedError)
                else "refused"
                if isinstance(error, PrivacyBudgetError)
                else "failed"
                if failed
                else "finished"
            )
            client.set_tag(run_id, "synthgate.status", tags["synthgate.status"])
        status = tags["synthgate.status"]
        name = run_name(
            tags.get("synthgate.spec", "?"),
            tags.get("synthgate.trigger"),
            status,
            tags.get("synthgate.published_version"),
            bool(tags.get("synthgate.resampled_from")),
        )
        client.set_tag(run_id, "mlflow.runName", name)
        note = audit_note(tags, metrics)
        client.set_tag(run_id, NOTE_TAG, note)
        _tag_model_version(client, tags, note)
    except Exception as exc:  # noqa: BLE001 - naming and describing are a view of what the run recorded
        log.warning("could not name or describe MLflow run %s: %s", run_id, type(exc).__name__)


def _tag_model_version(client: Any, tags: dict[str, str], note: str) -> None:
    """The published table version on the model version that produced it (a re-sampled model gathers several)."""
    name, version = tags.get("synthgate.model_name"), tags.get("synthgate.model_version")
    if not name or not version:
        return
    status = tags.get("synthgate.status")
    if status == "published":
        model = client.get_model_version(name, version)
        earlier = model.tags.get("synthgate.table_version")
        published = tags.get("synthgate.published_version", "?")
        value = published if not earlier or earlier == published else f"{earlier}, {published}"
        client.set_model_version_tag(name, version, "synthgate.table_version", value)
        client.set_model_version_tag(
            name, version, "synthgate.published_table", tags.get("synthgate.published_table", "?")
        )
        if not tags.get("synthgate.resampled_from"):
            client.update_model_version(name, version, description=note)
    elif tags.get("synthgate.model_registered") == "true":  # registered (gates passed), then the publish failed
        client.set_model_version_tag(name, version, "synthgate.verdict", f"gates passed; not published (run {status})")


def log_params(params: dict[str, Any]) -> None:
    """Log params to the active run; dict and list values as JSON."""
    _mlflow().log_params({k: (json.dumps(v) if isinstance(v, (dict, list)) else v) for k, v in params.items()})


def log_metrics(metrics: dict[str, float], step: int | None = None) -> None:
    """Log metrics (as floats) to the active run, at ``step`` when given."""
    _mlflow().log_metrics({k: float(v) for k, v in metrics.items()}, step=step)


def set_tags(tags: dict[str, str]) -> None:
    """Set tags on the active run."""
    _mlflow().set_tags(tags)


def active_run_facts() -> dict[str, Any]:
    """Tags and start time (UTC) of the active run (empty outside one)."""
    from datetime import UTC, datetime

    active = _mlflow().active_run()
    if active is None:
        return {"tags": {}, "started_at": None}
    run = _mlflow().MlflowClient().get_run(active.info.run_id)
    started = datetime.fromtimestamp(run.info.start_time / 1000, UTC) if run.info.start_time else None
    return {"tags": dict(run.data.tags), "started_at": started}


def log_dict(data: dict[str, Any], artifact_file: str) -> None:
    """Log ``data`` as a JSON or YAML artifact of the active run (after ``artifact_file``'s extension)."""
    _mlflow().log_dict(data, artifact_file)


def log_artifact(path: Path, artifact_path: str | None = None) -> None:
    """Log a local file or folder as an artifact of the active run, under ``artifact_path`` when given."""
    _mlflow().log_artifact(str(path), artifact_path)


def redacted_spec(spec: Any) -> dict[str, Any]:
    """The spec as logged to MLflow: every URL through :func:`synthgate.spec.redact_url` (the one redaction)."""
    from synthgate.spec import redact_url

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: (redact_url(v) if k == "url" and isinstance(v, str) else walk(v)) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(spec.model_dump(mode="json", by_alias=True, exclude_none=True))


def ledger_metrics(state: dict) -> dict[str, float]:
    """The table's ledger total (this run included) and its cap, beside this run's ``epsilon_spent``."""
    out: dict[str, float] = {}
    if state.get("epsilon_total") is not None:
        out["epsilon_table_total"] = state["epsilon_total"]
        if state.get("cap") is not None:
            out["epsilon_table_cap"] = state["cap"]
            out["epsilon_table_remaining"] = max(state["cap"] - state["epsilon_total"], 0.0)
    return out


def model_version_tags(spec: Any, run_id: str, privacy: Any, run_tags: dict[str, str]) -> dict[str, str]:
    """What a registered model version says about itself (the table version is added once published)."""
    from synthgate.warehouse.engine import qualified

    return {
        "synthgate.table": spec.name,
        "synthgate.published_table": qualified(spec.target),
        "synthgate.run_id": run_id,
        "synthgate.epsilon": f"{privacy.epsilon:.6g}",
        "synthgate.delta": f"{privacy.delta:.3g}",
        "synthgate.accounting": privacy.accounting,
        "synthgate.source_fingerprint": run_tags.get("synthgate.source_fingerprint", ""),
        "synthgate.verdict": "passed",
        "synthgate.git_commit": run_tags.get("synthgate.git_commit", ""),
        "synthgate.git_dirty": run_tags.get("synthgate.git_dirty", ""),
    }


def column_policies(spec: Any, synthesizer: Any) -> dict[str, dict]:
    """The policy each column was handled by, and whether the spec declared it or it was decided from name and type."""
    out = {}
    for column in synthesizer.columns:
        policy = synthesizer.policies.get(column.name)
        declared = column.name in spec.columns and spec.columns[column.name].policy is not None
        out[column.name] = (policy.model_dump(exclude_none=True) if policy is not None else {"policy": "keep"}) | {
            "decided_by": "spec" if declared else "name and SQL type",
            "sql_type": column.sql_type,
        }
    return out


# --- what a refresh logs ----------------------------------------------------------------------------------------


def run_tags(spec: Any, trigger: str, flow_run_id: str, deployment: str) -> dict[str, str]:
    """The tags a refresh's run starts with: the table, its trigger, the orchestrator's run and the code's commit."""
    tags = {
        "synthgate.spec": spec.name,
        "synthgate.source_table": spec.source.table,
        "synthgate.trigger": trigger,
        "prefect.flow_run_id": flow_run_id,
        "prefect.deployment": deployment,
    }
    if commit := git_commit():
        tags |= {"synthgate.git_commit": commit, "mlflow.source.git.commit": commit}
    return tags


def tag_published(published: Any) -> None:
    """Tag the active run with the version just published, if the tracking server takes it: the version is live and
    recorded in the catalog, events and ledger, so a server down at this moment leaves the tags out (logged) rather
    than failing a run that published."""
    try:
        set_tags(published_tags(published))
    except Exception as exc:  # noqa: BLE001 - any way the tracking server fails; the publish stands
        log.warning("the MLflow run was not tagged with its published version (%s)", type(exc).__name__)


def published_tags(published: Any) -> dict[str, str]:
    """The tags of a run whose table version was published."""
    return {
        "synthgate.status": "published",
        "synthgate.published_table": published.name,
        "synthgate.published_version": str(published.version),
        "synthgate.published_version_table": published.version_table,
    }


def metric_name(name: str) -> str:
    """An MLflow-safe metric name (column names may hold any character): a name that had to change ends in a hash of
    itself, so two that differ only in the characters replaced (``a<b``, ``a>b``) or past the length cut stay two."""
    return _safe(name, re.sub(r"[^A-Za-z0-9_\-. :]", "_", name), 250)  # no "/": MLflow refuses "a//b", "a/./b"


def _safe(name: str, cleaned: str, limit: int) -> str:
    if cleaned == name and len(name) <= limit:
        return name
    tag = "_" + hashlib.sha256(name.encode()).hexdigest()[:8]  # of the column's name: structure, not data
    return cleaned[: limit - len(tag)] + tag


def refresh_params(outcome: Any) -> dict[str, Any]:
    """A refresh's MLflow params: the spec's settings and the DP-SGD plan; URLs redacted, never a value or a count."""
    spec, privacy = outcome.spec, outcome.privacy
    summary = outcome.synthesizer.summary
    plan = summary.plan if summary is not None else None
    return (
        {
            "source_url": spec.source.display_url,
            "source_table": spec.source.table,
            "target_url": spec.target.display_url,
            "target_table": spec.target.table,
            "epsilon_budget": spec.privacy.epsilon,
            "delta": spec.privacy.delta,
            "target_column": spec.target_column or "",
            "max_grad_norm": spec.training.max_grad_norm,
            "seed": spec.training.seed,  # weight initialisation and sampling only: never DP noise
            "privacy_unit": spec.privacy.unit or "row",  # what epsilon protects: a unit with all its rows, or a row
            "gates": spec.gates.model_dump(),
        }
        | ({"resampled_from_run": privacy.resampled_from} if privacy.resampled_from else {})
        | ({"dp_sgd_engine": privacy.engine} if privacy.engine else {})
        | (
            plan_params(plan)
            # the spec's, or the default for its width (with the dependency screen's share on a wide table)
            | {"preprocessing_share": round(plan.preprocessing_share, 4)}
            | {"marginal_columns": len(summary.marginal_columns) if summary else 0}  # heads that learn a marginal
            | ({"max_rows_per_unit": privacy.max_rows_per_unit} if privacy.unit else {})
            if plan is not None
            else {}
        )
        | {  # a linked refresh: each child table's model has a plan of its own
            f"{metric_name(c.spec.target.table)}.{k}": v
            for c in outcome.children
            for k, v in plan_params(c.synthesizer.summary.plan).items()
        }
    )


def plan_params(plan: Any) -> dict[str, Any]:
    """A DP-SGD plan (:class:`synthgate.generator.TrainingPlan`) as MLflow params."""
    return {
        "epochs": plan.epochs,
        "expected_batch_size": plan.expected_batch_size,
        "noise_multiplier": round(plan.noise_multiplier, 5),
        "sample_rate": round(plan.sample_rate, 6),
        "steps": plan.steps,
    }


def refresh_metrics(outcome: Any, state: dict[str, Any]) -> dict[str, float]:
    """A refresh's headline MLflow metrics: scores, epsilon, the ledger, the gates and the stages' seconds."""
    privacy = outcome.privacy
    return (
        outcome.scores.as_metrics()
        | {"epsilon_spent": privacy.spent, "epsilon_guarantee": privacy.epsilon}
        | ledger_metrics(state)
        | {"gates_passed": float(outcome.passed)}
        | {f"gate_{v.name}": float(v.passed) for v in outcome.verdicts}
        | stage_metrics(outcome.stage_seconds)
    )


def stage_metrics(stage_seconds: dict[str, float]) -> dict[str, float]:
    """Each stage's wall time as a ``seconds_<stage>`` metric."""
    return {f"seconds_{k}": v for k, v in stage_seconds.items()}


def log_refresh(outcome: Any, state: dict[str, Any]) -> None:
    """Log a refresh's params, headline metrics, verdicts, GX results, redacted spec and column policies to the active
    run (its per-column and per-pair scores: :func:`log_details`)."""
    from dataclasses import asdict

    log_params(refresh_params(outcome))
    log_metrics(refresh_metrics(outcome, state))
    log_dict({"verdicts": [asdict(v) for v in outcome.verdicts]}, "gates.json")
    log_dict(outcome.source_check.result, "gx/source_validation.json")
    log_dict(outcome.synthetic_check.result, "gx/synthetic_validation.json")
    log_dict(redacted_spec(outcome.spec), "spec.yaml")
    log_dict(column_policies(outcome.spec, outcome.synthesizer), "column_policies.json")


def log_details(outcome: Any) -> None:
    """A refresh's per-column and per-pair scores and attack details (its child tables' too, named
    ``<table>.<metric>``), as run metrics that no logged model carries.

    Logged after the model: MLflow copies every metric a run has onto a model logged in it, one query each (13,000
    pair scores of a 500-column table took 40 s); and with the client's ``log_batch``, which links them to no model
    (``mlflow.log_metrics`` would link them to the run's model), so the model's page keeps the headline figures.
    They are diagnostics: a failure to log them is a warning, not a failed run (the model is registered by then)."""
    mlflow = _mlflow()
    from mlflow.entities import Metric

    details = {metric_name(k): v for k, v in outcome.evaluation.detail_metrics().items()}
    for child in outcome.children:
        table = child.spec.target.table
        details |= {metric_name(f"{table}.{k}"): v for k, v in child.evaluation.detail_metrics().items()}
    now = int(time.time() * 1000)
    try:
        mlflow.MlflowClient().log_batch(
            outcome.run_id, metrics=[Metric(k, float(v), now, 0) for k, v in details.items()]
        )
    except Exception as exc:  # noqa: BLE001 - diagnostics: the run, its scores and its model are logged
        log.warning(
            "the run's %d per-column and per-pair metrics were not logged: %s", len(details), type(exc).__name__
        )


def log_report(report_path: Path, plots: dict[str, bytes], artifact_path: str = "report") -> None:
    """The HTML report and its plots (PNG) as the run's artifacts, under ``artifact_path``."""
    import tempfile

    log_artifact(report_path, artifact_path)
    with tempfile.TemporaryDirectory() as tmp:
        for name, png in plots.items():
            image = Path(tmp) / f"{artifact_name(name)}.png"
            image.write_bytes(png)
            log_artifact(image, f"{artifact_path}/plots")


def artifact_name(name: str) -> str:
    """A file or folder name for an artifact from a table or column name (which may hold any character)."""
    return _safe(name, re.sub(r"[^A-Za-z0-9_.-]", "_", name), 200)


def child_folder(table: str) -> str:
    """Where a linked refresh's child table ``table`` has its artifacts in the run: ``children/<table>``."""
    return f"children/{artifact_name(table)}"


def log_child(child: Any) -> None:
    """A linked refresh's child table (a :class:`synthgate.outcome.RefreshResult`): its scores and its relations with
    the parent as metrics named ``<table>.<metric>`` (``orders.relations.children_tvd``), its suites' results and
    column policies under ``children/<table>/`` (its gates are among the parent's, named ``<table>.<gate>``)."""
    table = child.spec.target.table
    prefix = metric_name(table) + "."
    relations = child.relations.as_metrics() if child.relations is not None else {}
    log_metrics({prefix + k: v for k, v in (child.scores.as_metrics() | relations).items()})  # details: log_details
    folder = child_folder(table)
    log_dict(child.source_check.result, f"{folder}/gx/source_validation.json")
    log_dict(child.synthetic_check.result, f"{folder}/gx/synthetic_validation.json")
    log_dict(column_policies(child.spec, child.synthesizer), f"{folder}/column_policies.json")


@contextmanager
def explained_log_failures(tracking_uri: str, report_path: Path) -> Iterator[None]:
    """Turn a failure to write the report or reach MLflow into a Synthgate error: the run then stops unpublished."""
    from synthgate.errors import OutputError
    from synthgate.spec import redact_url

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


# --- the model ---------------------------------------------------------------------------------------------------


class SynthesizerPyfunc(PythonModel):
    """The generator as an MLflow model: input a frame with ``rows`` (and optionally ``seed``), get rows back."""

    def load_context(self, context: PythonModelContext) -> None:
        """Load the generator from the model's ``generator`` artifact (a linked one: parent and child models)."""
        from synthgate.generator import DPSynthesizer
        from synthgate.generator.linked import LinkedSynthesizer

        folder = Path(context.artifacts["generator"])
        self.synthesizer = (LinkedSynthesizer if (folder / "linked.json").is_file() else DPSynthesizer).load(folder)

    def predict(
        self, context: PythonModelContext, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        """Sample ``rows`` synthetic rows (the input's first row), seeded by its ``seed`` when given. A linked model
        samples ``rows`` parents with their children and returns the parents, or with ``params`` ``{"table": T}`` the
        rows of child table ``T`` (``"children"``: the first child table)."""
        rows, seed = sampling_request(model_input)
        from synthgate.generator.linked import LinkedSynthesizer

        if not isinstance(self.synthesizer, LinkedSynthesizer):
            return self.synthesizer.sample(rows, seed=seed)
        parents, children = self.synthesizer.sample(rows, seed=seed)
        names = [child.name for child in self.synthesizer.children]
        table = (params or {}).get("table", "parents")
        if table in names:  # a child table's own name first: one called "parents" or "children" stays reachable
            return children[names.index(table)]
        if table in ("parents", "children"):
            return parents if table == "parents" else children[0]
        raise ValueError(f"params table {table!r} is none of this model's tables: parents, {', '.join(names)}")


#: The most rows one request may ask for (as a spec's ``rows``).
MAX_REQUEST_ROWS = 100_000_000


def sampling_request(model_input: pd.DataFrame) -> tuple[int, int | None]:
    """(rows, seed) of a request to the model: one row, ``rows`` from 1 to :data:`MAX_REQUEST_ROWS` and an optional
    ``seed`` from 0 to 2**63 - 1; anything else is one :class:`ValueError` naming the field (the scoring server answers
    it as a 400). The model samples unconditioned rows: it takes no column values."""
    extra = sorted(set(model_input.columns) - {"rows", "seed"})
    if extra:
        raise ValueError(
            f"the request takes `rows` and `seed` only, not {extra}: this model samples rows unconditioned"
        )
    if len(model_input) != 1:
        raise ValueError(f"the request is one row (`rows`, `seed`), not {len(model_input)}")
    rows = _whole_number(model_input, "rows", 1, MAX_REQUEST_ROWS) if "rows" in model_input else None
    if rows is None:
        raise ValueError("the request's `rows` is missing: how many synthetic rows to sample")
    seed = _whole_number(model_input, "seed", 0, 2**63 - 1) if "seed" in model_input else None
    return rows, seed


def _whole_number(request: pd.DataFrame, field: str, low: int, high: int) -> int | None:
    value = request[field].iloc[0]
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, (bool, np.bool_)):
        whole, number = False, 0
    elif isinstance(value, (int, np.integer)):  # exact: 2**63 - 1 is no float
        whole, number = True, int(value)
    else:
        whole = isinstance(value, (float, np.floating)) and float(value).is_integer()
        number = int(value) if whole else 0
    if not whole or not low <= number <= high:
        raise ValueError(f"the request's `{field}` must be a whole number from {low:,} to {high:,}")
    return number


def _model_requirements() -> list[str]:
    """The model environment's packages, pinned to this installation's versions (``synthgate`` itself is installed
    from this project: it is not on PyPI, and a pin fails plainly where an unpinned name could install anything)."""
    from importlib.metadata import PackageNotFoundError, version

    pinned = []
    for name in ("synthgate", "torch", "opacus", "pandas", "numpy", "scipy"):
        try:
            pinned.append(f"{name}=={version(name).split('+')[0]}")  # no local label (2.13.0+cpu is on no index)
        except PackageNotFoundError:
            pinned.append(name)
    return pinned


def log_generator(
    generator_dir: Path, spec_name: str, sample: pd.DataFrame, register: bool = True, tags: dict[str, str] | None = None
) -> str | None:
    """Log the generator as a pyfunc model; register it (with ``tags`` on the version) only when ``register``.

    Returns the registered version (None when not registered). A run whose gates failed logs its model for
    inspection but registers nothing: registered versions are the models that may be published.
    """
    mlflow = _mlflow()
    from mlflow.models import infer_signature
    from mlflow.types import ColSpec, Schema

    request = pd.DataFrame({"rows": [10], "seed": [0]})
    linked = (generator_dir / "linked.json").is_file()  # parents by default; {"table": "children"} for the children
    signature = infer_signature(request, sample.head(10), params={"table": "parents"} if linked else None)
    signature.inputs = Schema([ColSpec("long", "rows"), ColSpec("long", "seed", required=False)])
    if isinstance(signature.outputs, Schema):  # a column NULL in any synthetic row is optional, not in ten only
        nulls = sample.isna().any()
        signature.outputs = Schema(
            [
                ColSpec(c.type, c.name, required=not bool(nulls.get(c.name, False))) if isinstance(c, ColSpec) else c
                for c in signature.outputs.inputs
            ]
        )
    name = model_name(spec_name)
    info = mlflow.pyfunc.log_model(
        name="generator",
        python_model=SynthesizerPyfunc(),
        artifacts={"generator": str(generator_dir)},
        signature=signature,
        input_example=request,  # a request, not a row: how to ask the model for synthetic rows
        pip_requirements=_model_requirements(),
        registered_model_name=name if register else None,
    )
    if not register or info.registered_model_version is None:
        return None
    version = str(info.registered_model_version)
    client = mlflow.MlflowClient()
    for key, value in (tags or {}).items():
        client.set_model_version_tag(name, version, key, value)
    model = client.get_registered_model(name)
    if not model.description:
        client.update_registered_model(
            name,
            description=f"DP generators of table spec `{spec_name}`, one version per model whose gates passed. "
            "Alias `production`: the model of the version the published table points at. Each version's tags name "
            "the table version it produced (`synthgate.table_version`), its epsilon, source fingerprint and run.",
        )
    return version


def record_model(
    spec: Any,
    run_id: str,
    synthesizer: Any,
    sample: pd.DataFrame,
    privacy: Any,
    run_tags: dict[str, str],
    *,
    register: bool,
    model_version: str | None = None,
) -> str | None:
    """Log this run's generator, registered (with its tags) only when ``register`` (every gate passed), and tag the
    run with the model version it publishes. A re-sampling run (``privacy.resampled_from``) logs no model: it
    returns ``model_version``, the earlier run's registered version it re-sampled."""
    import tempfile

    name = model_name(spec.name)
    if privacy.resampled_from is not None:
        set_tags(
            {"synthgate.resampled_from": privacy.resampled_from}
            | ({"synthgate.model_name": name, "synthgate.model_version": model_version} if model_version else {})
        )
        return model_version
    with tempfile.TemporaryDirectory() as tmp:
        generator_dir = synthesizer.save(Path(tmp) / "generator")
        version = log_generator(
            generator_dir,
            spec.name,
            sample,
            register=register,
            tags=model_version_tags(spec, run_id, privacy, run_tags),
        )
    if version is not None:
        set_tags(
            {"synthgate.model_name": name, "synthgate.model_version": version, "synthgate.model_registered": "true"}
        )
    return version


def load_generator(tracking_uri: str, name: str, version: str) -> Any:
    """The :class:`DPSynthesizer` of a registered model version (DP-trained weights and DP releases only)."""
    import tempfile

    from synthgate.generator import DPSynthesizer

    try:
        with tempfile.TemporaryDirectory() as tmp:
            local = _mlflow().artifacts.download_artifacts(
                artifact_uri=f"models:/{name}/{version}", dst_path=tmp, tracking_uri=tracking_uri
            )
            return DPSynthesizer.load(Path(local) / "artifacts" / "generator")
    except Exception as exc:  # noqa: BLE001 - a missing or unreadable model version
        raise TrackingError(
            f"cannot load model {name} version {version} from {safe_uri(tracking_uri)} ({type(exc).__name__}): "
            "refresh with --retrain to train a new one"
        ) from None


def set_production_alias(name: str, version: str) -> None:
    """Move the registered model's ``production`` alias to the version just published (only then)."""
    try:
        _mlflow().MlflowClient().set_registered_model_alias(name, "production", version)
    except Exception as exc:  # noqa: BLE001 - the table is published; a stale alias is reported, not fatal
        log.warning("could not move alias 'production' of %s to version %s: %s", name, version, type(exc).__name__)


def check_registry(tracking_uri: str) -> None:
    """Raise :class:`TrackingError` when the model registry cannot be read (before a rollback moves anything)."""
    try:
        _mlflow().MlflowClient(tracking_uri).search_registered_models(max_results=1)
    except Exception as exc:  # noqa: BLE001
        raise TrackingError(
            f"MLflow tracking store {safe_uri(tracking_uri)!r} is unreachable ({type(exc).__name__}): nothing was "
            "rolled back, since the production alias must move with the table. Check MLFLOW_TRACKING_URI"
        ) from None


def move_production_alias(tracking_uri: str, name: str, version: str | None, note: str) -> dict[str, str | None]:
    """Point ``production`` at ``version``, or remove it when ``version`` is None or not in the registry (the table's
    version then has no registered model to name), and record ``note`` on the registered model (tag
    ``synthgate.last_rollback``). Returns the version the alias named before and names now."""
    client = _mlflow().MlflowClient(tracking_uri)
    try:
        model = client.get_registered_model(name)
    except Exception:  # noqa: BLE001 - no such model: no alias to move
        model = None
    previous = None if model is None else (model.aliases or {}).get("production")
    if version is not None and model is not None:
        try:
            client.get_model_version(name, version)
        except Exception:  # noqa: BLE001 - deleted from the registry since
            version = None
    elif model is None:
        version = None
    try:
        if version is not None:
            client.set_registered_model_alias(name, "production", version)
        elif previous is not None:
            client.delete_registered_model_alias(name, "production")
        if model is not None:
            client.set_registered_model_tag(name, "synthgate.last_rollback", note)
    except Exception as exc:  # noqa: BLE001
        raise TrackingError(
            f"could not move alias 'production' of {name} to version {version} in {safe_uri(tracking_uri)} "
            f"({type(exc).__name__})"
        ) from None
    return {"previous": None if previous is None else str(previous), "now": version}


# --- reading back ------------------------------------------------------------------------------------------------


def run_summary(tracking_uri: str, run_id: str) -> dict[str, Any] | None:
    """Name, tags, budget metrics, status and experiment of a run for the audit; None when unavailable."""
    try:
        run = mlflow.MlflowClient(tracking_uri).get_run(run_id)
    except Exception:  # noqa: BLE001 - the audit reports what it can reach
        return None
    return {
        "experiment_id": run.info.experiment_id,
        "name": run.info.run_name,
        "status": run.info.status,
        "tags": {
            k: v for k, v in run.data.tags.items() if k.startswith(("synthgate.", "prefect.", "mlflow.source.git"))
        },
        "metrics": {k: v for k, v in run.data.metrics.items() if k.startswith(("epsilon_", "gate"))},
        "link": run_url(tracking_uri, run_id, run.info.experiment_id),
    }


def model_aliases(tracking_uri: str, name: str) -> dict[str, str]:
    """Alias -> version of a registered model ({} when unavailable)."""
    try:
        model = mlflow.MlflowClient(tracking_uri).get_registered_model(name)
    except Exception:  # noqa: BLE001
        return {}
    return {alias: str(version) for alias, version in (model.aliases or {}).items()}


def is_server(tracking_uri: str) -> bool:
    """Whether the tracking URI is an MLflow server (HTTP or HTTPS) rather than a local store."""
    return tracking_uri.startswith(("http://", "https://"))


def _absolute_store(tracking_uri: str) -> str:
    """A local store's URI with an absolute path (``mlflow ui`` may be started from anywhere)."""
    if tracking_uri.startswith("sqlite:///") and not tracking_uri.startswith("sqlite:////"):
        return "sqlite:///" + str(Path(tracking_uri[len("sqlite:///") :]).resolve())
    if "://" not in tracking_uri:  # a plain folder: a file store
        return Path(tracking_uri).resolve().as_uri()
    return tracking_uri


@dataclass(frozen=True)
class RunLink:
    """How a person opens a run: ``url`` in a browser, after running ``command`` when the store is not a server."""

    url: str
    command: str | None = None

    @property
    def text(self) -> str:
        """One line: the URL, or the shell command with the page to open as a comment (pasteable as is)."""
        return self.url if self.command is None else f"{self.command}  # then open {self.url}"

    @classmethod
    def from_text(cls, text: str) -> RunLink:
        """The link back from its :attr:`text`."""
        command, sep, url = text.partition("  # then open ")
        return cls(url, command) if sep else cls(text)

    def markdown(self, label: str) -> str:
        """The link in Markdown: ``[label](url)``, or the command to run first and then the URL."""
        if self.command is None:
            return f"[{label}]({self.url})"
        return f"{label}: run `{self.command}`, then open {self.url}"


def run_link(tracking_uri: str, run_id: str, experiment_id: str | None = None) -> RunLink:
    """The run's page in the MLflow UI: on the tracking server, or, for a local store (``sqlite:///``, a folder),
    on the UI that ``mlflow ui --backend-store-uri ...`` starts (a ``sqlite:`` URI is no link a browser opens)."""
    if experiment_id is None:
        try:
            experiment_id = mlflow.MlflowClient(tracking_uri).get_run(run_id).info.experiment_id
        except Exception:  # noqa: BLE001 - MLflow's direct route finds the experiment itself
            experiment_id = None
    page = (f"#/experiments/{experiment_id}/runs/{run_id}" if experiment_id else f"#/runs/{run_id}") + UI_QUERY
    if is_server(tracking_uri):
        return RunLink(f"{safe_uri(tracking_uri).rstrip('/')}/{page}")
    store = safe_uri(_absolute_store(tracking_uri))
    return RunLink(f"{LOCAL_UI}/{page}", f"mlflow ui --backend-store-uri {shlex.quote(store)}")


def run_url(tracking_uri: str, run_id: str, experiment_id: str | None = None) -> str:
    """:meth:`RunLink.text` of :func:`run_link`: a URL on a server, else the command and the page (never raises)."""
    return run_link(tracking_uri, run_id, experiment_id).text


def download_report(tracking_uri: str, run_id: str, destination: Path) -> Path:
    """Copy the HTML report of ``run_id`` from the MLflow store to ``destination``."""
    import shutil
    import tempfile

    client = mlflow.MlflowClient(tracking_uri)
    try:
        files = [a.path for a in client.list_artifacts(run_id, "report") if a.path.endswith(".html")]
    except Exception as exc:  # noqa: BLE001 - unknown run or unreachable store
        raise TrackingError(f"cannot read run {run_id!r} from {safe_uri(tracking_uri)}: {type(exc).__name__}") from None
    if not files:
        raise TrackingError(f"run {run_id!r} has no report artifact (a run that failed before checking has none)")
    with tempfile.TemporaryDirectory() as tmp:
        local = client.download_artifacts(run_id, files[0], tmp)
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(local, destination)
    return destination
