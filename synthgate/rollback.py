"""Roll a published table back: the view, the recorded event (with its reason) and the model's ``production`` alias
move together.

The alias names the model of the version the table's name points at; a rollback that moved only the view would leave
it on the model of the version just rolled back. The registry is checked before the view moves, so an unreachable
MLflow store leaves both where they were.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from synthgate import tracking
from synthgate.errors import TrackingError, UsageError
from synthgate.settings import Settings
from synthgate.spec import TableSpec
from synthgate.warehouse import governance
from synthgate.warehouse.engine import governed_engine, qualified
from synthgate.warehouse.publish import rollback as rollback_view

#: A reason is one line a person writes: longer text belongs in the ticket it names.
MAX_REASON = 500


def check_reason(reason: str | None) -> str:
    """The rollback reason on one line; raises :class:`UsageError` when it is missing or longer than MAX_REASON."""
    text = " ".join((reason or "").split())
    if not text:
        raise UsageError("--reason is required: say why the table is rolled back (it is recorded with the rollback)")
    if len(text) > MAX_REASON:
        raise UsageError(f"--reason is {len(text)} characters long; at most {MAX_REASON}")
    return text


def version_model(spec: TableSpec, version: int) -> tuple[str, str | None]:
    """The registered model (name, version) of a published table version, from its catalog row."""
    engine = governed_engine(spec.target)
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(governance.CATALOG.c.model_name, governance.CATALOG.c.model_version).where(
                governance.CATALOG.c.published_table == spec.target.table, governance.CATALOG.c.version == version
            )
        ).first()
    if row is None:
        return tracking.model_name(spec.name), None
    return row.model_name or tracking.model_name(spec.name), row.model_version


def rollback_table(
    spec: TableSpec, settings: Settings, to_version: int | None, reason: str | None, trigger: str = "cli"
) -> dict[str, Any]:
    """Point the table's name at an earlier kept version, record why, and move the ``production`` alias to that
    version's model (or remove it when that version has no registered model)."""
    reason = check_reason(reason)
    tracking_uri = settings.tracking_uri()
    tracking.check_registry(tracking_uri)
    moved = rollback_view(spec.target, to_version, trigger=trigger, reason=reason)
    name, model_version = version_model(spec, moved.version)
    when = datetime.now(UTC).isoformat(timespec="seconds")
    note = (
        f"{when}: {qualified(spec.target)} rolled back from v{moved.previous_version} to v{moved.version} "
        f"({trigger}): {reason}"
    )
    try:
        alias = tracking.move_production_alias(tracking_uri, name, model_version, note)
    except TrackingError as exc:
        raise TrackingError(
            f"{moved.name} now points at version {moved.version} (was {moved.previous_version}), but {exc}; point the "
            f"alias by hand: mlflow's set_registered_model_alias({name!r}, 'production', {model_version!r})"
        ) from None
    return {
        "status": "rolled_back",
        "table": moved.name,
        "version": moved.version,
        "previous_version": moved.previous_version,
        "version_table": moved.version_table,
        "reason": reason,
        "model": {
            "name": name,
            "version": model_version,
            "production": alias["now"],
            "previous_production": alias["previous"],
        },
    }
