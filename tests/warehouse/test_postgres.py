"""Extract and publish against the real PostgreSQL on this machine."""

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import numpy as np
import pytest
import sqlalchemy as sa

from synthgate.errors import MissingTableError, PublishError, WarehouseError
from synthgate.schema import ColumnKind
from synthgate.spec import WarehouseTable
from synthgate.warehouse import governance
from synthgate.warehouse.extract import extract_table
from synthgate.warehouse.publish import publish
from tests.conftest import PG_URL, login_role

pytestmark = pytest.mark.integration


def load(engine, schema, name, frame):
    frame.to_sql(name, engine, schema=schema, index=False)
    return WarehouseTable(url=PG_URL, table=name, schema=schema)


def test_extract_reads_kinds_in_chunks_with_an_order_free_fingerprint(pg_engine, pg_schema, people):
    table = load(pg_engine, pg_schema, "people", people)
    shuffled = load(pg_engine, pg_schema, "people_shuffled", people.sample(frac=1, random_state=1))
    seen = []
    first = extract_table(table, chunk_size=300, progress=seen.append)
    second = extract_table(shuffled, chunk_size=700)
    assert len(first.frame) == len(people) and seen[-1] == len(people) and len(seen) > 5
    assert first.fingerprint.digest == second.fingerprint.digest
    kinds = {c.name: c.kind for c in first.columns}
    assert kinds["age"] is ColumnKind.INTEGER and kinds["income"] is ColumnKind.FLOAT
    assert kinds["signup"] is ColumnKind.DATETIME and kinds["churned"] is ColumnKind.BOOLEAN
    assert kinds["plan"] is ColumnKind.CATEGORICAL


def test_chunks_typed_one_by_one_join_as_one_read(pg_engine, pg_schema):
    """Each chunk is typed as it arrives (NUMERIC, dates, time zones, booleans): a first chunk NULL in every column
    joins the later ones to the same dtypes, values and fingerprint as a single read."""
    with pg_engine.begin() as conn:
        conn.execute(
            sa.text(
                f'CREATE TABLE "{pg_schema}".mixed (amount NUMERIC(10, 2), n INTEGER, day DATE, '
                "at TIMESTAMPTZ, flag BOOLEAN, label TEXT)"
            )
        )
        conn.execute(sa.text(f'INSERT INTO "{pg_schema}".mixed VALUES (NULL, NULL, NULL, NULL, NULL, NULL)'))
        conn.execute(
            sa.text(
                f"INSERT INTO \"{pg_schema}\".mixed SELECT i * 1.25, i, DATE '2021-01-01' + i, "
                "TIMESTAMPTZ '2021-01-01 12:00+02' + i * INTERVAL '1 hour', i % 2 = 0, 'l' || (i % 3) "
                "FROM generate_series(1, 9) AS i"
            )
        )
    table = WarehouseTable(url=PG_URL, table="mixed", schema=pg_schema)
    whole, chunked = extract_table(table), extract_table(table, chunk_size=1)
    assert chunked.frame.dtypes.to_dict() == whole.frame.dtypes.to_dict()
    assert str(whole.frame["amount"].dtype) == "float64" and str(whole.frame["at"].dtype) == "datetime64[ns, UTC]"
    assert str(whole.frame["flag"].dtype) == "boolean"
    assert chunked.frame.equals(whole.frame)
    assert chunked.fingerprint.digest == whole.fingerprint.digest
    labels = whole.frame["label"]  # a text value repeated over rows is one object, not one the driver made per row
    assert labels.iloc[0] is None and len({id(v) for v in labels.iloc[1:]}) == 3


def test_a_snapshot_without_its_rows_keeps_its_schema_and_fingerprint_and_lets_the_rows_go(
    pg_engine, pg_schema, people
):
    import gc
    import weakref

    extract = extract_table(load(pg_engine, pg_schema, "people", people))
    rows = weakref.ref(extract.frame)
    rowless = extract.without_rows()
    assert rowless.frame.empty and rowless.frame.dtypes.to_dict() == extract.frame.dtypes.to_dict()
    assert rowless.fingerprint == extract.fingerprint and rowless.columns == extract.columns
    assert len(rowless.row_hashes) == 0
    del extract
    gc.collect()
    assert rows() is None
    for name in rowless.frame.columns:  # no view of the rows' arrays either
        root = rowless.frame[name].to_numpy()
        while isinstance(root.base, np.ndarray):
            root = root.base
        assert root.size == 0, name


def test_a_changed_row_changes_the_fingerprint(pg_engine, pg_schema, people):
    a = extract_table(load(pg_engine, pg_schema, "a", people))
    b = extract_table(load(pg_engine, pg_schema, "b", people.assign(age=people["age"].where(people.index != 7, 99))))
    assert a.fingerprint.digest != b.fingerprint.digest
    assert a.fingerprint.schema_hash == b.fingerprint.schema_hash


def test_missing_table_is_named(pg_engine, pg_schema):
    with pytest.raises(MissingTableError, match=r"'.*no_such_table' does not exist"):
        extract_table(WarehouseTable(url=PG_URL, table="no_such_table", schema=pg_schema))


def test_unreachable_warehouse_hides_the_password():
    url = "postgresql+psycopg2://postgres:hunter2@127.0.0.1:1/test"
    with pytest.raises(WarehouseError, match="cannot connect") as error:
        extract_table(WarehouseTable(url=url, table="x"))
    assert "hunter2" not in str(error.value)


def test_hostile_table_names_are_quoted(pg_engine, pg_schema, people):
    victim = load(pg_engine, pg_schema, "victim", people.head(10))
    hostile = load(pg_engine, pg_schema, 'x"; DROP TABLE victim; --', people.head(5))
    assert len(extract_table(hostile).frame) == 5
    assert len(extract_table(victim).frame) == 10


