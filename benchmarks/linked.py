"""Linked tables: NYC aircraft (parent) and their flights (child), the aircraft the privacy unit, side by side.

    .venv/bin/python benchmarks/linked.py --epsilon 1 [--systems synthgate mostlyai] [--aircraft-share 1.0]

Data: `benchmarks/data/planes.csv` and `flights.csv.gz` (see flights_linked.README.md). The aircraft are split 80/20
into training and holdout units (every flight of an aircraft on its side; flights with no or an unknown tail number by
row). Each system trains on the training pair under epsilon per aircraft (with all its flights) and samples a pair.

Scores, each system and the holdout against the training pair:
- quality of each table: SDMetrics QualityReport (`synthgate.evaluation.fidelity.quality`), keys left out, with each
  table's four lowest pair scores (SDMetrics bins each table's numbers over its own minimum and maximum: a synthetic
  column with one value, such as the engines of aircraft that hold 2 in 99% of the real rows, scores 0 in every
  pair with a category);
- referential integrity: the shares of flights that name a synthetic aircraft, none (NULL) or one no aircraft has;
- flights per aircraft: total variation distance of its distribution (0, then the privacy unit's size bins) from the
  training pair's, beside the holdout's (the target: at most twice the holdout's);
- pair trends across the link: correlation of aircraft seats with flight distance, and the carrier-manufacturer table
  (TVD of the joint shares);
- siblings: the share of an aircraft's flights (aircraft with two or more) that fly its most common carrier, from its
  most common origin, to its most common destination;
- TSTR on a flight-level target, late (arrival 15+ minutes late, or cancelled), from the flight's and its aircraft's
  columns (arrival delay and time left out): gradient boosting trained on the synthetic pair, tested on the holdout,
  against the same trained on the training pair.
MOSTLY AI runs in its own venv (`benchmarks/peers/setup_envs.sh mostlyai`) through run_mostlyai_linked.py.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from synthgate.evaluation.fidelity import quality  # noqa: E402
from synthgate.evaluation.utility import tstr  # noqa: E402
from synthgate.generator.linked import LinkedChild, LinkedSynthesizer  # noqa: E402
from synthgate.generator.units import SIZE_EDGES, sibling_agreement  # noqa: E402
from synthgate.schema import Column, ColumnKind  # noqa: E402
from synthgate.spec import PrivacyBudget, Training  # noqa: E402

DATA = ROOT / "benchmarks" / "data"
KEY = "tailnum"
PLANE_COLUMNS = [KEY, "year", "type", "manufacturer", "engines", "seats", "engine"]
FLIGHT_COLUMNS = [KEY, "month", "hour", "dep_delay", "arr_delay", "carrier", "origin", "dest", "distance", "air_time"]
LEFT_OUT_OF_TSTR = ("arr_delay", "air_time")  # known only after the flight


def load(share: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The pair; with ``share`` < 1, that share of the aircraft (with their flights) and of the unlinked flights."""
    planes = pd.read_csv(DATA / "planes.csv")[PLANE_COLUMNS]
    flights = pd.read_csv(DATA / "flights.csv.gz")[FLIGHT_COLUMNS]
    if share < 1.0:
        rng = np.random.default_rng(seed)
        tails = pd.Series(flights[KEY].dropna().unique())
        kept = set(tails[rng.random(len(tails)) < share])
        planes = planes[planes[KEY].isin(kept) | (rng.random(len(planes)) < share)]
        flights = flights[flights[KEY].isin(kept) | (flights[KEY].isna() & (rng.random(len(flights)) < share))]
    return planes.reset_index(drop=True), flights.reset_index(drop=True)


def split(planes: pd.DataFrame, flights: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, ...]:
    """(train planes, train flights, holdout planes, holdout flights): 20% of the tail numbers held out whole."""
    rng = np.random.default_rng(seed)
    tails = pd.Series(pd.concat([planes[KEY], flights[KEY]]).dropna().unique())
    held = set(tails[rng.random(len(tails)) < 0.2])
    plane_held = planes[KEY].isin(held)
    flight_held = flights[KEY].isin(held) | (flights[KEY].isna() & (rng.random(len(flights)) < 0.2))
    return planes[~plane_held], flights[~flight_held], planes[plane_held], flights[flight_held]


