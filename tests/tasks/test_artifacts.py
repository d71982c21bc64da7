"""The run's Prefect artifacts hold aggregates only, under keys Prefect accepts."""

from __future__ import annotations

import re

from synthgate.gates import GateVerdict, Scores
from synthgate.outcome import RunSummary
from synthgate.tasks.artifacts import artifact_key, gate_rows, summary_markdown

SCORES = Scores(
    quality=0.8712,
    column_shapes=0.9,
    column_pair_trends=0.84,
    dcr_share=0.51,
    exact_copies_training=0.0,
    exact_copies_holdout=0.0,
    synthetic_suite_passed=True,
    tstr=0.86,
    trtr=0.9,
)
VERDICTS = (GateVerdict("quality", True, 0.8712, 0.85, ">="), GateVerdict("dcr_share", False, 0.61, 0.55, "<="))


def test_keys_are_slugs():
    assert artifact_key("Adult_Census 2024", "summary") == "synthgate-adult-census-2024-summary"
    assert re.fullmatch(r"[a-z0-9-]+", artifact_key("ÜBER__x", "gates"))


def test_summary_shows_verdict_budget_scores_and_the_mlflow_link():
    text = summary_markdown(
        RunSummary(
            spec_name="adult",
            verdict="REJECTED",
            source_table="adult",
            target_table="adult_synthetic",
            epsilon_budget=1.0,
            delta=1e-5,
            mlflow_run_id="abc123",
            mlflow_link="http://mlflow:5000/#/experiments/1/runs/abc123",
            epsilon_spent=0.9731,
            accounting="prv",
            scores=SCORES,
            verdicts=VERDICTS,
            error="nothing published: dcr_share FAILED",
        )
    )
    assert "**REJECTED**" in text and "0.9731 / 1 (prv)" in text and "(not published)" in text
    assert "[abc123](http://mlflow:5000/#/experiments/1/runs/abc123)" in text
    assert "| quality (SDMetrics) | 0.8712" in text and "| TSTR AUC / TRTR AUC | 0.8600 / 0.9000 |" in text
    assert "❌ dcr_share FAILED: measured 0.6100, required <= 0.5500" in text


def test_gate_table_rows():
    assert gate_rows(VERDICTS) == [
        {"gate": "quality", "measured": 0.8712, "required": ">= 0.8500", "passed": True},
        {"gate": "dcr_share", "measured": 0.61, "required": "<= 0.5500", "passed": False},
    ]


def test_summary_prints_the_ui_command_for_a_local_store_and_names_each_gate_plainly():
    link = "mlflow ui --backend-store-uri sqlite:////srv/mlflow.db  # then open http://127.0.0.1:5000/#/runs/abc123"
    text = summary_markdown(
        RunSummary(
            spec_name="adult",
            verdict="PUBLISHED",
            source_table="adult",
            target_table="adult_synthetic",
            epsilon_budget=1.0,
            delta=1e-5,
            mlflow_run_id="abc123",
            mlflow_link=link,
            verdicts=VERDICTS,
        )
    )
    assert (
        "| MLflow run | abc123: run `mlflow ui --backend-store-uri sqlite:////srv/mlflow.db`, then open "
        "http://127.0.0.1:5000/#/runs/abc123 |"
    ) in text
    assert "(Closeness to training rows)" in text and "](sqlite" not in text
