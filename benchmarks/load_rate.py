"""Load rate of publishing: rows/s for one version of N rows into PostgreSQL (COPY in chunks), end to end.

Not part of ``make test``. Run against the local PostgreSQL::

    PYTHONPATH=. .venv/bin/python benchmarks/load_rate.py --rows 1000000

It times ``synthgate.warehouse.publish.publish`` (create the version table, COPY the rows, move the
view, write the catalog row, commit) into a scratch schema that it drops afterwards.
"""

from __future__ import annotations

import argparse
import json
import time
import uuid

import numpy as np
import pandas as pd
import sqlalchemy as sa

from synthgate.schema import Column, ColumnKind
from synthgate.spec import WarehouseTable
from synthgate.warehouse import governance
from synthgate.warehouse.publish import publish

COLUMNS = [
    Column("customer_id", ColumnKind.INTEGER, "BIGINT"),
    Column("email", ColumnKind.CATEGORICAL, "TEXT"),
    Column("age", ColumnKind.INTEGER, "BIGINT"),
    Column("income", ColumnKind.FLOAT, "FLOAT"),
    Column("plan", ColumnKind.CATEGORICAL, "TEXT"),
    Column("region", ColumnKind.CATEGORICAL, "TEXT"),
    Column("visits", ColumnKind.INTEGER, "BIGINT"),
    Column("signup", ColumnKind.DATETIME, "TIMESTAMP"),
    Column("churned", ColumnKind.BOOLEAN, "BOOLEAN"),
]


def frame(rows: int, seed: int = 0) -> pd.DataFrame:
    """A synthetic-table-shaped frame (9 columns of every kind, nulls included)."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "customer_id": np.arange(rows),
            "email": pd.Series([f"user{i}@example.org" for i in range(rows)], dtype=object),
            "age": rng.integers(18, 90, rows),
            "income": np.round(rng.lognormal(10, 0.6, rows), 2),
            "plan": rng.choice(["basic", "plus", "premium"], rows).astype(object),
            "region": pd.Series(rng.choice(["north", "south", "east", "west", None], rows), dtype=object),
            "visits": pd.array(np.where(rng.random(rows) < 0.1, None, rng.poisson(4, rows)), dtype="Int64"),
            "signup": pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 10**8, rows), unit="s"),
            "churned": rng.random(rows) < 0.2,
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--url", default="postgresql+psycopg2://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    data = frame(args.rows)
    schema = f"sg_bench_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(args.url)
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        target = WarehouseTable(url=args.url, table="load_rate", schema=schema)

        def record(conn, version: int) -> None:
            governance.record_event(conn, "load_rate_bench", "bench", version)

        began = time.perf_counter()
        published = publish(target, data, COLUMNS, uuid.uuid4().hex, record)
        seconds = time.perf_counter() - began
        with engine.connect() as conn:
            loaded = conn.execute(sa.text(f'SELECT count(*) FROM "{schema}".load_rate')).scalar()
        assert loaded == args.rows, (loaded, args.rows)
        print(
            json.dumps(
                {
                    "rows": args.rows,
                    "columns": len(COLUMNS),
                    "seconds": round(seconds, 2),
                    "rows_per_second": round(args.rows / seconds),
                    "version": published.version,
                }
            )
        )
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))


if __name__ == "__main__":
    main()
