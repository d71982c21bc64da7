"""Stage 2 and 5's suite: decide column policies (spec, else name and type), validate the extract against the source
suite, and the synthetic rows against the synthetic suite. Suites are reviewed files: created when missing, never
rewritten by a refresh."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from prefect import get_run_logger, task

from synthgate import validation
from synthgate.profiling import ColumnProfile, effective_policies, policies_from_schema, undeclared_decisions
from synthgate.schema import Column
from synthgate.spec import TableSpec
from synthgate.tasks import PRIVATE, withheld
from synthgate.validation import ValidationOutcome


@task(name="profile-columns", **PRIVATE)
@withheld
def profile_columns(spec: TableSpec, columns: list[Column]) -> list[ColumnProfile]:
    """Each column's policy from the spec, else from its name and SQL type: no row is read (nothing outside the
    budget)."""
    logger = get_run_logger()
    profiles = policies_from_schema(spec, columns)
    undeclared = undeclared_decisions(profiles)
    if undeclared:
        logger.info(
            "columns decided from name and type (no policy in the spec; `synthgate profile SPEC --write` records "
            "one): %s",
            undeclared,
        )
    return profiles


@task(name="validate-source", **PRIVATE)
@withheld
def validate_source(
    spec: TableSpec, frame: pd.DataFrame, columns: list[Column], profiles: list[ColumnProfile], expectations_dir: Path
) -> ValidationOutcome:
    """The extract against the source suite; the synthetic suite is checked against the spec's columns now too,
    before anything is trained (both created when missing)."""
    policies = effective_policies(profiles)
    outcome = validation.validate_source(expectations_dir, spec, frame, columns, policies)
    validation.load_or_create_synthetic_suite(expectations_dir, spec, columns, policies)
    get_run_logger().info(
        "source suite %s: %d expectations passed%s",
        outcome.suite_name,
        outcome.evaluated,
        " (suite created on this run)" if outcome.created_suite else "",
    )
    return outcome


@task(name="validate-synthetic", **PRIVATE)
@withheld
def validate_synthetic(
    spec: TableSpec,
    synthetic: pd.DataFrame,
    columns: list[Column],
    profiles: list[ColumnProfile],
    expectations_dir: Path,
    unreleased: list[str],
    repeating_keys: list[str],
) -> ValidationOutcome:
    """The synthetic rows against the synthetic suite and this run's row count; columns the budget could not locate
    (``unreleased``, sampled as NULL) are not held to their not-null expectation, faked keys the DP count shows
    repeating (``repeating_keys``) not to uniqueness, and the log says so (:func:`validation.waived`)."""
    if unreleased:
        get_run_logger().warning(
            "columns sampled as NULL (too few values to locate under this budget; their not-null expectation is "
            "waived for this run): %s",
            ", ".join(unreleased),
        )
    if repeating_keys:
        get_run_logger().info(
            "faked keys that repeat in the source (DP count of their values), sampled with repeats; their uniqueness "
            "expectation is waived for this run: %s",
            ", ".join(repeating_keys),
        )
    outcome = validation.validate_synthetic(
        expectations_dir,
        spec,
        synthetic,
        columns,
        effective_policies(profiles),
        unreleased=unreleased,
        repeating_keys=repeating_keys,
    )
    verdict = "passed" if outcome.success else f"failed {outcome.failed}"
    get_run_logger().info("synthetic suite: %s (%d expectations)", verdict, outcome.evaluated)
    return outcome
