import numpy as np
import pytest
from sklearn.neighbors import NearestNeighbors
from threadpoolctl import threadpool_info, threadpool_limits

from synthgate.evaluation.nearest import BLOCK_ROWS, nearest_distances


def _features(rng: np.random.Generator, rows: int) -> np.ndarray:
    """What the evaluation searches: a few scaled numbers beside one-hot blocks."""
    numbers = rng.normal(size=(rows, 4))
    one_hot = np.eye(6)[rng.integers(0, 6, rows)]
    return np.hstack([numbers, one_hot, np.eye(3)[rng.integers(0, 3, rows)]])


def test_distances_equal_an_exact_search_over_every_chunk():
    rng = np.random.default_rng(0)
    queries, table = _features(rng, 300), _features(rng, 3 * BLOCK_ROWS + 123)
    table[1000] = queries[7]  # an exact copy, deep in a block: distance 0, not a float32 rounding of it
    chunks = [table[:5000], table[5000:5001], table[5001:]]  # chunks cut across blocks, one of a single row
    expected = NearestNeighbors(n_neighbors=1).fit(table).kneighbors(queries)[0][:, 0]
    found = nearest_distances(queries, iter(chunks))
    assert found[7] == 0.0
    np.testing.assert_allclose(found, expected, rtol=1e-9, atol=1e-12)


def test_an_exact_copy_beats_a_near_one_that_single_precision_cannot_tell_apart():
    """Scores of rows this long round by about 1e-5 in single precision: a row 0.001 away (1e-6 squared) and an exact
    copy tie there; the copy's distance, 0, is the one reported."""
    rng = np.random.default_rng(1)
    queries = _features(rng, 500)
    near = queries.copy()
    near[:, 0] += 1e-3
    table = np.concatenate([_features(rng, 2000), near, queries, _features(rng, 2000)])[rng.permutation(5000)]
    assert (nearest_distances(queries, [table]) == 0.0).all()
    assert nearest_distances(queries, [near]) == pytest.approx(np.full(500, 1e-3), rel=1e-6)


def test_no_rows_leave_every_query_at_infinity():
    assert np.isinf(nearest_distances(np.zeros((3, 5)), [])).all()


@pytest.mark.skipif(not threadpool_info(), reason="no BLAS pool to size")
def test_the_search_sizes_the_blas_pool_and_puts_it_back(monkeypatch):
    blas = lambda: {p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"}  # noqa: E731
    seen: list[set[int]] = []
    monkeypatch.setenv("SYNTHGATE_THREADS", "2")

    def chunks():
        seen.append(blas())
        yield np.zeros((1, 2))

    with threadpool_limits(limits=1):  # as the evaluation runs
        nearest_distances(np.zeros((1, 2)), chunks())
        assert seen == [{2}]
        assert blas() == {1}
