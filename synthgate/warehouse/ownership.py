"""What at a target is Synthgate's to replace or drop, and the checks a publish makes before any read or spend.

**Synthgate drops or replaces only what it recorded creating** (ownership is a recorded fact, never a naming
pattern): version tables recorded by a ``publish`` or ``migrate`` event and not pruned since, version tables it
*claimed* (a ``synthgate_claims`` row committed on its own before the ``CREATE TABLE``) but never published, and
the view at the target name that is the plain ``SELECT *`` of one of those it makes (a user's view over a version,
with a filter or some columns, is theirs). A table merely named like a version (``<target>__v7``,
``<target>__staging_x``) is never dropped: the next version number skips it. A target name taken by anything
else (a table, someone's view) is refused before any read or spend (:func:`check_target`, in the flow's
preflight) and again inside the publish. On MySQL/MariaDB, where DDL commits implicitly, a killed publish can leave
the version table it claimed (:func:`claim_stamp`): the next publish drops it after publishing (the view never
reads it). A linked pair (a parent and the child tables published with it) is never published apart
(:func:`check_pair`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from synthgate.errors import PublishError, SpecError, WarehouseError
from synthgate.spec import WarehouseTable
from synthgate.warehouse import governance
from synthgate.warehouse.engine import driver_error, governed_engine, is_transient, qualified


def version_table_name(table: str, version: int) -> str:
    """The name of ``table``'s version ``version``: ``<table>__v<version>``."""
    return f"{table}__v{version}"


#: The highest version number: a target name must leave room for ``<target>__v9999``.
MAX_VERSION = 9999
_VERSION_ROOM = len(version_table_name("", MAX_VERSION))
_DIALECT_NAMES = {"postgresql": "PostgreSQL", "mysql": "MySQL/MariaDB", "mariadb": "MySQL/MariaDB"}


def check_target_names(target: WarehouseTable, engine: Engine) -> None:
    """Refuse, before anything is spent, a target whose version tables' names (``<target>__v<N>``) the warehouse
    would truncate or refuse: PostgreSQL allows 63 bytes, MySQL/MariaDB 64 characters. Raises :class:`SpecError`."""
    # SQLAlchemy's MySQL dialect reports 255 (its alias limit): a MySQL/MariaDB table name has 64 characters.
    limit = 64 if engine.dialect.name in ("mysql", "mariadb") else engine.dialect.max_identifier_length
    if not limit or engine.dialect.name == "sqlite":
        return

    # PostgreSQL counts bytes (it truncates longer names); MySQL/MariaDB count characters.
    def size(name: str) -> int:
        return len(name.encode()) if engine.dialect.name == "postgresql" else len(name)

    unit = "bytes" if engine.dialect.name == "postgresql" else "characters"
    longest = version_table_name(target.table, MAX_VERSION)
    if size(longest) > limit:
        raise SpecError(
            f"target.table {target.table!r} is {size(target.table)} {unit}: its version tables "
            f"'{target.table}__v<N>' need up to {size(longest)} and "
            f"{_DIALECT_NAMES.get(engine.dialect.name, engine.dialect.name)} allows {limit}; "
            f"shorten target.table to at most {limit - _VERSION_ROOM} {unit}"
        )


def check_target_privileges(target: WarehouseTable, engine: Engine) -> None:
    """Refuse, before anything is spent, a target role that cannot create tables in the target schema (PostgreSQL
    ``has_schema_privilege``, MySQL/MariaDB grants, SQLite file writability). Writes nothing. Raises
    :class:`WarehouseError` naming the schema."""
    dialect = engine.dialect.name
    try:
        with engine.connect() as conn:
            if dialect == "postgresql":
                schema = target.db_schema or conn.execute(sa.text("SELECT current_schema()")).scalar()
                exists = conn.execute(
                    sa.text("SELECT count(*) FROM pg_namespace WHERE nspname = :s"), {"s": schema}
                ).scalar()
                allowed = bool(exists) and bool(
                    conn.execute(
                        sa.text("SELECT has_schema_privilege(current_user, :s, 'CREATE')"), {"s": schema}
                    ).scalar()
                )
            elif dialect in ("mysql", "mariadb"):
                schema = target.db_schema or conn.execute(sa.text("SELECT DATABASE()")).scalar()
                exists = (
                    schema
                    and conn.execute(
                        sa.text("SELECT count(*) FROM information_schema.schemata WHERE schema_name = :s"),
                        {"s": schema},
                    ).scalar()
                )
                allowed = bool(exists) and schema is not None and _mysql_can_create(conn, schema)
            elif dialect == "sqlite":
                schema = target.db_schema or "main"
                allowed = _sqlite_writable(conn, schema)
            else:  # another warehouse: its own error at publish time
                return
    except SQLAlchemyError as exc:
        raise WarehouseError(
            f"cannot check the privileges on the target {qualified(target)!r} in {target.display_url}: "
            f"{driver_error(exc)}",
            transient=is_transient(exc),
        ) from None
    if not allowed:  # waiting does not create a schema or grant a privilege: not retried
        raise WarehouseError(
            f"the target role cannot create tables in schema {schema!r} of {target.display_url}: publishing "
            f"{target.table!r} needs CREATE on that schema (and it must exist); grant it or choose another "
            "target.schema",
            transient=False,
        )


