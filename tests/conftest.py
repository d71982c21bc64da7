"""Shared fixtures: small real-looking tables, a real PostgreSQL schema, a real MLflow store, Prefect's harness."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from synthgate.schema import Column, ColumnKind

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("TQDM_DISABLE", "1")

PG_URL = os.environ.get("SYNTHGATE_TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test")
ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def login_role(engine: sa.Engine, schema: str, *grants: str) -> Iterator[str]:
    """A scratch PostgreSQL login role with USAGE on ``schema`` and each of ``grants`` (SQL naming ``{role}`` and
    ``{schema}``), dropped with what it owns afterwards."""
    role = f"sg_role_{uuid.uuid4().hex[:8]}"
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE ROLE "{role}" LOGIN'))
        for grant in (f'GRANT USAGE ON SCHEMA "{schema}" TO "{role}"', *grants):
            conn.execute(sa.text(grant.format(role=role, schema=schema)))
    try:
        yield role
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP OWNED BY "{role}"'))
            conn.execute(sa.text(f'DROP ROLE "{role}"'))


def make_people(n: int = 2000, seed: int = 0) -> pd.DataFrame:
    """A small table with every column kind the generator handles, nulls, an identifier and personal data."""
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 80, n)
    income = np.round(np.exp(rng.normal(10, 0.6, n)) + 300 * (age - 18), 2)
    plan = rng.choice(["basic", "plus", "premium"], n, p=[0.6, 0.3, 0.1])
    churned = (rng.random(n) < np.where(plan == "basic", 0.35, 0.1)).astype(bool)
    region = pd.Series(
        rng.choice(["north", "south", "east", "west", None], n, p=[0.3, 0.3, 0.2, 0.15, 0.05]), dtype=object
    )
    visits = pd.array(np.where(rng.random(n) < 0.1, None, rng.poisson(4, n)), dtype="Int64")
    signup = pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 3 * 365 * 86400, n), unit="s")
    return pd.DataFrame(
        {
            "customer_id": np.arange(100_000, 100_000 + n),
            "email": [f"person{i}@example.org" for i in range(n)],
            "age": age,
            "income": income,
            "plan": plan,
            "region": region,
            "visits": visits,
            "signup": signup,
            "churned": churned,
        }
    )


# The column kinds of make_people's table, as extraction reports them.
PEOPLE_COLUMNS = [
    Column("customer_id", ColumnKind.INTEGER, "BIGINT"),
    Column("email", ColumnKind.CATEGORICAL, "TEXT"),
    Column("age", ColumnKind.INTEGER, "BIGINT"),
    Column("income", ColumnKind.FLOAT, "FLOAT"),
    Column("plan", ColumnKind.CATEGORICAL, "TEXT"),
    Column("region", ColumnKind.CATEGORICAL, "TEXT"),
    Column("visits", ColumnKind.INTEGER, "BIGINT"),
    Column("signup", ColumnKind.DATETIME, "DATETIME"),
    Column("churned", ColumnKind.BOOLEAN, "BOOLEAN"),
]


@pytest.fixture(scope="session")
def people() -> pd.DataFrame:
    return make_people()


@pytest.fixture(scope="session")
def pg_engine() -> sa.Engine:
    engine = sa.create_engine(PG_URL)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError:
        if os.environ.get("SYNTHGATE_REQUIRE_POSTGRES"):
            pytest.fail(f"PostgreSQL is required and not reachable at {PG_URL}")
        pytest.skip("PostgreSQL not reachable (set SYNTHGATE_REQUIRE_POSTGRES=1 to fail instead)")
    return engine


@pytest.fixture
def pg_schema(pg_engine: sa.Engine) -> Iterator[str]:
    """A fresh PostgreSQL schema per test, dropped afterwards."""
    schema = f"sg_{uuid.uuid4().hex[:10]}"
    with pg_engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    yield schema
    with pg_engine.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Synthgate home, MLflow store and expectations folder in a temporary folder."""
    monkeypatch.setenv("SYNTHGATE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SYNTHGATE_EXPECTATIONS_DIR", str(tmp_path / "expectations"))
    monkeypatch.setenv("SYNTHGATE_MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    return tmp_path


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield
