"""A numeric column's releases (range, zoom, fine bins) over many draws of their noise, scored by the KS distance of
the decoded values from the real ones.

    .venv/bin/python benchmarks/range_releases.py [--fits 40] [--sigmas 15 30 60 120]

Shapes: Minneapolis stops' latitude and longitude (20,000 rows; a zoom inside one coarse bin, where a false tail bin
far out spread them over half-degree bins), a credit score (8,000 rows, 580-850 around 700: its tails beyond the
zoom's clear bins), application stamps spread over three years (8,000 rows) and an interest rate set by seven
grades (8,000 rows, 5-27 inside the coarse bin from 3.2 to 32, 4% of them above 21 in grades F and G), months
since an event (exponential, mean 35, NULL for 77% of 8,000 rows: a quarter of the values under 10), Adult's years
of education (32,561 rows, 1 to 16, 0.15% at 1 and 0.5% at 2) and NYC aircraft build years (2,579 values, 1956-2013,
one coarse bin). For each shape and noise (the noise of a weight-1 release) it prints the median KS, the share of
fits with KS over 0.2, the median share of real values outside the synthetic ones' range (a tail cut off) and the
median shift of the synthetic range's ends in SDMetrics bins (a tenth of the real range: SDMetrics bins each table
over its own minimum and maximum, so a shift of half a bin or more misaligns every pair a number takes part in).
The releases alone, as `fit_numeric` makes them, decoded token by token: no model. Run from two commits to compare.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.datasets import DATASETS  # noqa: E402
from synthgate.columns import to_numeric  # noqa: E402
from synthgate.generator.accounting import PrivacyAccountant  # noqa: E402
from synthgate.generator.releases import fit_numeric  # noqa: E402
from synthgate.schema import Column, ColumnKind  # noqa: E402


def shapes() -> dict[str, tuple[pd.Series, Column]]:
    """Each shape's values and column."""
    rng = np.random.default_rng(0)
    stops = pd.read_csv(ROOT / "benchmarks/data/mpls_stops.csv.gz").sample(25_000, random_state=0).head(20_000)
    stamps = pd.Series(pd.to_datetime(rng.uniform(1.641e9, 1.7356e9, 8000), unit="s", utc=True))
    grades = rng.choice(7, 8000, p=[0.15, 0.22, 0.27, 0.21, 0.11, 0.031, 0.009])  # credit's grades A to G
    return {
        "latitude": (stops["lat"].astype(float), Column("lat", ColumnKind.FLOAT, "DOUBLE PRECISION")),
        "longitude": (stops["long"].astype(float), Column("long", ColumnKind.FLOAT, "DOUBLE PRECISION")),
        "credit score": (
            pd.Series(np.clip(np.round(rng.normal(700, 50, 8000)), 580, 850)),
            Column("fico", ColumnKind.INTEGER, "BIGINT"),
        ),
        "stamps over 3 years": (stamps, Column("at", ColumnKind.DATETIME, "TIMESTAMP", True)),
        "months since an event": (
            pd.Series(np.clip(rng.exponential(35, 8000), 0, 200).astype(int))
            .where(rng.random(8000) >= 0.77)
            .astype("Int64"),
            Column("months", ColumnKind.INTEGER, "BIGINT"),
        ),
        "interest rate": (
            pd.Series((6 + 3.1 * grades + rng.normal(0, 1.2, 8000)).clip(5, 31).round(2)),
            Column("rate", ColumnKind.FLOAT, "DOUBLE PRECISION"),
        ),
        "years of education": (
            DATASETS["adult"]().train["education_num"].reset_index(drop=True),
            Column("education_num", ColumnKind.INTEGER, "BIGINT"),
        ),
        "build year": (
            pd.read_csv(ROOT / "benchmarks/data/planes.csv")["year"].astype("Int64"),
            Column("year", ColumnKind.INTEGER, "BIGINT"),
        ),
    }


def ks_distance(real: np.ndarray, synthetic: np.ndarray) -> float:
    grid = np.union1d(real, synthetic)
    real_cdf = np.searchsorted(np.sort(real), grid, side="right") / len(real)
    synthetic_cdf = np.searchsorted(np.sort(synthetic), grid, side="right") / len(synthetic)
    return float(np.abs(real_cdf - synthetic_cdf).max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fits", type=int, default=40)
    parser.add_argument("--sigmas", type=float, nargs="+", default=[15.0, 30.0, 60.0, 120.0])
    args = parser.parse_args()
    print(
        "| shape | noise | median KS | fits with KS > 0.2 | median share of real values past the synthetic range "
        "| median end shift (SDMetrics bins) |"
    )
    print("|---|---|---|---|---|---|")
    for name, (series, column) in shapes().items():
        real = to_numeric(series, column)
        real = real[~np.isnan(real)]
        for sigma in args.sigmas:
            found, outside, shift = [], [], []
            bin_width = (real.max() - real.min()) / 10
            for _ in range(args.fits):
                codec = fit_numeric(
                    column,
                    series,
                    public_min=None,
                    public_max=None,
                    n_rows=len(series),
                    n_coarse=16,
                    sigma=sigma,
                    accountant=PrivacyAccountant(delta=1e-5),
                    selection_delta=1e-7,
                )
                if not codec.has_values:  # never located: sampled as NULL, nothing to compare
                    found.append(1.0)
                    outside.append(1.0)
                    shift.append(np.inf)
                    continue
                decoded = to_numeric(codec.decode(codec.encode(series), np.random.default_rng(1)), column)
                decoded = decoded[~np.isnan(decoded)]
                found.append(ks_distance(real, decoded))
                outside.append(float(np.mean((real < decoded.min()) | (real > decoded.max()))))
                ends = max(abs(decoded.min() - real.min()), abs(decoded.max() - real.max()))
                shift.append(float(ends / bin_width) if bin_width > 0 else 0.0)
            print(
                f"| {name} | {sigma:g} | {np.median(found):.3f} | {np.mean(np.array(found) > 0.2):.1%} "
                f"| {np.median(outside):.2%} | {np.median(shift):.2f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
