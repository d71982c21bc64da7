"""Smoke test of benchmarks/real_tables.py without training: the generated tables hold issue 15's shapes, and the
independent evaluation sees a broken column, lost categories and added NULLs (a few seconds, no database)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from benchmarks.real_tables import Split, clinic, credit, independent


def test_generated_tables_hold_the_issue_shapes() -> None:
    t = clinic()
    f = t.frame
    assert len(f) == 21_000 and 9_000 <= f["caseid"].nunique() <= 11_000 and f["caseid"].value_counts().max() <= 4
    assert 0.37 <= f["bmi"].between(19.6, 20.4).mean() <= 0.43 and f["bmi"].min() >= 18 and f["bmi"].max() <= 119
    assert 0.57 <= (f["lab_value"] == 999).mean() <= 0.63
    assert 0.91 <= (f["er_visits"] == 0).mean() <= 0.95
    assert (
        0.83 <= f["followup_score"].isna().mean() <= 0.87 and 0.47 <= f["months_since_last_visit"].isna().mean() <= 0.53
    )
    assert f["state"].nunique() == 50 and f["insured"].notna().all()
    assert (f["site"].value_counts().drop("Main Campus") >= 1_000).all() and f["site"].nunique() == 6
    assert (f["charge_units"] > 135).sum() == 150 and f["charge_units"].max() <= 1000
    assert (f["amount"].round(2) == f["amount"]).all()
    assert t.declared == {"charge_units": {"min": 0, "max": 1000}}
    c = credit()
    assert c.frame.shape == (10_000, 55)
    assert (c.frame["chargeoffs_12m"] == 0).mean() > 0.97 and c.frame["months_since_last_record"].isna().mean() > 0.8


def test_independent_evaluation_sees_broken_columns() -> None:
    t = clinic(n=1_600)
    kinds = {
        "caseid": "categorical",
        "age": "integer",
        "state": "categorical",
        "insured": "boolean",
        "bmi": "float",
        "charge_units": "float",
        "readmitted": "boolean",
    }  # a few columns: seconds, not minutes
    train, holdout = t.frame.iloc[:1_200].reset_index(drop=True), t.frame.iloc[1_200:].reset_index(drop=True)
    split = Split(train, holdout, kinds, len(t.frame))
    broken = train.copy()
    broken["bmi"] = 20.0  # pattern (a): every row at the spike
    broken["state"] = np.where(broken["state"].isin(["CA", "TX"]), broken["state"], "_RARE_")  # pattern (e)
    broken["insured"] = pd.Series(broken["insured"], dtype="boolean").mask(np.arange(len(broken)) % 10 == 0)
    row = independent(t, split, broken)
    assert row["columns_below_floor"]["bmi"] < 0.8 and row["worst_column"]["shape"] < 0.8
    assert "caseid" not in row["columns_below_floor"]  # identifiers are left out
    checks = row["checks"]
    assert checks["rare_share"]["state"] > 0.5 and checks["categories_lost"]["state"]["lost"] >= 20
    assert checks["nulls_introduced"] == {"insured": 0.1}
    assert checks["bounds"]["charge_units"]["synthetic_max"] > 135
    assert 0.0 <= row["dcr_share"] <= 1.0 and 0.5 <= row["trtr_auc"] <= 1.0
