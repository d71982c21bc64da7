"""Synthgate destroys only what it recorded creating: on PostgreSQL, SQLite and MariaDB, a user's tables named like
versions, staging tables or the target itself survive publishes, prunes and rollbacks byte for byte; a target name
taken by someone else's table or view is refused before any read or spend; only ``synthgate migrate`` turns a table
into a version; a killed publish on MariaDB (DDL commits on its own) leaves a claimed table Synthgate alone drops."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
import yaml
from typer.testing import CliRunner

from synthgate.errors import PublishError, SpecError
from synthgate.spec import WarehouseTable, spec_from_dict
from synthgate.warehouse import governance
from synthgate.warehouse.ownership import check_pair, check_target
from synthgate.warehouse.publish import Publication, kept_versions, publish_together, rollback
from tests.conftest import PG_URL
from tests.warehouse.publishing import COLUMNS, catalog_writer, publish_version, version_frame

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
MARIADB_URL = os.environ.get("SYNTHGATE_TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/test")
TARGET = "people_synthetic"


@dataclass
class Warehouse:
    url: str
    schema: str | None
    engine: sa.Engine

    def table(self, name: str = TARGET) -> WarehouseTable:
        return WarehouseTable(url=self.url, table=name, schema=self.schema)

    def governed(self) -> sa.Engine:
        return self.engine.execution_options(schema_translate_map={None: self.schema}) if self.schema else self.engine

    def q(self, name: str) -> str:
        prep = self.engine.dialect.identifier_preparer
        return f"{prep.quote_schema(self.schema)}.{prep.quote(name)}" if self.schema else prep.quote(name)

    def tables(self) -> set[str]:
        return set(sa.inspect(self.engine).get_table_names(schema=self.schema))

    def views(self) -> set[str]:
        return set(sa.inspect(self.engine).get_view_names(schema=self.schema))

    def user_table(self, name: str, seed: int = 0) -> None:
        """A small table of the user's: text with quotes and commas, floats, nulls, dates."""
        frame = pd.DataFrame(
            {
                "id": [1, 2, 3, 4 + seed],
                "name": ["a", 'b,"quoted"', None, f"user's {seed}"],
                "amount": [1.5, -0.25, None, 1e10 + seed],
                "day": pd.to_datetime(["2024-01-01 00:00:00", None, "1999-12-31 23:59:59", "2024-02-29 12:00:00"]),
            }
        )
        frame.to_sql(name, self.engine, schema=self.schema, index=False)

    def snapshot(self, name: str) -> tuple:
        """The table's kind, column types and every row (ordered by all columns): equal means intact."""
        assert name in self.tables(), f"{name} is gone"
        columns = sa.inspect(self.engine).get_columns(name, schema=self.schema)
        prep = self.engine.dialect.identifier_preparer
        order = ", ".join(prep.quote(c["name"]) for c in columns)
        with self.engine.connect() as conn:
            rows = conn.execute(sa.text(f"SELECT * FROM {self.q(name)} ORDER BY {order}")).all()
        return tuple((c["name"], str(c["type"])) for c in columns), tuple(tuple(r) for r in rows)

    def read_name(self, name: str = TARGET) -> tuple:
        with self.engine.connect() as conn:
            return tuple(conn.execute(sa.text(f"SELECT count(*), min(marker), max(marker) FROM {self.q(name)}")).one())


def _postgres(pg_engine: sa.Engine) -> Iterator[Warehouse]:
    schema = f"sg_{uuid.uuid4().hex[:10]}"
    with pg_engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield Warehouse(PG_URL, schema, pg_engine)
    finally:
        with pg_engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))


def _mariadb() -> Iterator[Warehouse]:
    pytest.importorskip("pymysql")
    engine = sa.create_engine(MARIADB_URL)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError:
        pytest.skip(f"MariaDB/MySQL not reachable at {MARIADB_URL}")
    database = f"sg_{uuid.uuid4().hex[:10]}"
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE DATABASE `{database}`"))
    try:
        yield Warehouse(MARIADB_URL, database, engine)
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP DATABASE `{database}`"))
        engine.dispose()