def _mysql_can_create(conn: Connection, schema: str) -> bool:
    """CREATE and INSERT on the database (or globally), from information_schema's view of the current user's grants.

    CREATE VIEW and DROP count too: publishing creates view and version tables and prunes old versions."""
    needed = {"CREATE", "INSERT", "CREATE VIEW", "DROP"}
    grantee = conn.execute(sa.text("SELECT CURRENT_USER()")).scalar() or ""
    user, _, host = grantee.rpartition("@")
    account = f"'{user}'@'{host}'"
    granted = {
        r[0]
        for r in conn.execute(
            sa.text("SELECT privilege_type FROM information_schema.user_privileges WHERE grantee = :g"), {"g": account}
        )
    }
    granted |= {
        r[0]
        for r in conn.execute(
            sa.text(
                "SELECT privilege_type FROM information_schema.schema_privileges "
                "WHERE grantee = :g AND :s LIKE table_schema"
            ),
            {"g": account, "s": schema},
        )
    }
    return needed <= granted


def _sqlite_writable(conn: Connection, schema: str) -> bool:
    import os

    files = {r[1]: r[2] for r in conn.execute(sa.text("PRAGMA database_list"))}
    if schema not in files:
        return False
    path = files[schema]
    if not path:  # in memory
        return True
    folder = os.path.dirname(os.path.abspath(path))
    # SQLite writes a journal beside the file: the folder must be writable too.
    return (
        os.access(path, os.W_OK)
        and os.access(folder, os.W_OK)
        and not conn.execute(sa.text("PRAGMA query_only")).scalar()
    )


def kind_of(conn: Connection, name: str, schema: str | None) -> str | None:
    """'view', 'table' or None for the user-facing name."""
    inspector = sa.inspect(conn)
    if name in inspector.get_view_names(schema=schema):
        return "view"
    if inspector.has_table(name, schema=schema):
        return "table"
    return None


def version_tables(conn: Connection, target: WarehouseTable) -> dict[int, str]:
    """Every table named like a version of ``target``, Synthgate's or not (see :func:`ownership`)."""
    pattern = re.compile(re.escape(target.table) + r"__v(\d+)$")
    names = sa.inspect(conn).get_table_names(schema=target.db_schema)
    return {int(m.group(1)): name for name in names if (m := pattern.match(name))}


def taken_versions(conn: Connection, target: WarehouseTable) -> set[int]:
    """Numbers whose version name a table or a view already holds, whoever created it."""
    pattern = re.compile(re.escape(target.table) + r"__v(\d+)$")
    names = sa.inspect(conn).get_view_names(schema=target.db_schema)
    return set(version_tables(conn, target)) | {int(m.group(1)) for name in names if (m := pattern.match(name))}


@dataclass(frozen=True)
class Ownership:
    """The version tables of one target that Synthgate recorded creating."""

    published: frozenset[int]  # recorded by a publish or migrate event, not pruned since
    leftovers: dict[int, str]  # claimed, created (stamped), never published nor pruned: the claiming run

    @property
    def all(self) -> frozenset[int]:
        """Every version table of the target Synthgate owns."""
        return self.published | frozenset(self.leftovers)


def ownership(conn: Connection, target: WarehouseTable) -> Ownership:
    """Synthgate's version tables of ``target``: those a publish or migrate recorded, and the leftovers of killed
    publishes. A claim alone is no proof: where DDL is transactional a failed publish's table was rolled back with it,
    and a table at that name since is a user's. A leftover is one whose table carries its claiming run's stamp
    (:func:`claim_stamp`, given at CREATE TABLE where DDL commits on its own)."""
    recorded = governance.recorded_versions(conn, target.table)
    pruned = governance.pruned_versions(conn, target.table)
    claimed = governance.claimed_versions(conn, target.table)
    unfinished = {v: run for v, run in claimed.items() if v not in recorded and v not in pruned}
    on_disk = version_tables(conn, target) if unfinished else {}
    leftovers = {
        v: run
        for v, run in unfinished.items()
        if v in on_disk and run is not None and _comment_of(conn, on_disk[v], target.db_schema) == claim_stamp(run)
    }
    return Ownership(frozenset(recorded - pruned), leftovers)


