import numpy as np
import pandas as pd
import pytest

from synthgate.evaluation.privacy import dcr, exact_copy_shares, row_hashes
from synthgate.evaluation.scorecard import evaluation_rows, training_rows_for_evaluation
from synthgate.schema import Column, ColumnKind


def test_copies_of_training_rows_are_caught(thirds, columns):
    train, holdout, _ = thirds
    result = dcr(train=train, holdout=holdout, synthetic=train.sample(400, random_state=0), columns=columns)
    assert result.share_closer_to_training > 0.7  # the comparison uses 500 of the 1000 training rows
    assert result.exact_copies_training == pytest.approx(1.0)  # copies are looked up in all training rows
    assert result.exact_copies_holdout < 0.05 and result.exact_copy_excess > 0.9
    assert result.nndr_ratio < 0.7
    assert result.mia_auc > 0.65  # 40% of the members sit at distance 0


def test_copies_of_every_training_row_are_caught_everywhere(thirds, columns):
    train, holdout, _ = thirds
    result = dcr(
        train=train.iloc[:500],
        holdout=holdout,
        synthetic=train.iloc[:500].sample(frac=1, random_state=0),
        columns=columns,
    )
    assert result.share_closer_to_training > 0.99 and result.exact_copy_excess > 0.95
    assert result.nndr_training < 0.01 and result.nndr_ratio < 0.02
    assert result.mia_auc > 0.99


def test_fresh_rows_from_the_same_distribution_look_like_the_holdout(thirds, columns):
    train, holdout, fresh = thirds
    result = dcr(train=train, holdout=holdout, synthetic=fresh, columns=columns)
    assert 0.4 < result.share_closer_to_training < 0.6
    assert 0.85 < result.nndr_ratio < 1.15
    assert abs(result.exact_copy_excess) < 0.02
    assert 0.4 < result.mia_auc < 0.6


def test_a_shifted_synthetic_table_is_far_from_both(thirds, columns):
    train, holdout, fresh = thirds
    near = dcr(train=train, holdout=holdout, synthetic=fresh, columns=columns)
    far = dcr(train=train, holdout=holdout, synthetic=fresh.assign(income=fresh["income"] * 5), columns=columns)
    assert far.median_dcr_training > 2 * near.median_dcr_training
    assert 0.35 < far.share_closer_to_training < 0.65


