"""Retry only transient warehouse errors: never a privacy, validation or quality failure."""

from __future__ import annotations

from synthgate.errors import MissingTableError, WarehouseError


def transient_warehouse_error(task, task_run, state) -> bool:
    try:
        state.result()
    except MissingTableError:
        return False
    except WarehouseError:
        return True
    except Exception:  # noqa: BLE001 - anything else is not transient
        return False
    return False