def columns_of(frame: pd.DataFrame) -> list[Column]:
    kinds = []
    for name in frame.columns:
        dtype = frame[name].dtype
        if pd.api.types.is_bool_dtype(dtype):
            kind = ColumnKind.BOOLEAN
        elif pd.api.types.is_integer_dtype(dtype):
            kind = ColumnKind.INTEGER
        elif pd.api.types.is_float_dtype(dtype):
            is_int = frame[name].dropna().pipe(lambda s: bool(len(s)) and bool((s == s.round()).all()))
            kind = ColumnKind.INTEGER if is_int else ColumnKind.FLOAT
        else:
            kind = ColumnKind.CATEGORICAL
        kinds.append(Column(name, kind, str(dtype)))
    return kinds


def per_parent(parents: pd.DataFrame, children: pd.DataFrame) -> np.ndarray:
    """Shares of parents with 0 children, then with children in each privacy-unit size bin."""
    counts = children[KEY].value_counts().reindex(parents[KEY], fill_value=0).to_numpy()
    bins = np.where(counts == 0, 0, 1 + np.searchsorted(np.asarray(SIZE_EDGES), counts))
    shares = np.bincount(bins, minlength=len(SIZE_EDGES) + 1).astype(float)
    return shares / max(shares.sum(), 1.0)


def tvd(p: np.ndarray, q: np.ndarray) -> float:
    return 0.5 * float(np.abs(p - q).sum())


def links(parents: pd.DataFrame, children: pd.DataFrame) -> dict[str, float]:
    key = children[KEY]
    linked = key.isin(set(parents[KEY]))
    return {
        "linked": float(linked.mean()),
        "null_key": float(key.isna().mean()),
        "dangling": float((key.notna() & ~linked).mean()),
    }


def joined(parents: pd.DataFrame, children: pd.DataFrame) -> pd.DataFrame:
    frame = children.merge(parents, on=KEY, how="inner", suffixes=("", "_plane"))
    frame["late"] = (frame["arr_delay"].isna() | (frame["arr_delay"] > 15)).map({True: "yes", False: "no"})
    return frame.drop(columns=[KEY, *LEFT_OUT_OF_TSTR])


def lowest_pairs(scores: dict[tuple[str, str], float], count: int = 4) -> dict[str, float]:
    """The ``count`` lowest pair scores, as "a x b": score."""
    return {f"{a} x {b}": round(v, 3) for (a, b), v in sorted(scores.items(), key=lambda kv: kv[1])[:count]}


def evaluate(train: tuple[pd.DataFrame, pd.DataFrame], holdout: tuple[pd.DataFrame, pd.DataFrame], synthetic, seed=0):
    (train_p, train_c), (hold_p, hold_c), (syn_p, syn_c) = train, holdout, synthetic
    plane_columns = [c for c in columns_of(train_p) if c.name != KEY]
    flight_columns = [c for c in columns_of(train_c) if c.name != KEY]
    syn_p = syn_p.astype({c.name: train_p[c.name].dtype for c in plane_columns if c.kind is ColumnKind.CATEGORICAL})
    q_p = quality(train=train_p, synthetic=syn_p, columns=plane_columns, seed=seed)
    q_c = quality(train=train_c, synthetic=syn_c, columns=flight_columns, seed=seed)
    real_counts = per_parent(train_p, train_c)
    real_join, hold_join, syn_join = joined(train_p, train_c), joined(hold_p, hold_c), joined(syn_p, syn_c)
    utility = tstr(
        train=real_join, holdout=hold_join, synthetic=syn_join, columns=columns_of(real_join), target="late", seed=seed
    )

    def cross(frame: pd.DataFrame) -> pd.Series:
        return frame.groupby(["carrier", "manufacturer"]).size() / max(len(frame), 1)

    real_cross, syn_cross = cross(real_join), cross(syn_join)
    both = real_cross.index.union(syn_cross.index)
    return {
        "quality_parent": round(q_p.quality, 3),
        "quality_child": round(q_c.quality, 3),
        "shapes_child": round(q_c.column_shapes, 3),
        "pairs_child": round(q_c.column_pair_trends, 3),
        "worst_child_column": min(q_c.per_column.items(), key=lambda kv: kv[1]) if q_c.per_column else None,
        "worst_pairs_parent": lowest_pairs(q_p.per_pair),
        "worst_pairs_child": lowest_pairs(q_c.per_pair),
        "links": {k: round(v, 4) for k, v in links(syn_p, syn_c).items()},
        "links_real": {k: round(v, 4) for k, v in links(train_p, train_c).items()},
        "children_tvd": round(tvd(per_parent(syn_p, syn_c), real_counts), 4),
        "children_tvd_holdout": round(tvd(per_parent(hold_p, hold_c), real_counts), 4),
        "seats_distance_corr": round(float(syn_join[["seats", "distance"]].corr().iloc[0, 1]), 3),
        "seats_distance_corr_real": round(float(real_join[["seats", "distance"]].corr().iloc[0, 1]), 3),
        "carrier_manufacturer_tvd": round(
            tvd(real_cross.reindex(both, fill_value=0).to_numpy(), syn_cross.reindex(both, fill_value=0).to_numpy()),
            4,
        ),
        **{f"{c}_siblings": round(sibling_agreement(syn_c, KEY, c), 4) for c in ("carrier", "origin", "dest")},
        **{f"{c}_siblings_real": round(sibling_agreement(train_c, KEY, c), 4) for c in ("carrier", "origin", "dest")},
        "tstr_auc": round(utility.tstr, 4),
        "trtr_auc": round(utility.trtr, 4),
        "tstr_share_of_trtr": round(utility.tstr / utility.trtr, 4),
        "parents": len(syn_p),
        "children": len(syn_c),
    }


