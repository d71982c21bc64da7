"""Validity of the synthetic table itself: uniqueness of the declared keys (the GX suite covers the rest)."""

from __future__ import annotations

import pandas as pd

from synthgate.errors import SpecError


def duplicate_key_share(synthetic: pd.DataFrame, keys: list[str]) -> float:
    """Share of synthetic rows whose key (all ``keys`` together) repeats an earlier row's; 0 without keys."""
    if not keys or synthetic.empty:
        return 0.0
    missing = [k for k in keys if k not in synthetic.columns]
    if missing:
        raise SpecError(
            f"keys {missing} are not columns of the synthetic table ({len(synthetic.columns)} columns); "
            "fix 'keys' in the spec"
        )
    return float(synthetic.duplicated(subset=keys, keep="first").mean())
