"""Keyed hashes of rows and of single values that depend on the values alone.

pandas types a column from what it holds: a chunk of integers holding a NULL is float, one holding a value past the
int64 range unsigned, a text column of numbers int or float, and a whole table likewise. A hash of ``astype(str)``
would change with that dtype (``5`` or ``5.0``), so a row's hash would depend on its neighbours: the snapshot
fingerprint on how rows fall into chunks, and a row's holdout side on rows added elsewhere. Here every value goes
through one form per column kind, or through :func:`as_text`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from synthgate.schema import Column, ColumnKind


def row_hashes(chunk: pd.DataFrame, columns: list[Column], hash_key: str) -> np.ndarray:
    """Keyed SipHash of each row's content, each value in a form that depends on the value alone, not on the dtype
    pandas inferred for its chunk (an integer chunk holding a NULL is float, one holding a value past the int64 range
    unsigned): equal rows hash equal in any chunking and row order, so a row's holdout side is its own."""
    parts = [canonical(chunk[c.name], c.kind) for c in columns]
    # a text NULL is the word None: a column of its own tells it from the text "None"
    parts += [chunk[c.name].isna() for c in columns if c.kind is ColumnKind.CATEGORICAL]
    frame = pd.DataFrame(dict(enumerate(parts)))  # by position: no column name can clash
    return pd.util.hash_pandas_object(frame, index=False, hash_key=hash_key).to_numpy(dtype=np.uint64)


def keyed(hashes: np.ndarray, hash_key: str, *, piece: int = 1_000_000) -> np.ndarray:
    """Keyed SipHash of 64-bit hashes (their decimal text), ``piece`` at a time.

    pandas applies ``hash_key`` to text alone: a row of numbers, instants and booleans hashes the same under any key
    (:func:`row_hashes`), so whoever knows a row could tell its holdout side. Through this the side is the key's."""
    out = np.empty(len(hashes), dtype=np.uint64)
    for start in range(0, len(hashes), piece):
        text = hashes[start : start + piece].astype(np.uint64).astype(str).astype(object)
        out[start : start + piece] = pd.util.hash_array(text, hash_key=hash_key, categorize=False)
    return out


def canonical(values: pd.Series, kind: ColumnKind) -> pd.Series:
    """``values`` (typed as the extract types a column of ``kind``) as numbers in float64 (exact to 2**53, the
    mantissa), instants in UTC nanoseconds, nullable booleans, or text (:func:`as_text`; strings as they are, NULL as
    ``None``)."""
    if kind in (ColumnKind.INTEGER, ColumnKind.FLOAT):
        return values.astype("float64")
    if kind is ColumnKind.DATETIME:
        instants = values.dt.tz_convert(None) if values.dt.tz is not None else values
        return instants.astype("datetime64[ns]")
    if kind is ColumnKind.BOOLEAN:
        return values.astype("boolean")
    return _text_of(values)


def as_text(value: object) -> str:
    """One value as text, the same whichever dtype its column got: NULL (None, NaN, NA) as ``None``, a boolean as
    ``True``/``False``, any number through float (``5``, ``5.0`` and ``np.int64(5)`` all ``5.0``)."""
    if value is None or value is pd.NA or (isinstance(value, float | np.floating) and value != value):
        return "None"
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, int | float | np.integer | np.floating):
        return repr(float(value))
    return str(value)


def value_hashes(values: pd.Series, hash_key: str) -> np.ndarray:
    """Keyed SipHash of each value of one column of any kind (a privacy unit's key), through :func:`as_text`."""
    return pd.util.hash_pandas_object(_text_of(values), index=False, hash_key=hash_key).to_numpy(dtype=np.uint64)


def _text_of(values: pd.Series) -> pd.Series:
    if values.dtype == object and pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty"):
        return values.where(values.notna(), "None")
    return values.map(as_text)
