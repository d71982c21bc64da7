"""The whole refresh of a parent-child pair: NYC's aircraft and their flights through `synthgate refresh`.

    .venv/bin/python benchmarks/linked_refresh.py [--epsilon 1] [--gates open|default] [--out FILE]

Loads `benchmarks/data/planes.csv` (3,322 aircraft) and `flights.csv.gz` (336,776 flights) into PostgreSQL (schema
`bench_linked`), writes a spec whose child table is the flights (key `tailnum`, the aircraft the privacy unit; the
flight's target `late`: arrival 15+ minutes late or cancelled, with the arrival delay and air time left out), and
runs the refresh flow in this process: extract, split by aircraft, both suites, the linked fit, sampling, both
tables' checks and the relations, MLflow, publishing both tables as one version. Prints each stage's seconds, the
process's peak RSS, both tables' scores and the relations. `--gates open` (default) opens every gate so the publish
stage is timed too; `--gates default` keeps the default gates and reports the verdict (a refused run: what each gate
measured, which holds both tables' scores and the relations).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import sqlalchemy as sa
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.linked import DATA, FLIGHT_COLUMNS, KEY, LEFT_OUT_OF_TSTR, PLANE_COLUMNS  # noqa: E402
from benchmarks.scale import gates_off  # noqa: E402

PG_URL = os.environ.get("SYNTHGATE_BENCH_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test")
SCHEMA = "bench_linked"


def load(engine: sa.Engine) -> None:
    """The aircraft and their flights (with ``late``, without what is known only after the flight) in ``SCHEMA``."""
    planes = pd.read_csv(DATA / "planes.csv")[PLANE_COLUMNS]
    flights = pd.read_csv(DATA / "flights.csv.gz")[FLIGHT_COLUMNS]
    flights["late"] = flights["arr_delay"].isna() | (flights["arr_delay"] > 15)
    flights = flights.drop(columns=list(LEFT_OUT_OF_TSTR))
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
        conn.execute(sa.text(f"CREATE SCHEMA {SCHEMA}"))
    planes.to_sql("planes", engine, schema=SCHEMA, index=False, chunksize=50_000)
    flights.to_sql("flights", engine, schema=SCHEMA, index=False, chunksize=50_000, method="multi")


def write_spec(folder: Path, epsilon: float, open_gates: bool) -> Path:
    where = {"url": PG_URL, "schema": SCHEMA}
    spec = {
        "name": "aircraft",
        "source": where | {"table": "planes"},
        "target": where | {"table": "planes_synthetic"},
        "holdout": {"fraction": 0.2},
        "privacy": {"epsilon": epsilon, "delta": 1e-5, "unit": KEY, "cap": 1000},
        "children": [
            {
                "source": where | {"table": "flights"},
                "target": where | {"table": "flights_synthetic"},
                "key": KEY,
                "target_column": "late",
            }
        ],
        **({"gates": gates_off()} if open_gates else {}),
    }
    path = folder / "aircraft.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epsilon", type=float, default=1.0)
    parser.add_argument("--gates", choices=["open", "default"], default="open")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    load(sa.create_engine(PG_URL))
    home = Path(tempfile.mkdtemp(prefix="synthgate-linked-"))
    os.environ |= {"SYNTHGATE_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    from synthgate.errors import GateFailedError
    from synthgate.flows.refresh import refresh_table

    began = time.perf_counter()
    try:
        result = refresh_table(str(write_spec(home, args.epsilon, args.gates == "open")), trigger="benchmark")
    except GateFailedError as exc:  # what each gate measured: the refused run's scores (the run is in MLflow too)
        gates = {v.name: {"measured": round(v.measured, 4), "passed": v.passed} for v in exc.verdicts}
        result = {"status": "rejected", "error": str(exc), "gates": gates}
    summary = {
        "epsilon": args.epsilon,
        "gates": args.gates,
        "seconds": round(time.perf_counter() - began, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "result": result,
    }
    print(json.dumps(summary, indent=1, default=str))
    if args.out:
        args.out.write_text(json.dumps(summary, indent=1, default=str) + "\n")


if __name__ == "__main__":
    main()
