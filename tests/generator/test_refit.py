"""The refit reserve: a second release for the columns whose first left the most rows unplaced."""

import numpy as np
import pandas as pd
import pytest

import synthgate.generator.synthesizer as synthesizer
from synthgate.generator import DPSynthesizer
from synthgate.generator.accounting import PrivacyAccountant, zcdp_rho
from synthgate.generator.releases import refit_plan
from synthgate.schema import Column, ColumnKind
from synthgate.spec import PrivacyBudget, Training


def test_the_reserve_goes_to_the_columns_with_unplaced_rows_in_proportion():
    unplaced = {"state": 3000.0, "purpose": 1000.0, "income": 1000.0, "grade": 0.0}
    plan = refit_plan(unplaced, reserve=60.0, fallback=["x"])
    assert plan == pytest.approx({"state": 36.0, "purpose": 12.0, "income": 12.0})
    # a number's second releases replace its first: a share under its first weight is not worth it
    plan = refit_plan(unplaced | {"income": 100.0}, reserve=60.0, fallback=["x"], minimum={"income": 4.0})
    assert plan == pytest.approx({"state": 45.0, "purpose": 15.0})
    # with no column short, the columns of private categories share it: spent all the same
    assert refit_plan({"grade": 0.0}, reserve=60.0, fallback=["grade", "state"]) == {"grade": 30.0, "state": 30.0}
    assert refit_plan({"state": 3000.0}, reserve=0.0, fallback=["state"]) == {}


def _states_table(rows: int = 8000) -> tuple[pd.DataFrame, list[Column]]:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {
            "state": rng.choice([f"s{i:02d}" for i in range(60)], rows),  # about 130 rows each
            "channel": rng.choice(["web", "branch", "phone"], rows),
            **{f"x{i}": rng.normal(50, 10, rows).round(1) for i in range(10)},
        }
    )
    columns = [Column("state", ColumnKind.CATEGORICAL, "TEXT"), Column("channel", ColumnKind.CATEGORICAL, "TEXT")]
    columns += [Column(f"x{i}", ColumnKind.FLOAT, "DOUBLE PRECISION") for i in range(10)]
    return frame, columns


def _preprocess(frame: pd.DataFrame, columns: list[Column]) -> tuple[DPSynthesizer, PrivacyAccountant]:
    synth = DPSynthesizer(columns, {}, PrivacyBudget(epsilon=1.0, delta=1e-5), Training(seed=1), None)
    accountant = PrivacyAccountant(delta=1e-5, delta_selection=2.5e-6)
    synth.preprocess(frame, accountant)
    return synth, accountant


def test_sixty_states_of_130_rows_are_released_again_and_kept(monkeypatch):
    frame, columns = _states_table()
    synth, accountant = _preprocess(frame, columns)
    purposes = [r.purpose for r in accountant.releases]
    # state's categories fell under the first threshold, channel's did not: the reserve goes to state alone
    assert purposes.count("categories:state") == 2 and purposes.count("categories:channel") == 1
    spent = sum(1.0 / (2.0 * r.noise_multiplier**2) for r in accountant.releases)
    assert spent == pytest.approx(synth.preprocessing_share * zcdp_rho(1.0, accountant.delta_composed), rel=1e-9)
    kept = len(synth.codecs[0].categories)
    monkeypatch.setattr(synthesizer, "REFIT_WEIGHT", 0.0)  # no reserve: the same budget on the first releases
    without = len(_preprocess(frame, columns)[0].codecs[0].categories)
    assert kept >= 55 and kept > without + 8, (kept, without)


def test_a_released_codec_is_never_refit_and_the_reserve_is_spent_all_the_same():
    # A linked child gets its parent's codecs as released: the parent's fit left them unplaced rows, but this model
    # releases nothing for them, so the reserve must go to a column of its own (else the spend hangs on the data)
    frame, columns = _states_table()
    parent, _ = _preprocess(frame, columns)
    state = parent.codecs[0]
    state.unplaced = 5000.0
    child = DPSynthesizer(
        columns, {}, PrivacyBudget(epsilon=1.0, delta=1e-5), Training(seed=1), None, released={"state": state}
    )
    accountant = PrivacyAccountant(delta=1e-5, delta_selection=2.5e-6)
    child.preprocess(frame, accountant)
    purposes = [r.purpose for r in accountant.releases]
    assert "categories:state" not in purposes and purposes.count("categories:channel") == 2
    spent = sum(1.0 / (2.0 * r.noise_multiplier**2) for r in accountant.releases)
    assert spent == pytest.approx(child.preprocessing_share * zcdp_rho(1.0, accountant.delta_composed), rel=1e-9)


def test_with_no_column_short_the_columns_of_private_categories_share_the_reserve():
    rng = np.random.default_rng(4)
    frame = pd.DataFrame(
        {
            "channel": rng.choice(["web", "branch", "phone"], 5000),
            "tier": rng.choice(["a", "b"], 5000),
            "x": rng.normal(50, 10, 5000).round(1),
        }
    )
    columns = [
        Column("channel", ColumnKind.CATEGORICAL, "TEXT"),
        Column("tier", ColumnKind.CATEGORICAL, "TEXT"),
        Column("x", ColumnKind.FLOAT, "DOUBLE PRECISION"),
    ]
    synth, accountant = _preprocess(frame, columns)
    purposes = [r.purpose for r in accountant.releases]
    assert purposes.count("categories:channel") == 2 and purposes.count("categories:tier") == 2
    spent = sum(1.0 / (2.0 * r.noise_multiplier**2) for r in accountant.releases)
    assert spent == pytest.approx(synth.preprocessing_share * zcdp_rho(1.0, accountant.delta_composed), rel=1e-9)