@pytest.fixture(params=["postgresql", "sqlite", "mariadb"])
def warehouse(request, tmp_path) -> Iterator[Warehouse]:
    if request.param == "postgresql":
        yield from _postgres(request.getfixturevalue("pg_engine"))
    elif request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'warehouse.db'}"
        engine = sa.create_engine(url)
        yield Warehouse(url, None, engine)
        engine.dispose()
    else:
        yield from _mariadb()


@pytest.fixture
def mariadb() -> Iterator[Warehouse]:
    yield from _mariadb()


def spec_for(warehouse: Warehouse, source: dict, target: str = TARGET, name: str = "people", cap: float = 5.0):
    return spec_from_dict(
        {
            "name": name,
            "source": source,
            "target": {
                "url": warehouse.url,
                "table": target,
                **({"schema": warehouse.schema} if warehouse.schema else {}),
            },
            "privacy": {"epsilon": 1.0, "delta": 1e-5, "cap": cap},
        }
    )


# -- tables named like Synthgate's own -------------------------------------------------------------------------------


def test_user_tables_named_like_versions_or_staging_survive_publishes_prunes_and_rollbacks(warehouse):
    mine = [f"{TARGET}__v1", f"{TARGET}__v3", f"{TARGET}__previous_x", f"{TARGET}__staging_x", f"{TARGET}__v2_backup"]
    for seed, name in enumerate(mine):
        warehouse.user_table(name, seed)
    before = {name: warehouse.snapshot(name) for name in mine}

    first = publish_version(warehouse.table(), version_frame(1, 50), "run00001", keep=1)
    assert first.version == 4  # numbers held by someone else's tables are skipped
    warehouse.user_table(f"{TARGET}__v5", 9)  # a user table at the very next number, created between publishes
    mine.append(f"{TARGET}__v5")
    before[f"{TARGET}__v5"] = warehouse.snapshot(f"{TARGET}__v5")
    numbers = [
        publish_version(warehouse.table(), version_frame(m, 50 + m), f"run{m:05d}", keep=1).version for m in (2, 3, 4)
    ]
    assert numbers == [6, 7, 8]
    assert warehouse.read_name() == (54, 4, 4)

    assert {name: warehouse.snapshot(name) for name in mine} == before
    assert {t for t in warehouse.tables() if t.startswith(TARGET)} == {*mine, f"{TARGET}__v8"}
    events = governance.event_rows(warehouse.governed(), TARGET)
    assert [e["version"] for e in events if e["action"] == "prune"] == [4, 6, 7]  # Synthgate's own only
    assert kept_versions(warehouse.table()) == [8]
    with pytest.raises(PublishError, match=r"version 3 .* is not kept \(kept: \[8\]\)"):
        rollback(warehouse.table(), to_version=3)  # a user's table is never pointed at either
    assert {name: warehouse.snapshot(name) for name in mine} == before


def test_a_source_named_like_a_version_of_the_target_survives(warehouse):
    source = "srcv__v1"
    warehouse.user_table(source)
    before = warehouse.snapshot(source)
    spec = spec_for(
        warehouse,
        {"url": warehouse.url, "table": source, **({"schema": warehouse.schema} if warehouse.schema else {})},
        target="srcv",
    )
    check_target(spec.target)  # the target name is free: nothing to refuse
    versions = [publish_version(spec.target, version_frame(m, 20), f"run{m:05d}", keep=1).version for m in (1, 2, 3)]
    assert versions == [2, 3, 4]
    assert warehouse.snapshot(source) == before
    assert warehouse.read_name("srcv") == (20, 3, 3)


# -- a target name taken by someone else --------------------------------------------------------------------------


