"""The distance from each of a few thousand query rows to its closest row of a table of any size.

The membership attacks read every synthetic row (a copy anywhere in the output is the attacker's signal), so at ten
million rows this search was most of the evaluation: scikit-learn's brute-force search takes about 3.1 s for 4,000
queries against 100,000 rows of 138 features on one core. Here each block of rows is ranked for every query at once
by one single-precision matrix product, ``|s|^2 - 2 q.s`` (``|q|^2`` is the same for all of a query's candidates),
and the distance to each query's best candidate is then measured exactly in double precision: 1.5 s on one core for
the same search, 0.85 s on two (``benchmarks/nearest_search.py``). Single precision can only swap two candidates
whose squared distances differ by about 1e-6 of their size; the distance reported is always an exact distance to a
row of the table.

The BLAS pool is sized by :func:`synthgate.cpu_threads.cpu_share`, like training's: all the usable cores when the
machine is quiet, fewer beside busy processes or other trainings of the process.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from synthgate.cpu_threads import cpu_share

#: Table rows ranked per matrix product: a 4,000-query block of scores is 64 MB.
BLOCK_ROWS = 4096


def nearest_distances(queries: np.ndarray, table: Iterable[np.ndarray]) -> np.ndarray:
    """Each query's Euclidean distance to its closest row over all of ``table``'s chunks (feature matrices with the
    queries' columns, read once, in order); infinity for every query when the table has no row."""
    queries = np.asarray(queries, dtype=np.float64)
    weighted = np.hstack([-2.0 * queries, np.ones((len(queries), 1))]).astype(np.float32)
    best = np.full(len(queries), np.inf)
    with cpu_share("nearest-row search", pool="blas") as threads:
        for chunk in table:
            chunk = np.asarray(chunk, dtype=np.float64)
            for start in range(0, len(chunk), BLOCK_ROWS):
                threads.adjust()
                rows = chunk[start : start + BLOCK_ROWS]
                augmented = np.hstack([rows, np.einsum("ij,ij->i", rows, rows)[:, None]]).astype(np.float32)
                candidate = (weighted @ augmented.T).argmin(axis=1)
                gap = queries - rows[candidate]
                best = np.minimum(best, np.sqrt(np.einsum("ij,ij->i", gap, gap)))
    return best
