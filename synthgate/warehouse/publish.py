"""Versioned, atomic publishing: every publish is a new table ``<target>__v<N>``; the name users query is a view.

Why a view, not a table swap: moving a view is one catalog change that PostgreSQL, SQLite and
DuckDB make inside a transaction (``CREATE OR REPLACE VIEW``, or ``DROP VIEW`` + ``CREATE VIEW`` when
the columns changed), and MySQL/MariaDB make atomically on their own (``CREATE OR REPLACE VIEW``).
The version tables are never renamed, so a rollback is the same move pointed at an older
version, nothing is copied, and a reader whose query already started keeps reading the version
it began with. Grants and comments on the view survive ``CREATE OR REPLACE``.

One publish is one transaction: create ``<target>__v<N>`` and load it (PostgreSQL ``COPY``, in
chunks), point the view at it, comment both with the lineage, write the event row and, through
``in_transaction``, the catalog row and the ledger update. Readers see the previous version or the
new one, never a missing or half table: a reader that reaches the view while the move is
uncommitted waits for it and then reads the new definition (PostgreSQL looks the name up again
after the lock). A process killed anywhere in the transaction leaves nothing: the transaction rolls back. On
MySQL/MariaDB each DDL statement commits on its own: every version table is loaded before any view moves, a killed
publish leaves claimed tables that the next publish drops, and a publish or rollback failing after it moved a view
points the view back (:class:`_MovedViews`). A failure after the commit (releasing the lock, a lost acknowledgement,
which the catalog then tells) leaves the publish standing: a retry would publish it twice.

What is Synthgate's to replace or drop at a target, and the checks before any read or spend, are in
:mod:`synthgate.warehouse.ownership`; loading a frame into a version table in :mod:`synthgate.warehouse.loading`.

A table at the target name (one an older release published as a plain table, say) becomes a version only on the
explicit ``synthgate migrate`` command (:func:`migrate`), never automatically.
After the commit, versions beyond the newest ``keep_versions`` are dropped (the current one always stays).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from synthgate.columns import sql_types
from synthgate.errors import PublishError
from synthgate.schema import Column
from synthgate.spec import WarehouseTable
from synthgate.warehouse import governance
from synthgate.warehouse.engine import driver_error, governed_engine, qualified, quoted
from synthgate.warehouse.loading import load_frame, sql_literal
from synthgate.warehouse.ownership import (
    MAX_VERSION,
    broken_pair,
    claim_stamp,
    described,
    kind_of,
    ownership,
    refuse_foreign_target,
    taken_versions,
    version_table_name,
    version_tables,
    view_versions,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Published:
    """Where a publish or rollback left the user-facing name."""

    name: str  # the qualified user-facing name (a view)
    version: int
    version_table: str
    previous_version: int | None
    pruned: tuple[int, ...] = ()


# --- the user-facing view -------------------------------------------------------------------------


def _point_view(conn: Connection, target: WarehouseTable, version: int) -> None:
    schema, dialect = target.db_schema, conn.dialect.name
    view = quoted(conn, target.table, schema)
    # SQLite views may not name another schema: the version table sits next to the view anyway.
    source = quoted(conn, version_table_name(target.table, version), None if dialect == "sqlite" else schema)
    body = f"AS SELECT * FROM {source}"
    if dialect == "sqlite":
        conn.execute(sa.text(f"DROP VIEW IF EXISTS {view}"))
        conn.execute(sa.text(f"CREATE VIEW {view} {body}"))
        return
    if dialect != "postgresql":  # DuckDB, MySQL/MariaDB: replaces whatever the columns are
        conn.execute(sa.text(f"CREATE OR REPLACE VIEW {view} {body}"))
        return
    savepoint = conn.begin_nested()
    try:
        conn.execute(sa.text(f"CREATE OR REPLACE VIEW {view} {body}"))
        savepoint.commit()
    except SQLAlchemyError:  # the columns changed: PostgreSQL replaces a view only with the same leading columns
        savepoint.rollback()
        grants = _view_grants(conn, view)
        conn.execute(sa.text(f"DROP VIEW IF EXISTS {view}"))
        conn.execute(sa.text(f"CREATE VIEW {view} {body}"))
        for grant in grants:  # a new view has only its owner's rights: its readers' grants come back with it
            conn.execute(sa.text(grant))


def _view_grants(conn: Connection, view: str) -> list[str]:
    """The GRANT statements that give every role other than the owner the rights it holds on the PostgreSQL view
    ``view`` (quoted, schema-qualified), to make again on a new view of that name."""
    rows = conn.execute(
        sa.text(
            "SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END, "
            "a.privilege_type, a.is_grantable FROM pg_class c, aclexplode(c.relacl) a "
            "WHERE c.oid = to_regclass(:view) AND a.grantee <> c.relowner"
        ),
        {"view": view},
    ).all()
    return [
        f"GRANT {privilege} ON {view} TO {grantee}" + (" WITH GRANT OPTION" if grantable else "")
        for grantee, privilege, grantable in rows
    ]


@dataclass
class _MovedViews:
    """The views a publish or rollback pointed at a new version, to point back if it fails where DDL commits on its
    own (MySQL, MariaDB): there the failed transaction takes its catalog rows and events with it, not the views."""

    moved: list[tuple[WarehouseTable, int | None, bool]] = field(default_factory=list)  # target, from, name existed

    def point(self, conn: Connection, target: WarehouseTable, version: int, previous: int | None) -> None:
        """Point ``target``'s view at ``version`` (it pointed at ``previous``, None: never published)."""
        existed = kind_of(conn, target.table, target.db_schema) is not None
        _point_view(conn, target, version)  # one statement where DDL commits on its own: failed, it moved nothing
        self.moved.append((target, previous, existed))

    def undone(self, engine: Engine) -> str | None:
        """Point every moved view back where DDL is not transactional (elsewhere the rollback did): None when every
        view is where it was, else the clause for the failure's message naming those that are not."""
        if engine.dialect.name not in ("mysql", "mariadb"):
            return None
        stuck = []
        for target, previous, existed in reversed(self.moved):
            try:
                with engine.begin() as conn:
                    if previous is not None:
                        _point_view(conn, target, previous)
                    elif not existed:  # the view this publish made: there was none before
                        conn.execute(sa.text(f"DROP VIEW IF EXISTS {quoted(conn, target.table, target.db_schema)}"))
                    else:
                        stuck.append(f"{qualified(target)!r}")
            except (SQLAlchemyError, getattr(engine.dialect.dbapi, "Error", SQLAlchemyError)) as exc:
                stuck.append(f"{qualified(target)!r} ({driver_error(exc)})")
        if not stuck:
            return None
        return (
            f"the view {', '.join(stuck)} could not be pointed back and may read a version the catalog does not "
            "record it reading: the next publish or rollback points it where the catalog says"
        )


