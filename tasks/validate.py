"""Stage 2: profile the columns and validate the extract against the source suite."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from prefect import get_run_logger, task

from synthgate.profiling import ColumnProfile, propose
from synthgate.schema import Column
from synthgate.spec import TableSpec
from synthgate.validation import ValidationOutcome, validate_source
from tasks import PRIVATE


@task(name="profile-columns", **PRIVATE)
def profile_columns(spec: TableSpec, frame: pd.DataFrame, columns: list[Column]) -> list[ColumnProfile]:
    logger = get_run_logger()
    profiles = propose(spec, frame, columns)
    for p in profiles:
        if p.proposed.policy != "keep":
            logger.info("column %s: %s (%s)", p.name, p.proposed.policy, p.reason)
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
