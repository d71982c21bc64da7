"""The hostile-input suite (issue 14): every case is run through the CLI as a user runs it, and refused cleanly.

One table of cases: spec errors, CLI overrides and settings, connections, preflight refusals, hostile data, and
MariaDB and SQLite variants. Each runs ``synthgate refresh SPEC --json --trigger test`` (``check-spec`` where that is
the natural command) in-process against a Prefect test server, and one shared helper, :func:`assert_refused`,
checks every case the same way:

1. exit code 2;
2. stderr is exactly one line, ``error: ...`` holding the case's fragment; with ``--json`` stdout is exactly one JSON
   object (``status: failed``, ``error_type``, ``error``); neither holds the canary planted in every text value of
   every source table, a case's own secret (a planted password, an out-of-range date), nor ``Traceback``;
3. nothing published or spent: no new table or view in any warehouse the case touches (Synthgate's governance tables
   aside), no new catalog, event or claim row, and every new ledger row closed at epsilon 0 (the one case whose DP
   row count ran keeps its reservation, as the ledger's rules say);
4. the user's tables are intact: a checksum (column names and types, the view definition, md5 of the ordered rows) of
   every user table and view of those warehouses, sources, ``keep`` and objects squatting target names, is equal
   before and after.

Spec-error and override cases never start Prefect; flow cases fail in the preflight within seconds, except the data
cases, which fail in the extract, the source suite or the DP row count. A last test runs one flow case in a real
process and checks that its console shows no traceback.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
import yaml
from typer.testing import CliRunner

from synthgate.cli import app
from synthgate.spec import WarehouseTable
from synthgate.warehouse import governance
from tests.conftest import PG_URL
from tests.reliability.conftest import spec_dict

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
MARIADB_URL = os.environ.get("SYNTHGATE_TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/test")
#: Planted in every text value of every source table (and the user's ``keep``): no output may hold it.
CANARY = f"cnry{uuid.uuid4().hex[:8]}"
#: A date pandas cannot hold, planted in one table: no output may quote it.
FAR_DATE = "3000-06-15"
N = 300
GOVERNANCE = {t.name for t in governance.METADATA.sorted_tables}


# -- the warehouses -------------------------------------------------------------------------------------------------


@dataclass
class Warehouse:
    """One schema (PostgreSQL), database (MariaDB) or file (SQLite) holding the user's tables."""

    url: str
    schema: str | None
    engine: sa.Engine

    def q(self, name: str) -> str:
        prep = self.engine.dialect.identifier_preparer
        return f"{prep.quote_schema(self.schema)}.{prep.quote(name)}" if self.schema else prep.quote(name)

    def governed(self) -> sa.Engine:
        return self.engine.execution_options(schema_translate_map={None: self.schema}) if self.schema else self.engine

    def objects(self) -> dict[str, str]:
        """Every table and view: name -> kind."""
        inspector = sa.inspect(self.engine)
        found = dict.fromkeys(inspector.get_table_names(schema=self.schema), "table")
        return found | dict.fromkeys(inspector.get_view_names(schema=self.schema), "view")

    def checksum(self, name: str, kind: str) -> str:
        """Kind, column names and types, view definition and every row, as one digest: equal means untouched."""
        inspector = sa.inspect(self.engine)
        columns = [(c["name"], str(c["type"])) for c in inspector.get_columns(name, schema=self.schema)]
        definition = inspector.get_view_definition(name, schema=self.schema) if kind == "view" else None
        with self.engine.connect() as conn:
            if self.engine.dialect.name == "postgresql":  # md5 over the ordered rows' text form
                rows: Any = conn.execute(
                    sa.text(
                        "SELECT count(*), md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) "
                        f"FROM {self.q(name)} t"
                    )
                ).one()
                rows = list(rows)
            else:
                rows = sorted(repr(tuple(r)) for r in conn.execute(sa.text(f"SELECT * FROM {self.q(name)}")))
        return hashlib.sha256(json.dumps([kind, columns, definition, rows], default=str).encode()).hexdigest()

    def user_checksums(self) -> dict[str, str]:
        return {name: self.checksum(name, kind) for name, kind in self.objects().items() if name not in GOVERNANCE}

    def governance_state(self) -> dict[str, Any]:
        """The ledger rows (by run id), and the numbers of catalog, event and claim rows."""
        engine = self.governed()
        present = set(sa.inspect(self.engine).get_table_names(schema=self.schema))
        state: dict[str, Any] = {"ledger": {}}
        if governance.LEDGER.name in present:
            state["ledger"] = {r["run_id"]: r for r in governance.ledger_rows(engine)}
        with engine.connect() as conn:
            for table in (governance.CATALOG, governance.EVENTS, governance.CLAIMS):
                state[table.name] = (
                    conn.execute(sa.select(sa.func.count()).select_from(table)).scalar() if table.name in present else 0
                )
        return state


@dataclass
class World:
    """The warehouses of the module: PostgreSQL (a schema, and one whose role may not create), SQLite, MariaDB."""

    pg: Warehouse
    pg_ro: Warehouse  # a schema the read-only role may use but not create in
    ro_role: str
    sqlite: Warehouse
    mariadb: Warehouse | None
    missing_schema: str

    def get(self, key: str) -> Warehouse:
        found = getattr(self, key)
        if found is None:
            pytest.skip(f"{key} is not reachable")
        return found


