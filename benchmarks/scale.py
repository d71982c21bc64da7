"""Cost at scale: the whole refresh (extract to publish, evaluation included) of generated tables of N rows and C
columns in PostgreSQL, timed stage by stage, with seconds per million cells and the peak memory of the process.

Not part of ``make test``. Run on a quiet machine against the local PostgreSQL::

    .venv/bin/python benchmarks/scale.py --rows 10000 100000 1000000 --columns 15
    .venv/bin/python benchmarks/scale.py --rows 100000 --columns 15 60 200
    .venv/bin/python benchmarks/scale.py --parallel 4 --rows 20000   # refresh-all of 4 tables vs each alone
    .venv/bin/python benchmarks/scale.py --rows 1000000 --extract-only [--numeric]   # the extract alone, its memory
    .venv/bin/python benchmarks/scale.py --rows 2000000 --extract-only --split   # then validate and split it

Each table mixes the shapes real tables have (integers, heavy-tailed and zero-inflated figures, NULL-heavy columns,
categories of several sizes, booleans, timestamps with a time zone) and a binary target that depends on some of them.
Each refresh runs in a fresh process (``--one``) with every gate off (the benchmark times the work, it does not judge
the model), so that its peak RSS is its own.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PG_URL = os.environ.get("SYNTHGATE_BENCH_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test")
SCHEMA = "bench_scale"


def generate(rows: int, columns: int, seed: int = 0) -> pd.DataFrame:
    """``rows`` x ``columns`` (the target included) of mixed real-table shapes, seeded."""
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=rows)
    makers = [
        lambda: np.clip(np.round(40 + 12 * rng.normal(size=rows) + 3 * latent), 17, 90).astype("int64"),
        lambda: np.round(np.exp(rng.normal(8, 1.2, size=rows) + 0.3 * latent), 2),  # heavy tail, 2 decimals
        lambda: np.where(rng.random(rows) < 0.85, 0, rng.poisson(3, size=rows) + 1).astype("int64"),  # zero-inflated
        lambda: pd.Series(np.where(rng.random(rows) < 0.6, np.nan, rng.gamma(2, 50, size=rows))),  # 60% NULL
        lambda: rng.choice([f"c{i}" for i in range(8)], size=rows, p=np.r_[0.4, 0.2, 0.1, 0.1, 0.08, 0.06, 0.04, 0.02]),
        lambda: rng.choice([f"r{i:02d}" for i in range(50)], size=rows),
        lambda: rng.random(rows) < 1 / (1 + np.exp(-latent)),
        lambda: pd.Timestamp("2020-01-01", tz="UTC") + pd.to_timedelta(rng.integers(0, 4 * 365 * 86400, rows), "s"),
    ]
    frame = {f"x{j:03d}": makers[j % len(makers)]() for j in range(columns - 1)}
    frame["target"] = rng.random(rows) < 1 / (1 + np.exp(-(1.5 * latent - 0.5)))
    return pd.DataFrame(frame)


def load(engine: sa.Engine, table: str, frame: pd.DataFrame, numeric: bool = False) -> None:
    """Create ``table`` from the frame's dtypes (its float columns ``NUMERIC(14, 2)`` with ``numeric``, as warehouses
    often hold figures) and COPY its rows in."""
    floats = frame.select_dtypes("float").columns if numeric else []
    dtypes = {name: sa.Numeric(14, 2) for name in floats}
    frame.head(0).to_sql(table, engine, schema=SCHEMA, index=False, if_exists="replace", dtype=dtypes)
    raw = engine.raw_connection()
    try:
        with raw.cursor() as cursor:
            for start in range(0, len(frame), 200_000):
                buffer = io.StringIO()
                frame.iloc[start : start + 200_000].to_csv(buffer, index=False, header=False)
                buffer.seek(0)
                cursor.copy_expert(f'COPY {SCHEMA}."{table}" FROM STDIN WITH (FORMAT csv)', buffer)
        raw.commit()
    finally:
        raw.close()


def gates_off() -> dict:
    """Every gate at its loosest bound: the benchmark times the work."""
    from synthgate.spec import Gates

    loose: dict = {}
    for name, info in Gates.model_fields.items():
        if info.annotation is bool:
            loose[name] = False
            continue
        bounds = {type(m).__name__: m for m in info.metadata}
        if name.startswith("min_"):
            loose[name] = next((getattr(bounds[k], k.lower()) for k in ("Ge", "Gt") if k in bounds), 0)
        elif name.startswith("max_"):
            loose[name] = next((getattr(bounds[k], k.lower()) for k in ("Le", "Lt") if k in bounds), 1)
    return loose


def write_spec(folder: Path, table: str, rows: int) -> Path:
    """The table's spec: epsilon 1, delta 1e-6 (below a tenth of 1/rows past 100,000 rows), every gate off."""
    spec = {
        "name": table,
        "source": {"url": PG_URL, "table": table, "schema": SCHEMA},
        "target": {"url": PG_URL, "table": f"{table}_synthetic", "schema": f"{SCHEMA}_pub"},
        "holdout": {"fraction": 0.2},
        "target_column": "target",
        "privacy": {"epsilon": 1.0, "delta": min(1e-6, 0.1 / rows), "cap": 1000},
        "gates": gates_off(),
    }
    path = folder / f"{table}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def peak_rss_mb() -> int:
    """This process's peak resident memory (``VmHWM``) in MiB. Not ``ru_maxrss``: Linux carries that across fork and
    exec, so a fresh process started by this script (which holds the generated table) would report this script's."""
    status = Path("/proc/self/status").read_text()
    return round(int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))) / 1024)


