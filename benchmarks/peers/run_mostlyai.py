"""Peer runner: MOSTLY AI's TabularARGN (mostlyai-engine) with or without DP; one JSON line out.

Run it with the interpreter of the `.bench/mostlyai` venv (see setup_envs.sh):

    .bench/mostlyai/bin/python benchmarks/peers/run_mostlyai.py \
        --train synthgate/demo_data/adult/train.csv --out /tmp/syn.csv \
        --epsilon 1 --delta 1e-5 --rows 32561 --target income --seed 0

Workflow (mostlyai.engine 2.7.x): split -> analyze -> encode -> train -> generate, in a workspace
directory inside a temporary folder that is deleted afterwards.

Privacy budget (read from mostlyai/engine/analysis.py and _tabular/training.py of 2.7.3):
  * `DifferentialPrivacyConfig.max_epsilon` is the TOTAL budget: the engine adds the epsilon spent by
    the value-protection step of `analyze` (pure eps-DP Laplace noise on histograms / rare-category
    thresholds) to the DP-SGD epsilon (Opacus RDP accountant) and stops training once the sum would
    exceed `max_epsilon`.  So we pass max_epsilon = epsilon and value_protection_epsilon = 0.1 *
    epsilon, which leaves 0.9 * epsilon for DP-SGD (total = epsilon).
  * The full delta goes to the DP-SGD accountant (analysis is pure eps-DP).
  * The budget is checked at epoch ends only.  If the FIRST epoch already exceeds max_epsilon
    (small epsilon with small data), the engine still saves that model (it never releases "no model"),
    so the true spend can exceed the request.  We therefore also report `epsilon_spent`, read from the
    engine's progress log (dp_eps of the last saved checkpoint), and `budget_exceeded`.
  * Noise multiplier is the engine default (1.5, `--noise-multiplier` to change); the budget is met by
    early stopping, not by calibrating noise.  `--strict` turns an overspent budget into exit status 3.
    The validation split (20% of the rows) is used for checkpoint selection / early stopping without
    privacy accounting, as the engine does by default.

Missing values: mostlyai-engine handles nulls natively (categorical and numeric), so empty cells are
passed through as NaN and come back as empty cells; no placeholder is needed.

`--no-dp` trains without DP (value protection for rare categories stays at the engine default, on,
without a DP epsilon).
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


def _peak_rss_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return round(max(own, kids) / 1024, 1)  # ru_maxrss is in KiB on Linux


def _epsilon_spent(workspace: Path) -> float | None:
    path = workspace / "ModelStore" / "model-data" / "progress-messages.csv"
    if not path.exists():
        found = list(workspace.rglob("progress-messages.csv"))
        if not found:
            return None
        path = found[0]
    log = pd.read_csv(path)
    if "dp_eps" not in log.columns or log["dp_eps"].isna().all():
        return None
    saved = log[log.get("is_checkpoint", pd.Series(0, index=log.index)).fillna(0).astype(int) == 1]
    rows = saved if len(saved) else log
    value = rows["dp_eps"].dropna()
    return float(value.iloc[-1]) if len(value) else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", required=True, help="training CSV")
    parser.add_argument("--out", required=True, help="where to write the synthetic CSV")
    parser.add_argument("--epsilon", type=float, required=True, help="total DP epsilon (ignored with --no-dp)")
    parser.add_argument("--delta", type=float, default=1e-5)
    parser.add_argument("--rows", type=int, required=True, help="number of synthetic rows")
    parser.add_argument("--target", default=None, help="target column (only checked to exist)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-dp", action="store_true", help="train without differential privacy")
    parser.add_argument(
        "--numeric", default=None, help="comma-separated numeric columns (default: columns pandas reads as numbers)"
    )
    parser.add_argument(
        "--datetime",
        default="",
        help="comma-separated datetime columns (encoded as TABULAR_DATETIME, written back as UTC)",
    )
    parser.add_argument("--model", default=None, help="engine model id (default MOSTLY_AI/Medium)")
    parser.add_argument("--max-epochs", type=float, default=None, help="engine default 100")
    parser.add_argument("--max-training-time", type=float, default=None, help="minutes; engine default 14400")
    parser.add_argument(
        "--value-protection-share",
        type=float,
        default=0.1,
        help="share of epsilon for the analyze step's value protection (default 0.1)",
    )
    parser.add_argument(
        "--noise-multiplier", type=float, default=None, help="DP-SGD noise multiplier (engine default 1.5)"
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="exit with status 3 (after printing the JSON line) if the released model's epsilon exceeds --epsilon",
    )
    parser.add_argument(
        "--rare",
        choices=["sample", "constant"],
        default="sample",
        help="rare-category replacement at generation: 'sample' (default) draws a non-rare "
        "category, 'constant' writes the _RARE_ token",
    )
    parser.add_argument("--workdir", default=None, help="parent of the temporary workspace (default: system temp)")
    parser.add_argument("--quiet", action="store_true", help="silence engine logging")
    args = parser.parse_args()

    import logging

    import mostlyai.engine as engine
    from mostlyai.engine.domain import DifferentialPrivacyConfig, RareCategoryReplacementMethod

    # engine logs go to stderr, so stdout carries only the final JSON line
    log = logging.getLogger("mostlyai.engine")
    log.propagate = False
    handler = logging.StreamHandler(stream=sys.stderr)
    handler.setFormatter(logging.Formatter("[%(asctime)s] %(levelname)-7s: %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.WARNING if args.quiet else logging.INFO)
    engine.set_random_state(args.seed)

    df = pd.read_csv(args.train)
    if args.target and args.target not in df.columns:
        sys.exit(f"target column {args.target!r} not in {list(df.columns)}")
    if args.numeric is not None:
        numeric = [c for c in args.numeric.split(",") if c]
    else:
        numeric = [c for c in df.columns if pd.api.types.is_numeric_dtype(df[c])]
    datetimes = [c for c in args.datetime.split(",") if c]
    for c in datetimes:  # naive UTC: else a timestamp column is a categorical with one category per row
        df[c] = pd.to_datetime(df[c], utc=True).dt.tz_localize(None)
    encoding = {c: ("TABULAR_NUMERIC_AUTO" if c in numeric else "TABULAR_CATEGORICAL") for c in df.columns}
    encoding |= dict.fromkeys(datetimes, "TABULAR_DATETIME")
    for c in df.columns:
        if c not in numeric and c not in datetimes:  # categoricals as plain object strings, nulls stay NaN
            df[c] = df[c].astype(object).where(df[c].notna(), None)

    dp = None
    if not args.no_dp:
        dp = DifferentialPrivacyConfig(
            max_epsilon=args.epsilon,
            value_protection_epsilon=args.value_protection_share * args.epsilon,
            delta=args.delta,
            **({} if args.noise_multiplier is None else {"noise_multiplier": args.noise_multiplier}),
        )

    with tempfile.TemporaryDirectory(prefix="mostlyai-ws-", dir=args.workdir) as tmp:
        ws = Path(tmp) / "ws"
        began = time.perf_counter()
        engine.split(tgt_data=df, model_type="TABULAR", tgt_encoding_types=encoding, workspace_dir=ws)
        engine.analyze(value_protection=True, differential_privacy=dp, workspace_dir=ws)
        engine.encode(workspace_dir=ws)
        engine.train(
            model=args.model,
            max_epochs=args.max_epochs,
            max_training_time=args.max_training_time,
            differential_privacy=dp,
            device="cpu",
            workspace_dir=ws,
        )
        train_seconds = time.perf_counter() - began
        spent = _epsilon_spent(ws) if dp is not None else None

        began = time.perf_counter()
        engine.generate(
            sample_size=args.rows,
            device="cpu",
            rare_category_replacement_method=RareCategoryReplacementMethod[args.rare],
            workspace_dir=ws,
        )
        syn = pd.read_parquet(ws / "SyntheticData")
        syn = syn[list(df.columns)]
        for c in numeric:  # keep integer columns integer in the CSV
            if pd.api.types.is_integer_dtype(df[c]) and syn[c].notna().all():
                syn[c] = syn[c].round().astype("int64")
        for c in datetimes:
            syn[c] = pd.to_datetime(syn[c]).dt.tz_localize("UTC")
        syn.to_csv(args.out, index=False)
        sample_seconds = time.perf_counter() - began

    result = {
        "system": "mostlyai" if args.no_dp else "mostlyai-dp",
        "train_seconds": round(train_seconds, 2),
        "sample_seconds": round(sample_seconds, 2),
        "peak_rss_mb": _peak_rss_mb(),
        "epsilon": None if args.no_dp else args.epsilon,
        "delta": None if args.no_dp else args.delta,
        "epsilon_spent": None if spent is None else round(spent, 4),
        "budget_exceeded": None if spent is None else bool(spent > args.epsilon + 1e-9),
        "rows": len(syn),
    }
    sys.stdout.flush()
    print(json.dumps(result), flush=True)
    if args.strict and result["budget_exceeded"]:
        print(f"privacy budget exceeded: spent {spent} > {args.epsilon}", file=sys.stderr)
        sys.exit(3)


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