def test_a_user_table_at_the_target_is_refused_by_the_preflight_before_any_read_or_spend(warehouse, tmp_path):
    from synthgate.tasks.budget import preflight

    warehouse.user_table(TARGET)
    before = warehouse.snapshot(TARGET)
    source_file = tmp_path / "source-never-opened.db"  # connecting to it would create it
    spec = spec_for(warehouse, {"url": f"sqlite:///{source_file}", "table": "people"})

    with pytest.raises(PublishError) as refused:
        preflight.fn(spec, 5.0)
    where = f"{TARGET} (schema {warehouse.schema})" if warehouse.schema else TARGET
    assert f"target {where} is a table Synthgate did not create: refusing to replace it" in str(refused.value)
    assert "Nothing was read and no budget was spent" in str(refused.value)
    assert not source_file.exists()
    assert governance.ledger_rows(warehouse.governed()) == []

    with pytest.raises(PublishError, match=f"target {TARGET}.* is a table Synthgate did not create"):
        publish_version(warehouse.table(), version_frame(1, 20), "run00001")  # publish() checks again itself
    assert warehouse.snapshot(TARGET) == before
    assert not [t for t in warehouse.tables() if t.startswith(f"{TARGET}__")]
    with warehouse.governed().connect() as conn:
        assert governance.claimed_versions(conn, TARGET) == {}  # refused before claiming anything
    assert governance.event_rows(warehouse.governed()) == []


def test_a_user_view_at_the_target_is_refused_and_kept(warehouse):
    warehouse.user_table("people_real")
    with warehouse.engine.begin() as conn:
        conn.execute(sa.text(f"CREATE VIEW {warehouse.q(TARGET)} AS SELECT * FROM {warehouse.q('people_real')}"))
    with pytest.raises(PublishError, match=f"target {TARGET}.* is a view Synthgate did not create"):
        check_target(warehouse.table())
    with pytest.raises(PublishError, match="is a view Synthgate did not create"):
        publish_version(warehouse.table(), version_frame(1, 20), "run00001")
    assert TARGET in warehouse.views()
    with warehouse.engine.connect() as conn:
        assert conn.execute(sa.text(f"SELECT count(*) FROM {warehouse.q(TARGET)}")).scalar() == 4


@pytest.mark.parametrize(
    "select",
    [
        "SELECT marker, score FROM {v}",
        "SELECT * FROM {v} WHERE marker > 1",
        "SELECT marker AS kept, score FROM {v}",
        "SELECT score AS marker, marker AS score, label, seen, flag FROM {v}",  # every name, two swapped
    ],
)
def test_a_user_view_over_synthgate_s_version_at_the_target_is_refused_and_kept(warehouse, select):
    # It reads only Synthgate's version, but it is the user's definition: replacing it would lose it.
    publish_version(warehouse.table(), version_frame(1, 20), "run00001")
    with warehouse.engine.begin() as conn:
        conn.execute(sa.text(f"DROP VIEW {warehouse.q(TARGET)}"))
        view = select.format(v=warehouse.q(f"{TARGET}__v1"))
        conn.execute(sa.text(f"CREATE VIEW {warehouse.q(TARGET)} AS {view}"))
    with pytest.raises(PublishError, match="a view over Synthgate's versions that Synthgate did not create"):
        check_target(warehouse.table())
    with pytest.raises(PublishError, match="drop it yourself"):
        publish_version(warehouse.table(), version_frame(2, 20), "run00002")
    with pytest.raises(PublishError, match="did not create"):
        rollback(warehouse.table(), to_version=1)
    with warehouse.engine.connect() as conn:  # still the user's definition
        shown = sa.inspect(conn).get_columns(TARGET, schema=warehouse.schema)
        assert len(shown) < len(warehouse.snapshot(f"{TARGET}__v1")[0]) or "WHERE" in select or "AS marker" in select
    with warehouse.engine.begin() as conn:
        conn.execute(sa.text(f"DROP VIEW {warehouse.q(TARGET)}"))
    assert publish_version(warehouse.table(), version_frame(2, 20), "run00002").version == 2
    check_target(warehouse.table())  # Synthgate's own view again


