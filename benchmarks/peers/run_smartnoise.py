"""Peer runner: SmartNoise Synth (snsynth) MST / AIM / DPCTGAN; one JSON line out.

Run it with the interpreter of the `.bench/smartnoise` venv (see setup_envs.sh):

    .bench/smartnoise/bin/python benchmarks/peers/run_smartnoise.py \
        --train synthgate/demo_data/adult/train.csv --out /tmp/syn.csv \
        --epsilon 1 --delta 1e-5 --rows 32561 --synth mst --seed 0

Privacy budget (read from snsynth/base.py, transform/table.py, transform/bin.py of smartnoise-synth 1.0.8):
  * `Synthesizer.create(name, epsilon=E, delta=D)` gives the synthesizer the WHOLE budget E.
  * `fit(..., preprocessor_eps=p)` lets the table transformer spend p (pure eps-DP, split evenly over
    the continuous columns) to infer min/max bounds of each continuous column (approx_bounds), and the
    library then SUBTRACTS what was spent from the synthesizer's epsilon (`self.epsilon -= eps_spent`).
    So create(epsilon=E) + fit(preprocessor_eps=share*E) spends E in total: share*E for the bounds and
    (1-share)*E (with delta D) for MST / AIM / DPCTGAN.  With no continuous column nothing is spent on
    preprocessing and the synthesizer keeps all of E.  The JSON line reports both parts.
  * MST / AIM ("cube" style) bin each continuous column into the library's default 10 equal-width bins
    (`--bins`) between the DP bounds (BinTransformer); sampled values are bin midpoints.  DPCTGAN ("gan"
    style) min-max scales continuous columns between the DP bounds.
  * The DP bounds (snsql approx_bounds: noisy power-of-two histogram) are coarse at small budgets: on
    Adult with epsilon 1 (0.1/6 per column) capital_gain and capital_loss get bounds [0, 1], so their
    synthetic values collapse to 0/1.  `--bounds '{"col": [lo, hi]}'` supplies PUBLIC bounds instead
    (no budget spent for those columns); use it only where the comparison grants public bounds to all
    systems.
  * DPCTGAN checks its epsilon only at the start of each epoch and trains that epoch whole, so it can
    overshoot by one epoch.  `epsilon_spent` reports the epsilon of the released model (recomputed
    with opacus' RDP analysis for the epochs actually trained, plus the preprocessor's share); opacus 0.14
    itself warns that this fixed-batch (non-Poisson) accounting is not exact.

Missing values: empty categorical cells are replaced by the placeholder "__NA__" before fitting (so
they become an ordinary category) and turned back into empty cells in the output.  A numeric column
with missing values switches the library's `nullable=True` mode (adds a null indicator); Adult has none.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import resource
import sys
import time

import numpy as np
import pandas as pd

NA = "__NA__"


def _peak_rss_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return round(max(own, kids) / 1024, 1)  # ru_maxrss is in KiB on Linux


def _dpctgan_epsilon(synth, n_rows: int, epochs: int) -> float:
    """Epsilon of DPCTGAN's discriminator after `epochs` epochs, recomputed the way snsynth 1.0.8 /
    opacus 0.14 account it (RDP, q = batch/n, one accountant step per optimizerD.step(): two per batch
    with the default cross-entropy loss).  The library only checks the budget at epoch starts and does
    not keep the final value."""
    from opacus import privacy_analysis

    alphas = [1 + x / 10.0 for x in range(1, 100)] + list(range(12, 64))
    q = synth._batch_size / n_rows
    steps = epochs * max(n_rows // synth._batch_size, 1) * (2 if synth.loss == "cross_entropy" else 1)
    if steps == 0:
        return 0.0
    rdp = privacy_analysis.compute_rdp(q, synth.sigma, steps, alphas)
    return float(privacy_analysis.get_privacy_spent(alphas, rdp, synth.delta)[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", required=True, help="training CSV")
    parser.add_argument("--out", required=True, help="where to write the synthetic CSV")
    parser.add_argument("--epsilon", type=float, required=True, help="total DP epsilon")
    parser.add_argument("--delta", type=float, default=1e-5)
    parser.add_argument("--rows", type=int, required=True, help="number of synthetic rows")
    parser.add_argument("--synth", choices=["mst", "aim", "dpctgan"], required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--target", default=None, help="target column (only checked to exist)")
    parser.add_argument(
        "--numeric", default=None, help="comma-separated continuous columns (default: columns pandas reads as numbers)"
    )
    parser.add_argument(
        "--datetime",
        default="",
        help="comma-separated datetime columns: modelled as continuous seconds since 1970, "
        "written back as UTC timestamps",
    )
    parser.add_argument(
        "--preprocessor-share",
        type=float,
        default=0.1,
        help="share of epsilon for inferring continuous-column bounds (default 0.1)",
    )
    parser.add_argument(
        "--bins", type=int, default=None, help="MST/AIM: equal-width bins per continuous column (library default 10)"
    )
    parser.add_argument(
        "--bounds",
        default=None,
        help='JSON {"col": [lower, upper]} of PUBLIC bounds; those columns spend no '
        "preprocessor budget (the caller vouches that the bounds are public)",
    )
    parser.add_argument("--epochs", type=int, default=None, help="DPCTGAN epochs (library default 300)")
    parser.add_argument("--synth-kwargs", default="{}", help="JSON of extra synthesizer constructor arguments")
    args = parser.parse_args()

    import torch
    from snsynth import Synthesizer

    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)

    df = pd.read_csv(args.train)
    if args.target and args.target not in df.columns:
        sys.exit(f"target column {args.target!r} not in {list(df.columns)}")
    datetimes = [c for c in args.datetime.split(",") if c]
    for c in datetimes:  # else a timestamp column is a categorical with one category per row
        df[c] = pd.to_datetime(df[c], utc=True).astype("int64") / 1e9
    if args.numeric is not None:
        continuous = [c for c in args.numeric.split(",") if c] + datetimes
    else:
        continuous = [c for c in df.columns if pd.api.types.is_numeric_dtype(df[c])]
    categorical = [c for c in df.columns if c not in continuous]
    integer_cols = [c for c in continuous if pd.api.types.is_integer_dtype(df[c])]
    for c in categorical:
        df[c] = df[c].astype(object).where(df[c].notna(), NA).astype(str)
    nullable = bool(df[continuous].isna().any().any()) if continuous else False

    kwargs = json.loads(args.synth_kwargs)
    if args.synth == "dpctgan":
        kwargs.setdefault("cuda", False)
        kwargs.setdefault("verbose", False)
        if args.epochs is not None:
            kwargs["epochs"] = args.epochs
    bounds = {c: (float(lo), float(hi)) for c, (lo, hi) in json.loads(args.bounds or "{}").items()}
    unknown = sorted(set(bounds) - set(continuous))
    if unknown:
        sys.exit(f"--bounds names non-continuous columns: {unknown}")
    transformer = None  # None: the library picks its default transformers from the column lists
    if bounds or args.bins is not None:
        from snsynth.transform import BinTransformer, MinMaxTransformer

        transformer = {}
        for c in continuous:
            lo, hi = bounds.get(c, (None, None))
            if args.synth in ("mst", "aim"):
                transformer[c] = BinTransformer(bins=args.bins or 10, lower=lo, upper=hi, nullable=nullable)
            else:
                transformer[c] = MinMaxTransformer(lower=lo, upper=hi, nullable=nullable)
    needs_bounds = [c for c in continuous if c not in bounds]
    preprocessor_eps = args.preprocessor_share * args.epsilon if needs_bounds else 0.0

    # the library prints progress to stdout; keep stdout for the final JSON line only
    with contextlib.redirect_stdout(sys.stderr):
        synth = Synthesizer.create(args.synth, epsilon=args.epsilon, delta=args.delta, **kwargs)
        began = time.perf_counter()
        synth.fit(
            df,
            transformer=transformer,
            categorical_columns=categorical,
            continuous_columns=continuous,
            preprocessor_eps=preprocessor_eps,
            nullable=nullable,
        )
        train_seconds = time.perf_counter() - began
        pre_spent, pre_delta = synth._transformer.odometer.spent
        synth_eps = float(synth.epsilon)  # what the synthesizer kept after the preprocessor's share

        began = time.perf_counter()
        syn = synth.sample(args.rows)
        if not isinstance(syn, pd.DataFrame):
            syn = pd.DataFrame(list(syn), columns=list(df.columns))
        # MST/AIM (mbi) emit rows grouped by value; shuffle so a head() or split of the file is unbiased
        syn = syn[list(df.columns)].sample(frac=1.0, random_state=args.seed).reset_index(drop=True)
        for c in categorical:
            syn[c] = syn[c].astype(object).where(syn[c].astype(str) != NA, None)
        for c in integer_cols:
            if syn[c].notna().all():
                syn[c] = pd.to_numeric(syn[c]).round().astype("int64")
        for c in datetimes:
            syn[c] = pd.to_datetime(pd.to_numeric(syn[c]), unit="s", utc=True)
        syn.to_csv(args.out, index=False)
        sample_seconds = time.perf_counter() - began

    total = float(pre_spent) + synth_eps
    spent = None
    if args.synth == "dpctgan" and getattr(synth, "epsilon_list", None) is not None:
        checks = list(synth.epsilon_list)  # epsilon at the start of each epoch that was begun
        broke = bool(checks) and checks[-1] > synth_eps
        epochs_trained = len(checks) - 1 if broke else len(checks)
        spent = _dpctgan_epsilon(synth, len(df), epochs_trained) + float(pre_spent)
        if len(checks) > 1:  # self-check against the library's own value after epoch 1
            again = _dpctgan_epsilon(synth, len(df), 1)
            if abs(again - checks[1]) > 1e-6:
                print(f"warning: recomputed epsilon {again} != library's {checks[1]}", file=sys.stderr)
    result = {
        "system": f"smartnoise-{args.synth}",
        "train_seconds": round(train_seconds, 2),
        "sample_seconds": round(sample_seconds, 2),
        "peak_rss_mb": _peak_rss_mb(),
        "epsilon": args.epsilon,
        "delta": args.delta,
        "preprocessor_epsilon": round(float(pre_spent), 6),
        "synthesizer_epsilon": round(synth_eps, 6),
        "budget_total_ok": bool(abs(total - args.epsilon) < 1e-9 and pre_delta <= 1e-12),
        "epsilon_spent": None if spent is None else round(spent, 4),
        "rows": len(syn),
    }
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
