"""Side-by-side benchmark: every system on the same split and the same total budget, one table out.

    python benchmarks/run.py --dataset adult --epsilon 1
    python benchmarks/run.py --dataset adult --epsilon 0.5 4 --systems synthgate
    python benchmarks/run.py --dataset mpls_stops --epsilon 1

Peers run in their own virtual environments (``benchmarks/peers/setup_envs.sh``); every system
writes synthetic rows to a CSV and one JSON line of timings, and this script scores all of them
with the same metric code. Results go to ``benchmarks/results/<dataset>_eps<e>.{md,json}``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.datasets import DATASETS, Dataset
from synthgate.evaluation.fidelity import quality
from synthgate.evaluation.privacy import dcr
from synthgate.evaluation.utility import tstr
from synthgate.schema import ColumnKind

ROOT = Path(__file__).resolve().parent.parent
PYTHON = {
    "synthgate": ROOT / ".venv/bin/python",
    "mostlyai": ROOT / ".bench/mostlyai/bin/python",
    "smartnoise": ROOT / ".bench/smartnoise/bin/python",
}
SYSTEMS = [
    "real",
    "synthgate",
    "synthgate-eps100",
    "mostlyai-dp",
    "mostlyai",
    "smartnoise-mst",
    "smartnoise-aim",
    "smartnoise-dpctgan",
]
DEFAULT_SYSTEMS = [
    "real",
    "synthgate",
    "synthgate-eps100",
    "mostlyai-dp",
    "mostlyai",
    "smartnoise-mst",
]  # AIM: hours on 2 cores


def command(
    system: str,
    data: Dataset,
    train_csv: Path,
    out: Path,
    epsilon: float,
    delta: float,
    seed: int,
    training: str = "{}",
) -> list[str]:
    common = ["--out", str(out), "--epsilon", str(epsilon), "--delta", str(delta), "--seed", str(seed)]
    if system.startswith("synthgate"):
        eps = "100" if system == "synthgate-eps100" else str(epsilon)
        return [
            str(PYTHON["synthgate"]),
            str(ROOT / "benchmarks/run_synthgate.py"),
            "--dataset",
            data.name,
            *common[:2],
            "--epsilon",
            eps,
            "--delta",
            str(delta),
            "--seed",
            str(seed),
            "--training",
            training,
        ]
    datetimes = ",".join(c.name for c in data.columns if c.kind is ColumnKind.DATETIME)
    peer = ["--train", str(train_csv), "--rows", str(len(data.train)), "--datetime", datetimes, *common]
    if system.startswith("mostlyai"):
        extra = [] if system == "mostlyai-dp" else ["--no-dp", "--max-training-time", "3"]
        return [
            str(PYTHON["mostlyai"]),
            str(ROOT / "benchmarks/peers/run_mostlyai.py"),
            *peer,
            "--target",
            data.target,
            *extra,
        ]
    return [
        str(PYTHON["smartnoise"]),
        str(ROOT / "benchmarks/peers/run_smartnoise.py"),
        *peer,
        "--synth",
        system.split("-")[1],
    ]


def load_synthetic(path: Path, data: Dataset) -> pd.DataFrame:
    frame = pd.read_csv(path)
    for c in data.columns:
        if c.kind is ColumnKind.DATETIME:
            frame[c.name] = pd.to_datetime(frame[c.name], utc=True, errors="coerce")
        elif c.kind.is_numeric:
            frame[c.name] = pd.to_numeric(frame[c.name], errors="coerce")
        else:
            frame[c.name] = frame[c.name].where(frame[c.name].notna(), None)
    return frame


def score(data: Dataset, synthetic: pd.DataFrame) -> dict[str, float]:
    frames = {"train": data.train, "holdout": data.holdout, "synthetic": synthetic, "columns": data.columns}
    fid = quality(train=data.train, synthetic=synthetic, columns=data.columns)
    util = tstr(**frames, target=data.target)
    distance = dcr(**frames)
    return {
        "quality": round(fid.quality, 4),
        "column_shapes": round(fid.column_shapes, 4),
        "column_pair_trends": round(fid.column_pair_trends, 4),
        "tstr_auc": round(util.tstr, 4),
        "trtr_auc": round(util.trtr, 4),
        "dcr_share": round(distance.share_closer_to_training, 4),
        "exact_copies_training": round(distance.exact_copies_training, 5),
        "exact_copies_holdout": round(distance.exact_copies_holdout, 5),
    }


def run_system(
    system: str, data: Dataset, workdir: Path, epsilon: float, delta: float, seed: int, timeout: int, training: str
) -> dict:
    if system == "real":
        return {"system": "real (train = synthetic)", **score(data, data.train)}
    out = workdir / f"{system}.csv"
    cmd = command(system, data, workdir / "train.csv", out, epsilon, delta, seed, training)
    if not Path(cmd[0]).exists():
        return {"system": system, "error": f"environment missing: {cmd[0]} (run benchmarks/peers/setup_envs.sh)"}
    began = time.perf_counter()
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return {"system": system, "error": f"timed out after {timeout} s", "wall_seconds": timeout}
    wall = time.perf_counter() - began
    if done.returncode != 0 or not out.exists():
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        return {"system": system, "error": " | ".join(tail)[:400], "wall_seconds": round(wall, 1)}
    timings = json.loads(done.stdout.strip().splitlines()[-1])
    try:
        scores = score(data, load_synthetic(out, data))
    except Exception as exc:  # noqa: BLE001 - one system's unusable output must not lose the others' rows
        return {**timings, "system": system, "error": f"scoring failed: {type(exc).__name__}: {exc}"[:400]}
    return {**timings, "system": system, "wall_seconds": round(wall, 1), **scores}


COLUMNS = [
    "system",
    "epsilon",
    "epsilon_spent",
    "quality",
    "column_shapes",
    "column_pair_trends",
    "tstr_auc",
    "dcr_share",
    "exact_copies_training",
    "train_seconds",
    "sample_rows_per_second",
    "peak_rss_mb",
]


def markdown(rows: list[dict], title: str) -> str:
    lines = [f"### {title}", "", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in rows:
        if "error" in row:
            lines.append(f"| {row['system']} | failed: {row['error']} |")
            continue
        lines.append("| " + " | ".join(str(row.get(c, "")) for c in COLUMNS) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="adult", choices=sorted(DATASETS))
    parser.add_argument("--epsilon", type=float, nargs="+", default=[1.0])
    parser.add_argument("--delta", type=float, default=1e-5)
    parser.add_argument("--systems", nargs="+", default=DEFAULT_SYSTEMS, choices=SYSTEMS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=int, default=1800, help="Seconds per system.")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results")
    parser.add_argument("--training", default="{}", help="Synthgate only: JSON overrides of its Training model.")
    args = parser.parse_args()
    data = DATASETS[args.dataset]()
    args.out.mkdir(parents=True, exist_ok=True)
    for epsilon in args.epsilon:
        rows = []
        with tempfile.TemporaryDirectory() as tmp:
            workdir = Path(tmp)
            data.train.to_csv(workdir / "train.csv", index=False)
            for system in args.systems:
                print(f"[{args.dataset} eps={epsilon:g}] {system} ...", file=sys.stderr, flush=True)
                row = run_system(system, data, workdir, epsilon, args.delta, args.seed, args.timeout, args.training)
                row["epsilon"] = row.get("epsilon", epsilon if system != "real" else "-")
                print(json.dumps(row), file=sys.stderr, flush=True)
                rows.append(row)
        title = (
            f"{args.dataset}: train {len(data.train):,} rows, holdout {len(data.holdout):,}, "
            f"epsilon {epsilon:g}, delta {args.delta:g}"
        )
        stem = f"{args.dataset}_eps{epsilon:g}"  # not Path.with_suffix: "eps0.5" has a dot of its own
        (args.out / f"{stem}.json").write_text(json.dumps(rows, indent=1))
        (args.out / f"{stem}.md").write_text(markdown(rows, title))
        print(markdown(rows, title))


if __name__ == "__main__":
    main()