def test_the_target_replaced_by_a_user_table_after_publishing_is_refused(warehouse):
    publish_version(warehouse.table(), version_frame(1, 20), "run00001")
    with warehouse.engine.begin() as conn:  # the user drops Synthgate's view and puts a table of theirs there
        conn.execute(sa.text(f"DROP VIEW {warehouse.q(TARGET)}"))
    warehouse.user_table(TARGET)
    before = warehouse.snapshot(TARGET)
    with pytest.raises(PublishError, match="is a table Synthgate did not create"):
        check_target(warehouse.table())
    with pytest.raises(PublishError, match="is a table Synthgate did not create"):
        rollback(warehouse.table(), to_version=1)
    with pytest.raises(PublishError, match="is a table Synthgate did not create"):
        publish_version(warehouse.table(), version_frame(2, 20), "run00002")
    assert warehouse.snapshot(TARGET) == before


def test_a_claim_a_failed_publish_left_proves_nothing_about_a_table_made_at_its_name_since(warehouse, monkeypatch):
    # The claim commits before CREATE TABLE. Where DDL is transactional, a publish failing while it loads takes its
    # table with it, and a table a user makes at that name since is theirs; on MariaDB the table stays, stamped
    # with the claiming run, and only that stamp makes it Synthgate's to drop.
    import synthgate.warehouse.publish

    publish_version(warehouse.table(), version_frame(1, 20), "run00001")
    lost = sa.exc.OperationalError("INSERT ...", {}, Exception("server closed the connection unexpectedly"))
    with monkeypatch.context() as patched:
        patched.setattr(synthgate.warehouse.publish, "load_frame", mock_raising(lost))
        with pytest.raises(PublishError, match="the previous version is unchanged"):
            publish_version(warehouse.table(), version_frame(2, 20), "run00002")
    left = f"{TARGET}__v2" in warehouse.tables()
    assert left == (warehouse.engine.dialect.name in ("mysql", "mariadb"))  # DDL committed on its own there only
    if not left:
        warehouse.user_table(f"{TARGET}__v2")
    before = warehouse.snapshot(f"{TARGET}__v2")
    published = publish_version(warehouse.table(), version_frame(3, 20), "run00003", keep=1)
    assert (published.version, warehouse.read_name()) == (3, (20, 3, 3))
    assert published.pruned == ((1, 2) if left else (1,))
    if not left:
        assert warehouse.snapshot(f"{TARGET}__v2") == before
        check_target(warehouse.table())  # and the view is still Synthgate's


def test_a_publish_failing_after_its_view_moved_leaves_the_previous_version_published(warehouse):
    # On MariaDB CREATE OR REPLACE VIEW commits on its own: the failed transaction takes the catalog row and the
    # event with it, not the view, which is pointed back.
    publish_version(warehouse.table(), version_frame(1, 20), "run00001")

    def fail(conn):
        conn.execute(sa.text("SELECT * FROM no_such_table_here"))

    with pytest.raises(PublishError, match="the previous version is unchanged and still published"):
        publish_version(warehouse.table(), version_frame(2, 30), "run00002", hold=fail)
    assert warehouse.read_name() == (20, 1, 1)
    assert [r["run_id"] for r in governance.catalog_rows(warehouse.governed())] == ["run00001"]
    published = publish_version(warehouse.table(), version_frame(3, 40), "run00003", keep=1)
    assert (published.version, warehouse.read_name()) == (3, (40, 3, 3))


def test_a_rollback_failing_after_its_view_moved_leaves_the_name_where_it_was(warehouse, monkeypatch):
    import synthgate.warehouse.publish

    for marker in (1, 2):
        publish_version(warehouse.table(), version_frame(marker, 10 * marker), f"run0000{marker}")
    lost = sa.exc.OperationalError("INSERT ...", {}, Exception("server closed the connection unexpectedly"))
    with monkeypatch.context() as patched:
        patched.setattr(synthgate.warehouse.publish.governance, "record_event", mock_raising(lost))
        with pytest.raises(PublishError, match="the name still points at the version it did before"):
            rollback(warehouse.table(), to_version=1)
    assert warehouse.read_name() == (20, 2, 2)
    assert rollback(warehouse.table(), to_version=1).version == 1
    assert warehouse.read_name() == (10, 1, 1)


