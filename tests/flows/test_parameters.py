"""Flow parameters: the bounds the UI form shows, and the overrides applied to a spec."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from synthgate.errors import SpecError
from synthgate.flows.parameters import RefreshParameters, apply_overrides
from synthgate.spec import ColumnPolicy, load_spec
from tests.conftest import ROOT

ADULT = str(ROOT / "deployments" / "tables" / "adult.yaml")


def test_a_bare_path_is_a_request():
    assert RefreshParameters.model_validate(ADULT) == RefreshParameters(spec_path=ADULT)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"epsilon": 0}, "greater than 0"),
        ({"epsilon": 101}, "less than or equal to 100"),
        ({"rows": 0}, "greater than or equal to 1"),
        ({"colour": "red"}, "Extra inputs are not permitted"),
    ],
)
def test_out_of_bounds_is_refused(fields, message):
    with pytest.raises(ValidationError, match=message):
        RefreshParameters(spec_path=ADULT, **fields)


def test_overrides_apply_and_are_validated_with_the_spec():
    spec = load_spec(ADULT)
    assert apply_overrides(spec, RefreshParameters(spec_path=ADULT)) is spec
    changed = apply_overrides(spec, RefreshParameters(spec_path=ADULT, epsilon=2.5, rows=1234))
    assert (changed.privacy.epsilon, changed.rows, changed.privacy.delta) == (2.5, 1234, spec.privacy.delta)
    assert changed.holdout == spec.holdout and changed.schedule == spec.schedule
    broken = spec.model_copy(update={"columns": {"income": ColumnPolicy(policy="drop")}})  # skips validation
    with pytest.raises(SpecError, match="cannot be dropped"):  # the overridden spec is validated as a whole
        apply_overrides(broken, RefreshParameters(spec_path=ADULT, epsilon=1.0))
