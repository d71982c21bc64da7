"""Peer runner: MOSTLY AI's engine on a parent-child pair, with DP; one JSON line out.

Run it with the interpreter of the `.bench/mostlyai` venv (see setup_envs.sh):

    .bench/mostlyai/bin/python benchmarks/peers/run_mostlyai_linked.py --parents P.csv --children C.csv \
        --key tailnum --epsilon 1 --out-parents SP.csv --out-children SC.csv

The engine's linked setup (mostlyai.engine 2.7.x): a flat model of the parents (the subjects), then a sequential
model of the children with the parents as context (`split(tgt_data=children, ctx_data=parents,
tgt_context_key=key, ctx_primary_key=key)`): one subject, with all its children, is one DP-SGD example, so its
epsilon is per parent. Generation draws the parents, then the children of each synthetic parent.

Budget: the same total per parent as Synthgate's linked fit. The parent model gets ``--parent-share`` of epsilon
and delta (default 0.3), the child model the rest (basic composition); each is passed as its `max_epsilon` (its
value protection taking 0.1 of it, as in run_mostlyai.py). The engine checks the budget at epoch ends and may
overspend on its first epoch: the spent epsilons are read from its progress logs and reported.

Children whose key is NULL or names no parent cannot be context-linked: they are left out of the child model's
training (the engine's sequential model needs a subject), so every synthetic child refers to a synthetic parent.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from run_mostlyai import _epsilon_spent, _peak_rss_mb


def _encoding(frame: pd.DataFrame, skip: str) -> dict[str, str]:
    return {
        c: "TABULAR_NUMERIC_AUTO" if pd.api.types.is_numeric_dtype(frame[c]) else "TABULAR_CATEGORICAL"
        for c in frame.columns
        if c != skip
    }


def _objects(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for c in out.columns:
        if not pd.api.types.is_numeric_dtype(out[c]):
            out[c] = out[c].astype(object).where(out[c].notna(), None)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parents", required=True)
    parser.add_argument("--children", required=True)
    parser.add_argument("--key", required=True, help="the parent's primary key and the children's foreign key")
    parser.add_argument("--epsilon", type=float, required=True)
    parser.add_argument("--delta", type=float, default=1e-5)
    parser.add_argument("--parent-share", type=float, default=0.3)
    parser.add_argument("--parent-rows", type=int, default=None, help="default: as many as the training parents")
    parser.add_argument("--out-parents", required=True)
    parser.add_argument("--out-children", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-epochs", type=float, default=None)
    parser.add_argument("--max-training-time", type=float, default=None, help="minutes, per model")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()

    import logging

    import mostlyai.engine as engine
    from mostlyai.engine.domain import DifferentialPrivacyConfig, RareCategoryReplacementMethod

    log = logging.getLogger("mostlyai.engine")
    log.propagate = False
    handler = logging.StreamHandler(stream=sys.stderr)
    log.addHandler(handler)
    log.setLevel(logging.WARNING if args.quiet else logging.INFO)
    engine.set_random_state(args.seed)

    parents = _objects(pd.read_csv(args.parents))
    children = _objects(pd.read_csv(args.children))
    key = args.key
    children = children[children[key].isin(set(parents[key]))].reset_index(drop=True)
    shares = {"parent": args.parent_share, "child": 1.0 - args.parent_share}

    def dp(part: str) -> DifferentialPrivacyConfig:
        epsilon = args.epsilon * shares[part]
        return DifferentialPrivacyConfig(
            max_epsilon=epsilon, value_protection_epsilon=0.1 * epsilon, delta=args.delta * shares[part]
        )

    def train(ws: Path, part: str) -> None:
        engine.analyze(value_protection=True, differential_privacy=dp(part), workspace_dir=ws)
        engine.encode(workspace_dir=ws)
        engine.train(
            max_epochs=args.max_epochs,
            max_training_time=args.max_training_time,
            differential_privacy=dp(part),
            device="cpu",
            workspace_dir=ws,
        )

    with tempfile.TemporaryDirectory(prefix="mostlyai-linked-") as tmp:
        parent_ws, child_ws = Path(tmp) / "parent", Path(tmp) / "child"
        began = time.perf_counter()
        engine.split(
            tgt_data=parents,
            tgt_primary_key=key,
            model_type="TABULAR",
            tgt_encoding_types=_encoding(parents, key),
            workspace_dir=parent_ws,
        )
        train(parent_ws, "parent")
        engine.split(
            tgt_data=children,
            ctx_data=parents,
            tgt_context_key=key,
            ctx_primary_key=key,
            model_type="TABULAR",
            tgt_encoding_types=_encoding(children, key),
            ctx_encoding_types=_encoding(parents, key),
            workspace_dir=child_ws,
        )
        train(child_ws, "child")
        train_seconds = time.perf_counter() - began
        spent = [_epsilon_spent(parent_ws), _epsilon_spent(child_ws)]

        began = time.perf_counter()
        engine.generate(
            sample_size=args.parent_rows or len(parents),
            device="cpu",
            rare_category_replacement_method=RareCategoryReplacementMethod.sample,
            workspace_dir=parent_ws,
        )
        synthetic_parents = pd.read_parquet(parent_ws / "SyntheticData")
        engine.generate(
            ctx_data=synthetic_parents,
            device="cpu",
            rare_category_replacement_method=RareCategoryReplacementMethod.sample,
            workspace_dir=child_ws,
        )
        synthetic_children = pd.read_parquet(child_ws / "SyntheticData")
        synthetic_parents.to_csv(args.out_parents, index=False)
        synthetic_children.to_csv(args.out_children, index=False)
        sample_seconds = time.perf_counter() - began

    total = None if None in spent else round(sum(s for s in spent if s is not None), 4)
    print(
        json.dumps(
            {
                "system": "mostlyai-dp-linked",
                "train_seconds": round(train_seconds, 2),
                "sample_seconds": round(sample_seconds, 2),
                "peak_rss_mb": _peak_rss_mb(),
                "epsilon": args.epsilon,
                "epsilon_spent": total,
                "epsilon_spent_parts": spent,
                "budget_exceeded": None if total is None else bool(total > args.epsilon + 1e-9),
                "parents": len(synthetic_parents),
                "children": len(synthetic_children),
            }
        )
    )


if __name__ == "__main__":
    main()
