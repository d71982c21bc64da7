"""The auditor's view of one governed table, from the catalog, the ledger, the events and MLflow.

Answers: which versions exist and which one is published, which real snapshot each came from,
what privacy budget each refresh spent (and what is left under the cap), which gates passed,
which model produced it, and who or what triggered each run or rollback.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from pathlib import Path
from typing import Any

from synthgate import tracking
from synthgate.deployments import TABLES_DIR
from synthgate.errors import SpecError
from synthgate.generator.units import protected_unit
from synthgate.settings import Settings
from synthgate.spec import TableSpec, load_spec, read_yaml
from synthgate.warehouse import governance
from synthgate.warehouse.engine import governed_engine, qualified
from synthgate.warehouse.publish import kept_versions

log = logging.getLogger(__name__)


def resolve_spec(spec_or_table: str, specs_dir: Path = TABLES_DIR) -> TableSpec:
    """A spec file path, or a table's name: the spec in ``specs_dir`` whose ``name`` or ``target.table`` it is, or
    whose child's ``target.table`` it is (a child table is audited and rolled back with its parent)."""
    path = Path(spec_or_table)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        return load_spec(path)
    matches = []
    for candidate in sorted(specs_dir.glob("*.y*ml")):
        try:
            raw = read_yaml(candidate)
        except SpecError:  # not a spec (a stray file, binary, too large): it names no table
            continue
        if not isinstance(raw, dict):
            continue
        children = [(c.get("target") or {}).get("table") for c in raw.get("children") or [] if isinstance(c, dict)]
        if spec_or_table in (raw.get("name"), (raw.get("target") or {}).get("table"), *children):
            matches.append(candidate)
    if len(matches) != 1:
        found = "no spec" if not matches else f"{len(matches)} specs ({', '.join(map(str, matches))})"
        raise SpecError(
            f"{found} in {specs_dir} name table {spec_or_table!r}: pass the spec file, or --specs-dir where it is"
        )
    return load_spec(matches[0])


def table_state(spec: TableSpec, settings: Settings) -> dict[str, Any]:
    """Where the table stands for a run's report: the version its name points at, the number a publish takes next,
    and the ledger's total epsilon on its source against the cap. Unreadable parts are None (a report still gets
    written: the run's outcome does not depend on its header)."""
    from synthgate.warehouse.publish import next_version

    state: dict[str, Any] = {
        "current_version": None,
        "next_version": None,
        "epsilon_total": None,
        "cap": settings.budget_cap(spec.privacy.cap),
    }
    try:
        engine = governed_engine(spec.target)
        with engine.connect() as conn:
            state["current_version"] = governance.current_version(conn, spec.target.table)
        state["next_version"] = next_version(spec.target)
        state["epsilon_total"] = governance.budget_summary(engine, spec.name, state["cap"], source=spec.source)[
            "epsilon_spent"
        ]
    except Exception as exc:  # noqa: BLE001 - the header says what it could read
        log.warning("could not read the state of %s for the report: %s", qualified(spec.target), type(exc).__name__)
    return state


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
    """The audit record of one table: its versions (source, budget, gates, model), refreshes, rollbacks and
    migrations, and the chain from the published table back to its run; ``with_mlflow`` adds the runs' and models'
    MLflow facts."""
    engine = governed_engine(spec.target, read_only=True)
    table = spec.target.table
    rows = [_plain(r) for r in governance.catalog_rows(engine, spec.name)]
    catalog = [r for r in rows if not r.get("parent_table")]
    linked = [r for r in rows if r.get("parent_table") == table]  # child tables published with it (spec.children)
    events = [_plain(r) for r in governance.event_rows(engine, table)]
    ledger = governance.budget_summary(engine, spec.name, settings.budget_cap(spec.privacy.cap), source=spec.source)
    pointing = [e for e in events if e["action"] in governance.POINTING_ACTIONS]
    current = pointing[-1]["version"] if pointing else None
    kept = set(kept_versions(spec.target))
    tracking_uri = settings.tracking_uri()
    names = {r["model_name"] for r in catalog if r.get("model_name")} | {tracking.model_name(spec.name)}
    aliases = {n: tracking.model_aliases(tracking_uri, n) for n in sorted(names)} if with_mlflow else {}
    history = ledger["history"]
    versions = []
    for row in catalog:
        spent = [
            r for r in history if r.get("run_id") == row["run_id"] or r.get("mlflow_run_id") == row["mlflow_run_id"]
        ]
        upto = spent[0]["started_at"] if spent else None
        entry = {
            "version": row.get("version"),
            "version_table": row.get("version_table"),
            "current": row.get("version") is not None and row.get("version") == current,
            "retained": row.get("version") in kept,
            "created_at": row["created_at"],
            "trigger": row["trigger"],
            "rows": row["rows"],
            "source": {"table": row["source_table"], "fingerprint": row["source_fingerprint"]},
            "budget": {
                "epsilon": row["epsilon"],  # the guarantee of the version's rows
                "delta": row["delta"],
                "run_spent": spent[0]["epsilon_spent"] if spent else None,  # what its run added to the ledger
                "table_total_then": None
                if upto is None
                else round(sum(r["epsilon_spent"] for r in history if r["started_at"] <= upto), 6),
                "resampled_from": row.get("resampled_from"),
                "protects": protected_unit(row.get("privacy_unit"), row.get("max_rows_per_unit") or 0),
            },
            "gates": row["gates"],
            "scores": row["scores"],
            "model": {
                "name": row["model_name"],
                "version": row["model_version"],
                "aliases": sorted(
                    a for a, v in aliases.get(row["model_name"], {}).items() if v == row["model_version"]
                ),
            },
            "mlflow_run_id": row["mlflow_run_id"],
            "children": [
                {
                    "table": child["published_table"],
                    "version_table": child.get("version_table"),
                    "rows": child["rows"],
                    "source": {"table": child["source_table"], "fingerprint": child["source_fingerprint"]},
                    "gates": child["gates"],
                    "scores": child["scores"],
                }
                for child in linked
                if child["mlflow_run_id"] == row["mlflow_run_id"]
            ],
        }
        if with_mlflow:
            entry["mlflow"] = tracking.run_summary(tracking_uri, row["mlflow_run_id"])
        versions.append(entry)
    record = {
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
            {
                k: r.get(k)
                for k in (
                    "run_id",
                    "spec_name",
                    "status",
                    "epsilon_budget",
                    "epsilon_spent",
                    "delta",
                    "accounting",
                    "source_fingerprint",
                    "trigger",
                    "started_at",
                    "finished_at",
                )
            }
            | {"unfinished": r.get("status") in ("started", "trained")}  # crashed (or still running): still counted
            for r in ledger["history"]
        ],
        "events": [
            {k: e[k] for k in ("at", "action", "version", "previous_version", "run_id", "trigger", "detail")}
            for e in events
        ],
        "mlflow_tracking_uri": tracking.safe_uri(tracking_uri) if with_mlflow else None,
    }
    record["chain"] = chain(record)
    return record