def run_synthgate(train_p, train_c, epsilon: float, seed: int) -> tuple[tuple[pd.DataFrame, pd.DataFrame], dict]:
    linked = LinkedSynthesizer(
        parent_columns=columns_of(train_p),
        parent_policies={},
        parent_key=KEY,
        children=[LinkedChild("flights", columns_of(train_c), KEY)],
        privacy=PrivacyBudget(epsilon=epsilon, delta=1e-5),
        training=Training(seed=seed),
    )
    began = time.perf_counter()
    summary = linked.fit(train_p.reset_index(drop=True), [train_c.reset_index(drop=True)])
    fit_seconds = time.perf_counter() - began
    began = time.perf_counter()
    parents, [children] = linked.sample()
    pair = (parents, children)
    facts = {
        "train_seconds": round(fit_seconds, 1),
        "sample_seconds": round(time.perf_counter() - began, 1),
        "epsilon_spent": round(summary.epsilon, 4),
        "max_rows_per_unit": summary.max_rows_per_unit,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
    return pair, facts


def run_mostlyai(train_p, train_c, epsilon: float, seed: int, workdir: Path) -> tuple[tuple[pd.DataFrame, ...], dict]:
    paths = {name: workdir / f"{name}.csv" for name in ("p", "c", "sp", "sc")}
    train_p.to_csv(paths["p"], index=False)
    train_c.to_csv(paths["c"], index=False)
    command = [
        str(ROOT / ".bench" / "mostlyai" / "bin" / "python"),
        str(ROOT / "benchmarks" / "peers" / "run_mostlyai_linked.py"),
        *("--parents", str(paths["p"]), "--children", str(paths["c"]), "--key", KEY),
        *("--epsilon", str(epsilon), "--seed", str(seed), "--quiet"),
        *("--out-parents", str(paths["sp"]), "--out-children", str(paths["sc"])),
    ]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    facts = json.loads(done.stdout.strip().splitlines()[-1])
    return (pd.read_csv(paths["sp"]), pd.read_csv(paths["sc"])), facts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epsilon", type=float, default=1.0)
    parser.add_argument("--systems", nargs="+", default=["synthgate", "mostlyai"])
    parser.add_argument("--aircraft-share", type=float, default=1.0, help="share of the aircraft to use")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="JSON file for the results")
    args = parser.parse_args()

    planes, flights = load(args.aircraft_share, args.seed)
    train_p, train_c, hold_p, hold_c = split(planes, flights, args.seed)
    print(f"training: {len(train_p)} aircraft, {len(train_c)} flights; holdout: {len(hold_p)}, {len(hold_c)}")
    results = {}
    with tempfile.TemporaryDirectory(prefix="linked-bench-") as tmp:
        for system in args.systems:
            if system == "synthgate":
                pair, facts = run_synthgate(train_p, train_c, args.epsilon, args.seed)
            else:
                pair, facts = run_mostlyai(train_p, train_c, args.epsilon, args.seed, Path(tmp))
            results[system] = facts | evaluate((train_p, train_c), (hold_p, hold_c), pair, args.seed)
            print(json.dumps({system: results[system]}), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