def _comment_of(conn: Connection, table: str, schema: str | None) -> str | None:
    """A table's comment, None where it has none or the dialect keeps none (SQLite)."""
    try:
        return sa.inspect(conn).get_table_comment(table, schema=schema).get("text")
    except (NotImplementedError, sa.exc.NoSuchTableError):
        return None


def _view_definition(conn: Connection, target: WarehouseTable) -> str | None:
    """The definition of the view at the target name as the warehouse prints it; None where it does not say."""
    try:
        definition = sa.inspect(conn).get_view_definition(target.table, schema=target.db_schema)
    except (NotImplementedError, sa.exc.NoSuchTableError):
        return None
    return str(definition) if definition else None


def view_versions(conn: Connection, target: WarehouseTable, definition: str | None = None) -> set[int] | None:
    """The version numbers the view at the target name reads from; None when the warehouse does not say."""
    definition = definition or _view_definition(conn, target)
    if definition is None:
        return None
    candidates = (
        taken_versions(conn, target)
        | governance.recorded_versions(conn, target.table)
        | set(governance.claimed_versions(conn, target.table))
    )
    prep = conn.dialect.identifier_preparer
    reads = set()
    for (
        version
    ) in candidates:  # the name as written bare, or quoted (quotes inside a name doubled) as catalogs print it
        name = version_table_name(target.table, version)
        bare = re.compile(r"(?<![\w$])" + re.escape(name) + r"(?![\w$])")
        quoted = {prep.quote_identifier(name), '"' + name.replace('"', '""') + '"', "`" + name.replace("`", "``") + "`"}
        if bare.search(definition) or any(q in definition for q in quoted):
            reads.add(version)
    return reads


# A view definition's tokens: a quoted name ("", ``, []), a word, or one other character
_TOKEN = re.compile(r'"(?:[^"]|"")*"|`(?:[^`]|``)*`|\[[^\]]*\]|[^\W\d][\w$]*|\S')
_PLAIN_WORDS = frozenset({"select", "from", "as"})


def _selects_whole(conn: Connection, target: WarehouseTable, definition: str, version: int) -> bool:
    """Whether the view at the target name is the one :func:`_point_view` makes for ``version``: it has the version
    table's columns, in order, under their names, and its definition from its first SELECT names nothing but that
    table, its schema and its columns (SELECT, FROM, AS and the commas, dots and star between them).

    A view a user defined at that name over Synthgate's version (a filter, a join, some columns) reads that version
    too; it is theirs, and replacing it would lose their definition."""
    table = version_table_name(target.table, version)
    inspector = sa.inspect(conn)
    try:
        columns = [c["name"] for c in inspector.get_columns(table, schema=target.db_schema)]
        shown = [c["name"] for c in inspector.get_columns(target.table, schema=target.db_schema)]
    except sa.exc.NoSuchTableError:
        return False
    if shown != columns:
        return False
    names = {table, *columns, *([target.db_schema] if target.db_schema else [])}
    tokens = _TOKEN.findall(definition)
    words = [t.lower() for t in tokens]
    if "select" not in words:
        return False
    named, aliased = None, None  # the last name read; after AS, the name the alias must repeat
    for token in tokens[words.index("select") :]:
        if token.lower() == "as":
            aliased = named
            continue
        if token in (",", ".", ";", "*") or token.lower() in _PLAIN_WORDS:
            continue
        if token[0] in '"`[' and len(token) > 1:
            token = token[1:-1].replace(token[0] * 2, token[0]) if token[0] != "[" else token[1:-1]
        if token not in names or (aliased is not None and token != aliased):  # `a AS b`: a column renamed
            return False
        named, aliased = token, None
    return True


def described(target: WarehouseTable) -> str:
    """The target as messages name it: its table, with its schema when it has one."""
    return f"{target.table} (schema {target.db_schema})" if target.db_schema else target.table