def _comment(conn: Connection, target: WarehouseTable, version: int | None, text: str | None) -> None:
    """The lineage as a comment on the version table (when ``version`` is given) and on the view (PostgreSQL)."""
    if not text or conn.dialect.name != "postgresql":  # SQLite has no comments; MySQL's views have none
        return
    if version is not None:
        table = quoted(conn, version_table_name(target.table, version), target.db_schema)
        conn.execute(sa.text(f"COMMENT ON TABLE {table} IS {sql_literal(text)}"))
    conn.execute(sa.text(f"COMMENT ON VIEW {quoted(conn, target.table, target.db_schema)} IS {sql_literal(text)}"))


def _begin(conn: Connection) -> None:
    """SQLite's driver opens transactions only before DML: begin explicitly so DDL is inside (and take the write
    lock)."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def _lock_key(target: WarehouseTable) -> str:
    """The publish lock of ``target``'s schema and table, however the schema is spelled (none, or the default one
    written out), hashed to fit MySQL's 64 characters: two runs publishing one table always take one lock. The lock
    lives on the target's own server, so the URL's host (spelled as a name, an address, with or without its port)
    stays out of the key."""
    return "synthgate:publish:" + hashlib.sha256(repr(target.identity()[-2:]).encode()).hexdigest()[:40]


# --- publish, prune, rollback ---------------------------------------------------------------------


def publish_refresh(outcome: Any, model_name: str) -> list[Published]:
    """Publish a refresh's synthetic rows (a :class:`synthgate.outcome.RefreshResult` whose gates passed) as the next
    version, with its catalog row, lineage comment and ledger row closed ``published``, in one transaction; a parent
    with children (``outcome.children``) publishes them in the same transaction and version, each child with its own
    catalog row naming the parent. Returns the parent's :class:`Published`, then each child's."""
    spec = outcome.spec
    catalog = governance.catalog_values(outcome, model_name)
    tables = [
        Publication(
            spec.target,
            outcome.synthetic,
            outcome.source.columns,
            governance.publication_record(
                catalog, outcome.privacy, lambda version: version_table_name(spec.target.table, version)
            ),
            lambda version: governance.lineage_comment(version, catalog),
        )
    ]
    for child in outcome.children:
        tables.append(_child_publication(child, spec, model_name))
    return publish_together(
        tables, outcome.run_id, keep_versions=spec.publishing.keep_versions, trigger=outcome.trigger
    )


def _child_publication(child: Any, parent: Any, model_name: str) -> Publication:
    """A child table's part of its parent's publish: its rows, its catalog row under the parent's spec name, and its
    source's ledger row closed ``published`` (:meth:`LedgerEntry.for_child`)."""
    target = child.spec.target
    catalog = governance.catalog_values(child, model_name) | {
        "run_id": governance.child_run_id(child.run_id, target.table),  # the parent's row holds the run's own id
        "spec_name": parent.name,
        "parent_table": parent.target.table,
    }

    def record(conn: Connection, version: int) -> None:
        governance.catalog_row(
            conn, **catalog, version=version, version_table=version_table_name(target.table, version)
        )
        governance.close_spend(conn, catalog["run_id"], "published", child.privacy.spent, child.privacy.accounting)

    return Publication(
        target, child.synthetic, child.source.columns, record, lambda v: governance.lineage_comment(v, catalog)
    )


