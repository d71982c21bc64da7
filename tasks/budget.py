"""Budget first: a refresh is refused, or its spend reserved in the ledger, before a source row is read."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from prefect import get_run_logger, task

from synthgate.schema import column_from_sql
from synthgate.spec import TableSpec
from synthgate.validation import check_spec_columns
from synthgate.warehouse import governance
from synthgate.warehouse.engine import governed_engine, reflect
from tasks import PRIVATE
from tasks.retry import transient_warehouse_error


@task(name="preflight", retries=2, retry_delay_seconds=[2, 10], retry_condition_fn=transient_warehouse_error, **PRIVATE)
def preflight(spec: TableSpec, cap: float) -> None:
    """The budget cap first (the target's ledger only: a refused refresh never connects to the source), then the
    source and holdout tables exist and the spec's columns are theirs (table metadata, not a row)."""
    governance.check_budget(governed_engine(spec.target), spec.name, spec.privacy.epsilon, cap)
    source = reflect(spec.source)
    check_spec_columns(spec, [column_from_sql(c.name, c.type) for c in source.columns])
    if spec.holdout.table is not None:
        reflect(spec.holdout.table)


@contextmanager
def reserve_budget(spec: TableSpec, entry: governance.LedgerEntry, cap: float) -> Iterator[governance.Spend]:
    """Reserve ``entry``'s full epsilon under ``cap`` (:class:`PrivacyBudgetError` when it does not fit) and close
    the ledger row on every way out: ``published`` by the publish, ``rejected`` on a failed gate, else ``failed``."""
    with governance.reserved_spend(governed_engine(spec.target), entry, cap) as spend:
        get_run_logger().info("reserved epsilon %g of %s's cap %g in the ledger", entry.epsilon_budget, spec.name, cap)
        yield spend
