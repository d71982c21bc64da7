"""The privacy-budget ledger on PostgreSQL: cap refusal and two concurrent refreshes."""

import subprocess
import sys
import textwrap
import time

import pytest
import sqlalchemy as sa

from synthgate.errors import PrivacyBudgetError
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


def test_two_concurrent_refreshes_cannot_both_pass_the_cap(pg_engine, pg_schema):
    engine = pg_engine.execution_options(schema_translate_map={None: pg_schema})
    governance.ensure_governance_tables(engine)
    script = textwrap.dedent(
        f"""
        import sys, sqlalchemy as sa
        from synthgate.errors import PrivacyBudgetError
        from synthgate.warehouse import governance
        engine = sa.create_engine("{PG_URL}").execution_options(schema_translate_map={{None: "{pg_schema}"}})
        entry = governance.LedgerEntry(sys.argv[1], "people", "people", 0.6, 1e-5, sys.argv[1], "test")
        try:
            governance.open_spend(engine, entry, "f" * 64, cap=1.0)
            print("ok")
        except PrivacyBudgetError:
            print("refused")
        """
    )
    with pg_engine.connect() as holder:
        # Hold the table's lock so that both processes reach it and wait, then let them race.
        holder.execute(sa.text("SELECT pg_advisory_lock(hashtext('synthgate:people'))"))
        procs = [subprocess.Popen([sys.executable, "-c", script, f"run-{i}"], stdout=subprocess.PIPE, text=True) for i in range(2)]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            waiting = holder.execute(sa.text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")).scalar()
            if waiting == 2:
                break
            time.sleep(0.1)
        assert waiting == 2, "both processes should be waiting on the ledger lock"
        holder.execute(sa.text("SELECT pg_advisory_unlock(hashtext('synthgate:people'))"))
        holder.commit()
    outcomes = sorted(p.communicate(timeout=60)[0].strip() for p in procs)
    assert outcomes == ["ok", "refused"]
    assert len(governance.ledger_rows(engine)) == 1
