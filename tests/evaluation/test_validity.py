import pandas as pd
import pytest

from synthgate.errors import SpecError
from synthgate.evaluation.validity import duplicate_key_share


def test_duplicate_keys_are_counted_over_all_key_columns():
    frame = pd.DataFrame({"a": [1, 1, 2, 2], "b": ["x", "y", "x", "x"]})
    assert duplicate_key_share(frame, ["a", "b"]) == pytest.approx(0.25)
    assert duplicate_key_share(frame, ["a"]) == pytest.approx(0.5)
    assert duplicate_key_share(frame.drop_duplicates(), ["a", "b"]) == 0.0


def test_an_unknown_key_is_named():
    with pytest.raises(SpecError, match=r"keys \['nope'\]"):
        duplicate_key_share(pd.DataFrame({"a": [1]}), ["nope"])
