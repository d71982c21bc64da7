"""Retry only transient warehouse errors: never a privacy, validation or quality failure."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypedDict

from prefect import Task
from prefect.client.schemas.objects import TaskRun
from prefect.states import State
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from synthgate.errors import MissingTableError, PublishError, WarehouseError


def _lost_connection(exc: BaseException) -> bool:
    """A publish failure caused by the connection (dropped, refused, timed out), not by the data or the schema."""
    cause = exc.__cause__
    return isinstance(cause, (OperationalError, InterfaceError)) or (
        isinstance(cause, DBAPIError) and bool(cause.connection_invalidated)
    )


def transient_warehouse_error(task: Task[..., Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Prefect's retry condition for warehouse tasks: retry a failed run only when its error is transient."""
    try:
        state.result()
    except MissingTableError:
        return False
    except WarehouseError as exc:  # a wrong role, password, database or host does not heal by waiting
        return exc.transient
    except PublishError as exc:  # publish wraps every driver error; a retry is safe: nothing was committed
        return _lost_connection(exc)
    except Exception:  # noqa: BLE001 - anything else is not transient
        return False
    return False


class _RetryOptions(TypedDict):
    """The ``@task`` options of :data:`WAREHOUSE_RETRIES`, typed so that ``**WAREHOUSE_RETRIES`` checks against
    ``task``'s signature."""

    retries: int
    retry_delay_seconds: list[float]
    retry_condition_fn: Callable[[Task[..., Any], TaskRun, State[Any]], bool]


#: Options of a task that reads or writes a warehouse: two retries with backoff, for transient errors only.
WAREHOUSE_RETRIES: _RetryOptions = {
    "retries": 2,
    "retry_delay_seconds": [2, 10],
    "retry_condition_fn": transient_warehouse_error,
}
