"""Fake values for identifier and personal-data columns: generated, never learned."""

from __future__ import annotations

import uuid

import numpy as np
import pandas as pd
from faker import Faker

_POOL = 20_000


def fake_column(kind: str, n: int, seed: int) -> pd.Series:
    """``n`` fake values of ``kind`` (id, uuid, email, name, ...). IDs and UUIDs are unique."""
    rng = np.random.default_rng(seed)
    if kind == "id":
        return pd.Series(np.arange(1, n + 1, dtype=np.int64))
    if kind == "uuid":
        raw = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
        return pd.Series([str(uuid.UUID(bytes=row.tobytes(), version=4)) for row in raw], dtype=object)
    faker = Faker()
    faker.seed_instance(seed)
    provider = getattr(faker, kind)
    pool = np.array([provider() for _ in range(min(n, _POOL))], dtype=object)
    values = pool[rng.integers(0, len(pool), size=n)]
    if kind == "email":  # keep emails unique-looking without a second pass through Faker
        values = np.array([f"{i}.{v}" for i, v in enumerate(values)], dtype=object)
    return pd.Series(values, dtype=object)
