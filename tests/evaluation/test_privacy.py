import pytest

from synthgate.evaluation.privacy import dcr


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