def test_a_failure_after_the_commit_leaves_the_publish_standing_and_is_not_retried(warehouse, monkeypatch, caplog):
    # the lock's release (or a connection's close) fails once the version is committed: it is live and recorded, so
    # the publish reports it (a PublishError would be retried and publish it a second time)
    from contextlib import contextmanager

    import synthgate.warehouse.publish

    publish_version(warehouse.table(), version_frame(1, 20), "run00001")
    lost = sa.exc.OperationalError("SELECT pg_advisory_unlock", {}, Exception("server closed the connection"))

    @contextmanager
    def lock_lost_on_release(conn, key):
        yield
        raise lost

    with monkeypatch.context() as patched:
        patched.setattr(synthgate.warehouse.publish.governance, "advisory_lock", lock_lost_on_release)
        published = publish_version(warehouse.table(), version_frame(2, 30), "run00002")
    assert published.version == 2 and warehouse.read_name() == (30, 2, 2)
    assert "as version 2, then Exception after the commit" in caplog.text  # the driver's class, not its text
    assert [r["run_id"] for r in governance.catalog_rows(warehouse.governed())] == ["run00001", "run00002"]


def test_a_failed_prune_leaves_the_publish_standing(warehouse, monkeypatch, caplog):
    # Pruning runs once the new version is live (a user's view reading an old version blocks its DROP): the
    # publish stands, the old versions wait for the next publish.
    import synthgate.warehouse.publish

    for marker in (1, 2):
        publish_version(warehouse.table(), version_frame(marker, 20), f"run0000{marker}", keep=1)
    blocked = sa.exc.OperationalError("DROP TABLE ...", {}, Exception("cannot drop table: other objects depend on it"))
    with monkeypatch.context() as patched:
        patched.setattr(synthgate.warehouse.publish, "prune_versions", mock_raising(blocked))
        published = publish_version(warehouse.table(), version_frame(3, 20), "run00003", keep=1)
    assert (published.version, published.pruned, warehouse.read_name()) == (3, (), (20, 3, 3))
    assert "pruning old versions" in caplog.text and "depend" not in caplog.text  # the driver's class, not its text
    assert publish_version(warehouse.table(), version_frame(4, 20), "run00004", keep=1).pruned == (2, 3)


def _publish_pair(warehouse, marker: int) -> None:
    parent, child = warehouse.table(), warehouse.table("visits_synthetic")
    publish_together(
        [
            Publication(parent, version_frame(marker, 20), COLUMNS, catalog_writer(parent, f"run{marker}", 20)),
            Publication(
                child, version_frame(marker, 30), COLUMNS, catalog_writer(child, f"run{marker}", 30, parent=TARGET)
            ),
        ],
        f"run{marker}",
    )


def test_a_linked_rollback_never_replaces_a_user_view_at_a_child_name(warehouse):
    # a parent and its child published together twice; then the user puts a view of theirs at the child's name
    parent = warehouse.table()
    for marker in (1, 2):
        _publish_pair(warehouse, marker)
    warehouse.user_table("visits_mine")
    with warehouse.engine.begin() as conn:
        conn.execute(sa.text(f"DROP VIEW {warehouse.q('visits_synthetic')}"))
        conn.execute(
            sa.text(f"CREATE VIEW {warehouse.q('visits_synthetic')} AS SELECT * FROM {warehouse.q('visits_mine')}")
        )
    with pytest.raises(PublishError, match=r"visits_synthetic.* is a view Synthgate did not create"):
        rollback(parent, to_version=1)
    assert warehouse.read_name() == (20, 2, 2)  # the parent did not move without its child
    with warehouse.engine.connect() as conn:
        assert conn.execute(sa.text(f"SELECT count(*) FROM {warehouse.q('visits_synthetic')}")).scalar() == 4


