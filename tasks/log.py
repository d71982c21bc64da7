"""Stage 6: the report, the GX results and the generator into MLflow."""

from __future__ import annotations

import re
import tempfile
from dataclasses import asdict
from pathlib import Path

import pandas as pd
from prefect import get_run_logger, task

from synthgate import tracking
from synthgate.audit import table_state
from synthgate.evaluation.scorecard import Evaluation
from synthgate.gates import GateVerdict
from synthgate.generator import DPSynthesizer
from synthgate.outcome import RunPrivacy
from synthgate.report import ReportContext, gate_title, run_facts, write_report
from synthgate.settings import get_settings
from synthgate.spec import TableSpec
from synthgate.validation import ValidationOutcome
from tasks import PRIVATE


@task(name="log-run", **PRIVATE)
def log_run(
    spec: TableSpec,
    run_id: str,
    tracking_uri: str,
    report_path: Path,
    train: pd.DataFrame,
    synthetic: pd.DataFrame,
    synthesizer: DPSynthesizer,
    evaluation: Evaluation,
    verdicts: list[GateVerdict],
    source_outcome: ValidationOutcome,
    synthetic_outcome: ValidationOutcome,
    stage_seconds: dict[str, float],
    privacy: RunPrivacy,
    model_version: str | None = None,
) -> str | None:
    """Log metrics, report, plots, GX results, the spec and the generator; returns the model version to publish.

    A model version is registered only when every gate passed (a rejected run logs its model, registers none, and
    returns None). A re-sampled model (``privacy.resampled_from``) is not registered again: ``model_version`` is
    returned.
    """
    scores = evaluation.scores
    passed = all(v.passed for v in verdicts)
    run = tracking.active_run_facts()
    state = table_state(spec, get_settings())
    plan = synthesizer.summary.plan if synthesizer.summary is not None else None
    tracking.log_params(
        {
            "source_url": spec.source.display_url,
            "source_table": spec.source.table,
            "target_url": spec.target.display_url,
            "target_table": spec.target.table,
            "epsilon_budget": spec.privacy.epsilon,
            "delta": spec.privacy.delta,
            "preprocessing_share": spec.privacy.preprocessing_share,
            "target_column": spec.target_column or "",
            "max_grad_norm": spec.training.max_grad_norm,
            "seed": spec.training.seed,  # weight initialisation and sampling only: never DP noise
            "gates": spec.gates.model_dump(),
        }
        | ({"resampled_from_run": privacy.resampled_from} if privacy.resampled_from else {})
        | ({"dp_sgd_engine": privacy.engine} if privacy.engine else {})
        | (
            {
                "epochs": plan.epochs,
                "expected_batch_size": plan.expected_batch_size,
                "noise_multiplier": round(plan.noise_multiplier, 5),
                "sample_rate": round(plan.sample_rate, 6),
                "steps": plan.steps,
            }
            if plan is not None
            else {}
        )
    )
    tracking.log_metrics(
        scores.as_metrics()
        | {metric_name(k): v for k, v in evaluation.detail_metrics().items()}
        | {"epsilon_spent": privacy.spent, "epsilon_guarantee": privacy.epsilon}
        | tracking.ledger_metrics(state)
        | {"gates_passed": float(passed)}
        | {f"gate_{v.name}": float(v.passed) for v in verdicts}
        | {f"seconds_{k}": v for k, v in stage_seconds.items()}
    )
    tracking.log_dict({"verdicts": [asdict(v) for v in verdicts]}, "gates.json")
    tracking.log_dict(source_outcome.result, "gx/source_validation.json")
    tracking.log_dict(synthetic_outcome.result, "gx/synthetic_validation.json")
    tracking.log_dict(tracking.redacted_spec(spec), "spec.yaml")
    tracking.log_dict(tracking.column_policies(spec, synthesizer), "column_policies.json")
    context = ReportContext(
        spec_name=spec.name,
        run_id=run_id,
        epsilon=privacy.epsilon,
        delta=privacy.delta,
        accounting=privacy.accounting,
        scores=scores,
        verdicts=verdicts,
        stage_seconds=stage_seconds,
        mlflow_link=tracking.run_url(tracking_uri, run_id),
        evaluation=evaluation,
        keys=tuple(spec.key_columns),
        facts=run_facts(spec, len(synthetic), privacy, state, run),
    )
    written = write_report(report_path, context, train, synthetic, synthesizer)
    tracking.log_artifact(report_path, "report")
    with tempfile.TemporaryDirectory() as tmp:
        for name, png in written.plots.items():
            image = Path(tmp) / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}.png"
            image.write_bytes(png)
            tracking.log_artifact(image, "report/plots")
    verdict_artifact(spec.name, verdicts, context.mlflow_link, privacy.epsilon)
    model_version = tracking.record_model(
        spec, run_id, synthesizer, synthetic, privacy, run["tags"], register=passed, model_version=model_version
    )
    get_run_logger().info(
        "logged run %s to %s (%s)", run_id, tracking.safe_uri(tracking_uri),
        f"model version {model_version}" if model_version else "no model version registered: a gate failed",
    )
    return model_version


def metric_name(name: str) -> str:
    """An MLflow-safe metric name (column names may hold any character)."""
    return re.sub(r"[^A-Za-z0-9_\-. /:]", "_", name)[:250]


def verdict_markdown(spec_name: str, verdicts: list[GateVerdict], run_url: str, epsilon: float) -> str:
    """``run_url``: :func:`synthgate.tracking.run_url` (a link on a server, else the ``mlflow ui`` command)."""
    passed = all(v.passed for v in verdicts)
    lines = [
        f"# {spec_name}: {'PASSED' if passed else 'HELD BACK'}",
        "",
        f"epsilon spent {epsilon:.4f} · {tracking.RunLink.from_text(run_url).markdown('MLflow run')}",
        "",
        "| gate | measured | required | verdict | checks |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {v.name} | {v.measured:.4f} | {v.comparison} {v.threshold:.4f} | {'pass' if v.passed else '**FAIL**'} "
        f"| {gate_title(v.name)} |"
        for v in verdicts
    ]
    return "\n".join(lines) + "\n"


def verdict_artifact(spec_name: str, verdicts: list[GateVerdict], run_url: str, epsilon: float) -> str | None:
    """A Prefect markdown artifact with the verdict table; skipped (None) outside a flow or task run."""
    from prefect.artifacts import create_markdown_artifact
    from prefect.context import FlowRunContext, TaskRunContext

    if TaskRunContext.get() is None and FlowRunContext.get() is None:
        return None
    key = re.sub(r"[^a-z0-9-]", "-", f"synthgate-{spec_name}-verdict".lower())
    artifact_id = create_markdown_artifact(
        markdown=verdict_markdown(spec_name, verdicts, run_url, epsilon), key=key, description="Synthgate gate verdicts"
    )
    return str(artifact_id)
