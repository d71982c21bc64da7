"""Fake values for identifier and personal-data columns: generated, never learned."""

from __future__ import annotations

import uuid

import numpy as np
import pandas as pd
from faker import Faker

_POOL = 20_000


def fake_column(
    kind: str,
    n: int,
    seed: int,
    rows_per_key: float = 1.0,
    *,
    group_sizes: list[tuple[int, int, float]] | None = None,
) -> pd.Series:
    """``n`` fake values of ``kind`` (id, uuid, email, name, ...).

    IDs and UUIDs are keys: each is held by ``1 + Poisson(rows_per_key - 1)`` rows (so unique at 1.0; a case
    number shared by about two rows stays shared by about two), the rows of a key spread over the table.
    ``group_sizes`` (fewest rows, most rows, share of keys), a privacy unit's DP histogram of rows per unit, draws
    each key's rows from it instead: a size bin by its share, then a size uniformly inside it.
    """
    rng = np.random.default_rng(seed)
    if kind in ("id", "uuid"):
        keys = _key_numbers(n, rows_per_key, rng) if group_sizes is None else _grouped(n, group_sizes, rng)
        if kind == "id":
            return pd.Series(keys + 1, dtype=np.int64)
        raw = rng.integers(0, 256, size=(int(keys.max(initial=0)) + 1, 16), dtype=np.uint8)
        names = np.array([str(uuid.UUID(bytes=row.tobytes(), version=4)) for row in raw], dtype=object)
        return pd.Series(names[keys], dtype=object)
    faker = Faker()
    faker.seed_instance(seed)
    provider = getattr(faker, kind)
    pool = np.array([provider() for _ in range(min(n, _POOL))], dtype=object)
    values = pool[rng.integers(0, len(pool), size=n)]
    if kind == "email":  # keep emails unique-looking without a second pass through Faker
        values = np.array([f"{i}.{v}" for i, v in enumerate(values)], dtype=object)
    return pd.Series(values, dtype=object)


def _key_numbers(n: int, rows_per_key: float, rng: np.random.Generator) -> np.ndarray:
    """Key number (0, 1, ...) of each of ``n`` rows, in a shuffled order; group sizes 1 + Poisson(rows_per_key - 1)."""
    if rows_per_key <= 1.0:
        return np.arange(n, dtype=np.int64)
    sizes = 1 + rng.poisson(rows_per_key - 1.0, size=n)  # more groups than needed: n rows at least
    keys = np.repeat(np.arange(n, dtype=np.int64), sizes)[:n]
    return keys[rng.permutation(n)]


def _grouped(n: int, group_sizes: list[tuple[int, int, float]], rng: np.random.Generator) -> np.ndarray:
    """Key number of each of ``n`` rows, in a shuffled order; each key's rows drawn from ``group_sizes``."""
    low = np.array([lo for lo, _, _ in group_sizes])
    high = np.array([hi for _, hi, _ in group_sizes])
    share = np.array([p for _, _, p in group_sizes], dtype=float)
    groups = max(1, int(n / max(float((share * (low + high) / 2).sum()), 1.0) * 1.2) + 1)  # more than needed
    sizes = np.zeros(0, dtype=np.int64)
    while sizes.sum() < n:
        bins = rng.choice(len(share), size=groups, p=share / share.sum())
        sizes = np.concatenate([sizes, rng.integers(low[bins], high[bins] + 1)])
    keys = np.repeat(np.arange(sizes.size, dtype=np.int64), sizes)[:n]
    return keys[rng.permutation(n)]
