"""How a refresh that does not publish ends: a named state with the error's one line, nothing in result storage."""

from __future__ import annotations

import pytest
from prefect.settings import get_current_settings

from synthgate.errors import PrivacyBudgetError
from synthgate.flows import refresh as refresh_flow
from synthgate.flows.refresh import refresh_table
from tests.flows.test_refresh_flow import write_spec


def _stored() -> set:
    storage = get_current_settings().results.local_storage_path
    return set(storage.iterdir()) if storage.is_dir() else set()


@pytest.mark.parametrize(
    ("error", "name", "message"),
    [
        (
            PrivacyBudgetError(
                "refused before reading the source: epsilon spent 4 + asked 4 exceeds the cap 5\nRaise privacy.cap"
            ),
            "Refused",
            "refused before reading the source: epsilon spent 4 + asked 4 exceeds the cap 5; Raise privacy.cap",
        ),
        (KeyError("a value from a row"), "Failed", "unexpected KeyError"),  # a bug: its type, never its message
    ],
    ids=["refused", "bug"],
)
def test_a_run_that_does_not_publish_returns_its_state(prefect_harness, workdir, monkeypatch, error, name, message):
    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(refresh_flow, "run_refresh", fail)
    before = _stored()
    state = refresh_table(str(write_spec(workdir, "no_schema_needed")), return_state=True)
    assert state.is_failed() and state.name == name and state.message == message
    assert _stored() == before, "the run's exception was pickled into Prefect's result storage"
    with pytest.raises(type(error)):
        state.result()  # a Python caller gets the error raised