def test_a_linked_rollback_whose_child_cannot_move_leaves_both_names_and_records_nothing(warehouse, monkeypatch):
    # On MariaDB each view move commits what came before it: the parent's event must not be written before the
    # child's view has moved, or it would stand while the parent's view goes back
    import synthgate.warehouse.publish

    parent = warehouse.table()
    for marker in (1, 2):
        _publish_pair(warehouse, marker)
    point = synthgate.warehouse.publish._point_view
    lost = sa.exc.OperationalError("CREATE VIEW ...", {}, Exception("server closed the connection unexpectedly"))

    def failing_for_the_child(conn, target, version):
        if target.table == "visits_synthetic":
            raise lost
        point(conn, target, version)

    with monkeypatch.context() as patched:
        patched.setattr(synthgate.warehouse.publish, "_point_view", failing_for_the_child)
        with pytest.raises(PublishError, match="the name still points at the version it did before"):
            rollback(parent, to_version=1)
    assert warehouse.read_name() == (20, 2, 2) and warehouse.read_name("visits_synthetic") == (30, 2, 2)
    assert [e["action"] for e in governance.event_rows(warehouse.governed(), TARGET)] == ["publish", "publish"]
    assert rollback(parent, to_version=1).version == 1
    assert warehouse.read_name() == (20, 1, 1) and warehouse.read_name("visits_synthetic") == (30, 1, 1)


def test_a_linked_pair_is_never_published_apart(warehouse):
    # a child's keys name its parent's rows of the same version: a parent moved on alone leaves them naming others
    parent, child = warehouse.table(), warehouse.table("visits_synthetic")
    _publish_pair(warehouse, 1)
    with pytest.raises(PublishError, match="'visits_synthetic' is published with 'people_synthetic' as one version"):
        check_pair([parent])
    with pytest.raises(PublishError, match="list it under children in the spec, or drop its view"):
        publish_version(parent, version_frame(2, 20), "run00002")
    with pytest.raises(PublishError, match="'visits_synthetic' is published as a child of 'people_synthetic'"):
        publish_version(child, version_frame(2, 30), "run00002")
    assert warehouse.read_name() == (20, 1, 1) and warehouse.read_name("visits_synthetic") == (30, 1, 1)
    _publish_pair(warehouse, 2)  # together, as always
    assert rollback(parent, to_version=1).version == 1
    assert warehouse.read_name("visits_synthetic") == (30, 1, 1)
    with warehouse.engine.begin() as conn:  # the user retires the child
        conn.execute(sa.text(f"DROP VIEW {warehouse.q('visits_synthetic')}"))
    assert publish_version(parent, version_frame(3, 20), "run00003").version == 3
    assert rollback(parent, to_version=2).version == 2  # the retired child stays so
    assert "visits_synthetic" not in warehouse.views()
    assert publish_version(parent, version_frame(4, 20), "run00004").version == 4


def test_a_user_table_named_like_a_version_past_the_last_number_moves_no_numbering(warehouse):
    # a dated backup: taken as version 20,240,101 it overflowed the catalog's integer on every publish after it
    warehouse.user_table(f"{TARGET}__v20240101")
    before = warehouse.snapshot(f"{TARGET}__v20240101")
    assert [publish_version(warehouse.table(), version_frame(m, 20), f"run{m:05d}").version for m in (1, 2)] == [1, 2]
    assert warehouse.snapshot(f"{TARGET}__v20240101") == before


