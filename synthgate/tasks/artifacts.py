"""Prefect artifacts of a refresh: a markdown summary, a table of the gates, the verdict, and training progress.

Only aggregates reach the Prefect server: the verdict, epsilon and delta, scores, gate thresholds, table names and
the MLflow link. An artifact that cannot be written is logged and never fails the refresh.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import cast
from uuid import UUID

from prefect import get_run_logger
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.context import FlowRunContext, TaskRunContext

from synthgate import tracking
from synthgate.errors import GateFailedError, SynthgateError
from synthgate.gates import GateVerdict
from synthgate.outcome import RefreshResult, RunSummary
from synthgate.report import gate_title
from synthgate.tracking import RunLink


def artifact_key(spec_name: str, kind: str) -> str:
    """Prefect keys allow lowercase letters, digits and dashes: ``synthgate-<table>-<kind>``."""
    slug = re.sub(r"[^a-z0-9-]+", "-", spec_name.lower()).strip("-") or "table"
    return f"synthgate-{slug}-{kind}"


def _fmt(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def summary_markdown(s: RunSummary) -> str:
    """The run summary artifact's markdown: verdict, tables, epsilon, headline scores, gates and any error."""
    lines = [
        f"# Synthgate refresh of `{s.spec_name}`: **{s.verdict}**",
        "",
        "| | |",
        "|---|---|",
        f"| source table | `{s.source_table}` |",
        f"| synthetic table | `{s.target_table}`"
        + (f" ({s.rows_published} rows published)" if s.rows_published else " (not published)")
        + " |",
        f"| epsilon spent / budget | {_fmt(s.epsilon_spent)} / {s.epsilon_budget:g}"
        + (f" ({s.accounting})" if s.accounting else "")
        + " |",
        f"| delta | {s.delta:g} |",
        f"| MLflow run | {RunLink.from_text(s.mlflow_link).markdown(s.mlflow_run_id)} |",
    ]
    if s.scores is not None:
        sc = s.scores
        lines += [
            f"| quality (SDMetrics) | {_fmt(sc.quality)} (column shapes {_fmt(sc.column_shapes)}, "
            f"pair trends {_fmt(sc.column_pair_trends)}) |",
            f"| TSTR AUC / TRTR AUC | {_fmt(sc.tstr)} / {_fmt(sc.trtr)} |",
            f"| DCR share | {_fmt(sc.dcr_share)} |",
        ]
    if s.verdicts:
        lines += ["", "## Gates", ""] + [
            f"- {'✅' if v.passed else '❌'} {v.describe()} ({gate_title(v.name)})" for v in s.verdicts
        ]
    if s.error:
        lines += ["", f"**Stopped:** {s.error}"]
    return "\n".join(lines) + "\n"


def gate_rows(verdicts: Iterable[GateVerdict]) -> list[dict[str, object]]:
    """The rows of the gates table artifact: each gate's measure, requirement and verdict."""
    return [
        {
            "gate": v.name,
            "measured": round(v.measured, 4),
            "required": f"{v.comparison} {v.threshold:.4f}",
            "passed": v.passed,
        }
        for v in verdicts
    ]


def verdict_markdown(spec_name: str, verdicts: list[GateVerdict], run_url: str, epsilon: float) -> str:
    """``run_url``: :func:`synthgate.tracking.run_url` (a link on a server, else the ``mlflow ui`` command)."""
    passed = all(v.passed for v in verdicts)
    lines = [
        f"# {spec_name}: {'PASSED' if passed else 'HELD BACK'}",
        "",
        f"epsilon spent {epsilon:.4f} · {RunLink.from_text(run_url).markdown('MLflow run')}",
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
    if TaskRunContext.get() is None and FlowRunContext.get() is None:
        return None
    artifact_id = create_markdown_artifact(
        markdown=verdict_markdown(spec_name, verdicts, run_url, epsilon),
        key=artifact_key(spec_name, "verdict"),
        description="Synthgate gate verdicts",
    )
    return str(artifact_id)


def publish_summary(summary: RunSummary) -> None:
    """The markdown summary and, when the gates were evaluated, a table artifact of them."""
    try:
        create_markdown_artifact(
            summary_markdown(summary),
            key=artifact_key(summary.spec_name, "summary"),
            description=f"Refresh of {summary.spec_name}: {summary.verdict}",
        )
        if summary.verdicts:
            create_table_artifact(
                gate_rows(summary.verdicts),
                key=artifact_key(summary.spec_name, "gates"),
                description=f"Gates of the refresh of {summary.spec_name}",
            )
    except Exception as exc:  # noqa: BLE001 - artifacts are a view; the refresh's outcome does not depend on them
        get_run_logger().warning("could not write the summary artifacts: %s", type(exc).__name__)


@contextmanager
def summarised(result: RefreshResult) -> Iterator[None]:
    """Publish the summary of a run that stops inside the block: ``REJECTED`` for a failed gate (the MLflow run is
    tagged so), else ``FAILED`` with a Synthgate error's one line or another error's type only. The error goes on."""
    try:
        yield
    except GateFailedError as exc:
        tracking.set_tags({"synthgate.status": "rejected"})
        publish_summary(result.summary("REJECTED", error=str(exc)))
        raise
    except BaseException as exc:
        error = str(exc) if isinstance(exc, SynthgateError) else type(exc).__name__
        publish_summary(result.summary("FAILED", error=error))
        raise


class TrainingProgress:
    """A progress artifact (0-100 %) updated after every epoch of DP-SGD."""

    def __init__(self, spec_name: str) -> None:
        self.spec_name = spec_name
        self.artifact_id: UUID | None = None
        try:
            # a UUID: training runs in a sync task, where Prefect's async_dispatch calls the sync implementation
            self.artifact_id = cast(
                UUID,
                create_progress_artifact(
                    0.0,
                    key=artifact_key(spec_name, "training"),
                    description=f"DP-SGD training of {spec_name}: starting",
                ),
            )
        except Exception as exc:  # noqa: BLE001 - see publish_summary
            get_run_logger().warning("could not create the progress artifact: %s", type(exc).__name__)

    def update(self, epoch: int, epochs: int, epsilon: float) -> None:
        """Set the artifact to ``epoch`` of ``epochs`` and the epsilon spent so far (a no-op when it was not
        created)."""
        if self.artifact_id is None:
            return
        percent = round(100.0 * epoch / max(epochs, 1), 1)
        try:
            update_progress_artifact(
                self.artifact_id,
                percent,
                description=f"DP-SGD training of {self.spec_name}: epoch {epoch}/{epochs}, epsilon spent {epsilon:.3f}",
            )
        except Exception as exc:  # noqa: BLE001 - see publish_summary
            get_run_logger().warning("could not update the progress artifact: %s", type(exc).__name__)