def publish_frame(pg_engine, schema, frame, run_id, fail=False):
    target = WarehouseTable(url=PG_URL, table="people_synthetic", schema=schema)
    columns = extract_table(load(pg_engine, schema, f"src_{run_id}", frame.head(1))).columns

    def record(conn, version):
        governance.catalog_row(
            conn,
            run_id=run_id,
            spec_name="people",
            published_table=target.table,
            rows=len(frame),
            source_table="people",
            source_fingerprint="f" * 64,
            epsilon=1.0,
            delta=1e-5,
            gates={"quality": True},
            scores={"quality": 0.9},
            mlflow_run_id=run_id,
            model_name="m",
            model_version="1",
            trigger="test",
            version=version,
        )
        if fail:
            raise sa.exc.OperationalError("simulated", {}, Exception("crash inside the swap"))

    return publish(target, frame, columns, run_id, record)


def tables_in(pg_engine, schema):
    return set(sa.inspect(pg_engine).get_table_names(schema=schema))


def test_publish_swaps_atomically_and_records_the_catalog(pg_engine, pg_schema, people):
    publish_frame(pg_engine, pg_schema, people.head(100), "run00001")
    publish_frame(pg_engine, pg_schema, people.head(250), "run00002")
    with pg_engine.connect() as conn:
        assert conn.execute(sa.text(f'SELECT count(*) FROM "{pg_schema}".people_synthetic')).scalar() == 250
    catalog = governance.catalog_rows(pg_engine.execution_options(schema_translate_map={None: pg_schema}))
    assert [r["run_id"] for r in catalog] == ["run00001", "run00002"]
    assert tables_in(pg_engine, pg_schema) >= {"people_synthetic__v1", "people_synthetic__v2"}
    assert [r["version"] for r in catalog] == [1, 2]


def test_failed_swap_keeps_the_previous_version_whole(pg_engine, pg_schema, people):
    publish_frame(pg_engine, pg_schema, people.head(100), "run00001")
    with pytest.raises(PublishError, match="previous version is unchanged"):
        publish_frame(pg_engine, pg_schema, people.head(250), "run00002", fail=True)
    with pg_engine.connect() as conn:
        assert conn.execute(sa.text(f'SELECT count(*) FROM "{pg_schema}".people_synthetic')).scalar() == 100
    catalog = governance.catalog_rows(pg_engine.execution_options(schema_translate_map={None: pg_schema}))
    assert [r["run_id"] for r in catalog] == ["run00001"]
    assert "people_synthetic__v2" not in tables_in(pg_engine, pg_schema)  # rolled back with the transaction


@contextmanager
def fresh_schema_engines(pg_engine: sa.Engine, runs: int = 4) -> Iterator[tuple[str, list[sa.Engine]]]:
    """A new schema and ``runs`` engines onto it, as runs that start together hold them; dropped afterwards."""
    schema = f"sg_race_{uuid.uuid4().hex[:8]}"
    with pg_engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    engines = [sa.create_engine(PG_URL).execution_options(schema_translate_map={None: schema}) for _ in range(runs)]
    try:
        yield schema, engines
    finally:
        for engine in engines:
            engine.dispose()
        with pg_engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))


def all_at_once(engines: list[sa.Engine]) -> None:
    """``ensure_governance_tables`` on every engine at the same moment; raises if one of them failed."""
    with ThreadPoolExecutor(len(engines)) as pool:
        list(pool.map(governance.ensure_governance_tables, engines))


def test_runs_that_start_together_both_create_the_governance_tables(pg_engine):
    # refresh-all on a Dask cluster: several runs create the same schema's governance tables at the same moment, and
    # PostgreSQL fails all but one CREATE TABLE (DuplicateTable, or a unique violation in its catalog); a CI run failed
    # a table on it. The run that loses sees the tables exist and goes on.
    for _ in range(5):
        with fresh_schema_engines(pg_engine) as (_, engines):
            all_at_once(engines)


def test_runs_that_upgrade_an_older_releases_tables_together_all_succeed(pg_engine):
    # an older release's catalog and ledger lack columns: runs that start together each ADD the same ones, and
    # PostgreSQL fails all but one (duplicate column); the runs that lose look again and find them there
    for _ in range(5):
        with fresh_schema_engines(pg_engine) as (schema, engines):
            governance.ensure_governance_tables(engines[0])
            with pg_engine.begin() as conn:
                for table in (governance.CATALOG, governance.LEDGER):
                    column = next(c for c in reversed(table.columns) if c.nullable and not c.primary_key)
                    conn.execute(sa.text(f'ALTER TABLE "{schema}"."{table.name}" DROP COLUMN "{column.name}"'))
            all_at_once(engines)
            for table in (governance.CATALOG, governance.LEDGER):
                present = {c["name"] for c in sa.inspect(engines[0]).get_columns(table.name, schema=schema)}
                assert present == {c.name for c in table.columns}


def test_a_table_the_role_may_not_read_is_a_permanent_error_not_retried(pg_engine, pg_schema, people):
    # the metadata reads; SELECT is refused (42501): waiting grants nothing, so the extract is not retried
    load(pg_engine, pg_schema, "people", people.head(50))
    with login_role(pg_engine, pg_schema) as role:
        url = PG_URL.replace("postgres@", f"{role}@")
        with pytest.raises(WarehouseError, match="failed: InsufficientPrivilege, SQLSTATE 42501") as caught:
            extract_table(WarehouseTable(url=url, table="people", schema=pg_schema), key=b"k" * 32)
        assert caught.value.transient is False
