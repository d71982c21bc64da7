"""Stage 2: decide column policies (spec, else name and type) and validate the extract against the source suite."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from prefect import get_run_logger, task

from synthgate.profiling import ColumnProfile, policies_from_schema
from synthgate.schema import Column
from synthgate.spec import TableSpec
from synthgate.validation import ValidationOutcome, validate_source
from tasks import PRIVATE


@task(name="profile-columns", **PRIVATE)
def profile_columns(spec: TableSpec, columns: list[Column]) -> list[ColumnProfile]:
    """Each column's policy from the spec, else from its name and SQL type: no row is read (nothing outside the budget)."""
    logger = get_run_logger()
    profiles = policies_from_schema(spec, columns)
    undeclared = [f"{p.name} ({p.proposed.policy}{' ' + p.proposed.fake if p.proposed.fake else ''})"
                  for p in profiles if not p.declared]
    if undeclared:
        logger.info(
            "columns decided from name and type (no policy in the spec; `synthgate profile SPEC --write` records one): %s",
            ", ".join(undeclared),
        )
    return profiles


@task(name="validate-source", **PRIVATE)
def check_source(
    spec: TableSpec, frame: pd.DataFrame, columns: list[Column], profiles: list[ColumnProfile], expectations_dir: Path
) -> ValidationOutcome:
    outcome = validate_source(expectations_dir, spec, frame, columns, {p.name: p.proposed for p in profiles})
    get_run_logger().info(
        "source suite %s: %d expectations passed%s",
        outcome.suite_name, outcome.evaluated, " (suite created on this run)" if outcome.created_suite else "",
    )
    return outcome
