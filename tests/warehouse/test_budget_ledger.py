"""The privacy-budget ledger on PostgreSQL: cap refusal, two concurrent refreshes, and a budget that follows the
source table whatever the spec reading it is called."""

import logging
import subprocess
import sys
import textwrap
import time

import pytest
import sqlalchemy as sa

from synthgate.errors import PrivacyBudgetError
from synthgate.spec import WarehouseTable, spec_from_dict
from synthgate.warehouse import governance
from tests.conftest import PG_URL

pytestmark = pytest.mark.integration


def entry(run_id: str, epsilon: float) -> governance.LedgerEntry:
    return governance.LedgerEntry(run_id, "people", "people", epsilon, 1e-5, run_id, "test")


def test_cap_refuses_with_spent_asked_and_cap(pg_engine, pg_schema):
    engine = pg_engine.execution_options(schema_translate_map={None: pg_schema})
    governance.open_spend(engine, entry("run-1", 0.6), "f" * 64, cap=1.0)
    with pytest.raises(PrivacyBudgetError, match=r"spent 0.6 \+ asked 0.6 exceeds the cap 1"):
        governance.open_spend(engine, entry("run-2", 0.6), "f" * 64, cap=1.0)
    assert [r["run_id"] for r in governance.ledger_rows(engine)] == ["run-1"]  # the refused spend left no row
    governance.open_spend(engine, entry("run-3", 0.4), "f" * 64, cap=1.0)
    summary = governance.budget_summary(engine, "people", cap=1.0)
    assert summary["epsilon_spent"] == pytest.approx(1.0) and summary["remaining"] == pytest.approx(0.0)


def test_two_concurrent_refreshes_of_one_source_under_two_spec_names_cannot_both_pass_the_cap(pg_engine, pg_schema):
    engine = pg_engine.execution_options(schema_translate_map={None: pg_schema})
    governance.ensure_governance_tables(engine)
    key = governance.source_key(WarehouseTable(url=PG_URL, table="people", schema=pg_schema))
    lock = governance.budget_lock_key(key, "unused")
    script = textwrap.dedent(
        f"""
        import sys, sqlalchemy as sa
        from synthgate.errors import PrivacyBudgetError
        from synthgate.warehouse import governance
        engine = sa.create_engine("{PG_URL}").execution_options(schema_translate_map={{None: "{pg_schema}"}})
        entry = governance.LedgerEntry(sys.argv[1], "spec-" + sys.argv[1], "people", 0.6, 1e-5, sys.argv[1], "test",
                                       source_key={key!r})
        try:
            governance.open_spend(engine, entry, "f" * 64, cap=1.0)
            print("ok")
        except PrivacyBudgetError:
            print("refused")
        """
    )
    with pg_engine.connect() as holder:
        # Hold the source's lock so that both processes reach it and wait, then let them race.
        holder.execute(sa.text("SELECT pg_advisory_lock(hashtext(:k))"), {"k": lock})
        procs = [
            subprocess.Popen([sys.executable, "-c", script, f"run-{i}"], stdout=subprocess.PIPE, text=True)
            for i in range(2)
        ]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            waiting = holder.execute(
                sa.text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
            ).scalar()
            if waiting == 2:
                break
            time.sleep(0.1)
        assert waiting == 2, "both processes should be waiting on the ledger lock"
        holder.execute(sa.text("SELECT pg_advisory_unlock(hashtext(:k))"), {"k": lock})
        holder.commit()
    outcomes = sorted(p.communicate(timeout=60)[0].strip() for p in procs)
    assert outcomes == ["ok", "refused"]
    assert len(governance.ledger_rows(engine)) == 1


def spec(name: str, schema: str, source_url: str = PG_URL, cap: float = 3.0, source_schema: str | None = None):
    return spec_from_dict(
        {
            "name": name,
            "source": {"url": source_url, "table": "people", "schema": source_schema or schema},
            "target": {"url": PG_URL, "table": f"{name}_synthetic", "schema": schema},
            "privacy": {"epsilon": 2.0, "delta": 1e-5, "cap": cap},
        }
    )


