"""What one DP-SGD step costs in operators: the basis of the GPU speed-up Synthgate expects where none was measured.

    .venv/bin/python benchmarks/step_ops.py [--dataset adult] [--epochs 2]

Fits the generator on a benchmark table and prints the seconds a DP-SGD step takes, then the ATen operators a step
runs, from two fits under PyTorch's profiler (CPU), one twice as long as the other: their difference over the steps
between them. On a GPU each operator is at least one kernel launch, a few microseconds however small its tensors, so
a network of small layers is bound there by launches, not by arithmetic. Not part of ``make test``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from torch.profiler import ProfilerActivity, profile

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.datasets import DATASETS  # noqa: E402
from synthgate.generator import DPSynthesizer  # noqa: E402
from synthgate.spec import PrivacyBudget, Training  # noqa: E402


def fit(dataset: str, epochs: int) -> tuple[DPSynthesizer, float, int]:
    """A fit of ``epochs`` passes at epsilon 1: the synthesizer, the DP-SGD seconds and the steps."""
    data = DATASETS[dataset]()
    synth = DPSynthesizer(
        data.columns, {}, PrivacyBudget(epsilon=1.0, delta=1e-5), Training(epochs=epochs), data.target
    )
    summary = synth.fit(data.train)
    return synth, summary.train_seconds, summary.plan.steps


def profiled_ops(dataset: str, epochs: int) -> tuple[int, int]:
    """(ATen operators doing work of their own, DP-SGD steps) over a fit of ``epochs`` passes: a composite such as
    ``aten::linear`` calls others, which are counted instead."""
    with profile(activities=[ProfilerActivity.CPU]) as profiled:
        _, _, steps = fit(dataset, epochs)
    return sum(
        e.count for e in profiled.key_averages() if e.key.startswith("aten::") and e.self_cpu_time_total > 0
    ), steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", default="adult", choices=sorted(DATASETS))
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    _, seconds, steps = fit(args.dataset, args.epochs)
    # two fits, one twice as long: the difference is the steps' own (preprocessing and set-up cancel out)
    short, short_steps = profiled_ops(args.dataset, args.epochs)
    long, long_steps = profiled_ops(args.dataset, 2 * args.epochs)
    per_step = (long - short) / max(long_steps - short_steps, 1)
    print(f"{args.dataset}: {steps} steps, {seconds / steps * 1000:.1f} ms a step (unprofiled)")
    print(f"ATen operators a step: {per_step:.0f}")


if __name__ == "__main__":
    main()
