"""Budget first and honest recurring spend, end to end on real PostgreSQL, MLflow and Prefect."""

from __future__ import annotations

import time

import pandas as pd
import pytest
import yaml

from synthgate.errors import PrivacyBudgetError
from synthgate.flows.parameters import RefreshParameters
from synthgate.flows.refresh import refresh_table
from synthgate.warehouse import governance
from tests.flows.test_refresh_flow import GATES, governed, write_spec

pytestmark = pytest.mark.integration

OPEN_GATES = GATES | {
    "max_inference_risk": 1.0,
    "max_singling_out_risk": 1.0,
    "max_linkability_risk": 1.0,
    "max_mia_auc": 1.0,
    "min_nndr_ratio": 0.0,
    "max_dcr_share": 1.0,
    "min_quality": 0.0,
    "min_column_shapes": 0.0,
    "min_column_pair_trends": 0.0,
    "min_tstr_auc": 0.0,
    "max_utility_gap": 1.0,
}


def test_a_refresh_refused_by_the_cap_never_connects_to_the_source(prefect_harness, workdir, pg_engine, pg_schema):
    # The source is a SQLite file that does not exist yet: connecting to it would create it.
    source = workdir / "source.db"
    spec = write_spec(workdir, pg_schema, privacy={"epsilon": 4.0, "delta": 1e-5, "cap": 5.0})
    data = yaml.safe_load(spec.read_text())
    data["source"] = {"url": f"sqlite:///{source}", "table": "people"}
    spec.write_text(yaml.safe_dump(data))
    engine = governed(pg_engine, pg_schema)
    governance.open_spend(engine, governance.LedgerEntry("earlier", "people", "people", 4.0, 1e-5, "earlier", "test"))

    began = time.perf_counter()
    with pytest.raises(PrivacyBudgetError, match="refused before reading the source: epsilon spent 4 \\+ asked 4"):
        refresh_table(str(spec))
    assert time.perf_counter() - began < 15
    assert not source.exists()
    assert [r["run_id"] for r in governance.ledger_rows(engine)] == ["earlier"]  # the refused run reserved nothing


def test_an_unchanged_source_is_resampled_for_free_and_a_changed_one_trains(
    prefect_harness, workdir, pg_engine, pg_schema, people
):
    people.to_sql("people", pg_engine, schema=pg_schema, index=False)
    spec = str(
        write_spec(
            workdir,
            pg_schema,
            training={"epochs": 2, "seed": 1},
            privacy={"epsilon": 4.0, "delta": 1e-5, "cap": 20.0},
            gates=OPEN_GATES,  # about spending: four refreshes must publish whatever the fresh noise does to the scores
        )
    )
    engine = governed(pg_engine, pg_schema)

    first = refresh_table(spec)
    suites = {p: p.read_bytes() for p in (workdir / "expectations").glob("people.*.json")}  # created by the first run
    second = refresh_table(spec)
    assert first["epsilon_spent"] > 3.9 and first["resampled_from"] is None
    assert second["epsilon_spent"] == 0.0 and second["resampled_from"] == first["mlflow_run_id"]
    assert (
        second["epsilon_guarantee"] == first["epsilon_guarantee"] and second["model_version"] == first["model_version"]
    )
    assert second["published_version"] == 2
    with pg_engine.connect() as conn:  # new rows from the same model, not a copy of the previous version
        v1, v2 = (pd.read_sql_table(f"people_synthetic__v{n}", conn, schema=pg_schema) for n in (1, 2))
    assert len(v1) == len(v2) and not v1.equals(v2)

    pd.concat([people.tail(1).assign(customer_id=10**9)]).to_sql(
        "people", pg_engine, schema=pg_schema, index=False, if_exists="append"
    )
    third = refresh_table(spec)
    forced = refresh_table(RefreshParameters(spec_path=spec, retrain=True, rows=1400), trigger="test")
    assert third["epsilon_spent"] > 3.9 and third["resampled_from"] is None
    # Suites are reviewed files: later runs (another source snapshot, another row count) validate against them and
    # never rewrite them; the synthetic one holds no run's row count.
    assert len(suites) == 2 and {p: p.read_bytes() for p in suites} == suites
    assert forced["rows_published"] == 1400 and b"row_count_to_equal" not in b"".join(suites.values())
    assert forced["epsilon_spent"] > 3.9 and forced["model_version"] != third["model_version"]

    ledger = governance.ledger_rows(engine)
    assert [(r["status"], r["epsilon_spent"] > 0) for r in ledger] == [
        ("published", True),
        ("published", False),
        ("published", True),
        ("published", True),
    ]
    catalog = governance.catalog_rows(engine)
    assert [r["resampled_from"] for r in catalog] == [None, first["mlflow_run_id"], None, None]
    assert len({r["source_fingerprint"] for r in catalog}) == 2
    spent = first["epsilon_spent"] + third["epsilon_spent"] + forced["epsilon_spent"]
    assert governance.budget_summary(engine, "people", 100.0)["epsilon_spent"] == pytest.approx(spent, abs=1e-3)