@dataclass(frozen=True)
class Publication:
    """One table of a publish: its rows, where they go, and what the publish transaction writes with them.

    ``in_transaction(conn, version)`` writes the catalog row (and the ledger update) in the same commit;
    ``comment(version)`` is the lineage comment for the version table and the view."""

    target: WarehouseTable
    frame: pd.DataFrame = field(repr=False)
    columns: list[Column]
    in_transaction: Callable[[Connection, int], None]
    comment: Callable[[int], str] | None = None


def publish(
    target: WarehouseTable,
    frame: pd.DataFrame,
    columns: list[Column],
    run_id: str,
    in_transaction: Callable[[Connection, int], None],
    keep_versions: int = 3,
    comment: Callable[[int], str] | None = None,
    trigger: str | None = None,
) -> Published:
    """Publish ``frame`` as the next version of ``target`` and point the name at it, all in one transaction
    (:func:`publish_together` with one table)."""
    publication = Publication(target, frame, columns, in_transaction, comment)
    return publish_together([publication], run_id, keep_versions=keep_versions, trigger=trigger)[0]


def publish_together(
    tables: list[Publication], run_id: str, *, keep_versions: int = 3, trigger: str | None = None
) -> list[Published]:
    """Publish each table as its next version and point every name at it, all in one transaction: one version
    number for all of them (one above the highest any of them used), so a parent and its children are one dataset
    version, and readers see all the new tables or none. Every target is in one warehouse (the first one's URL).

    A failure raises :class:`PublishError` naming the objects and the driver's error class and SQLSTATE, never the
    driver's message, which can quote a value of a row (a COPY line, a value that does not fit its column).
    """
    targets = [t.target for t in tables]
    described = ", ".join(repr(qualified(t)) for t in targets)
    engine = governed_engine(targets[0])
    governance.ensure_governance_tables(engine)
    views = _MovedViews()
    committing = committed = False  # past the commit, a failure (releasing the lock, a connection) unpublishes nothing
    version = 0
    pruned: dict[WarehouseTable, tuple[int, ...]] = {}
    try:
        with engine.connect() as lock_conn, ExitStack() as locks:
            for key in sorted({_lock_key(t) for t in targets}):  # one order: two publishes never wait on each other
                locks.enter_context(governance.advisory_lock(lock_conn, key))
            with engine.connect() as conn:
                with conn.begin():  # the claim commits on its own, before CREATE TABLE: a leftover is known to be ours
                    _begin(conn)
                    for target in targets:
                        refuse_foreign_target(conn, target)
                    if (broken := broken_pair(conn, targets)) is not None:
                        raise PublishError(f"{broken}; nothing was changed")
                    version = max(_next_version(conn, target) for target in targets)
                    for target in targets:
                        governance.claim_version(
                            conn, target.table, version, version_table_name(target.table, version), run_id
                        )
                with conn.begin():
                    _begin(conn)
                    previous = {}
                    for t in tables:
                        refuse_foreign_target(conn, t.target)  # again, inside the publishing transaction
                        previous[t.target] = governance.current_version(conn, t.target.table)
                    # Every version table loaded before any view moves: on MySQL/MariaDB each DDL commits on its own,
                    # so a load failing there leaves only claimed leftovers, never one view moved without the other
                    for t in tables:
                        _load_version(conn, t, version, run_id)
                    for t in tables:
                        views.point(conn, t.target, version, previous[t.target])
                        _comment(conn, t.target, version, t.comment(version) if t.comment else None)
                    for t in tables:
                        governance.record_event(
                            conn, t.target.table, "publish", version, previous[t.target], run_id, trigger
                        )
                        t.in_transaction(conn, version)
                    committing = True  # the block's end commits: a failure from here may have landed
                committed = True
            pruned = {target: _pruned_after_publish(engine, target, keep_versions) for target in targets}
    except (
        SQLAlchemyError,
        getattr(engine.dialect.dbapi, "Error", SQLAlchemyError),
    ) as exc:  # COPY raises the driver's
        landed = committed or (committing and _landed(engine, tables, version, run_id))
        if landed is None:  # neither the commit nor the catalog answers: nothing is moved back on a guess
            raise PublishError(
                f"publishing {described} failed ({driver_error(exc)}) at its commit, and the catalog cannot be read to "
                "tell whether it landed: `synthgate audit` says which version the name points at"
            ) from exc
        if not landed:
            raise PublishError(
                f"publishing {described} failed ({driver_error(exc)}); "
                + (views.undone(engine) or "the previous version is unchanged and still published")
            ) from exc
        # committed (its acknowledgement may be what was lost): the version is live, and a retry would publish twice
        log.warning("published %s as version %d, then %s after the commit", described, version, driver_error(exc))
    except Exception:  # a bug in a caller's in-transaction step: its views go back all the same
        if not committed and (stuck := views.undone(engine)):
            log.warning("%s", stuck)
        raise
    for t in tables:
        log.info("published %s version %d (%d rows)", qualified(t.target), version, len(t.frame))
    return [
        Published(
            qualified(t.target),
            version,
            version_table_name(t.target.table, version),
            previous[t.target],
            pruned.get(t.target, ()),
        )
        for t in tables
    ]