def keyed(run_id: str, table_spec, epsilon: float = 2.0) -> governance.LedgerEntry:
    return governance.LedgerEntry(
        run_id,
        table_spec.name,
        table_spec.source.table,
        epsilon,
        1e-5,
        run_id,
        "test",
        source_key=governance.source_key(table_spec.source),
    )


def test_one_source_under_two_spec_names_shares_one_cap(pg_engine, pg_schema):
    engine = pg_engine.execution_options(schema_translate_map={None: pg_schema})
    first = spec("people", pg_schema)
    # The same table, renamed spec, spelled with localhost and the plain driver name: still the same source.
    renamed = spec("people_v2", pg_schema, source_url=PG_URL.replace("127.0.0.1", "localhost").replace("+psycopg2", ""))
    assert governance.source_key(first.source) == governance.source_key(renamed.source)
    governance.open_spend(engine, keyed("run-1", first), cap=3.0)

    with pytest.raises(
        PrivacyBudgetError,
        match=r"spent 2 \+ asked 2 exceeds the cap 3 \(spent on source 'people' also "
        r"under spec name\(s\) 'people'",
    ):
        governance.check_budget(engine, renamed.name, 2.0, 3.0, source=renamed.source)
    with pytest.raises(PrivacyBudgetError, match="exceeds the cap 3"):
        governance.open_spend(engine, keyed("run-2", renamed), cap=3.0)
    assert [r["run_id"] for r in governance.ledger_rows(engine)] == ["run-1"]

    summary = governance.budget_summary(engine, renamed.name, 3.0, source=renamed.source)
    assert summary["epsilon_spent"] == pytest.approx(2.0) and summary["remaining"] == pytest.approx(1.0)
    assert summary["spec_names"] == ["people"] and [r["run_id"] for r in summary["history"]] == ["run-1"]
    # By name alone (no source given), the summary follows the sources that name spent on.
    governance.open_spend(engine, keyed("run-3", renamed, 1.0), cap=3.0)
    assert governance.budget_summary(engine, "people", 3.0)["epsilon_spent"] == pytest.approx(3.0)
    assert governance.budget_summary(engine, "people_v2", 3.0)["spec_names"] == ["people", "people_v2"]

    other = spec("people", pg_schema, source_schema="elsewhere")  # another table: its own budget, same spec name
    governance.check_budget(engine, "other", 2.0, 3.0, source=other.source)


def test_the_preflight_refuses_a_renamed_spec_whose_source_is_spent_before_connecting_to_it(
    pg_engine, pg_schema, tmp_path
):
    from synthgate.tasks.budget import preflight

    engine = pg_engine.execution_options(schema_translate_map={None: pg_schema})
    source = tmp_path / "source.db"  # never created: the refused refresh never connects to it
    first = spec("people", pg_schema, source_url=f"sqlite:///{source}")
    governance.open_spend(engine, keyed("run-1", first), cap=3.0)
    with pytest.raises(PrivacyBudgetError, match="exceeds the cap 3"):
        preflight.fn(spec("renamed", pg_schema, source_url=f"sqlite:///{source}"), 3.0)
    assert not source.exists()


def test_reserve_budget_keys_the_ledger_row_by_the_source(pg_engine, pg_schema, monkeypatch):
    from synthgate.tasks import budget as budget_tasks

    monkeypatch.setattr(budget_tasks, "get_run_logger", lambda: logging.getLogger("test"))
    engine = pg_engine.execution_options(schema_translate_map={None: pg_schema})
    table_spec = spec("people", pg_schema)
    entry = governance.LedgerEntry("run-1", "people", "people", 2.0, 1e-5, "run-1", "test")  # as the flow builds it
    with budget_tasks.reserve_budget(table_spec, entry, 3.0):
        pass
    [row] = governance.ledger_rows(engine)
    assert row["source_key"] == governance.source_key(table_spec.source)
    renamed = governance.LedgerEntry("run-2", "renamed", "people", 2.0, 1e-5, "run-2", "test")
    with pytest.raises(PrivacyBudgetError), budget_tasks.reserve_budget(spec("renamed", pg_schema), renamed, 3.0):
        pass  # the same source under another spec name: 2 + 2 > 3
    assert [r["run_id"] for r in governance.ledger_rows(engine)] == ["run-1"]