def test_a_date_column_is_published_as_dates(warehouse):
    # learned on the seconds axis, a DATE column came back as TIMESTAMP with times of day
    import numpy as np

    from synthgate.columns import from_numeric
    from synthgate.schema import Column, ColumnKind
    from synthgate.warehouse.publish import publish

    day = Column("day", ColumnKind.DATETIME, "DATE")
    seconds = np.array([1_609_459_200 + 20 * 3600, np.nan, 1_612_137_600 + 59.0])  # 2021-01-01 20:00, 2021-02-01
    frame = pd.DataFrame({"day": from_numeric(seconds, day)})
    publish(warehouse.table(), frame, [day], "run00001", catalog_writer(warehouse.table(), "run00001", len(frame)))
    [reflected] = sa.inspect(warehouse.engine).get_columns(f"{TARGET}__v1", schema=warehouse.schema)
    assert isinstance(reflected["type"], sa.Date) and not isinstance(reflected["type"], sa.DateTime)
    with warehouse.engine.connect() as conn:
        days = conn.execute(sa.text(f"SELECT day FROM {warehouse.q(TARGET)} ORDER BY day")).scalars().all()
    assert sorted(str(d) for d in days if d is not None) == ["2021-01-01", "2021-02-01"] and None in days


def test_long_text_is_published_whole_on_mariadb(mariadb):
    # MySQL/MariaDB's TEXT holds 65,535 bytes: a longer value (from a LONGTEXT source) failed the publish
    from synthgate.schema import Column, ColumnKind
    from synthgate.warehouse.publish import publish

    note = Column("note", ColumnKind.CATEGORICAL, "LONGTEXT")
    frame = pd.DataFrame({"note": ["x" * 70_000, "é" * 40_000, None]})
    publish(mariadb.table(), frame, [note], "run00001", catalog_writer(mariadb.table(), "run00001", len(frame)))
    with mariadb.engine.connect() as conn:
        lengths = conn.execute(sa.text(f"SELECT char_length(note) FROM {mariadb.q(TARGET)}")).scalars().all()
    assert sorted(v for v in lengths if v is not None) == [40_000, 70_000]


def mock_raising(error: Exception):
    def raising(*args: object, **kwargs: object) -> None:
        raise error

    return raising


@pytest.mark.parametrize(
    ("source", "target"),
    [
        ({"table": "people"}, {"table": "people"}),
        ({"table": "people", "schema": "public"}, {"table": "people"}),  # the default schema spelled out
        ({"table": "people", "url": PG_URL.replace("127.0.0.1", "localhost")}, {"table": "people"}),
    ],
    ids=["same", "default-schema", "localhost"],
)
def test_source_equal_to_target_is_refused_at_spec_validation(source, target):
    with pytest.raises(SpecError, match="target and source are the same table"):
        spec_from_dict(
            {
                "name": "people",
                "source": {"url": PG_URL, **source},
                "target": {"url": PG_URL, **target},
                "privacy": {"epsilon": 1.0, "delta": 1e-5},
            }
        )


# -- migration: explicit only ---------------------------------------------------------------------------------------


