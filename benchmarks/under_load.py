"""Training and sampling speed beside competing CPU-bound processes, with the thread count Synthgate chooses
(``synthgate/cpu_threads.py``) and with PyTorch's default (one thread per core, ``SYNTHGATE_THREADS`` = the cores).

Not part of ``make test``; run on a quiet machine (it makes its own load)::

    .venv/bin/python benchmarks/under_load.py [--dataset adult] [--competitors 0 1 2]

Each cell is one fresh process running ``benchmarks/run_synthgate.py`` (fit, then 200,000 sampled rows) while N
``python -c "while True: pass"`` processes run; the table prints seconds, rows/s and each one's ratio to the quiet
run of the same policy, all measured in this one run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from synthgate.cpu_threads import usable_cores  # noqa: E402  (after the path: the benchmark runs as a script)

SPIN = "while True: pass"


def run_once(dataset: str, epsilon: float, competitors: int, threads: int | None) -> dict:
    spinners = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(competitors)]
    env = {k: v for k, v in os.environ.items() if k != "SYNTHGATE_THREADS"}
    env |= {"SYNTHGATE_THREADS": str(threads)} if threads else {}
    try:
        with tempfile.NamedTemporaryFile(suffix=".csv") as out:
            done = subprocess.run(
                [
                    sys.executable,
                    str(ROOT / "benchmarks/run_synthgate.py"),
                    *("--dataset", dataset, "--epsilon", str(epsilon), "--out", out.name),
                ],
                capture_output=True,
                text=True,
                env=env,
                check=True,
            )
    finally:
        for s in spinners:
            s.kill()
            s.wait()
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="adult")
    parser.add_argument("--epsilon", type=float, default=1.0)
    parser.add_argument("--competitors", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    cores = usable_cores()
    policies = {"synthgate (adaptive)": None, f"torch default ({cores} threads)": cores}
    print(f"{args.dataset}, epsilon {args.epsilon:g}, {cores} usable cores, load average {os.getloadavg()[0]:.2f}")
    print(f"{'policy':28s} {'competing':>9s} {'train s':>8s} {'x quiet':>8s} {'sample rows/s':>14s} {'x quiet':>8s}")
    for name, threads in policies.items():
        quiet = None
        for n in args.competitors:
            r = run_once(args.dataset, args.epsilon, n, threads)
            quiet = quiet or r
            train, rate = r["train_seconds"], r["sample_rows_per_second"]
            slower = (train / quiet["train_seconds"], quiet["sample_rows_per_second"] / rate)
            print(f"{name:28s} {n:9d} {train:8.1f} {slower[0]:8.2f} {rate:14,d} {slower[1]:8.2f}", flush=True)


if __name__ == "__main__":
    main()