def test_an_older_ledger_gets_the_source_column_and_its_rows_still_count(pg_engine, pg_schema):
    engine = pg_engine.execution_options(schema_translate_map={None: pg_schema})
    with pg_engine.begin() as conn:  # the ledger as an older release created it: no source_key
        conn.execute(
            sa.text(f"""
            CREATE TABLE "{pg_schema}".synthgate_ledger (
                run_id VARCHAR(64) PRIMARY KEY, spec_name VARCHAR(200) NOT NULL, source_table VARCHAR(400) NOT NULL,
                source_fingerprint VARCHAR(64), epsilon_budget FLOAT NOT NULL, epsilon_spent FLOAT NOT NULL,
                delta FLOAT NOT NULL, accounting VARCHAR(16), status VARCHAR(16) NOT NULL, detail TEXT,
                mlflow_run_id VARCHAR(64) NOT NULL, trigger VARCHAR(32), started_at TIMESTAMPTZ NOT NULL,
                finished_at TIMESTAMPTZ)""")
        )
        conn.execute(
            sa.text(f"""
            INSERT INTO "{pg_schema}".synthgate_ledger VALUES
                ('old-1', 'people', 'people', NULL, 1.5, 1.5, 1e-5, NULL, 'published', NULL, 'old-1', 'cli',
                 now(), now())""")
        )
    governance.ensure_governance_tables(engine)
    assert "source_key" in {c["name"] for c in sa.inspect(pg_engine).get_columns("synthgate_ledger", schema=pg_schema)}
    # An older row counts for the spec of that name and for any source table of that name (conservative).
    with pytest.raises(PrivacyBudgetError, match=r"spent 1.5 \+ asked 2"):
        governance.check_budget(engine, "people", 2.0, 3.0, source=spec("people", pg_schema).source)
    with pytest.raises(PrivacyBudgetError, match=r"spent 1.5 \+ asked 2"):
        governance.check_budget(engine, "renamed", 2.0, 3.0, source=spec("renamed", pg_schema).source)


def test_child_tables_of_one_run_keep_ledger_keys_of_their_own():
    run = "0123456789abcdef0123456789abcdef"
    assert governance.child_run_id(run, "orders_synthetic") == f"{run}/orders_synthetic"
    long = [governance.child_run_id(run, f"customer_support_tickets_synthetic_{region}") for region in ("eu", "us")]
    assert long[0] != long[1] and all(len(key) == 64 for key in long)  # cut to the column, a hash keeps them apart


def test_a_ledger_that_cannot_be_closed_leaves_the_run_s_own_error_and_its_reservation(tmp_path, caplog):
    # the warehouse goes away while the run fails: the user reads the run's error, not the ledger's, and the open row
    # (the full reservation) still counts against the cap when the warehouse is back
    from synthgate.errors import DataValidationError

    path = tmp_path / "w.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    governance.ensure_governance_tables(engine)

    def failing_run() -> None:
        with governance.reserved_spend(engine, entry("run-1", 0.6), cap=1.0) as spend:
            spend.training()
            with engine.begin() as conn:  # the ledger's table is gone: every later write fails
                conn.execute(sa.text("ALTER TABLE synthgate_ledger RENAME TO ledger_away"))
            raise DataValidationError("source suite failed: expect_column_values_to_not_be_null(age)")

    with pytest.raises(DataValidationError, match="source suite failed"):
        failing_run()
    assert "closing the run's row in the privacy-budget ledger failed (OperationalError" in caplog.text
    with engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE ledger_away RENAME TO synthgate_ledger"))
    [row] = governance.ledger_rows(engine)
    assert row["status"] == "started" and governance.budget_summary(engine, "people", 1.0)["remaining"] == 0.4
