"""The membership attack's search, side by side: scikit-learn's brute-force nearest neighbour against
``synthgate.evaluation.nearest.nearest_distances``, on one core and on the cores the process may use.

    .venv/bin/python benchmarks/nearest_search.py [--rows 200000] [--queries 4000] [--columns 15]

The queries and the searched rows are the feature vectors the evaluation builds (``FeatureSpace``: numbers scaled,
categories one-hot, NULL indicators) of ``benchmarks/scale.py``'s generated tables, two different seeds; the
searched rows come in chunks of 100,000 as in the evaluation. Prints seconds per million searched rows (scikit-learn
on one thread; ``nearest_distances`` on one thread, ``SYNTHGATE_THREADS=1``, and on the threads its policy picks)
and the largest difference between the searches' distances. Not part of ``make test``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from sklearn.neighbors import NearestNeighbors
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.scale import generate  # noqa: E402
from synthgate.evaluation.features import FeatureSpace  # noqa: E402
from synthgate.evaluation.nearest import nearest_distances  # noqa: E402
from synthgate.schema import Column, ColumnKind  # noqa: E402


def _kind(dtype: object) -> ColumnKind:
    if str(dtype).startswith("datetime"):
        return ColumnKind.DATETIME
    return ColumnKind.FLOAT if np.issubdtype(np.dtype(dtype), np.number) else ColumnKind.CATEGORICAL


def sklearn_search(queries: np.ndarray, chunks: list[np.ndarray]) -> np.ndarray:
    """What the evaluation ran before: a brute-force index per chunk, one neighbour per query."""
    best = np.full(len(queries), np.inf)
    for chunk in chunks:
        best = np.minimum(best, NearestNeighbors(n_neighbors=1).fit(chunk).kneighbors(queries)[0][:, 0])
    return best


def timed(search: Callable[[np.ndarray, list[np.ndarray]], np.ndarray], *args: object) -> tuple[float, np.ndarray]:
    began = time.perf_counter()
    out = search(*args)  # type: ignore[arg-type]
    return time.perf_counter() - began, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--queries", type=int, default=4_000)
    parser.add_argument("--columns", type=int, default=15)
    args = parser.parse_args()

    real, synthetic = generate(args.queries, args.columns, seed=1), generate(args.rows, args.columns, seed=2)
    columns = [Column(c, _kind(real[c].dtype), str(real[c].dtype)) for c in real.columns]
    space = FeatureSpace(real, columns)
    queries = space.transform(real)

    def chunked() -> Iterator[np.ndarray]:
        for start in range(0, len(synthetic), 100_000):
            yield space.transform(synthetic.iloc[start : start + 100_000])

    chunks = list(chunked())
    print(f"{args.queries:,} queries against {args.rows:,} rows of {queries.shape[1]} features")
    per_million = 1e6 / args.rows
    nearest_distances(queries[:1], [chunks[0][:1]])  # the thread policy's first measurement waits 0.25 s: not timed
    with threadpool_limits(limits=1):
        reference_s, reference = timed(sklearn_search, queries, chunks)
    os.environ["SYNTHGATE_THREADS"] = "1"
    one_s, one = timed(nearest_distances, queries, chunks)
    del os.environ["SYNTHGATE_THREADS"]
    usable_s, usable = timed(nearest_distances, queries, chunks)
    for name, seconds in [
        ("scikit-learn, 1 thread", reference_s),
        ("nearest_distances, 1 thread", one_s),
        ("nearest_distances, its threads", usable_s),
    ]:
        print(f"{name:32} {seconds * per_million:6.1f} s per million rows ({reference_s / seconds:.2f}x)")
    print(f"largest distance difference: {max(np.abs(one - reference).max(), np.abs(usable - reference).max()):.2e}")


if __name__ == "__main__":
    main()
