"""Versioned publishing on PostgreSQL: versions behind a view, pruning, rollback, migration, atomicity, crashes."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from synthgate.errors import PublishError
from synthgate.spec import WarehouseTable
from synthgate.warehouse import governance
from synthgate.warehouse.publish import migrate, rollback
from tests.conftest import PG_URL
from tests.warehouse.publishing import publish_version, version_frame

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def target(schema: str) -> WarehouseTable:
    return WarehouseTable(url=PG_URL, table="people_synthetic", schema=schema)


def governed(pg_engine, schema):
    return pg_engine.execution_options(schema_translate_map={None: schema})


def tables_in(pg_engine, schema) -> set[str]:
    return set(sa.inspect(pg_engine).get_table_names(schema=schema))


def read_name(pg_engine, schema) -> tuple[int, int, int]:
    with pg_engine.connect() as conn:
        return tuple(
            conn.execute(sa.text(f'SELECT count(*), min(marker), max(marker) FROM "{schema}".people_synthetic')).one()
        )


def test_each_publish_is_a_version_behind_a_view_and_old_ones_are_pruned(pg_engine, pg_schema):
    for marker, rows in [(1, 100), (2, 200), (3, 300), (4, 400)]:
        published = publish_version(target(pg_schema), version_frame(marker, rows), f"run{marker:05d}", keep=2)
    assert (published.version, published.previous_version, published.pruned) == (4, 3, (2,))
    assert read_name(pg_engine, pg_schema) == (400, 4, 4)
    assert "people_synthetic" in sa.inspect(pg_engine).get_view_names(schema=pg_schema)
    assert {t for t in tables_in(pg_engine, pg_schema) if t.startswith("people_synthetic")} == {
        "people_synthetic__v3",
        "people_synthetic__v4",
    }
    catalog = governance.catalog_rows(governed(pg_engine, pg_schema))
    assert [(r["version"], r["rows"]) for r in catalog] == [(1, 100), (2, 200), (3, 300), (4, 400)]
    events = governance.event_rows(governed(pg_engine, pg_schema), "people_synthetic")
    assert [(e["action"], e["version"]) for e in events] == [
        ("publish", 1),
        ("publish", 2),
        ("publish", 3),
        ("prune", 1),
        ("publish", 4),
        ("prune", 2),
    ]
    with pg_engine.connect() as conn:
        comments = conn.execute(
            sa.text(
                "SELECT obj_description(CAST(:v AS regclass), 'pg_class'), "
                "obj_description(CAST(:t AS regclass), 'pg_class')"
            ),
            {"v": f'"{pg_schema}".people_synthetic', "t": f'"{pg_schema}".people_synthetic__v4'},
        ).one()
    assert comments == ("version 4 of run00004", "version 4 of run00004")


def test_copy_keeps_nulls_quotes_types_and_the_null_marker(pg_engine, pg_schema):
    frame = version_frame(7, 500)
    frame.loc[3, "label"] = "\\N"  # spelled like COPY's NULL marker: must stay a string
    frame.loc[4, "label"] = ""
    publish_version(target(pg_schema), frame, "run00007")
    back = pd.read_sql(f'SELECT * FROM "{pg_schema}".people_synthetic__v1', pg_engine)
    assert back["label"].tolist() == frame["label"].tolist()
    assert back["flag"].isna().sum() == frame["flag"].isna().sum()
    assert (back["score"] - frame["score"]).abs().max() < 1e-12
    assert (back["seen"] == frame["seen"]).all()


def test_rollback_moves_the_name_back_and_is_recorded(pg_engine, pg_schema):
    for marker in (1, 2, 3):
        publish_version(target(pg_schema), version_frame(marker, 100 * marker), f"run{marker:05d}")
    moved = rollback(target(pg_schema), trigger="cli")
    assert (moved.version, moved.previous_version) == (2, 3)
    assert read_name(pg_engine, pg_schema) == (200, 2, 2)
    moved = rollback(target(pg_schema), to_version=1)
    assert read_name(pg_engine, pg_schema) == (100, 1, 1)
    with pytest.raises(PublishError, match=r"version 9 .* is not kept \(kept: \[1, 2, 3\]\)"):
        rollback(target(pg_schema), to_version=9)
    with pytest.raises(PublishError, match="already points at version 1"):
        rollback(target(pg_schema), to_version=1)
    events = governance.event_rows(governed(pg_engine, pg_schema), "people_synthetic")
    assert [(e["action"], e["version"], e["previous_version"]) for e in events if e["action"] == "rollback"] == [
        ("rollback", 2, 3),
        ("rollback", 1, 2),
    ]
    # The next publish gets a fresh number and is published; the rolled-back-to version is kept while current.
    published = publish_version(target(pg_schema), version_frame(4, 400), "run00004", keep=1)
    assert published.version == 4 and read_name(pg_engine, pg_schema) == (400, 4, 4)
    with pytest.raises(PublishError, match="no earlier version is kept"):
        rollback(target(pg_schema))


def test_a_table_from_an_older_release_becomes_a_version_only_on_the_explicit_migrate(pg_engine, pg_schema):
    version_frame(1, 150).to_sql("people_synthetic", pg_engine, schema=pg_schema, index=False)
    engine = governed(pg_engine, pg_schema)
    governance.ensure_governance_tables(engine)
    with engine.begin() as conn:  # the catalog row an older release wrote, without a version
        governance.catalog_row(
            conn,
            run_id="old-run",
            spec_name="people",
            published_table="people_synthetic",
            rows=150,
            source_table="people",
            source_fingerprint="e" * 64,
            epsilon=1.0,
            delta=1e-5,
            gates={},
            scores={},
            mlflow_run_id="old-run",
        )
    with pytest.raises(PublishError, match=r"is a table Synthgate did not create.*synthgate migrate"):
        publish_version(target(pg_schema), version_frame(2, 250), "run00002")  # never migrated on its own
    assert read_name(pg_engine, pg_schema) == (150, 1, 1) and "people_synthetic" in tables_in(pg_engine, pg_schema)
    migrated = migrate(target(pg_schema))
    assert (migrated.version, migrated.version_table) == (1, "people_synthetic__v1")
    assert read_name(pg_engine, pg_schema) == (150, 1, 1)  # the same rows, now through the view
    published = publish_version(target(pg_schema), version_frame(2, 250), "run00002")
    assert (published.version, published.previous_version) == (2, 1)
    assert read_name(pg_engine, pg_schema) == (250, 2, 2)
    assert [(r["run_id"], r["version"]) for r in governance.catalog_rows(engine)] == [("old-run", 1), ("run00002", 2)]
    rollback(target(pg_schema))
    assert read_name(pg_engine, pg_schema) == (150, 1, 1)


def test_a_reader_in_a_loop_never_sees_a_missing_or_half_table(pg_engine, pg_schema):
    expected = {1: 3000}
    publish_version(target(pg_schema), version_frame(1, 3000), "run00001")
    seen: list[tuple[int, int, int]] = []
    errors: list[str] = []
    stop = threading.Event()

    def reader() -> None:
        engine = sa.create_engine(PG_URL)
        with engine.connect() as conn:
            while not stop.is_set():
                try:
                    seen.append(
                        tuple(
                            conn.execute(
                                sa.text(
                                    f'SELECT count(*), min(marker), max(marker) FROM "{pg_schema}".people_synthetic'
                                )
                            ).one()
                        )
                    )
                    conn.commit()
                except sa.exc.DBAPIError as exc:
                    errors.append(str(exc.orig).splitlines()[0])
                    conn.rollback()
        engine.dispose()

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for marker in range(2, 8):  # version 5 changes the columns: the view is dropped and created in the transaction
            rows = 3000 + 1000 * marker
            expected[marker] = rows
            publish_version(
                target(pg_schema), version_frame(marker, rows, extra_column=marker >= 5), f"run{marker:05d}", keep=2
            )
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(timeout=30)
    assert errors == []
    assert len(seen) > 20
    assert all(low == high and expected[low] == count for count, low, high in seen), "a half or mixed version was read"
    assert len({low for _, low, _ in seen}) >= 3, "the reader should have seen several versions"


KILL_DURING_PUBLISH = textwrap.dedent(
    """
    import sys, time
    from synthgate.spec import WarehouseTable
    from tests.warehouse.publishing import publish_version, version_frame

    def hold(conn):
        print("in-transaction", flush=True)
        time.sleep(600)

    target = WarehouseTable(url=sys.argv[1], table="people_synthetic", schema=sys.argv[2])
    publish_version(target, version_frame(2, 5000), "run00002", hold=hold)
    """
)


def test_a_publish_killed_mid_transaction_leaves_the_previous_version_whole(pg_engine, pg_schema):
    publish_version(target(pg_schema), version_frame(1, 1000), "run00001")
    with pg_engine.begin() as conn:  # named like an older release's staging table: not recorded, so never dropped
        conn.execute(sa.text(f'CREATE TABLE "{pg_schema}".people_synthetic__staging_deadbeef (x int)'))
    proc = subprocess.Popen(
        [sys.executable, "-c", KILL_DURING_PUBLISH, PG_URL, pg_schema],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**__import__("os").environ, "PYTHONPATH": str(ROOT)},
    )
    blocked: list[tuple[int, int, int]] = []
    try:
        assert proc.stdout.readline().strip() == "in-transaction"
        # The new version is loaded and the view moved, uncommitted: a reader waits on the view's lock ...
        reader = threading.Thread(target=lambda: blocked.append(read_name(pg_engine, pg_schema)))
        reader.start()
        time.sleep(1.0)
        assert reader.is_alive() and not blocked
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    reader.join(timeout=30)
    assert blocked == [(1000, 1, 1)]  # ... and reads the whole previous version once the dead publish rolls back
    deadline = time.monotonic() + 30  # the server notices the dead client and rolls back
    while "people_synthetic__v2" in tables_in(pg_engine, pg_schema) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert read_name(pg_engine, pg_schema) == (1000, 1, 1)
    assert [r["run_id"] for r in governance.catalog_rows(governed(pg_engine, pg_schema))] == ["run00001"]
    # The killed run's claim on version 2 was committed before its CREATE TABLE: the number is not used again.
    published = publish_version(target(pg_schema), version_frame(3, 700), "run00003")
    assert published.version == 3 and read_name(pg_engine, pg_schema) == (700, 3, 3)
    assert {t for t in tables_in(pg_engine, pg_schema) if t.startswith("people_synthetic")} == {
        "people_synthetic__v1",
        "people_synthetic__v3",
        "people_synthetic__staging_deadbeef",  # not ours: kept
    }


def test_publish_and_rollback_on_sqlite(tmp_path):
    table = WarehouseTable(url=f"sqlite:///{tmp_path / 'w.db'}", table="people_synthetic")
    publish_version(table, version_frame(1, 100), "run00001")
    publish_version(table, version_frame(2, 200, extra_column=True), "run00002")
    engine = sa.create_engine(table.url)
    count = lambda: engine.connect().execute(sa.text("SELECT count(*), max(marker) FROM people_synthetic")).one()  # noqa: E731
    assert tuple(count()) == (200, 2)
    rollback(table)
    assert tuple(count()) == (100, 1)
    assert [e["action"] for e in governance.event_rows(engine)] == ["publish", "publish", "rollback"]


def test_readers_keep_their_grants_when_the_columns_change(pg_engine, pg_schema):
    # PostgreSQL replaces a view in place only with the same leading columns; a column less drops and creates it, and
    # a new view holds only its owner's rights
    role = f"reader_{pg_schema}"[:60]
    with pg_engine.begin() as conn:
        conn.execute(sa.text(f'CREATE ROLE "{role}"'))
    try:
        publish_version(target(pg_schema), version_frame(1, 20, extra_column=True), "run00001")
        with pg_engine.begin() as conn:
            conn.execute(sa.text(f'GRANT SELECT ON "{pg_schema}".people_synthetic TO "{role}"'))
        publish_version(target(pg_schema), version_frame(2, 20), "run00002")  # a column less
        with pg_engine.connect() as conn:
            granted = conn.execute(
                sa.text("SELECT has_table_privilege(:role, :view, 'SELECT')"),
                {"role": role, "view": f'"{pg_schema}".people_synthetic'},
            ).scalar()
        assert granted and read_name(pg_engine, pg_schema)[1:] == (2, 2)
    finally:
        with pg_engine.begin() as conn:
            conn.execute(sa.text(f'DROP OWNED BY "{role}"'))
            conn.execute(sa.text(f'DROP ROLE "{role}"'))