def test_migrate_is_the_only_way_a_table_becomes_a_version(warehouse, tmp_path):
    version_frame(1, 30).to_sql(TARGET, warehouse.engine, schema=warehouse.schema, index=False)
    before = warehouse.snapshot(TARGET)
    with pytest.raises(PublishError, match="is a table Synthgate did not create"):
        publish_version(warehouse.table(), version_frame(2, 40), "run00002")
    assert warehouse.snapshot(TARGET) == before

    specs = tmp_path / "specs"
    specs.mkdir()
    spec = {
        "name": "people",
        "source": {"url": f"sqlite:///{tmp_path / 'src.db'}", "table": "people"},
        "target": {"url": warehouse.url, "table": TARGET, **({"schema": warehouse.schema} if warehouse.schema else {})},
        "privacy": {"epsilon": 1.0, "delta": 1e-5},
    }
    (specs / "people.yaml").write_text(yaml.safe_dump(spec))
    from synthgate.cli import app

    done = CliRunner().invoke(app, ["migrate", TARGET, "--specs-dir", str(specs), "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["version"] == 1 and json.loads(done.stdout)["version_table"] == f"{TARGET}__v1"
    assert TARGET in warehouse.views() and warehouse.snapshot(f"{TARGET}__v1") == before  # renamed, not copied
    again = CliRunner().invoke(app, ["migrate", TARGET, "--specs-dir", str(specs)])
    assert again.exit_code == 2 and "there is no table to migrate" in again.output

    published = publish_version(warehouse.table(), version_frame(2, 40), "run00002", keep=1)
    assert (published.version, published.previous_version, published.pruned) == (2, 1, (1,))  # now Synthgate's
    events = governance.event_rows(warehouse.governed(), TARGET)
    assert [(e["action"], e["version"], e["trigger"]) for e in events] == [
        ("migrate", 1, "cli"),
        ("publish", 2, "test"),
        ("prune", 1, None),
    ]


# -- a publish killed on MariaDB, whose DDL commits on its own ------------------------------------------------------

KILL_DURING_PUBLISH = textwrap.dedent(
    """
    import sys, time
    from synthgate.spec import WarehouseTable
    from tests.warehouse.publishing import COLUMNS, catalog_writer, publish_version, version_frame

    def hold(conn):
        print("in-transaction", flush=True)
        time.sleep(600)

    target = WarehouseTable(url=sys.argv[1], table="people_synthetic", schema=sys.argv[2])
    publish_version(target, version_frame(2, 300), "run00002", hold=hold)
    """
)


def test_a_publish_killed_on_mariadb_leaves_a_claimed_table_only_synthgate_drops(mariadb):
    publish_version(mariadb.table(), version_frame(1, 100), "run00001")
    mariadb.user_table(f"{TARGET}__staging_x")
    mariadb.user_table(f"{TARGET}__v7", 1)
    before = {n: mariadb.snapshot(n) for n in (f"{TARGET}__staging_x", f"{TARGET}__v7")}
    proc = subprocess.Popen(
        [sys.executable, "-c", KILL_DURING_PUBLISH, mariadb.url, mariadb.schema],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert proc.stdout.readline().strip() == "in-transaction"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        proc.stdout.close()
    time.sleep(0.5)
    # CREATE TABLE committed on its own: the table is left, and the claim made before it says whose it is.
    assert f"{TARGET}__v8" in mariadb.tables()
    with mariadb.governed().connect() as conn:
        assert governance.claimed_versions(conn, TARGET) == {1: "run00001", 8: "run00002"}
    assert [r["run_id"] for r in governance.catalog_rows(mariadb.governed())] == ["run00001"]

    check_target(mariadb.table())  # the view (wherever the killed run left it) is Synthgate's
    published = publish_version(mariadb.table(), version_frame(3, 70), "run00003")
    assert (published.version, published.pruned) == (9, (8,))
    assert mariadb.read_name() == (70, 3, 3)
    assert {t for t in mariadb.tables() if t.startswith(TARGET)} == {f"{TARGET}__v1", f"{TARGET}__v9", *before}
    assert {n: mariadb.snapshot(n) for n in before} == before
    [prune] = [e for e in governance.event_rows(mariadb.governed(), TARGET) if e["action"] == "prune"]
    assert prune["version"] == 8 and "run00002" in prune["detail"]


@pytest.mark.parametrize("hostile", ['x"; DROP TABLE y; --', "x`); DROP TABLE y; --", "x'); DROP TABLE y; --"])
def test_a_target_with_a_hostile_name_stays_synthgate_s_own_across_publishes(warehouse, hostile):
    warehouse.user_table("y")
    before = warehouse.snapshot("y")
    target = warehouse.table(hostile + " synthetic")
    versions = [publish_version(target, version_frame(m, 20), f"run{m:05d}", keep=1).version for m in (1, 2, 3)]
    assert versions == [1, 2, 3]  # the quoted view definition still names Synthgate's version
    check_target(target)
    assert kept_versions(target) == [3]
    assert warehouse.snapshot("y") == before
