"""Retry only transient warehouse errors: never a privacy, validation or quality failure."""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from synthgate.errors import MissingTableError, PublishError, WarehouseError


def _lost_connection(exc: BaseException) -> bool:
    """A publish failure caused by the connection (dropped, refused, timed out), not by the data or the schema."""
    cause = exc.__cause__
    return isinstance(cause, (OperationalError, InterfaceError)) or (
        isinstance(cause, DBAPIError) and bool(cause.connection_invalidated)
    )


def transient_warehouse_error(task, task_run, state) -> bool:
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


#: Options of a task that reads or writes a warehouse: two retries with backoff, for transient errors only.
WAREHOUSE_RETRIES = {"retries": 2, "retry_delay_seconds": [2, 10], "retry_condition_fn": transient_warehouse_error}