def test_the_membership_attack_targets_persons_when_the_table_names_a_unit(thirds, columns):
    # customers of four rows each; one row of 40% of the training customers is copied: a person is exposed by any of
    # their rows, which the per-unit attack sees and the per-row attack dilutes (3 in 4 of their rows look fresh)
    train, holdout, fresh = (frame.assign(customer=frame.index // 4) for frame in thirds)
    leaked = train[train["customer"] % 5 < 2].groupby("customer").head(1)
    synthetic = pd.concat([leaked, fresh.iloc[: 500 - len(leaked)]], ignore_index=True)
    per_row = dcr(train=train, holdout=holdout, synthetic=synthetic, columns=columns)
    per_unit = dcr(train=train, holdout=holdout, synthetic=synthetic, columns=columns, unit="customer")
    assert per_unit.mia_auc > 0.65 and per_unit.mia_auc > per_row.mia_auc + 0.08
    clean = dcr(train=train, holdout=holdout, synthetic=fresh, columns=columns, unit="customer")
    assert 0.35 < clean.mia_auc < 0.65


def test_the_unit_attack_reads_chance_when_units_of_many_sizes_tell_nothing():
    """Members, outsiders and synthetic rows from one distribution, units of 1 to 400 rows, four times as many member
    units as outsiders: a unit's score is its closest row, so the attack must compare units drawn alike (taking the
    first member units in shuffled-row order favoured the large ones, and read 0.58)."""
    import numpy as np

    from synthgate.schema import Column, ColumnKind

    rng = np.random.default_rng(0)

    def table(units: int, prefix: str) -> pd.DataFrame:
        keys = np.repeat([f"{prefix}{i}" for i in range(units)], np.minimum(rng.geometric(1 / 30, units), 400))
        n = len(keys)
        return pd.DataFrame({"unit": keys, "x": rng.normal(0, 1, n), "c": rng.choice(list("abcd"), n)})

    columns = [Column("x", ColumnKind.FLOAT, ""), Column("c", ColumnKind.CATEGORICAL, "")]
    aucs = [
        dcr(
            train=table(2000, "t"), holdout=table(500, "h"), synthetic=table(2000, "s"), columns=columns, unit="unit"
        ).mia_auc
        for _ in range(2)
    ]
    assert abs(np.mean(aucs) - 0.5) < 0.03, aucs


def test_the_checks_keep_a_sample_of_the_training_rows_and_find_copies_among_all(thirds, columns):
    train, holdout, _ = thirds
    sample, hashes = training_rows_for_evaluation(train, columns=columns, unit=None, seed=0)
    assert sample is train  # within the bound: every row
    sample = evaluation_rows(train, unit=None, seed=0, rows=300)
    assert len(sample) == 300 and len(hashes) == len(train)
    assert sample.merge(train).shape[0] == 300  # rows of the training table, drawn without replacement
    left_out = train.merge(sample, how="left", indicator=True).query("_merge == 'left_only'").drop(columns="_merge")
    copies = left_out.head(200)  # copies of training rows the sample does not hold
    found = dcr(train=sample, holdout=holdout, synthetic=copies, columns=columns, train_hashes=hashes)
    assert found.exact_copies_training == pytest.approx(1.0)
    missed = dcr(train=sample, holdout=holdout, synthetic=copies, columns=columns)  # the sample's own rows only
    assert missed.exact_copies_training < 0.05


def test_a_sample_by_unit_keeps_whole_units():
    rng = np.random.default_rng(0)
    sizes = rng.integers(1, 40, 500)
    frame = pd.DataFrame({"customer": np.repeat(np.arange(500), sizes).astype(object), "x": rng.random(sizes.sum())})
    frame.loc[frame.index % 97 == 0, "customer"] = None  # a NULL unit: each row a unit of its own
    sample = evaluation_rows(frame, unit="customer", seed=1, rows=2000)
    assert 1900 < len(sample) <= 2000
    kept = sample["customer"].dropna()
    whole = frame[frame["customer"].isin(set(kept))]
    assert len(whole) == len(kept)  # every row of each unit it holds
    assert kept.nunique() < 500 and sample["x"].is_unique


def test_row_hashes_tell_text_nulls_and_booleans_apart_as_values():
    columns = [Column("plan", ColumnKind.CATEGORICAL, "TEXT"), Column("paid", ColumnKind.BOOLEAN, "BOOLEAN")]
    frame = pd.DataFrame(
        {
            "plan": pd.Series(["a", None, "None", "a", "b", None], dtype=object),
            "paid": pd.array([True, True, True, True, None, None], dtype="boolean"),
        }
    )
    hashes = row_hashes(frame, columns)
    assert hashes[0] == hashes[3]  # equal rows
    assert len({hashes[0], hashes[1], hashes[2], hashes[4], hashes[5]}) == 5  # a NULL is not the text "None"
    assert (row_hashes(frame.iloc[::-1].reset_index(drop=True), columns) == hashes[::-1]).all()  # each row's own


def test_row_hashes_compare_values_not_their_spelling():
    text, figure = Column("code", ColumnKind.CATEGORICAL, "TEXT"), Column("x", ColumnKind.FLOAT, "REAL")

    def hashes(values: list, column: Column = text) -> list[int]:
        return row_hashes(pd.DataFrame({column.name: pd.Series(values, dtype=object)}), [column]).tolist()

    empty, null, nul, x = hashes(["", None, "x\x00y", "x"])
    assert len({empty, null, nul, x}) == 4  # NULL is not the empty text, text past a NUL counts
    assert hashes([0.0, -0.0, -1e-12], figure).count(hashes([0.0], figure)[0]) == 3  # a rounded -0.0 is 0.0
    # an untyped column's equal values hash alike whichever spelling comes first in its frame
    assert hashes([5, 5.0, True, "a"]) == [*hashes([5.0, 5])[::-1], *hashes([True, "a"])]


def test_copies_are_found_across_the_lookups_pieces(thirds, columns, monkeypatch):
    monkeypatch.setattr("synthgate.evaluation.privacy._LOOKUP_ROWS", 7)  # 400 rows looked up 7 at a time
    train, holdout, fresh = thirds
    synthetic = pd.concat([train.sample(300, random_state=1), fresh.head(100)], ignore_index=True)
    copies, chance = exact_copy_shares(row_hashes(train, columns), holdout, synthetic, columns)
    assert copies == pytest.approx(0.75) and chance < 0.05
    assert exact_copy_shares(row_hashes(train.iloc[:0], columns), holdout, synthetic, columns) == (0.0, 0.0)


def test_shares_over_real_rows_keep_three_decimals(thirds, columns):
    # at full precision a share of holdout rows is a fraction k / n that gives back the holdout's size
    train, holdout, _ = thirds
    holdout = holdout.head(487)
    copies = pd.concat([holdout.head(7), train.head(1)], ignore_index=True)
    seen = pd.concat([train, holdout.head(7)], ignore_index=True)
    scores = dcr(train=seen, holdout=holdout, synthetic=copies, columns=columns)
    assert scores.exact_copies_holdout == round(7 / 487, 3) != 7 / 487
    assert scores.mia_auc == round(scores.mia_auc, 3)


def test_a_single_copied_row_in_thousands_still_fails_a_gate_at_zero(thirds, columns):
    # figures over real rows leave at three decimals; a share of synthetic rows gated at 0 stays whole: one training
    # row among 4,000 synthetic ones (0.00025) rounded to 0.0 would pass max_exact_copy_excess: 0
    from synthgate.evaluation.scorecard import evaluate
    from synthgate.gates import evaluate_gates
    from synthgate.spec import Gates

    train, holdout, fresh = thirds
    synthetic = pd.concat([fresh] * 8, ignore_index=True).iloc[:3999]
    synthetic = pd.concat([synthetic, train.iloc[[7]]], ignore_index=True)
    scores = evaluate(
        train=train, holdout=holdout, synthetic=synthetic, columns=columns, target=None, synthetic_suite_failures=[]
    ).scores
    assert scores.exact_copies_training == pytest.approx(1 / 4000)
    [verdict] = [v for v in evaluate_gates(Gates(max_exact_copy_excess=0.0), scores) if v.name == "exact_copy_excess"]
    assert not verdict.passed
