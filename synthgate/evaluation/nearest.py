"""The distance from each of a few thousand query rows to its closest row of a table of any size.

The membership attacks read every synthetic row (a copy anywhere in the output is the attacker's signal), so at ten
million rows this search was most of the evaluation: scikit-learn's brute-force search took 31 s a million rows for
4,000 queries of 138 features on one core. Here each block of rows is ranked for all the queries at once by one
single-precision matrix product of ``|s|^2 - 2 q.s`` (``|q|^2`` is the same for all of a query's candidates), and the
distance to each query's best candidate is measured in double precision: 15.8 s a million rows on one thread, 10.2 s
on two (``benchmarks/nearest_search.py``). Where the runner-up's score lies within single precision's worst rounding
of the best one (a bound that grows with the rows' and the query's norms: about 1e-3 on squared distances of such
features, so that an exact copy and a row 0.001 away could swap), that query's whole block is ranked again in double
precision. The distance found is the closest row's, measured in double precision.

The BLAS pool is sized by :func:`synthgate.cpu_threads.cpu_share`, like training's: all the usable cores when the
machine is quiet, fewer beside busy processes or other trainings of the process.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from synthgate.cpu_threads import cpu_share

#: Scores held at once (single precision): 64 MB, a block of 4,096 rows for 4,000 queries.
BLOCK_SCORES = 1 << 24
#: The most rows ranked in one matrix product, and the fewest (a unit attack's 40,000 query rows get 419).
BLOCK_ROWS = 4096
_MIN_BLOCK_ROWS = 256


def nearest_distances(queries: np.ndarray, table: Iterable[np.ndarray]) -> np.ndarray:
    """Each query's Euclidean distance to its closest row over all of ``table``'s chunks (feature matrices with the
    queries' columns, read once, in order); infinity for every query when the table has no row."""
    queries = np.asarray(queries, dtype=np.float64)
    weighted = np.hstack([-2.0 * queries, np.ones((len(queries), 1))]).astype(np.float32)
    norms = np.sqrt(np.einsum("ij,ij->i", queries, queries))
    rows_at_once = int(np.clip(BLOCK_SCORES // max(len(queries), 1), _MIN_BLOCK_ROWS, BLOCK_ROWS))
    best = np.full(len(queries), np.inf)
    with cpu_share("nearest-row search", pool="blas") as threads:
        for chunk in table:
            chunk = np.asarray(chunk, dtype=np.float64)
            for start in range(0, len(chunk), rows_at_once):
                threads.adjust()
                block = chunk[start : start + rows_at_once]
                best = np.minimum(best, _closest_in_block(queries, weighted, norms, block))
    return best


def _closest_in_block(queries: np.ndarray, weighted: np.ndarray, norms: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Each query's distance to its closest row of ``rows``, in double precision; ``weighted``: the queries as
    ``[-2q, 1]`` in single precision, ``norms``: their lengths."""
    squares = np.einsum("ij,ij->i", rows, rows)
    scores = weighted @ np.hstack([rows, squares[:, None]]).astype(np.float32).T
    every = np.arange(len(queries))
    closest = scores.argmin(axis=1)
    lowest = scores[every, closest].astype(np.float64)
    scores[every, closest] = np.inf
    runner_up = scores.min(axis=1).astype(np.float64)
    # Single precision's worst error on one score, rounding the inputs and summing d + 1 products, is
    # (d + 3) u (2 |q| |s| + |s|^2) with u = eps / 2: two scores differ by at most twice that.
    longest = math.sqrt(float(squares.max()))
    slack = (queries.shape[1] + 3) * float(np.finfo(np.float32).eps) * (2.0 * norms * longest + longest**2)
    unsure = np.flatnonzero(runner_up - lowest <= slack)
    if unsure.size:  # ranked again in double precision, whose error is 2**29 times smaller
        closest[unsure] = (squares[None, :] - 2.0 * queries[unsure] @ rows.T).argmin(axis=1)
    gap = queries - rows[closest]
    return np.sqrt(np.einsum("ij,ij->i", gap, gap))