def run_one(spec: Path) -> None:
    """In a fresh process: refresh ``spec`` and print its stage seconds and this process's peak RSS as JSON."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from contextlib import contextmanager

    from synthgate.flows.refresh import refresh_table
    from synthgate.outcome import RefreshResult

    peaks: dict[str, int] = {}
    timed = RefreshResult.stage

    @contextmanager
    def stage(self, name):  # the stage's timing, then the process's peak RSS so far: which stage raised it
        with timed(self, name):
            yield
        peaks[name] = peak_rss_mb()

    RefreshResult.stage = stage  # type: ignore[method-assign]
    began = time.perf_counter()
    result = refresh_table(str(spec), trigger="benchmark")  # type: ignore[call-overload]
    print(
        json.dumps(
            {
                "seconds": round(time.perf_counter() - began, 1),
                "stages": result["stage_seconds"],
                "scores": {k: result[k] for k in ("quality_score", "tstr_auc", "dcr_share")},
                "peak_rss_mb": peak_rss_mb(),
                "peak_after_stage_mb": peaks,
            }
        )
    )


def run_extract(spec: Path, *, split: bool = False) -> None:
    """In a fresh process: extract the spec's source alone; print its seconds, the frame's size and the peak RSS. With
    ``split``, then validate it against a new source suite and split it, as a refresh does before training, and print
    each step's seconds and peak (the peak reset before each step)."""
    from synthgate.spec import WarehouseTable
    from synthgate.warehouse.extract import extract_table

    table = WarehouseTable(**yaml.safe_load(spec.read_text())["source"])  # not load_spec: its imports weigh 600 MiB
    base = peak_rss_mb()
    began = time.perf_counter()
    extract = extract_table(table, key=b"benchmark")
    out = {
        "seconds": round(time.perf_counter() - began, 1),
        "frame_mb": round(extract.frame.memory_usage(deep=True).sum() / 2**20),  # counts a shared text value each time
        "base_rss_mb": base,
        "peak_rss_mb": peak_rss_mb(),
    }
    if split:
        out |= validate_and_split(spec, extract)
    print(json.dumps(out))


def validate_and_split(spec_path: Path, extract: Any) -> dict:
    """Seconds and peak RSS (MiB) of the source validation and the split that follow the extract in a refresh."""
    from synthgate.keys import row_hash_key
    from synthgate.profiling import effective_policies, policies_from_schema
    from synthgate.spec import load_spec
    from synthgate.splitting import split_holdout
    from synthgate.validation import build_source_suite, validate

    spec = load_spec(spec_path)
    suite = build_source_suite(spec, extract.columns, effective_policies(policies_from_schema(spec, extract.columns)))
    steps: dict = {}

    def timed(name: str, run: Callable[[], object]) -> None:
        Path("/proc/self/clear_refs").write_text("5")  # VmHWM from here
        began = time.perf_counter()
        run()
        steps[name] = {"seconds": round(time.perf_counter() - began, 1), "peak_rss_mb": peak_rss_mb()}

    timed("validate", lambda: validate(extract.frame, suite, real_rows=True))
    hash_key = row_hash_key(b"benchmark")
    timed("split", lambda: split_holdout(extract.frame, extract.row_hashes, 0.2, hash_key=hash_key, consume=True))
    return steps


