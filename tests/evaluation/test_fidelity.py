from synthgate.evaluation.fidelity import quality


def test_identical_tables_score_full_quality(thirds, columns):
    train, _, _ = thirds
    fid = quality(train=train, synthetic=train, columns=columns)
    assert fid.quality > 0.99
    assert min(fid.per_column.values()) > 0.99 and min(fid.per_pair.values()) > 0.99
    assert len(fid.per_pair) == len(columns) * (len(columns) - 1) // 2


def test_a_shifted_column_loses_its_shape_and_nothing_else(thirds, columns):
    train, holdout, _ = thirds
    fid = quality(train=train, synthetic=holdout.assign(age=holdout["age"] + 30), columns=columns)
    assert fid.per_column["age"] < 0.6
    assert fid.per_column["income"] > 0.9 and fid.per_column["plan"] > 0.9
