"""Budget first: a refresh is refused, or its spend reserved in the ledger, before a source row is read."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from prefect import get_run_logger, task

from synthgate import preflight as checks
from synthgate.settings import get_settings
from synthgate.spec import TableSpec
from synthgate.tasks import PRIVATE, withheld
from synthgate.tasks.retry import WAREHOUSE_RETRIES
from synthgate.warehouse import governance
from synthgate.warehouse.engine import governed_engine
from synthgate.warehouse.governance import Spend


@task(name="preflight", **WAREHOUSE_RETRIES, **PRIVATE)
@withheld
def preflight(spec: TableSpec, cap: float) -> None:
    """:func:`synthgate.preflight.run`: target name, schema (created when the spec says so), privileges and owner,
    the budget cap, then the source's and holdout's metadata; no source row is read."""
    if checks.run(spec, cap):
        get_run_logger().info("created schema %s for the target (target.create_schema)", spec.target.db_schema)


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


@contextmanager
def privacy_spend(spec: TableSpec, run_id: str, trigger: str) -> Iterator[Spend]:
    """A refresh's spend, opened before any source row is read and closed on every way out: the preflight (refused
    over the cap, among others), then the ledger reservation of :func:`reserve_budget` under the settings' cap."""
    cap = get_settings().budget_cap(spec.privacy.cap)
    preflight(spec, cap)
    with ExitStack() as reserved:
        spend = reserved.enter_context(reserve_budget(spec, governance.LedgerEntry.for_run(spec, run_id, trigger), cap))
        for child in spec.children:  # the child table's source is read and spent on too
            entry = governance.LedgerEntry.for_child(spec, child, run_id, trigger)
            spend.children.append(reserved.enter_context(reserve_budget(spec, entry, cap)))
        yield spend
