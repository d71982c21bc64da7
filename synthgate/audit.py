"""The auditor's view of one governed table, from the catalog, the ledger, the events and MLflow.

Answers: which versions exist and which one is published, which real snapshot each came from,
what privacy budget each refresh spent (and what is left under the cap), which gates passed,
which model produced it, and who or what triggered each run or rollback.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from synthgate import tracking
from synthgate.errors import SpecError
from synthgate.settings import Settings
from synthgate.spec import TableSpec, load_spec
from synthgate.warehouse import governance
from synthgate.warehouse.engine import governed_engine, qualified
from synthgate.warehouse.publish import kept_versions

DEFAULT_SPECS_DIR = Path("deployments/tables")


def resolve_spec(spec_or_table: str, specs_dir: Path = DEFAULT_SPECS_DIR) -> TableSpec:
    """A spec file path, or a table's name: the spec in ``specs_dir`` whose ``name`` or ``target.table`` it is."""
    path = Path(spec_or_table)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        return load_spec(path)
    matches = []
    for candidate in sorted(specs_dir.glob("*.y*ml")):
        try:
            raw = yaml.safe_load(candidate.read_text())
        except yaml.YAMLError:
            continue
        if isinstance(raw, dict) and spec_or_table in (raw.get("name"), (raw.get("target") or {}).get("table")):
            matches.append(candidate)
    if len(matches) != 1:
        found = "no spec" if not matches else f"{len(matches)} specs ({', '.join(map(str, matches))})"
        raise SpecError(
            f"{found} in {specs_dir} name table {spec_or_table!r}: pass the spec file, or --specs-dir where it is"
        )
    return load_spec(matches[0])


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in row.items():
        if isinstance(value, datetime):
            value = value.isoformat()
        elif key in ("gates", "scores") and isinstance(value, str):
            value = json.loads(value)
        out[key] = value
    return out


def audit(spec: TableSpec, settings: Settings, with_mlflow: bool = True) -> dict[str, Any]:
    engine = governed_engine(spec.target)
    table = spec.target.table
    catalog = [_plain(r) for r in governance.catalog_rows(engine, spec.name)]
    events = [_plain(r) for r in governance.event_rows(engine, table)]
    ledger = governance.budget_summary(engine, spec.name, settings.budget_cap(spec.privacy.cap), source=spec.source)
    pointing = [e for e in events if e["action"] in governance.POINTING_ACTIONS]
    current = pointing[-1]["version"] if pointing else None
    kept = set(kept_versions(spec.target))
    tracking_uri = settings.tracking_uri()
    aliases = tracking.model_aliases(tracking_uri, tracking.model_name(spec.name)) if with_mlflow else {}
    versions = []
    for row in catalog:
        entry = {
            "version": row.get("version"),
            "version_table": row.get("version_table"),
            "current": row.get("version") is not None and row.get("version") == current,
            "retained": row.get("version") in kept,
            "created_at": row["created_at"],
            "trigger": row["trigger"],
            "rows": row["rows"],
            "source": {"table": row["source_table"], "fingerprint": row["source_fingerprint"]},
            "budget": {"epsilon": row["epsilon"], "delta": row["delta"]},
            "gates": row["gates"],
            "scores": row["scores"],
            "model": {
                "name": row["model_name"],
                "version": row["model_version"],
                "aliases": sorted(a for a, v in aliases.items() if v == row["model_version"]),
            },
            "mlflow_run_id": row["mlflow_run_id"],
        }
        if with_mlflow:
            entry["mlflow"] = tracking.run_summary(tracking_uri, row["mlflow_run_id"])
        versions.append(entry)
    return {
        "table": spec.name,
        "published_name": qualified(spec.target),
        "target_url": spec.target.display_url,
        "source": {"table": qualified(spec.source), "url": spec.source.display_url},
        "current_version": current,
        "kept_versions": sorted(kept),
        "keep_versions": spec.publishing.keep_versions,
        "versions": versions,
        "budget": {k: v for k, v in ledger.items() if k != "history"},
        "refreshes": [
            {k: r.get(k) for k in ("run_id", "spec_name", "status", "epsilon_budget", "epsilon_spent", "delta", "accounting",
                                   "source_fingerprint", "trigger", "started_at", "finished_at")}
            | {"unfinished": r.get("status") in ("started", "trained")}  # crashed (or still running): still counted
            for r in ledger["history"]
        ],
        "events": [{k: e[k] for k in ("at", "action", "version", "previous_version", "run_id", "trigger", "detail")} for e in events],
        "mlflow_tracking_uri": tracking_uri if with_mlflow else None,
    }