def _landed(engine: Engine, tables: list[Publication], version: int, run_id: str) -> bool | None:
    """Whether a publish whose commit raised committed all the same (the acknowledgement lost with the connection):
    its publish events are recorded. None when the catalog cannot be read either."""
    try:
        with engine.connect() as conn:
            return all(governance.publish_run(conn, t.target.table, version) == run_id for t in tables)
    except (SQLAlchemyError, getattr(engine.dialect.dbapi, "Error", SQLAlchemyError)):
        return None


def _pruned_after_publish(engine: Engine, target: WarehouseTable, keep_versions: int) -> tuple[int, ...]:
    """:func:`prune_versions` once the new version is committed and live: a failure there (a user's view reading an
    old version blocks its DROP) leaves the old versions for the next publish, logged, and the publish stands."""
    try:
        return prune_versions(engine, target, keep_versions)
    except (SQLAlchemyError, getattr(engine.dialect.dbapi, "Error", SQLAlchemyError)) as exc:
        log.warning(
            "pruning old versions of %s failed (%s); they stay until a later publish prunes them",
            qualified(target),
            driver_error(exc),
        )
        return ()


def _load_version(conn: Connection, publication: Publication, version: int, run_id: str) -> None:
    """Create and load the version table, inside the caller's transaction."""
    target = publication.target
    table = sa.Table(
        version_table_name(target.table, version),
        sa.MetaData(),
        *(sa.Column(c, t) for c, t in sql_types(publication.columns, publication.frame).items()),
        schema=target.db_schema,
        comment=claim_stamp(run_id) if conn.dialect.name in ("mysql", "mariadb") else None,  # with CREATE TABLE
    )
    table.create(conn)
    load_frame(conn, table, publication.frame)


