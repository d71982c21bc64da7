"""Budget first: a refresh is refused, or its spend reserved in the ledger, before a source row is read."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager

from prefect import get_run_logger, task

from synthgate.spec import TableSpec
from synthgate.validation import check_spec_columns
from synthgate.warehouse import governance
from synthgate.warehouse.engine import governed_engine, reflect
from synthgate.warehouse.extract import read_plan
from synthgate.warehouse.publish import check_target, check_target_names, check_target_privileges
from tasks import PRIVATE
from tasks.retry import transient_warehouse_error


@task(name="preflight", retries=2, retry_delay_seconds=[2, 10], retry_condition_fn=transient_warehouse_error, **PRIVATE)
def preflight(spec: TableSpec, cap: float) -> None:
    """The target first: a name its version tables can extend, a schema that exists and the target role may create
    in (both read-only checks, before Synthgate writes its governance tables there), and a name that is free or
    Synthgate's own view (an object Synthgate did not create is never replaced); then the budget cap over every
    spend on the source, whatever the spec was called (the target's ledger only: a refused refresh never connects to
    the source); then the source and holdout tables exist, their column types can be read and the spec's columns
    are theirs (table metadata, not a row)."""
    target = governed_engine(spec.target)
    check_target_names(spec.target, target)
    check_target_privileges(spec.target, target)
    check_target(spec.target)
    governance.check_budget(target, spec.name, spec.privacy.epsilon, cap, source=spec.source)
    _, columns = read_plan(spec.source, reflect(spec.source), spec.columns)
    check_spec_columns(spec, columns)
    if spec.holdout.table is not None:
        read_plan(spec.holdout.table, reflect(spec.holdout.table, "holdout.table"), spec.columns)


@contextmanager
def reserve_budget(spec: TableSpec, entry: governance.LedgerEntry, cap: float) -> Iterator[governance.Spend]:
    """Reserve ``entry``'s full epsilon under ``cap`` (:class:`PrivacyBudgetError` when it does not fit) and close
    the ledger row on every way out: ``published`` by the publish, ``rejected`` on a failed gate, else ``failed``.
    The entry is keyed by the spec's source (filled in when the caller left ``source_key`` unset)."""
    if entry.source_key is None:
        entry = dataclasses.replace(entry, source_key=governance.source_key(spec.source))
    with governance.reserved_spend(governed_engine(spec.target), entry, cap) as spend:
        get_run_logger().info("reserved epsilon %g of %s's cap %g in the ledger", entry.epsilon_budget, spec.name, cap)
        yield spend
