"""The verdict artifact (a table of the gates, the MLflow link) and MLflow-safe metric names."""

from __future__ import annotations

import re

from synthgate.gates import GateVerdict
from synthgate.tasks.artifacts import artifact_key, verdict_artifact, verdict_markdown
from synthgate.tracking import artifact_name, metric_name

VERDICTS = [GateVerdict("quality", True, 0.91, 0.8, ">="), GateVerdict("mia_auc", False, 0.7, 0.6, "<=")]


def test_the_markdown_table_names_every_gate_and_the_run():
    text = verdict_markdown("people", VERDICTS, "http://mlflow/#/runs/1", 0.97)
    assert text.startswith("# people: HELD BACK")
    assert "| mia_auc | 0.7000 | <= 0.6000 | **FAIL** |" in text and "| quality | 0.9100 | >= 0.8000 | pass |" in text
    assert "[MLflow run](http://mlflow/#/runs/1)" in text


def test_outside_a_flow_no_artifact_is_made():
    assert verdict_artifact("people", VERDICTS, "x", 1.0) is None


def test_the_verdict_key_is_slugged_like_every_artifact_key():
    assert artifact_key("people", "verdict") == "synthgate-people-verdict"


def test_metric_names_are_safe_for_mlflow_and_stay_apart():
    assert metric_name("column_shape.age") == "column_shape.age"  # a name MLflow takes is kept as it is
    safe = metric_name("column_shape.prix (€)")
    assert safe.startswith("column_shape.prix ___") and re.fullmatch(r"[A-Za-z0-9_\-. /:]+", safe)
    # two names that differ only in the characters replaced, or past the length cut, were one metric (one dropped)
    assert metric_name("column_shape.a<b") != metric_name("column_shape.a>b")
    assert metric_name("x" * 300 + "1") != metric_name("x" * 300 + "2") and len(metric_name("x" * 300)) == 250
    assert artifact_name("a<b") != artifact_name("a>b")
    for name in ("column_shape.a//b", "column_shape.a/", "a/./b"):  # names MLflow refuses, which lost every metric
        assert "/" not in metric_name(name)


def test_a_local_store_gets_the_command_that_opens_its_ui_not_a_sqlite_link():
    link = "mlflow ui --backend-store-uri sqlite:////srv/mlflow.db  # then open http://127.0.0.1:5000/#/runs/1"
    text = verdict_markdown("people", VERDICTS, link, 0.97)
    assert (
        "MLflow run: run `mlflow ui --backend-store-uri sqlite:////srv/mlflow.db`, then open "
        "http://127.0.0.1:5000/#/runs/1"
    ) in text
    assert "](sqlite" not in text
    assert "| mia_auc | 0.7000 | <= 0.6000 | **FAIL** | Membership guessing |" in text
