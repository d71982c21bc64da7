"""Profile a table's columns with SDV's metadata detection to propose a column policy.

Only the detected *sdtypes* and key flags are used. SDV's metadata also records real minima,
maxima and category lists: it is never logged, stored or used as a domain.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import pandas as pd

from synthgate.schema import Column, ColumnKind
from synthgate.spec import ColumnPolicy, TableSpec

log = logging.getLogger(__name__)

_PII_FAKES = {
    "email": "email",
    "first_name": "first_name",
    "last_name": "last_name",
    "name": "name",
    "phone_number": "phone_number",
    "address": "address",
    "street_address": "address",
    "ssn": "ssn",
}
_PROFILE_ROWS = 5_000


@dataclass(frozen=True)
class ColumnProfile:
    name: str
    kind: ColumnKind
    sdtype: str
    pii: bool
    proposed: ColumnPolicy
    reason: str


def detect_sdtypes(frame: pd.DataFrame) -> tuple[dict[str, tuple[str, bool]], str | None]:
    """(sdtype, pii) per column and the detected primary key, from a sample of the rows."""
    from sdv.metadata import Metadata

    sample = frame.sample(min(len(frame), _PROFILE_ROWS), random_state=0) if len(frame) else frame
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.getLogger("sdv").setLevel(logging.ERROR)
        metadata = Metadata.detect_from_dataframes({"table": sample.reset_index(drop=True)}, infer_keys="primary_only")
    table = metadata.to_dict()["tables"]["table"]
    detected = {name: (str(info.get("sdtype", "unknown")), bool(info.get("pii", False))) for name, info in table["columns"].items()}
    return detected, table.get("primary_key")


def propose(spec: TableSpec, frame: pd.DataFrame, columns: list[Column]) -> list[ColumnProfile]:
    """The effective policy per column: the spec's where it sets one, else SDV's detection decides."""
    detected, primary_key = detect_sdtypes(frame)
    profiles = []
    for c in columns:
        sdtype, pii = detected.get(c.name, ("unknown", False))
        declared = spec.policy(c.name)
        if declared.policy is not None:
            proposed, reason = declared, "declared in the spec"
        elif sdtype == "id" or c.name == primary_key:
            fake = "id" if c.kind is ColumnKind.INTEGER else "uuid"
            proposed, reason = ColumnPolicy(policy="fake", fake=fake), "identifier: regenerated, never learned"
        elif pii and sdtype in _PII_FAKES:
            proposed, reason = ColumnPolicy(policy="fake", fake=_PII_FAKES[sdtype]), f"personal data ({sdtype}): faked"
        elif pii:
            proposed, reason = ColumnPolicy(policy="drop"), f"personal data ({sdtype}) with no faker: dropped"
        else:
            proposed, reason = declared.model_copy(update={"policy": "keep"}), f"detected {sdtype}"
        profiles.append(ColumnProfile(c.name, c.kind, sdtype, pii, proposed, reason))
    return profiles


def effective_policies(profiles: list[ColumnProfile]) -> dict[str, ColumnPolicy]:
    return {p.name: p.proposed for p in profiles}
