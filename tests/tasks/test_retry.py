"""Retries: only transient warehouse errors, with backoff, on extract and publish; no task result is ever persisted."""

from __future__ import annotations

import pytest
from prefect.cache_policies import NO_CACHE
from prefect.states import Failed
from sqlalchemy.exc import IntegrityError, OperationalError

from synthgate.errors import (
    DataValidationError,
    GateFailedError,
    MissingTableError,
    PrivacyBudgetError,
    PublishError,
    WarehouseError,
)
from synthgate.tasks.extract import extract_holdout, extract_source
from synthgate.tasks.publish import publish_table
from synthgate.tasks.retry import transient_warehouse_error
from synthgate.tasks.score import score_synthetic
from synthgate.tasks.track import log_run
from synthgate.tasks.train import sample_rows, train_generator
from synthgate.tasks.validate import profile_columns, validate_source, validate_synthetic

ALL_TASKS = [
    extract_source,
    extract_holdout,
    profile_columns,
    validate_source,
    train_generator,
    sample_rows,
    validate_synthetic,
    score_synthetic,
    log_run,
    publish_table,
]


@pytest.mark.parametrize(
    ("error", "retried"),
    [
        (WarehouseError("connection reset", transient=True), True),
        (WarehouseError("permission denied for table people"), False),  # permanent unless said otherwise
        (MissingTableError("no table people"), False),
        (GateFailedError("quality FAILED"), False),
        (PrivacyBudgetError("cap reached"), False),
        (DataValidationError("suite failed"), False),
        (PublishError("swap failed"), False),
        (ValueError("bug"), False),
    ],
)
def test_only_transient_warehouse_errors_are_retried(error, retried):
    assert transient_warehouse_error(None, None, Failed(data=error)) is retried


def publish_error(cause: Exception) -> PublishError:
    try:
        raise PublishError("swapping in 'people_synthetic' failed") from cause
    except PublishError as exc:
        return exc


def test_publish_is_retried_only_when_the_connection_was_lost():
    lost = OperationalError("INSERT ...", {}, Exception("server closed the connection unexpectedly"))
    conflict = IntegrityError("INSERT ...", {}, Exception("duplicate key value violates unique constraint"))
    assert transient_warehouse_error(None, None, Failed(data=publish_error(lost))) is True
    assert transient_warehouse_error(None, None, Failed(data=publish_error(conflict))) is False


@pytest.mark.parametrize("task", [extract_source, extract_holdout, publish_table], ids=lambda t: t.name)
def test_extract_and_publish_retry_with_backoff(task):
    assert task.retries == 2 and task.retry_delay_seconds == [2, 10]
    assert task.retry_condition_fn is transient_warehouse_error


@pytest.mark.parametrize("task", ALL_TASKS, ids=lambda t: t.name)
def test_no_result_is_persisted_or_cached(task):
    assert task.persist_result is False and task.cache_policy is NO_CACHE


def test_flows_do_not_persist_results():
    from synthgate.flows.refresh import refresh_table
    from synthgate.flows.refresh_all import refresh_all, refresh_one

    assert refresh_table.persist_result is False and refresh_all.persist_result is False
    assert refresh_one.persist_result is False and refresh_one.cache_policy is NO_CACHE