def next_version(target: WarehouseTable) -> int:
    """The number the next publish of ``target`` takes (unless another publish takes it first), for the report."""
    with governed_engine(target).connect() as conn:
        return _next_version(conn, target)


def _next_version(conn: Connection, target: WarehouseTable) -> int:
    """One above every number ever used or taken: recorded and claimed versions (even pruned ones) and every table
    or view named like a version, whoever created it (a user's ``<target>__v7`` is skipped, never replaced)."""
    used = (
        governance.recorded_versions(conn, target.table)
        | governance.pruned_versions(conn, target.table)
        | set(governance.claimed_versions(conn, target.table))
        | {v for v in taken_versions(conn, target) if v <= MAX_VERSION}  # a user's people__v20240101: not a number
    )
    version = max(used, default=0) + 1
    if version > MAX_VERSION:
        raise PublishError(
            f"{qualified(target)!r} has used every version number up to {MAX_VERSION}: publish to a new target.table"
        )
    return version


def migrate(target: WarehouseTable, trigger: str = "cli") -> Published:
    """Make the *table* at ``target``'s name a version, on the user's explicit request (``synthgate migrate``).

    For a table an older release published as a plain table (or one the user hands over): it is renamed to the next
    version table, recorded with a ``migrate`` event (the older release's catalog row gets the number) and replaced
    by the view, in one transaction. From then on it is Synthgate's: ``keep_versions`` may prune it. Publishing
    never does this on its own: it refuses a table it did not create.
    """
    engine = governed_engine(target)
    governance.ensure_governance_tables(engine)
    try:
        with _locked_transaction(engine, target) as conn:
            kind = kind_of(conn, target.table, target.db_schema)
            if kind != "table":
                state = "a view (Synthgate's versions are behind it)" if kind == "view" else "absent"
                raise PublishError(f"target {described(target)} is {state}: there is no table to migrate")
            previous = governance.current_version(conn, target.table)
            version = _next_version(conn, target)
            new_name = version_table_name(target.table, version)
            latest = conn.execute(
                sa.select(governance.CATALOG.c.run_id)
                .where(governance.CATALOG.c.published_table == target.table, governance.CATALOG.c.version.is_(None))
                .order_by(governance.CATALOG.c.created_at.desc())
                .limit(1)
            ).scalar_one_or_none()
            if latest is not None:
                conn.execute(
                    governance.CATALOG.update()
                    .where(governance.CATALOG.c.run_id == latest)
                    .values(version=version, version_table=new_name)
                )
            # Recorded before the rename: on MySQL the rename commits on its own, and a migration killed after it
            # must still be on record (an unrecorded renamed table would be nobody's, and kept forever).
            governance.record_event(
                conn,
                target.table,
                "migrate",
                version,
                previous,
                latest,
                trigger,
                detail=f"the table at the target name became version {version} (synthgate migrate)",
            )
            source, renamed = quoted(conn, target.table, target.db_schema), quoted(conn, new_name, target.db_schema)
            if conn.dialect.name in ("mysql", "mariadb"):
                conn.execute(sa.text(f"RENAME TABLE {source} TO {renamed}"))
            else:
                conn.execute(sa.text(f"ALTER TABLE {source} RENAME TO {quoted(conn, new_name)}"))
            _point_view(conn, target, version)
    except SQLAlchemyError as exc:
        raise PublishError(
            f"migrating {qualified(target)!r} failed ({driver_error(exc)}); the table is unchanged"
        ) from exc
    log.info("migrated the table %s to version %d behind a view", qualified(target), version)
    return Published(qualified(target), version, new_name, previous)