def people(n: int = N, seed: int = 0) -> pd.DataFrame:
    """A small table whose every text value holds the canary."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "id": np.arange(n),
            "plan": [f"{CANARY}-{p}" for p in rng.choice(["basic", "plus", "premium"], n)],
            "note": [f"{CANARY} note {i}" for i in range(n)],
            "amount": np.round(rng.normal(100, 20, n), 2),
            "churned": rng.random(n) < 0.3,
        }
    )


def load_pg(w: Warehouse) -> None:
    frame = people()
    for name, rows in {
        "src": frame,
        "src_child": frame,  # a child table's source: one row may not belong to two units
        "keep": frame.head(40),
        "src_empty": frame.head(0),
        "src_few": frame.head(20),
        "src_spent": frame,
        "taken_table": frame.head(10),
        "utarget__v1": frame.head(5),
        "utarget__staging_x": frame.head(6),
    }.items():
        rows.to_sql(name, w.engine, schema=w.schema, index=False)
    dates = frame.assign(day=pd.date_range("2020-01-01", periods=N, freq="D").date)
    dates.to_sql("src_dates", w.engine, schema=w.schema, index=False, dtype={"day": sa.Date()})
    frame.drop(columns=["note"]).to_sql("holdout_other", w.engine, schema=w.schema, index=False)
    with w.engine.begin() as conn:
        conn.execute(sa.text(f"UPDATE {w.q('src_dates')} SET day = DATE '{FAR_DATE}' WHERE id = 7"))
        conn.execute(sa.text(f"CREATE VIEW {w.q('taken_view')} AS SELECT id, plan FROM {w.q('keep')}"))
        conn.execute(sa.text(f"CREATE TABLE {w.q('src_blobs')} (blob bytea, doc jsonb)"))
        conn.execute(
            sa.text(f"INSERT INTO {w.q('src_blobs')} VALUES (:b, CAST(:d AS jsonb))"),
            [{"b": f"\x00{CANARY}".encode(), "d": json.dumps({"k": f"{CANARY}-{i}"})} for i in range(N)],
        )
    # a source whose cap is spent: one planted refresh of epsilon 10 (the default cap) under another spec name
    spent = WarehouseTable(url=w.url, table="src_spent", schema=w.schema)
    entry = governance.LedgerEntry(
        "planted" + "0" * 25,
        "hs-planted",
        "src_spent",
        10.0,
        1e-5,
        "planted",
        "test",
        source_key=governance.source_key(spent),
    )
    governance.open_spend(w.governed(), entry)
    governance.close_spend(w.governed(), entry.run_id, "published", 10.0, "rdp")


def load_other(w: Warehouse) -> None:
    """MariaDB and SQLite: a source, the user's keep, and a user view at a target name."""
    frame = people(seed=1)
    frame.to_sql("src", w.engine, schema=w.schema, index=False)
    frame.head(40).to_sql("keep", w.engine, schema=w.schema, index=False)
    frame.head(10).to_sql("taken_table", w.engine, schema=w.schema, index=False)
    with w.engine.begin() as conn:
        conn.execute(sa.text(f"CREATE VIEW {w.q('taken_view')} AS SELECT id, plan FROM {w.q('keep')}"))


def _mariadb() -> sa.Engine | None:
    try:
        import pymysql  # noqa: F401

        engine = sa.create_engine(MARIADB_URL)
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception:  # noqa: BLE001 - absent on this machine: its cases skip
        return None
    return engine