def _foreign_target(conn: Connection, target: WarehouseTable) -> str | None:
    """Why the target name is not Synthgate's to replace, or None: it is free, or it is the view Synthgate created."""
    kind = kind_of(conn, target.table, target.db_schema)
    if kind is None:
        return None
    refuse = "refusing to replace it. Choose another target.table, or drop/rename it yourself"
    if kind == "table":
        older = (
            ". If an older Synthgate release published it (its catalog says so), `synthgate migrate SPEC` keeps it "
            "as a version behind a view"
            if governance.has_older_release_rows(conn, target.table)
            else ""
        )
        return f"target {described(target)} is a table Synthgate did not create: {refuse}{older}"
    definition = _view_definition(conn, target)
    reads = view_versions(conn, target, definition)
    if definition is None or reads is None:  # not readable here: Synthgate's when it recorded pointing the name
        ours = governance.current_version(conn, target.table) is not None
    else:
        ours = bool(reads) and reads <= ownership(conn, target).all
        if ours and not (len(reads) == 1 and _selects_whole(conn, target, definition, next(iter(reads)))):
            return (
                f"target {described(target)} is a view over Synthgate's versions that Synthgate did not create (it "
                "is not the plain SELECT * Synthgate makes): refusing to replace it. Choose another target.table, "
                "or drop it yourself and the next publish makes Synthgate's view again"
            )
    return None if ours else f"target {described(target)} is a view Synthgate did not create: {refuse}"


def refuse_foreign_target(conn: Connection, target: WarehouseTable) -> None:
    """Raise :class:`PublishError` inside a publish or rollback when the target name is not Synthgate's to move."""
    reason = _foreign_target(conn, target)
    if reason is not None:
        raise PublishError(f"{reason}; nothing was changed")


def check_target(target: WarehouseTable) -> None:
    """Refuse (:class:`PublishError`, naming the object) a target whose name is taken by an object Synthgate did not
    create. Reads the target's catalog only: the flow runs it before any budget is reserved or source row read."""
    _refuse_before_any_cost(target, lambda conn: _foreign_target(conn, target))


def _refuse_before_any_cost(target: WarehouseTable, reason_of: Callable[[Connection], str | None]) -> None:
    """:class:`PublishError` with ``reason_of``'s reason, read from ``target``'s warehouse and catalog, if any."""
    engine = governed_engine(target)
    governance.ensure_governance_tables(engine)
    try:
        with engine.connect() as conn:
            reason = reason_of(conn)
    except SQLAlchemyError as exc:
        raise PublishError(f"checking the target {qualified(target)!r} failed ({driver_error(exc)})") from exc
    if reason is not None:
        raise PublishError(f"{reason}. Nothing was read and no budget was spent")


def broken_pair(conn: Connection, targets: list[WarehouseTable]) -> str | None:
    """Why publishing ``targets`` (a parent, then the children published with it) would leave a linked pair apart, or
    None. Each child table's rows name its parent's rows by keys that mean something only in the version they were
    published with: a parent published without a child that is linked to it now leaves that child's keys naming
    other parents; a table published now as a child of another parent, or on its own, breaks the pair it is in."""
    parent, names = targets[0], {t.table for t in targets}
    for child in governance.children_linked_now(conn, parent.table):  # a child whose view was dropped is retired
        if child not in names and kind_of(conn, child, parent.db_schema) is not None:
            return (
                f"{child!r} is published with {parent.table!r} as one version, and publishing {parent.table!r} "
                "without it would leave its keys naming other rows: list it under children in the spec, or drop its "
                "view to retire it"
            )
    for target in targets:
        current = governance.current_version(conn, target.table)
        if current is None or kind_of(conn, target.table, target.db_schema) is None:
            continue
        linked_to = governance.parent_of(conn, target.table, current)
        if linked_to is not None and linked_to != (None if target is parent else parent.table):
            return (
                f"{target.table!r} is published as a child of {linked_to!r}: refresh it through that table's spec, "
                "or drop its view to publish it apart"
            )
    return None


def check_pair(targets: list[WarehouseTable]) -> None:
    """Refuse (:class:`PublishError`) a publish of ``targets`` (a parent, then its children) that would leave a linked
    pair apart (:func:`broken_pair`). Reads the target's catalog only, before any budget is reserved."""
    _refuse_before_any_cost(targets[0], lambda conn: broken_pair(conn, targets))


def claim_stamp(run_id: str) -> str:
    """The comment a version table is created with where DDL commits on its own (MySQL, MariaDB): the claiming run,
    so a table a killed publish left is told from a user's table created at that name since (:func:`ownership`)."""
    return f"synthgate claim {run_id}"