@contextmanager
def _locked_transaction(
    engine: Engine, target: WarehouseTable, also: tuple[WarehouseTable, ...] = ()
) -> Iterator[Connection]:
    """One transaction on ``engine`` under the advisory locks of ``target`` and of the tables ``also`` (what a
    rollback or migration changes), taken in one order, as a publish of several tables takes them."""
    with engine.connect() as lock_conn, ExitStack() as locks:
        for key in sorted({_lock_key(t) for t in (target, *also)}):
            locks.enter_context(governance.advisory_lock(lock_conn, key))
        with engine.connect() as conn, conn.begin():
            _begin(conn)
            yield conn


def _rolled_back_comment(conn: Connection, target: WarehouseTable, version: int, previous: int | None) -> None:
    """The view's comment after a rollback (PostgreSQL): the version table's lineage, and where it came back from."""
    if conn.dialect.name != "postgresql":
        return
    source = quoted(conn, version_table_name(target.table, version), target.db_schema)
    comment = conn.execute(sa.text("SELECT obj_description(CAST(:t AS regclass), 'pg_class')"), {"t": source}).scalar()
    _comment(conn, target, None, f"{comment or ''} [rolled back from version {previous}]".strip())


def _beside(target: WarehouseTable, table: str) -> WarehouseTable:
    """The table ``table`` in ``target``'s warehouse and schema (a child table published with it)."""
    return WarehouseTable.model_validate({"url": target.url, "table": table, "schema": target.db_schema})


def _linked_children(
    conn: Connection, target: WarehouseTable, current: int, to_version: int
) -> list[tuple[WarehouseTable, int | None]]:
    """The child tables published with ``target`` at either version, each with its current version: every one must
    keep ``to_version`` (a parent and its children move together, or not at all). A child whose view was dropped is
    retired: it stays without one."""
    children = governance.children_of(conn, target.table, {current, to_version})
    moves = []
    for name in sorted(children):
        child = _beside(target, name)
        if kind_of(conn, name, target.db_schema) is None:  # retired: its view was dropped, and stays so
            continue
        kept = ownership(conn, child).published & set(version_tables(conn, child))
        if to_version not in kept or to_version not in children[name]:
            raise PublishError(
                f"version {to_version} of {qualified(target)!r} cannot be restored with its child table {name!r}, "
                f"which was not published with it or is no longer kept (kept: {sorted(kept)}); pick another version "
                "with --to"
            )
        refuse_foreign_target(conn, child)  # a user's view or table at the child's name is never replaced
        child_current = governance.current_version(conn, name)
        if child_current is not None and governance.parent_of(conn, name, child_current) != target.table:
            raise PublishError(
                f"{name!r} was published with {qualified(target)!r} but now points at its version {child_current}, "
                "published on its own: roll it back by itself; nothing was changed"
            )
        moves.append((child, child_current))
    return moves


def prune_versions(engine: Engine, target: WarehouseTable, keep_versions: int) -> tuple[int, ...]:
    """Drop Synthgate's own versions past the newest ``keep_versions`` and the version tables killed publishes
    claimed and never published; never the current version nor one the view reads, and never a table Synthgate did
    not record creating, whatever its name. Returns the dropped numbers."""
    with engine.connect() as conn, conn.begin():
        _begin(conn)
        owned = ownership(conn, target)
        on_disk = version_tables(conn, target)
        protected = {governance.current_version(conn, target.table)}
        if kind_of(conn, target.table, target.db_schema) == "view":
            protected |= view_versions(conn, target) or set()
        published = sorted(v for v in owned.published if v in on_disk)
        keep = set(published[-keep_versions:]) | protected
        details = {v: f"beyond keep_versions={keep_versions}" for v in published if v not in keep}
        details |= {
            v: f"left by run {run} (claimed, never published: a killed publish)"
            for v, run in owned.leftovers.items()
            if v in on_disk and v not in protected
        }
        dropped = tuple(sorted(details))
        for version in dropped:
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {quoted(conn, on_disk[version], target.db_schema)}"))
            governance.record_event(conn, target.table, "prune", version, detail=details[version])
    return dropped


