"""Time Synthgate's whole evaluation (every metric behind the gates, then the report) on a benchmark table.

    .venv/bin/python benchmarks/evaluation_time.py --dataset adult --epsilon 1

Trains the DP generator once (cached under .synthgate/bench/), samples as many rows as training has, then
times ``synthgate.evaluation.scorecard.evaluate`` and the HTML report; prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.datasets import DATASETS
from synthgate.evaluation.scorecard import evaluate
from synthgate.gates import evaluate_gates
from synthgate.generator import DPSynthesizer
from synthgate.report import ReportContext, write_report
from synthgate.spec import Gates, PrivacyBudget, Training


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", default="adult", choices=sorted(DATASETS))
    parser.add_argument("--epsilon", type=float, default=1.0)
    parser.add_argument("--cache", default=".synthgate/bench")
    parser.add_argument(
        "--training", default="{}", help="JSON overrides of the Training model, e.g. '{\"epochs\": 2}'."
    )
    args = parser.parse_args()
    data = DATASETS[args.dataset]()
    overrides = json.loads(args.training)
    cache = (
        Path(args.cache)
        / f"{args.dataset}_eps{args.epsilon:g}_{abs(hash(json.dumps(overrides, sort_keys=True))) % 10**8}"
    )
    if (cache / "synthesizer.json").is_file():
        synth = DPSynthesizer.load(cache)
    else:
        synth = DPSynthesizer(
            data.columns,
            {},
            PrivacyBudget(epsilon=args.epsilon, delta=1e-5),
            Training(seed=0, **overrides),
            data.target,
        )
        synth.fit(data.train)
        synth.save(cache)
    synthetic = synth.sample(len(data.train), seed=0)
    began = time.perf_counter()
    ev = evaluate(
        train=data.train,
        holdout=data.holdout,
        synthetic=synthetic,
        columns=data.columns,
        target=data.target,
        synthetic_suite_failures=[],
        seed=0,
    )
    evaluation_seconds = time.perf_counter() - began
    verdicts = evaluate_gates(Gates(), ev.scores)
    ctx = ReportContext(
        args.dataset,
        "benchmark",
        synth.summary.epsilon if synth.summary else float("nan"),
        1e-5,
        synth.summary.accounting if synth.summary else "",
        ev.scores,
        verdicts,
        {},
        "",
        ev,
    )
    began = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        write_report(Path(tmp) / "report.html", ctx, data.train, synthetic, synth)
    report_seconds = time.perf_counter() - began
    print(
        json.dumps(
            {
                "dataset": args.dataset,
                "rows": {"train": len(data.train), "holdout": len(data.holdout), "synthetic": len(synthetic)},
                "cpus": os.cpu_count(),
                "load_average_1min": round(os.getloadavg()[0], 1),
                "training": overrides,
                "evaluation_seconds": round(evaluation_seconds, 2),
                "evaluation_breakdown": ev.seconds,
                "report_seconds": round(report_seconds, 2),
                "scores": {k: round(v, 4) for k, v in ev.scores.as_metrics().items()},
                "failed_default_gates": [v.describe() for v in verdicts if not v.passed],
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