def chain(record: dict[str, Any]) -> list[dict[str, str]]:
    """The auditor's path for the version the name points at: published table -> source snapshot -> code version
    -> budget -> gates -> model -> MLflow run. The same steps as each run's description in the MLflow UI."""
    current = next((v for v in record["versions"] if v["current"]), None)
    if current is None:
        return []
    run = current.get("mlflow") or {}
    tags, budget = run.get("tags") or {}, current["budget"]
    rolled = [e for e in record["events"] if e["action"] == "rollback" and e["version"] == current["version"]]
    published = (
        f"{record['published_name']} version {current['version']} (table {current['version_table']}), "
        f"{current['rows']} rows, published {str(current['created_at'])[:19]} by {current['trigger']}"
    )
    for child in current.get("children", []):
        published += f"; with {child['table']} (table {child['version_table']}), {child['rows']} rows"
    if rolled:
        last = rolled[-1]
        published += (
            f"; rolled back to this version on {str(last['at'])[:19]} from v{last['previous_version']} "
            f"({last['trigger']}): {last['detail'] or 'no reason recorded'}"
        )
    if "mlflow" not in current:
        code = "not read (audit without MLflow)"
    elif not run:
        code = "unknown: the MLflow run could not be read"
    else:
        code = tracking.code_description(tags, markdown=False)
    spent = budget.get("run_spent")
    money = f"epsilon {spent:.4g} spent by its run" if spent is not None else "its run is not in the ledger"
    if budget.get("resampled_from"):
        money += f" (re-sampled the model of run {budget['resampled_from']})"
    money += f"; its rows carry epsilon {budget['epsilon']:.4g}, delta {budget['delta']:.2g}"
    if budget.get("protects"):
        money += f", protecting {budget['protects']}"
    if budget.get("table_total_then") is not None:
        money += f"; {budget['table_total_then']:.4g} spent on the table up to then"
    total = record["budget"]
    money += f"; {total['epsilon_spent']:.4g} now" + (
        f", of cap {total['cap']:g}" if total.get("cap") is not None else " (no cap)"
    )
    gates = current["gates"] or {}
    failed = sorted(k for k, ok in gates.items() if not ok)
    gate_text = (
        f"all {len(gates)} passed" if not failed else f"{len(failed)} of {len(gates)} failed: {', '.join(failed)}"
    )
    model = current["model"]
    aliases = f" (alias {', '.join(model['aliases'])})" if model.get("aliases") else ""
    model_text = f"{model['name']} version {model['version']}{aliases}" if model.get("version") else "none registered"
    run_text = current["mlflow_run_id"] + (f" ({run['name']}): {run['link']}" if run.get("link") else "")
    return [
        {"step": "published table", "text": published},
        {
            "step": "source snapshot",
            "text": f"{current['source']['table']}, keyed fingerprint {str(current['source']['fingerprint'])[:16]}",
        },
        {"step": "code version", "text": code},
        {"step": "budget", "text": money},
        {"step": "gates", "text": gate_text},
        {"step": "model", "text": model_text},
        {"step": "MLflow run", "text": run_text},
    ]
