"""``synthgate suites``: the reviewed GX suites are compared with the spec and the source's schema, and written anew
only on request (a refresh never rewrites them)."""

from __future__ import annotations

import json

import pandas as pd
import sqlalchemy as sa
import yaml
from typer.testing import CliRunner

from synthgate.cli import app


def test_suites_are_shown_then_written_on_request(workdir):
    source = f"sqlite:///{workdir / 'source.db'}"
    frame = pd.DataFrame({"age": [31, 42], "plan": ["basic", "plus"], "income": [1.5, 2.5]})
    frame.to_sql("people", sa.create_engine(source), index=False)
    spec = workdir / "people.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "name": "people",
                "source": {"url": source, "table": "people"},
                "target": {"url": f"sqlite:///{workdir / 'target.db'}", "table": "people_synthetic"},
                "privacy": {"epsilon": 1.0, "delta": 1e-5},
                "columns": {"income": {"policy": "drop"}},
            }
        )
    )
    runner = CliRunner()

    shown = runner.invoke(app, ["suites", str(spec)])
    assert shown.exit_code == 0, shown.output
    assert shown.output.count("missing (the next refresh creates it)") == 2
    assert not (workdir / "expectations").exists(), "showing wrote a suite"

    written = runner.invoke(app, ["suites", str(spec), "--write"])
    assert written.exit_code == 0, written.output
    synthetic = json.loads((workdir / "expectations" / "people.synthetic.json").read_text())
    assert synthetic["meta"]["column_kinds"] == {"age": "integer", "plan": "categorical"}  # income is dropped
    assert "expect_table_row_count_to_equal" not in [e["type"] for e in synthetic["expectations"]]
    again = runner.invoke(app, ["suites", str(spec)])
    assert again.output.count("matches the schema") == 2