def run_all(specs: Path) -> None:
    """In a fresh process: ``refresh-all`` over the specs in ``specs``; prints its seconds and peak RSS as JSON."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from synthgate.flows.parameters import RefreshAllParameters
    from synthgate.flows.refresh_all import refresh_all

    began = time.perf_counter()
    outcomes = refresh_all(RefreshAllParameters(specs_dir=str(specs)), trigger="benchmark")
    print(
        json.dumps(
            {
                "seconds": round(time.perf_counter() - began, 1),
                "published": sum(o["status"] == "published" for o in outcomes),
                "peak_rss_mb": peak_rss_mb(),
            }
        )
    )


def in_fresh_process(flag: str | list[str], path: Path, env: dict[str, str]) -> dict:
    flags = [flag] if isinstance(flag, str) else flag
    done = subprocess.run([sys.executable, __file__, *flags, str(path)], capture_output=True, text=True, env=env)
    if done.returncode:
        raise SystemExit(f"{flag} {path.name} failed: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def parallel(engine: sa.Engine, tables: int, rows: int, columns: int, home: Path, env: dict[str, str]) -> None:
    """Each of ``tables`` tables refreshed alone, then all of them by one ``refresh-all``: the ratio of the two."""
    specs = home / "specs"
    specs.mkdir()
    for i in range(tables):
        table = f"p{i}_{rows}x{columns}"
        load(engine, table, generate(rows, columns, seed=i))
        write_spec(specs, table, rows)
    # each phase with its own MLflow store: refresh-all must train, not re-sample the models the lone runs logged
    alone_env, all_env = (env | {"SYNTHGATE_HOME": str(home / phase)} for phase in ("alone", "all"))
    alone = {p.stem: in_fresh_process("--one", p, alone_env)["seconds"] for p in sorted(specs.glob("*.yaml"))}
    together = in_fresh_process("--all", specs, all_env)
    print(f"alone (each in its own process): {alone}; sum {sum(alone.values()):.1f} s", flush=True)
    print(
        f"refresh-all of {tables}: {together['seconds']:.1f} s, {together['published']} published, peak RSS "
        f"{together['peak_rss_mb']} MiB; ratio to the sum {together['seconds'] / sum(alone.values()):.2f}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--columns", type=int, nargs="+", default=[15])
    parser.add_argument("--parallel", type=int, help="refresh-all of this many tables (of the first --rows) vs alone")
    parser.add_argument("--one", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--all", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--extract", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--extract-only", action="store_true", help="time the extract stage alone, with its memory")
    parser.add_argument("--split", action="store_true", help="with --extract-only: then validate and split it")
    parser.add_argument("--numeric", action="store_true", help="store the float columns as NUMERIC(14, 2)")
    args = parser.parse_args()
    if args.one or args.all:
        run_one(args.one) if args.one else run_all(args.all)
        return
    if args.extract:
        run_extract(args.extract, split=args.split)
        return
    engine = sa.create_engine(PG_URL)
    with engine.begin() as conn:
        for schema in (SCHEMA, f"{SCHEMA}_pub"):
            conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
            conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    with tempfile.TemporaryDirectory() as home:
        env = os.environ | {"SYNTHGATE_HOME": home, "SYNTHGATE_EXPECTATIONS_DIR": f"{home}/expectations"}
        if args.parallel:
            parallel(engine, args.parallel, args.rows[0], args.columns[0], Path(home), env)
            return
        print(f"{'rows':>9s} {'cols':>5s} {'stage':24s} {'seconds':>8s} {'s/Mcell':>8s}", flush=True)
        for columns in args.columns:
            for rows in args.rows:
                table = f"t{rows}x{columns}"
                load(engine, table, generate(rows, columns), numeric=args.numeric)
                if args.extract_only:
                    flags = [*(["--split"] if args.split else []), "--extract"]
                    r = in_fresh_process(flags, write_spec(Path(home), table, rows), env)
                    print(f"{rows:9d} {columns:5d} extract {r}", flush=True)
                    continue
                r = in_fresh_process("--one", write_spec(Path(home), table, rows), env)
                cells = rows * columns / 1e6
                other = r["seconds"] - sum(r["stages"].values())  # start-up, preflight, the spend, the summary
                for stage, seconds in [*r["stages"].items(), ("other", other), ("total", r["seconds"])]:
                    print(f"{rows:9d} {columns:5d} {stage:24s} {seconds:8.1f} {seconds / cells:8.1f}", flush=True)
                print(f"{rows:9d} {columns:5d} {'peak RSS (MiB)':24s} {r['peak_rss_mb']:8d}", flush=True)
                print(f"{rows:9d} {columns:5d} peak RSS after each stage (MiB) {r['peak_after_stage_mb']}", flush=True)
                print(f"{rows:9d} {columns:5d} scores {r['scores']}", flush=True)


if __name__ == "__main__":
    main()