def kept_versions(target: WarehouseTable) -> list[int]:
    """Version numbers of Synthgate's own versions whose tables still exist (rollback targets)."""
    engine = governed_engine(target, read_only=True)
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table(governance.EVENTS.name, schema=target.db_schema):
            return []
        owned = governance.recorded_versions(conn, target.table) - governance.pruned_versions(conn, target.table)
        return sorted(v for v in version_tables(conn, target) if v in owned)


def rollback(
    target: WarehouseTable, to_version: int | None = None, trigger: str = "cli", reason: str | None = None
) -> Published:
    """Point the user-facing name at an earlier kept version (default: the newest one below the current); ``reason``
    is recorded as the rollback event's detail."""
    engine = governed_engine(target)
    governance.ensure_governance_tables(engine)
    views = _MovedViews()
    try:
        # the child tables ever published with it: locked too, since they may move with it
        linked = tuple(_beside(target, name) for name in governance.children_ever(engine, target.table))
        with _locked_transaction(engine, target, linked) as conn:
            current = governance.current_version(conn, target.table)
            if current is None:
                raise PublishError(f"{qualified(target)!r} has never been published as a version: nothing to roll back")
            parent = governance.parent_of(conn, target.table, current)
            if parent is not None:
                raise PublishError(
                    f"{qualified(target)!r} is published with its parent table {parent!r} as one version: roll back "
                    f"{parent!r}, and this table moves with it"
                )
            refuse_foreign_target(conn, target)
            owned = ownership(conn, target).published
            kept = {v: n for v, n in version_tables(conn, target).items() if v in owned}
            if to_version is None:
                earlier = [v for v in kept if v < current]
                if not earlier:
                    raise PublishError(
                        f"{qualified(target)!r} is at version {current} and no earlier version is kept "
                        f"(kept: {sorted(kept)}); raise publishing.keep_versions to keep more"
                    )
                to_version = max(earlier)
            if to_version not in kept:
                raise PublishError(
                    f"version {to_version} of {qualified(target)!r} is not kept (kept: {sorted(kept)}); "
                    "pick one of those with --to"
                )
            if to_version == current:
                raise PublishError(f"{qualified(target)!r} already points at version {current}")
            if (parent := governance.parent_of(conn, target.table, to_version)) is not None:
                raise PublishError(
                    f"version {to_version} of {qualified(target)!r} was published with its parent table {parent!r} "
                    "as one version: back on its own, its keys would name other rows; roll back with the parent"
                )
            children = _linked_children(conn, target, current, to_version)
            row = conn.execute(
                sa.select(governance.CATALOG.c.run_id).where(
                    governance.CATALOG.c.published_table == target.table, governance.CATALOG.c.version == to_version
                )
            ).scalar_one_or_none()
            # Every view first, then every event: on MySQL/MariaDB a view's DDL commits what came before it, so an
            # event written between two moves would stand though the second move failed and the first went back
            moves = [(target, current, reason), *((c, v, f"with its parent {target.table}") for c, v in children)]
            for table, previous, _ in moves:  # the child tables published with the parent move with it
                views.point(conn, table, to_version, previous)
                _rolled_back_comment(conn, table, to_version, previous)
            for table, previous, detail in moves:
                if table is not target and reason:
                    detail = f"{detail}: {reason}"
                governance.record_event(
                    conn, table.table, "rollback", to_version, previous, row, trigger, detail=detail
                )
    except SQLAlchemyError as exc:
        raise PublishError(
            f"rolling back {qualified(target)!r} failed ({driver_error(exc)}); "
            + (views.undone(engine) or "the name still points at the version it did before")
        ) from exc
    log.info("rolled %s back from version %d to %d", qualified(target), current, to_version)
    return Published(qualified(target), to_version, kept[to_version], current)
