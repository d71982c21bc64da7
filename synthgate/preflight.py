"""The preflight: every check a refresh can fail that needs no source row, in seconds, before any budget is spent.

The refresh flow runs it as its first task; ``synthgate refresh`` runs it too before it starts Prefect, so an error
a user can act on (a missing schema, a missing privilege, an exhausted budget, a missing source table) answers in
seconds, not after a Prefect server has started.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from synthgate.errors import SpecError, WarehouseError
from synthgate.schema import Column
from synthgate.spec import TableSpec, TargetTable
from synthgate.splitting import check_holdout_columns
from synthgate.validation import check_spec_columns
from synthgate.warehouse import governance
from synthgate.warehouse.engine import driver_error, governed_engine, is_transient
from synthgate.warehouse.extract import table_columns
from synthgate.warehouse.ownership import check_pair, check_target, check_target_names, check_target_privileges

#: Warehouses whose schemas Synthgate can create (SQLite's are attached database files).
_CREATES_SCHEMAS = ("postgresql", "mysql", "mariadb")


def ensure_target_schema(target: TargetTable, engine: Engine) -> bool:
    """The target schema exists: created when missing and ``target.create_schema`` says so (True then), else
    :class:`WarehouseError` naming it. A target without a schema uses the connection's default one."""
    schema = target.db_schema
    if not schema or engine.dialect.name not in _CREATES_SCHEMAS:
        return False
    try:
        if sa.inspect(engine).has_schema(schema):
            return False
        if not target.create_schema:
            raise WarehouseError(
                f"schema {schema!r} does not exist in {target.display_url}: create it, or set `create_schema: true` "
                "under target: in the spec to let Synthgate create it",
                transient=False,
            )
        with engine.begin() as conn:
            conn.execute(sa.schema.CreateSchema(schema, if_not_exists=True))
    except SQLAlchemyError as exc:
        raise WarehouseError(
            f"cannot {'create' if target.create_schema else 'look up'} schema {schema!r} in {target.display_url}: "
            f"{driver_error(exc)}",
            transient=is_transient(exc),
        ) from None
    return True


def run(spec: TableSpec, cap: float) -> bool:
    """The target first: a name its version tables can extend, a schema that exists (or is created, when the spec
    says so) and the target role may create in, and a name that is free or Synthgate's own view (an object Synthgate
    did not create is never replaced); then the budget cap over every spend on the source, whatever the spec was
    called (the target's ledger only: a refused refresh never connects to the source); then the source and holdout
    tables exist, their column types can be read and the spec's columns are theirs (table metadata, not a row).

    Returns whether the target schema was created."""
    target = governed_engine(spec.target)
    check_target_names(spec.target, target)
    created = ensure_target_schema(spec.target, target)
    check_target_privileges(spec.target, target)
    check_target(spec.target)
    governance.check_budget(target, spec.name, spec.privacy.epsilon, cap, source=spec.source)
    columns = table_columns(spec.source, spec.columns)
    check_spec_columns(spec, columns)
    if spec.holdout.table is not None:
        check_holdout_columns(columns, table_columns(spec.holdout.table, spec.columns, "holdout.table"))
    for child in spec.children:  # published with the parent, in the same schema: names, ownership, columns
        check_target_names(child.target, target)
        check_target(child.target)
        child_columns = table_columns(child.source, child.columns, "children[].source")
        check_spec_columns(spec.child_spec(child), child_columns)
        check_link(spec, child.key, columns, child_columns)
        if child.order_by is not None and child.order_by not in {c.name for c in child_columns}:
            raise SpecError(
                f"order_by {child.order_by!r} is not a column of {child.source.table!r}: name the column that orders "
                "a parent's children"
            )
        governance.check_budget(target, spec.name, spec.privacy.epsilon, cap, source=child.source)
    check_pair([spec.target, *(child.target for child in spec.children)])  # a linked pair is published whole
    return created


def check_link(spec: TableSpec, key: str, parent: list[Column], child: list[Column]) -> None:
    """A child row names its parent by an equal value: the foreign key and the parent's key must be of one kind (an
    integer key never equals a text one). Raises :class:`SpecError` naming both columns and their SQL types."""
    parent_key = next(c for c in parent if c.name == spec.privacy.unit)
    foreign_key = next(c for c in child if c.name == key)
    if parent_key.kind is not foreign_key.kind:
        raise SpecError(
            f"the child's key {key!r} ({foreign_key.sql_type}) and the parent's key {parent_key.name!r} "
            f"({parent_key.sql_type}) are of different kinds, so no child row would name a parent: cast one of them "
            "in a view, or name the right columns"
        )