@pytest.fixture(scope="module")
def world(pg_engine: sa.Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tag = uuid.uuid4().hex[:8]
    schema, ro_schema, role = f"sg_hs_{tag}", f"sg_hs_{tag}_ro", f"sg_hs_ro_{tag}"
    with pg_engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        conn.execute(sa.text(f'CREATE SCHEMA "{ro_schema}"'))
        conn.execute(sa.text(f'CREATE ROLE "{role}" LOGIN'))
        conn.execute(sa.text(f'GRANT USAGE ON SCHEMA "{ro_schema}" TO "{role}"'))
        conn.execute(sa.text(f'REVOKE CREATE ON SCHEMA public FROM "{role}"'))
    pg = Warehouse(PG_URL, schema, pg_engine)
    pg_ro = Warehouse(PG_URL, ro_schema, pg_engine)
    sqlite_url = f"sqlite:///{tmp_path_factory.mktemp('hs_sqlite') / 'warehouse.db'}"
    sqlite = Warehouse(sqlite_url, None, sa.create_engine(sqlite_url))
    maria_engine = _mariadb()
    mariadb = None
    if maria_engine is not None:
        with maria_engine.begin() as conn:
            conn.execute(sa.text(f"CREATE DATABASE `sg_hs_{tag}`"))
        mariadb = Warehouse(MARIADB_URL, f"sg_hs_{tag}", maria_engine)
    try:
        load_pg(pg)
        load_other(sqlite)
        if mariadb is not None:
            load_other(mariadb)
        yield World(pg, pg_ro, role, sqlite, mariadb, f"sg_hs_{tag}_missing")
    finally:
        with pg_engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
            conn.execute(sa.text(f'DROP SCHEMA "{ro_schema}" CASCADE'))
            conn.execute(sa.text(f'DROP OWNED BY "{role}"'))
            conn.execute(sa.text(f'DROP ROLE "{role}"'))
        if mariadb is not None:
            with mariadb.engine.begin() as conn:
                conn.execute(sa.text(f"DROP DATABASE `sg_hs_{tag}`"))
            mariadb.engine.dispose()
        sqlite.engine.dispose()


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One Synthgate home, expectations folder and MLflow store for the module (a store per run costs migrations)."""
    folder = tmp_path_factory.mktemp("hs_home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SYNTHGATE_HOME", str(folder / "home"))
        patch.setenv("SYNTHGATE_EXPECTATIONS_DIR", str(folder / "expectations"))
        patch.setenv("SYNTHGATE_MLFLOW_TRACKING_URI", f"sqlite:///{folder / 'mlflow.db'}")
        for name in [
            n
            for n in os.environ
            if n.startswith("SYNTHGATE_")
            and n not in ("SYNTHGATE_HOME", "SYNTHGATE_EXPECTATIONS_DIR", "SYNTHGATE_MLFLOW_TRACKING_URI")
        ]:
            patch.delenv(name)
        yield folder


# -- the cases ------------------------------------------------------------------------------------------------------

Builder = Callable[[World, str], Any]
MISSING, DIRECTORY = object(), object()


def target_of(name: str) -> str:
    return name.replace("-", "_") + "_syn"


DELETE = object()


def _set(data: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    for key in parents:
        data = data.setdefault(key, {})
    if value is DELETE:
        data.pop(last, None)
    else:
        data[last] = value


def spec(*changes: tuple[str, Any], where: str = "pg", **top: Any) -> Builder:
    """A valid spec for the case (source ``src``, a target of its own, in warehouse ``where``) with ``changes``
    (dotted path, value; a callable value is called with the world and the case's spec name) applied."""

    def build(w: World, name: str) -> dict[str, Any]:
        wh = w.get(where)
        data = spec_dict(wh.schema or "x", table="src", target=target_of(name), name=name)
        for section in ("source", "target"):
            data[section]["url"] = wh.url
            if wh.schema is None:
                data[section].pop("schema")
        data.update(top)
        for dotted, value in changes:
            _set(data, dotted, value(w, name) if callable(value) else value)
        return data

    return build


def child_of(w: World, key: str, target: str) -> dict[str, Any]:
    """A child table for the case: a copy of the source table, naming its parent by ``key``, published at
    ``target``."""
    where = {"url": w.get("pg").url, "schema": w.get("pg").schema}
    return {"source": where | {"table": "src_child"}, "target": where | {"table": target}, "key": key}


def raw(text: str | bytes) -> Builder:
    return lambda w, name: text


MINIMAL = (
    "name: raw\nsource: {url: 'sqlite:///w.db', table: people}\ntarget: {url: 'sqlite:///w.db', table: people_syn}\n"
    "privacy: {epsilon: 1.0, delta: 1.0e-5}\n"
)
BOMB = (
    "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    + "".join(f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 10) + "]\n" for i in range(8))
    + MINIMAL
)
PG_HOST = "postgresql+psycopg2://postgres"
HOSTILE = 'x"; DROP TABLE keep; --'


def pg_url(user: str = "postgres", port: int = 5432, host: str = "127.0.0.1", db: str = "test") -> str:
    return f"postgresql+psycopg2://{user}@{host}:{port}/{db}"


@dataclass(frozen=True)
class Case:
    id: str
    fragment: str
    error_type: str
    spec: Builder | object = field(default_factory=spec)
    args: tuple[str, ...] = ()
    command: str = "refresh"
    env: Mapping[str, str] = field(default_factory=dict)
    flow: bool = False  # starts Prefect (the refresh flow); spec and override cases never do
    where: tuple[str, ...] = ("pg",)  # warehouses whose tables, ledger and catalog are checked
    spends: bool = False  # a DP mechanism ran (the row count): its reservation stays in the ledger
    forbidden: tuple[str, ...] = ()

    def argv(self, path: Path) -> list[str]:
        if self.command == "check-spec":
            return ["check-spec", str(path), *self.args]
        return ["refresh", str(path), "--json", "--trigger", "test", *self.args]


def flow(case_id: str, fragment: str, error_type: str, builder: Builder, **kw: Any) -> Case:
    return Case(case_id, fragment, error_type, builder, flow=True, **kw)


SPEC_ERRORS = [
    Case("unknown-key", "colums: unknown key", "SpecError", spec(colums={})),
    Case("unknown-nested-key", "privacy.epsilom: unknown key", "SpecError", spec(("privacy.epsilom", 2))),
    Case(
        "epsilon-wrong-type",
        "privacy.epsilon: Input should be a valid number",
        "SpecError",
        spec(("privacy.epsilon", "lots")),
    ),
    Case(
        "epsilon-nan",
        "privacy.epsilon: Input should be a finite number",
        "SpecError",
        spec(("privacy.epsilon", float("nan"))),
    ),
    Case(
        "epsilon-inf",
        "privacy.epsilon: Input should be a finite number",
        "SpecError",
        spec(("privacy.epsilon", float("inf"))),
    ),
    Case(
        "epsilon-negative",
        "privacy.epsilon: Input should be greater than 0",
        "SpecError",
        spec(("privacy.epsilon", -1.0)),
    ),
    Case("epsilon-zero", "privacy.epsilon: Input should be greater than 0", "SpecError", spec(("privacy.epsilon", 0))),
    Case(
        "epsilon-above-100",
        "privacy.epsilon: Input should be less than or equal to 100",
        "SpecError",
        spec(("privacy.epsilon", 1000)),
    ),
    Case("delta-too-large", "privacy.delta: Input should be less than 0.01", "SpecError", spec(("privacy.delta", 0.5))),
    Case(
        "delta-negative", "privacy.delta: Input should be greater than 0", "SpecError", spec(("privacy.delta", -1e-5))
    ),
    Case("delta-missing", "privacy.delta: Field required", "SpecError", spec(("privacy.delta", DELETE))),
    Case("cap-negative", "privacy.cap: Input should be greater than 0", "SpecError", spec(("privacy.cap", -5))),
    Case(
        "epochs-wrong-type",
        "training.epochs: Input should be a valid integer",
        "SpecError",
        spec(("training.epochs", "ten")),
    ),
    Case(
        "batch-too-small",
        "training.batch_size: Input should be greater than or equal to 8",
        "SpecError",
        spec(("training.batch_size", 2)),
    ),
    Case(
        "unknown-device",
        "training.device: Input should be 'auto', 'cpu' or 'cuda'",
        "SpecError",
        spec(("training.device", "tpu")),
    ),
    Case(
        "dropped-target-column",
        "target_column 'plan' cannot be dropped or faked",
        "SpecError",
        spec(("target_column", "plan"), ("columns", {"plan": {"policy": "drop"}})),
    ),
    Case(
        "faked-target-column",
        "target_column 'plan' cannot be dropped or faked",
        "SpecError",
        spec(("target_column", "plan"), ("columns", {"plan": {"policy": "fake", "fake": "name"}})),
    ),
    Case("dropped-key", "keys ['id'] are dropped", "SpecError", spec(keys=["id"], columns={"id": {"policy": "drop"}})),
    Case(
        "unit-is-the-target",
        "privacy.unit 'plan' is the target_column",
        "SpecError",
        spec(("target_column", "plan"), ("privacy.unit", "plan")),
    ),
    Case(
        "unit-kept",
        "the unit column is published as a fake key",
        "SpecError",
        spec(("privacy.unit", "id"), ("columns", {"id": {"policy": "keep"}})),
    ),
    Case("unit-bound-without-unit", "needs privacy.unit", "SpecError", spec(("privacy.max_rows_per_unit", 10))),
    Case(
        "unit-on-opacus",
        "privacy.unit needs training.engine 'fast'",
        "SpecError",
        spec(("privacy.unit", "id"), ("training.engine", "opacus")),
    ),
    Case(
        "inverted-bounds",
        "min (5.0) must be below max (1.0)",
        "SpecError",
        spec(("columns", {"amount": {"min": 5, "max": 1}})),
    ),
    Case(
        "fake-without-kind",
        "policy 'fake' needs 'fake: <kind>'",
        "SpecError",
        spec(("columns", {"note": {"policy": "fake"}})),
    ),
    Case(
        "unknown-policy",
        "columns.note.policy: Input should be 'keep', 'drop', 'categorical' or 'fake'",
        "SpecError",
        spec(("columns", {"note": {"policy": "hash"}})),
    ),
    Case("columns-as-list", "columns: Input should be a valid dictionary", "SpecError", spec(columns=["id", "plan"])),
    Case("hostile-spec-name", "name: String should match pattern", "SpecError", spec(name=HOSTILE)),
    Case("newline-spec-name", "name: String should match pattern", "SpecError", spec(name="hs\nDROP TABLE keep")),
    Case(
        "empty-target-name",
        "target.table: String should have at least 1 character",
        "SpecError",
        spec(("target.table", "")),
    ),
    Case(
        "gate-out-of-range",
        "gates.min_quality: Input should be less than or equal to 1",
        "SpecError",
        spec(("gates.min_quality", 2)),
    ),
    Case("rows-zero", "rows: Input should be greater than or equal to 1", "SpecError", spec(rows=0)),
    Case(
        "chunk-below-floor",
        "chunk_size: Input should be greater than or equal to 100",
        "SpecError",
        spec(chunk_size=10),
    ),
    Case(
        "holdout-both",
        "give exactly one of 'table' or 'fraction'",
        "SpecError",
        spec(("holdout", {"fraction": 0.2, "table": {"url": PG_URL, "table": "src"}})),
    ),
    Case(
        "bad-cron",
        "schedule.cron: Value error, invalid cron '61 * * * *'",
        "SpecError",
        spec(schedule={"cron": "61 * * * *"}),
    ),
    Case(
        "unknown-timezone",
        "unknown time zone 'Mars/Olympus'",
        "SpecError",
        spec(schedule={"cron": "0 2 * * *", "timezone": "Mars/Olympus"}),
    ),
    Case(
        "url-not-a-url",
        "source.url: Value error, not a SQLAlchemy URL",
        "SpecError",
        spec(("source.url", "definitely not a url")),
    ),
    Case("source-equal-to-target", "target and source are the same table", "SpecError", spec(("target.table", "src"))),
    Case(
        "source-equal-to-target-spelled",
        "target and source are the same table",
        "SpecError",
        spec(("target.table", "src"), ("target.url", pg_url(host="localhost"))),
    ),
    Case(
        "duplicate-key",
        "duplicate key 'epsilon'",
        "SpecError",
        raw(MINIMAL.replace("epsilon: 1.0,", "epsilon: 1.0, epsilon: 90.0,")),
    ),
    Case("yaml-alias-bomb", "YAML aliases (*name, line 2) are not allowed", "SpecError", raw(BOMB)),
    Case("oversized-spec", "larger than 1000 kB", "SpecError", raw(MINIMAL + "# " + "x" * 1_000_001 + "\n")),
    Case(
        "deep-nesting",
        "nested deeper than 20 levels",
        "SpecError",
        raw(MINIMAL + "columns: " + "{a: " * 40 + "1" + "}" * 40 + "\n"),
    ),
    Case("huge-integer", "not valid YAML: ValueError", "SpecError", raw(MINIMAL + "rows: " + "9" * 5000 + "\n")),
    Case("not-yaml", "not valid YAML", "SpecError", raw("name: [unclosed\nsource: {url: x\n")),
    Case("python-tag", "not valid YAML", "SpecError", raw(MINIMAL + "rows: !!python/object/apply:os.system [id]\n")),
    Case("not-utf8", "not UTF-8 text", "SpecError", raw(b"name: \xff\xfe\x00caf\xe9\n")),
    Case("empty-file", "a table spec is a YAML mapping, got NoneType", "SpecError", raw("")),
    Case("missing-file", "spec file not found", "SpecError", MISSING),
    Case("directory", "spec file not found", "SpecError", DIRECTORY),
    Case("list-not-mapping", "a table spec is a YAML mapping, got list", "SpecError", raw("- name: a\n- name: b\n")),
    Case("scalar-not-mapping", "a table spec is a YAML mapping, got str", "SpecError", raw("just a sentence\n")),
    Case(
        "literal-password-userinfo",
        "source.url holds a literal password",
        "SpecError",
        spec(("source.url", f"{PG_HOST}:LITPWsuite1@127.0.0.1:5432/test")),
        forbidden=("LITPWsuite1",),
    ),
    Case(
        "literal-password-query",
        "target.url holds a literal value of query parameter 'password'",
        "SpecError",
        spec(("target.url", f"{PG_HOST}@127.0.0.1:5432/test?password=LITPWsuite2")),
        forbidden=("LITPWsuite2",),
    ),
    Case(
        "literal-api-key",
        "query parameter 'api_key'",
        "SpecError",
        spec(("source.url", f"{PG_HOST}@127.0.0.1:5432/test?api_key=LITPWsuite3")),
        forbidden=("LITPWsuite3",),
    ),
    Case(
        "env-default-password",
        "with a literal default",
        "SpecError",
        spec(("source.url", f"{PG_HOST}:${{SG_HS_UNSET_PW:-LITPWsuite4}}@127.0.0.1:5432/test")),
        forbidden=("LITPWsuite4",),
    ),
    Case(
        "env-default-smuggles-userinfo",
        "literal default",
        "SpecError",
        spec(("target.url", "postgresql+psycopg2://${SG_HS_HOST:-postgres:LITPWsuite5@127.0.0.1}/test")),
        forbidden=("LITPWsuite5",),
    ),
    Case(
        "unset-env-password",
        "environment variable SG_HS_UNSET_PW is not set",
        "SpecError",
        spec(("source.url", f"{PG_HOST}:${{SG_HS_UNSET_PW}}@127.0.0.1:5432/test")),
    ),
    Case(
        "unset-env-table",
        "environment variable SG_HS_UNSET_TABLE is not set",
        "SpecError",
        spec(("source.table", "${SG_HS_UNSET_TABLE}")),
    ),
    Case(
        "check-spec-unknown-key",
        "privacy.epsilom: unknown key",
        "SpecError",
        spec(("privacy.epsilom", 2)),
        command="check-spec",
    ),
    Case(
        "check-spec-literal-password",
        "target.url holds a literal password",
        "SpecError",
        spec(("target.url", f"{PG_HOST}:LITPWsuite6@127.0.0.1:5432/test")),
        command="check-spec",
        forbidden=("LITPWsuite6",),
    ),
    Case("check-spec-missing-file", "spec file not found", "SpecError", MISSING, command="check-spec"),
]

OVERRIDES = [
    Case(
        "override-epsilon-negative", "--epsilon: Input should be greater than 0", "UsageError", args=("--epsilon", "-1")
    ),
    Case("override-epsilon-nan", "--epsilon: Input should be a finite number", "UsageError", args=("--epsilon", "nan")),
    Case(
        "override-epsilon-huge",
        "--epsilon: Input should be less than or equal to 100",
        "UsageError",
        args=("--epsilon", "1000"),
    ),
    Case(
        "override-rows-zero", "--rows: Input should be greater than or equal to 1", "UsageError", args=("--rows", "0")
    ),
    Case("override-rows-not-a-number", "Invalid value for '--rows'", "UsageError", args=("--rows", "abc")),
    Case("unknown-option", "No such option: --epsilom", "UsageError", args=("--epsilom", "1")),
    Case("bad-trigger", "--trigger: String should match pattern", "UsageError", args=("--trigger", "Bad Trigger!")),
    Case("trigger-too-long", "--trigger: String should match pattern", "UsageError", args=("--trigger", "t" * 40)),
    Case(
        "setting-cap-not-a-number",
        "SYNTHGATE_DEFAULT_BUDGET_CAP: Input should be a valid number",
        "SynthgateError",
        env={"SYNTHGATE_DEFAULT_BUDGET_CAP": "abc"},
    ),
    Case(
        "setting-cap-negative",
        "SYNTHGATE_DEFAULT_BUDGET_CAP: Input should be greater than 0",
        "SynthgateError",
        env={"SYNTHGATE_DEFAULT_BUDGET_CAP": "-1"},
    ),
    Case(
        "setting-cap-nan",
        "SYNTHGATE_DEFAULT_BUDGET_CAP: Input should be a finite number",
        "SynthgateError",
        env={"SYNTHGATE_DEFAULT_BUDGET_CAP": "nan"},
    ),
    Case(
        "setting-parallel-zero",
        "SYNTHGATE_MAX_PARALLEL_TABLES: Input should be greater than or equal to 1",
        "SynthgateError",
        env={"SYNTHGATE_MAX_PARALLEL_TABLES": "0"},
    ),
]

CONNECTIONS = [
    flow("source-closed-port", "cannot connect to warehouse", "WarehouseError", spec(("source.url", pg_url(port=1)))),
    flow(
        "source-unknown-host",
        "cannot connect to warehouse",
        "WarehouseError",
        spec(("source.url", pg_url(host="no-such-host.invalid"))),
    ),
    flow(
        "target-wrong-role",
        'role "sg_hs_no_such_role" does not exist',
        "WarehouseError",
        spec(("target.url", pg_url(user="sg_hs_no_such_role"))),
    ),
    flow(
        "target-wrong-database",
        'database "sg_hs_no_such_db" does not exist',
        "WarehouseError",
        spec(("target.url", pg_url(db="sg_hs_no_such_db"))),
    ),
    flow("target-closed-port", "cannot connect to warehouse", "WarehouseError", spec(("target.url", pg_url(port=1)))),
    flow(
        "mariadb-wrong-user",
        "Access denied",
        "WarehouseError",
        spec(
            ("source.url", "mysql+pymysql://sg_hs_no_such_user@127.0.0.1:3306/test"),
            ("source.schema", lambda w, n: w.get("mariadb").schema),
        ),
        where=("pg", "mariadb"),
    ),
    flow(
        "sqlite-target-folder-missing",
        "cannot connect to warehouse",
        "WarehouseError",
        spec(("target", {"url": "sqlite:////nonexistent-sg-hs/dir/w.db", "table": "syn"})),
    ),
]

PREFLIGHT = [
    flow(
        "sqlite-source-file-missing",
        "does not exist: check source.url",
        "MissingTableError",
        spec(("source", {"url": "sqlite:////tmp/sg-hs-no-such-file.db", "table": "src"})),
    ),
    flow(
        "missing-source-table",
        "table 'SCHEMA.no_such_src' does not exist",
        "MissingTableError",
        spec(("source.table", "no_such_src")),
    ),
    flow(
        "missing-source-schema",
        "does not exist",
        "MissingTableError",
        spec(("source.schema", lambda w, n: w.missing_schema)),
    ),
    flow("hostile-source-name", "does not exist", "MissingTableError", spec(("source.table", HOSTILE))),
    flow("newline-source-name", "does not exist", "MissingTableError", spec(("source.table", "src\nDROP TABLE keep"))),
    flow(
        "missing-holdout-table",
        "check holdout.table.table in the spec",
        "MissingTableError",
        spec(("holdout", lambda w, n: {"table": {"url": PG_URL, "table": "no_such_holdout", "schema": w.pg.schema}})),
    ),
    flow(
        "missing-target-schema",
        "does not exist in postgresql",
        "WarehouseError",
        spec(("target.schema", lambda w, n: w.missing_schema)),
    ),
    flow(
        "target-role-without-create",
        "cannot create tables in schema",
        "WarehouseError",
        spec(("target.url", lambda w, n: pg_url(user=w.ro_role)), ("target.schema", lambda w, n: w.pg_ro.schema)),
        where=("pg", "pg_ro"),
    ),
    flow(
        "target-is-user-table",
        "is a table Synthgate did not create",
        "PublishError",
        spec(("target.table", "taken_table")),
    ),
    flow(
        "target-is-user-view",
        "is a view Synthgate did not create",
        "PublishError",
        spec(("target.table", "taken_view")),
    ),
    flow("target-is-keep", "is a table Synthgate did not create", "PublishError", spec(("target.table", "keep"))),
    flow(
        "child-target-is-keep",
        "target keep (schema",
        "PublishError",
        spec(("privacy.unit", "id"), ("children", lambda w, name: [child_of(w, "id", "keep")])),
    ),
    flow(
        "child-key-of-another-kind",
        "are of different kinds, so no child row would name a parent",
        "SpecError",
        spec(("privacy.unit", "id"), ("children", lambda w, name: [child_of(w, "plan", target_of(name) + "_c")])),
    ),
    flow(
        "target-name-too-long",
        "shorten target.table to at most 56 bytes",
        "SpecError",
        spec(("target.table", "t" * 60)),
    ),
    flow("target-name-too-long-multibyte", "bytes", "SpecError", spec(("target.table", "é" * 30))),
    flow(
        "hostile-target-over-cap",
        "exceeds the cap",
        "PrivacyBudgetError",
        spec(("target.table", HOSTILE), ("privacy.cap", 1.0)),
    ),
    flow(
        "budget-cap-exhausted",
        "epsilon spent 10 + asked 8 exceeds the cap 10",
        "PrivacyBudgetError",
        spec(("source.table", "src_spent")),
    ),
    flow(
        "epsilon-above-cap",
        "asked 2 exceeds the cap 1",
        "PrivacyBudgetError",
        spec(("privacy.epsilon", 2.0), ("privacy.cap", 1.0)),
    ),
    flow(
        "setting-cap-below-epsilon",
        "asked 8 exceeds the cap 0.5",
        "PrivacyBudgetError",
        spec(),
        env={"SYNTHGATE_DEFAULT_BUDGET_CAP": "0.5"},
    ),
    flow(
        "override-epsilon-above-cap",
        "asked 20 exceeds the cap 10",
        "PrivacyBudgetError",
        spec(),
        args=("--epsilon", "20"),
    ),
    flow(
        "declared-column-missing",
        "declares policies for columns ['ghost']",
        "SpecError",
        spec(("columns", {"ghost": {"policy": "drop"}})),
    ),
    flow(
        "hostile-declared-column",
        "declares policies for columns",
        "SpecError",
        spec(("columns", {HOSTILE: {"policy": "drop"}})),
    ),
    flow(
        "target-column-missing",
        "target_column 'no_such_column' is not a column",
        "SpecError",
        spec(("target_column", "no_such_column")),
    ),
    flow(
        "unit-column-missing",
        "privacy.unit 'customer' is not a column",
        "SpecError",
        spec(("privacy.unit", "customer")),
    ),
    flow(
        "only-unsupported-types",
        "all have unsupported SQL types",
        "DataValidationError",
        spec(("source.table", "src_blobs")),
    ),
    flow(
        "unsupported-type-learned",
        "has SQL type BYTEA, which Synthgate cannot read",
        "SpecError",
        spec(("source.table", "src_blobs"), ("columns", {"blob": {"policy": "categorical"}})),
    ),
]

DATA = [
    flow(
        "empty-table",
        "expect_table_row_count_to_be_between",
        "DataValidationError",
        spec(("source.table", "src_empty")),
    ),
    flow(
        "user-version-and-staging-tables",
        "expect_table_row_count_to_be_between",
        "DataValidationError",
        spec(("source.table", "src_empty"), ("target.table", "utarget")),
    ),
    flow(
        "out-of-range-dates",
        "holds dates outside 1677-09-22 .. 2262-04-11",
        "DataValidationError",
        spec(("source.table", "src_dates")),
        forbidden=(FAR_DATE,),
    ),
    flow(
        "holdout-columns-differ",
        "the holdout table's columns differ from the source",
        "DataValidationError",
        spec(("holdout", lambda w, n: {"table": {"url": PG_URL, "table": "holdout_other", "schema": w.pg.schema}})),
    ),
    flow(
        "fewer-rows-than-minimum",
        "at least 50 are needed",
        "DataValidationError",
        spec(("source.table", "src_few")),
        spends=True,
    ),
]

MARIADB = [
    flow(
        "mariadb-missing-source",
        "does not exist",
        "MissingTableError",
        spec(("source.table", "no_such_src"), where="mariadb"),
        where=("mariadb",),
    ),
    flow(
        "mariadb-target-is-user-table",
        "is a table Synthgate did not create",
        "PublishError",
        spec(("target.table", "taken_table"), where="mariadb"),
        where=("mariadb",),
    ),
    flow(
        "mariadb-target-is-user-view",
        "is a view Synthgate did not create",
        "PublishError",
        spec(("target.table", "taken_view"), where="mariadb"),
        where=("mariadb",),
    ),
    flow(
        "mariadb-target-name-too-long",
        "MySQL/MariaDB allows 64",
        "SpecError",
        spec(("target.table", "t" * 62), where="mariadb"),
        where=("mariadb",),
    ),
    flow(
        "mariadb-unit-column-missing",
        "privacy.unit 'customer' is not a column",
        "SpecError",
        spec(("privacy.unit", "customer"), where="mariadb"),
        where=("mariadb",),
    ),
    flow(
        "mariadb-missing-target-database",
        "does not exist in mysql",
        "WarehouseError",
        spec(("target.schema", lambda w, n: w.missing_schema), where="mariadb"),
        where=("mariadb",),
    ),
]

SQLITE = [
    flow(
        "sqlite-missing-source",
        "does not exist",
        "MissingTableError",
        spec(("source.table", "no_such_src"), where="sqlite"),
        where=("sqlite",),
    ),
    flow(
        "sqlite-target-is-user-view",
        "is a view Synthgate did not create",
        "PublishError",
        spec(("target.table", "taken_view"), where="sqlite"),
        where=("sqlite",),
    ),
    flow(
        "sqlite-target-is-keep",
        "is a table Synthgate did not create",
        "PublishError",
        spec(("target.table", "keep"), where="sqlite"),
        where=("sqlite",),
    ),
    flow(
        "sqlite-unit-column-missing",
        "privacy.unit 'customer' is not a column",
        "SpecError",
        spec(("privacy.unit", "customer"), where="sqlite"),
        where=("sqlite",),
    ),
    flow(
        "sqlite-epsilon-above-cap",
        "exceeds the cap",
        "PrivacyBudgetError",
        spec(("privacy.cap", 1.0), where="sqlite"),
        where=("sqlite",),
    ),
]

CASES = SPEC_ERRORS + OVERRIDES + CONNECTIONS + PREFLIGHT + DATA + MARIADB + SQLITE


# -- one run, one assertion helper ----------------------------------------------------------------------------------


def write_case(case: Case, w: World, folder: Path) -> Path:
    path = folder / f"{case.id}.yaml"
    if case.spec is MISSING:
        return path
    if case.spec is DIRECTORY:
        path.mkdir()
        return path
    content = case.spec(w, f"hs-{case.id}")  # type: ignore[operator]
    if isinstance(content, dict):
        content = yaml.safe_dump(content, allow_unicode=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


@dataclass
class Before:
    objects: dict[str, dict[str, str]]  # warehouse -> object -> kind
    checksums: dict[str, dict[str, str]]
    governance: dict[str, dict[str, Any]]


def observe(w: World, case: Case) -> Before:
    found = {key: w.get(key) for key in case.where}
    return Before(
        {k: wh.objects() for k, wh in found.items()},
        {k: wh.user_checksums() for k, wh in found.items()},
        {k: wh.governance_state() for k, wh in found.items()},
    )


def assert_refused(case: Case, w: World, result: Any, before: Before, argv: list[str]) -> str:
    """The one check of every case: exit 2, one clean line (one JSON object), nothing published or spent, the
    user's tables intact. Returns the message."""
    output = f"{argv}\nstdout: {result.stdout!r}\nstderr: {result.stderr!r}"
    assert result.exception is None or isinstance(result.exception, SystemExit), output
    # (1) exit code 2
    assert result.exit_code == 2, output
    # (2) one line on stderr, one JSON object on stdout with --json; no canary, secret or traceback anywhere
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), output
    message = lines[0].removeprefix("error: ")
    assert case.fragment.replace("SCHEMA", w.pg.schema) in message, output
    for text in (result.stdout, result.stderr):
        for needle in (CANARY, "Traceback", *case.forbidden):
            assert needle not in text, f"{needle!r} came out: {output}"
    if "--json" in argv:
        objects = result.stdout.splitlines()
        assert len(objects) == 1, output
        summary = json.loads(objects[0])
        assert set(summary) == {"status", "error_type", "error"}, output
        assert summary["status"] == "failed" and summary["error"] == message, output
        assert summary["error_type"] == case.error_type, output
    else:
        assert result.stdout == "", output
    # (3) nothing published or spent, (4) the user's tables intact
    for key, wh in ((k, w.get(k)) for k in case.where):
        objects = wh.objects()
        new = set(objects) - set(before.objects[key]) - GOVERNANCE
        assert not new, f"{case.id}: created {sorted(new)} in {key}"
        assert wh.user_checksums() == before.checksums[key], f"{case.id}: a user table changed in {key}"
        state, old = wh.governance_state(), before.governance[key]
        for table in (governance.CATALOG.name, governance.EVENTS.name, governance.CLAIMS.name):
            assert state[table] == old[table], f"{case.id}: a {table} row was written in {key}"
        for run_id, row in state["ledger"].items():
            if run_id in old["ledger"]:
                assert row == old["ledger"][run_id], f"{case.id}: an earlier ledger row changed in {key}"
                continue
            assert row["status"] == "failed" and row["finished_at"] is not None, row
            if case.spends:  # the DP row count ran: the whole reservation stays counted
                assert row["epsilon_spent"] == pytest.approx(row["epsilon_budget"]), row
            else:
                assert row["epsilon_spent"] <= 0.0, f"{case.id}: epsilon spent: {row}"
            assert CANARY not in (row["detail"] or ""), row
        if not case.spends:
            assert len(state["ledger"]) - len(old["ledger"]) <= 1, f"{case.id}: more than one ledger row"
    return message


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_input_is_refused_cleanly(
    case: Case,
    world: World,
    home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    if case.flow:
        request.getfixturevalue("prefect_harness")
    for name, value in case.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("SG_HS_UNSET_PW", raising=False)
    monkeypatch.delenv("SG_HS_UNSET_TABLE", raising=False)
    monkeypatch.delenv("SG_HS_HOST", raising=False)
    path = write_case(case, world, tmp_path)
    argv = case.argv(path)
    before = observe(world, case)
    result = CliRunner().invoke(app, argv)
    assert_refused(case, world, result, before, argv)


def test_the_suite_has_at_least_sixty_cases() -> None:
    assert len(CASES) >= 60 and len({c.id for c in CASES}) == len(CASES)


def test_a_flow_error_in_a_real_process_is_one_line_without_traceback(prefect_harness, world, home, tmp_path) -> None:
    """The CLI as a user runs it, in its own process against the test server: Prefect's console logs stay, but no
    traceback reaches the terminal, and the error is the last line."""
    import prefect.settings

    case = next(c for c in CASES if c.id == "missing-source-table")
    path = write_case(case, world, tmp_path)
    env = {**os.environ, "PREFECT_API_URL": prefect.settings.PREFECT_API_URL.value()}
    done = subprocess.run(
        [sys.executable, "-m", "synthgate.cli", *case.argv(path)],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=ROOT,
        env=env,
    )
    assert done.returncode == 2, done.stderr[-3000:]
    assert "Traceback" not in done.stderr and "Traceback" not in done.stdout, done.stderr[-3000:]
    assert CANARY not in done.stderr + done.stdout
    assert json.loads(done.stdout)["error_type"] == "MissingTableError"
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: table ") and "does not exist" in last, done.stderr[-3000:]


@pytest.mark.parametrize(
    ("url", "transient"),
    [
        ("postgresql+psycopg2://postgres@127.0.0.1:1/test", True),  # refused: the server may be restarting
        ("postgresql+psycopg2://sg_hs_no_such_role@127.0.0.1:5432/test", False),
        ("postgresql+psycopg2://postgres@127.0.0.1:5432/sg_hs_no_such_db", False),
        ("postgresql+psycopg2://postgres@no-such-host.invalid:5432/test", False),
        ("mysql+pymysql://sg_hs_no_such_user@127.0.0.1:3306/test", False),
        ("sqlite:////nonexistent-sg-hs/dir/w.db", False),
    ],
    ids=["closed-port", "wrong-role", "wrong-database", "unknown-host", "mariadb-wrong-user", "sqlite-no-folder"],
)
def test_only_transient_connection_failures_are_retried(url: str, transient: bool) -> None:
    """A wrong role, database, host or file fails at once (the preflight's retries are for refused connections)."""
    from synthgate.errors import WarehouseError
    from synthgate.warehouse.engine import check_connection

    if url.startswith("mysql") and _mariadb() is None:
        pytest.skip("MariaDB is not reachable")
    with pytest.raises(WarehouseError) as error:
        check_connection(url)
    assert error.value.transient is transient, str(error.value)


def test_a_publish_error_names_the_object_and_sqlstate_never_the_value(world: World) -> None:
    """A driver error while publishing quotes the value that failed (here a synthetic integer past BIGINT, in
    COPY's message): the PublishError names the object, the driver's error class and SQLSTATE, and nothing more."""
    from synthgate.errors import PublishError
    from synthgate.schema import Column, ColumnKind
    from synthgate.warehouse.publish import publish

    value = 98765432109876543210987
    frame = pd.DataFrame({"n": pd.Series([1, value, 3], dtype=object), "plan": [f"{CANARY}-a"] * 3})
    columns = [Column("n", ColumnKind.INTEGER, "BIGINT"), Column("plan", ColumnKind.CATEGORICAL, "TEXT")]
    target = WarehouseTable(url=world.pg.url, table="overflow_syn", schema=world.pg.schema)
    before = world.pg.user_checksums()
    with pytest.raises(PublishError) as error:
        publish(target, frame, columns, "r" * 32, lambda conn, version: None)
    message = str(error.value)
    assert f"publishing '{world.pg.schema}.overflow_syn' failed (NumericValueOutOfRange, SQLSTATE 22003)" in message
    assert str(value) not in message and CANARY not in message and "\n" not in message
    assert "overflow_syn" not in world.pg.objects() and world.pg.user_checksums() == before
