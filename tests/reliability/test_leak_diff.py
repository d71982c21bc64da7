"""Leak diff: nothing about the real data leaves a refresh except through the privacy accountant (DP outputs) or a
short, named list of disclosed exceptions.

Two full refreshes (``flows/refresh.py:refresh_table`` in the Prefect harness, real PostgreSQL, MLflow, GX,
OpenLineage) of the same table: once as is (``base``), once with ONE extra canary row (``canary``): a category
value no other row has, extreme numbers and a unique e-mail. Each run has its own SYNTHGATE_HOME, expectations
folder, MLflow store and PostgreSQL schema, so neither sees the other's catalog, ledger, suites or models.

Everything each run writes is collected into a flat ``{location: value}`` dict (see :func:`collect`):

- MLflow, through its API: params, tags, metrics (last value and the step history), dataset inputs, registered
  model versions (tags, description, aliases), logged models (params, tags, metrics);
- every file under the run's home and expectations folder (MLflow artifacts, the saved generator, the HTML
  report, the GX results and suites, the OpenLineage JSON lines): JSON/YAML flattened to leaves, text and HTML
  split into keyed lines or cells, anything else as a SHA-256 of its bytes;
- PostgreSQL, in the run's target schema: every row of synthgate_catalog, synthgate_ledger and synthgate_events,
  the comment of every table and view, the published rows (count, and a hash per column);
- Prefect, through its API: the log messages of the flow run and its task runs (keyed by their template: digit
  runs become ``#``), artifacts (key, type, description, data), flow-run and task-run states and messages.

Values are normalised for what differs only because of the test's set-up or the clock: run, experiment, model
and Prefect ids, UUIDs, timestamps, durations, the schema names and the temporary folders.

Then the two dicts are diffed. Every location whose value differs, or that exists in one run only, must match
:data:`DP_OUTPUTS` (computed through the accountant, or from the DP-trained model) or :data:`DISCLOSED` (the
named post-training exceptions: evaluation aggregates, gate verdicts, the report's figures). Anything else is a
leak. Independently, no canary value may appear in anything the canary run wrote (a byte search, as in
``test_leaks.py``).

A location that differs is one through which the extra row is observable; a location that happens not to differ
in this pair of runs can still leak (e.g. an exact row count whose digits' template is equal): the diff is a
lower bound, which is why the allowlist names locations, never values.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
import re
import struct
import tempfile
import uuid
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
import yaml

from tests.conftest import PG_URL, make_people
from tests.reliability.conftest import spec_dict, write_spec

pytestmark = pytest.mark.integration

# --------------------------------------------------------------------------------------------------------------
# The allowlist: regexes over location keys (re.search), each with why a difference there is not a leak.
# --------------------------------------------------------------------------------------------------------------

#: Computed only through the privacy accountant, or from the DP-trained model and its synthetic rows.
DP_OUTPUTS: dict[str, str] = {
    # the accountant's figures: epsilon depends on the sample rate, which depends on the DP row-count estimate
    r"^mlflow:(?:logged_model:)?metric:epsilon_(spent|guarantee)$": (
        "epsilon spent (and its guarantee), from the accountant"
    ),
    r"^mlflow:(?:logged_model:)?metric:epsilon_table_(total|remaining)$": (
        "the ledger's total epsilon on the table (and what is left under the cap): sums of the accountant's figures"
    ),
    r"^mlflow:model_version\[[^\]]+\]:tags\.synthgate\.epsilon$": "the model's epsilon, from the accountant",
    r"^mlflow:(note|model_version\[[^\]]+\]:description):#\. Budget: epsilon #(\.#)? spent by this run": (
        "the run's description: epsilon (the accountant's) and the ledger's total"
    ),
    r"^file:.*\.html:html:facts:(Rows:[#,]+ synthetic rows|[#,]+ synthetic rows:When)$": (
        "the report's header: the DP row-count estimate (and the next row, keyed by it)"
    ),
    r"^file:.*\.html:html:facts:Privacy budget:epsilon": (
        "the report's header: epsilon (accountant) and the ledger's total"
    ),
    r"^mlflow:(?:logged_model:)?metric_history:epsilon_this_run$": "epsilon after each epoch, from the accountant",
    r"^mlflow:(?:logged_model:)?metric:epsilon_this_run$": "epsilon after the last epoch, from the accountant",
    r"^mlflow:(?:logged_model:)?param:(noise_multiplier|expected_batch_size|sample_rate|steps|epochs)$": (
        "the DP-SGD plan, derived from the DP row-count estimate and epsilon"
    ),
    r"^pg:synthgate_ledger\[\d+\]\.epsilon_spent$": "epsilon spent, from the accountant",
    r"^pg:synthgate_catalog\[\d+\]\.epsilon$": "epsilon spent, from the accountant",
    r"^pg:synthgate_catalog\[\d+\]\.rows$": "published row count = the DP row-count estimate (rows unset)",
    r"^pg:synthgate_catalog\[\d+\]\.max_rows_per_unit$": "the unit bound, from the DP histogram of rows per unit",
    r"^published:": "the published synthetic rows: sampled from the DP model, their count the DP row estimate",
    r"^lineage\[\d+\]:COMPLETE:outputs\[\d+\]\.outputFacets\.outputStatistics\.rowCount$": (
        "published row count = the DP row-count estimate"
    ),
    r"^pg:comment:[^:]+:epsilon #\.#$": "epsilon in the table comment, from the accountant",
    r"^pg:comment:[^:]+:# rows$": "published row count in the table comment: the DP row-count estimate",
    # the saved generator: released codecs (DP quantile bins, DP category selection), the plan, the weights
    r"^file:home/mlartifacts/.*/generator/((parent|children/\d+)/)?synthesizer\.json:codecs": (
        "codecs released through the accountant"
    ),
    r"^file:home/mlartifacts/.*/generator/((parent|children/\d+)/)?synthesizer\.json:summary\.(epsilon|noisy_rows|noisy_units|plan\.[a-z_]+|"
    r"releases|max_rows_per_unit|marginal_columns\.\d+)$": (
        "the accountant's figures, the DP row (unit) counts, the unit bound chosen from the DP histogram of rows per "
        "unit, the plan derived from them, and the columns the dependency screen (a release) found in no pair"
    ),
    r"^file:home/mlartifacts/.*/generator/((parent|children/\d+)/)?synthesizer\.json:"
    r"(unit_sizes\.|max_rows_per_unit$)": (
        "the DP histogram of rows per unit (released through the accountant) and the bound chosen from it"
    ),
    r"^mlflow:(?:logged_model:)?param:max_rows_per_unit$": "the unit bound, from the DP histogram of rows per unit",
    r"^mlflow:(?:logged_model:)?param:marginal_columns$": (
        "how many columns the dependency screen (a release) found in no pair"
    ),
    r"^file:.*\.html:html:facts:epsilon [#.]+ spent by this run; [#.]+ spent on this table in[^:]*:Code$": (
        "the report's header: the row after the budget line, keyed by that line's epsilon (accountant) and total"
    ),
    r"^file:home/mlartifacts/.*/generator/((parent|children/\d+)/)?weights\.pt$": "DP-SGD weights",
    r"^file:home/mlartifacts/.*/generator/linked\.json:"
    r"(children\[\d+\]\.(counts|siblings|mixes)(\.|$)|summary\.epsilon$)": (
        "linked tables: the DP histogram of children per parent (released through the accountant), the bound chosen "
        "from it, the DP shares of siblings holding their parent's most common values, the weights calibrated on the "
        "DP model to reach them (either may be empty), and the accountant's epsilon"
    ),
    r"^prefect:log:sample-linked:sampled # parent rows and # child rows$": (
        "the DP parent-count estimate and the children the DP model drew for them"
    ),
    r"^prefect:log:train-linked:trained \S+ with \S+ under epsilon #\.# per \S+ with all its rows \(at most # of its "
    r"child rows trained\); parent model <dur> s, child models <dur> s$": (
        "epsilon (accountant) and the bound on children per parent (from the DP histogram)"
    ),
    r"^prefect:log:flow:refresh of \S+ published with \S+: epsilon spent #\.# per \S+, quality #\.# and #\.#$": (
        "epsilon (accountant) and the two tables' quality scores (disclosed)"
    ),
    r"^file:home/mlartifacts/.*/MLmodel:model_size_bytes$": "size of the saved DP model (its files are diffed too)",
    r"^file:home/mlartifacts/.*/MLmodel:signature\.outputs$": "dtypes of synthetic rows sampled from the DP model",
    # GX on the synthetic rows: a suite built from the spec and the DP row count, run on DP-model samples
    r"^file:home/mlartifacts/.*/gx/synthetic_validation\.json:": "the synthetic suite's results on synthetic rows",
    r"^file:expectations/[^/]+\.synthetic\.json:expectations\[expect_table_row_count_to_equal/table\]"
    r"\.kwargs\.value$": "the synthetic suite's row count: the DP row-count estimate",
    # Prefect: the accountant's epsilon and the DP row count in messages
    r"^prefect:artifact:synthgate-[^:]+-training:progress:description$": "epsilon per epoch, from the accountant",
    r"^prefect:log:train-generator:trained under epsilon #\.# \(\w+ accounting\), delta #(\.#)?e-#; noise multiplier "
    r"#\.#(; \w+ DP-SGD engine)?(; <dur> s on # CPU threads at the start \(SYNTHGATE_THREADS fixes it\))?$": (
        "epsilon and the noise multiplier, from the accountant"
    ),
    r"^prefect:log:train-generator:epoch #/#: epsilon spent #\.# \(<dur> s\)$": "epsilon per epoch (no loss)",
    r"^prefect:log:publish-table:published [^:]+ version #: # rows$": "the DP row-count estimate",
    r"^prefect:log:sample-rows:sampled # synthetic rows$": "the DP row-count estimate",
    r"^prefect:log:validate-synthetic:faked keys that repeat in the source \(DP count of their values\), sampled "
    r"with repeats; their uniqueness expectation is waived for this run: ": (
        "keys the DP counts show repeating: a faked key by the DP count of its values, the privacy unit by the bound "
        "chosen from the DP histogram of rows per unit (a bound of 1 repeats nothing)"
    ),
    r"^prefect:log:validate-synthetic:(columns sampled as NULL \(too few values to locate under this budget; their "
    r"not-null expectation is waived for this run\): |synthetic suite: passed \(# expectations\)$)": (
        "columns whose DP range release found no values (sampled as NULL), and the synthetic suite's expectations "
        "left once their not-null expectations are waived"
    ),
    r"^prefect:artifact:synthgate-[^:]+-summary:markdown:\| synthetic table \|": "the DP row-count estimate",
    r"^prefect:artifact:synthgate-[^:]+-summary:markdown:\| epsilon spent / budget \|": "epsilon, from the accountant",
    r"^prefect:artifact:synthgate-[^:]+-verdict:markdown:epsilon spent": "epsilon, from the accountant",
    r"^prefect:log:flow:refresh of \S+ published: epsilon( spent)? #\.#( \(guarantee #\.#\))?, quality #\.#$": (
        "epsilon (accountant) and the quality score (disclosed)"
    ),
    r"^file:.*\.html:html:budget:": "epsilon, from the accountant",
    r"^file:.*\.html:html:sample:": "ten synthetic rows sampled from the DP model",
}

#: The keyed snapshot fingerprint (an HMAC under a secret key: testing candidate tables against it needs the key) is
#: a DP_OUTPUTS-grade value wherever it appears, but only once verified: :func:`keyed_fingerprint` re-extracts the
#: run's source with the test's key (must give the digest the run published) and with another key (must differ).
#: Then its occurrences (full, or a prefix of 12+ hex digits) become ``<keyed-fingerprint:RUN>`` and a location whose
#: values differ *only* by that placeholder is explained by this entry. An unkeyed hash is never verified: it stays
#: raw and every location holding it is reported.
KEYED_FINGERPRINT = "DP_OUTPUTS: the keyed fingerprint (HMAC-SHA256 under the secret key, verified by re-extraction)"

#: Disclosed on purpose after training: evaluation aggregates over real training/holdout rows and the gates' verdicts.
DISCLOSED: dict[str, str] = {
    r"^mlflow:(?:logged_model:)?metric:(quality|column_shapes|column_pair_trends|tstr|trtr|tstr_linear|trtr_linear|utility_gap|"
    r"dcr_share|nndr_ratio|mia_auc|exact_copies_training|exact_copies_holdout|exact_copy_excess|"
    r"duplicate_key_share|(singling_out|linkability|inference)_risk(_low)?|tvd_\dway(_holdout)?(_excess|_max)?|"
    r"tvd_\dway_holdout_max|synthetic_suite_passed)$": "overall evaluation scores (disclosed aggregates)",
    r"^mlflow:(?:logged_model:)?metric:(column_shape|pair_trend|tvd_1way|tvd_1way_holdout)\.": (
        "per-column/pair evaluation scores"
    ),
    r"^mlflow:(?:logged_model:)?metric:(median_dcr_training|median_dcr_holdout|nndr_training|nndr_holdout)$": (
        "distance aggregates"
    ),
    r"^mlflow:(?:logged_model:)?metric:(singling_out|linkability|inference)[.\w]*\.(risk|ci_low|ci_high|attack_rate|control_rate|"
    r"baseline_rate)$": "Anonymeter-style attack rates (disclosed aggregates)",
    r"^mlflow:(?:logged_model:)?metric:(gate_[\w.]+|gates_passed)$": "gate verdicts",
    r"^mlflow:(?:logged_model:)?metric:relations\.\w+$": "linked tables: the relation scores (disclosed aggregates)",
    r"^prefect:log:score-relations:relations with \S+: ": "linked tables: the relation scores (disclosed aggregates)",
    r"^mlflow:(note|model_version\[[^\]]+\]:description):#\. Gates: ": "gate verdicts, in the run's description",
    r"^file:home/mlartifacts/.*/artifacts/gates\.json:": "gate verdicts (measured score, threshold, pass)",
    r"^file:home/(mlartifacts/.*/artifacts/(children/[^/]+/)?report/.*\.html|reports/.*\.html):html:(gates|fidelity|utility|privacy|"
    r"validity|summary|relations):": "the report's evaluation tables (a child's relations too) and verdict",
    r"^file:.*\.html:html:(img|distributions|correlations):": "the report's figures (DP bins, aggregate shares)",
    r"^file:home/mlartifacts/.*/artifacts/(children/[^/]+/)?report/plots/.*\.png$": (
        "the report's figures, logged as images"
    ),
    r"^pg:synthgate_catalog\[\d+\]\.(scores|gates)$": "overall scores and gate verdicts in the catalog",
    r"^lineage\[\d+\]:COMPLETE:outputs\[\d+\]\.facets\.dataQualityAssertions\.": "synthetic suite and gates pass/fail",
    r"^prefect:log:score-synthetic:[\w#]+ (passed|FAILED): measured": "gate verdicts",
    r"^prefect:artifact:synthgate-[^:]+-gates:table:": "gate verdicts",
    r"^prefect:artifact:synthgate-[^:]+-verdict:markdown:\| [\w#.]+ \| -?#\.#": "gate verdicts",
    r"^prefect:artifact:synthgate-[^:]+-summary:markdown:(- .* measured|\| (quality|TSTR|DCR))": "scores and verdicts",
    r"^pg:comment:[^:]+:gates (passed|see catalog)": "the gate verdict in the table comment",
    # the profiling decisions a person accepted (SDV's sdtypes: keep/fake/drop per column)
    r"^file:home/mlartifacts/.*/generator/synthesizer\.json:policies\.": "profiling decisions (accepted policies)",
    r"^prefect:log:profile-columns:column ": "profiling decisions (accepted policies)",
}


#: The linked case's child table: its metrics and plan are the single-table ones under its name
#: (``orders_synthetic.<m>``), its suites' results and report under ``children/<table>/``.
CHILD = "orders_synthetic"


def allowed(location: str) -> str | None:
    """The allowlist entry that covers ``location`` (``'DP_OUTPUTS: why'``), else None."""
    location = re.sub(rf"^(mlflow:(?:logged_model:)?(?:metric|param):){CHILD}\.", r"\1", location)
    location = re.sub(rf"/artifacts/children/{CHILD}/gx/", "/artifacts/gx/", location)
    for part, entries in (("DP_OUTPUTS", DP_OUTPUTS), ("DISCLOSED", DISCLOSED)):
        for pattern, why in entries.items():
            if re.search(pattern, location):
                return f"{part}: {why}"
    return None


# --------------------------------------------------------------------------------------------------------------
# The canary row
# --------------------------------------------------------------------------------------------------------------

TAG = uuid.uuid4().hex[:10]
CATEGORY = f"LeakDiffCat{TAG}"  # a category value only the canary row has
EMAIL = f"leakdiff{TAG}@example.org"  # unique text (personal data: faked)
INCOME = 73194286.40517  # extreme float
AGE = 4_012_345_678  # extreme integer
VISITS = 918_273_645  # extreme integer in a nullable column
ROWS = 800


CANARY_UNIT_ROWS = 40  # with a privacy unit, the canary is one customer with this many rows


def base_table(unit: str | None = None) -> pd.DataFrame:
    """The people table; with a unit, 475 customers own 1 to 7 rows each (1.7 on average). With 232 customers, the
    DP count of the training split's units fell under the minimum of 50 in about 4% of fits (14 of 300)."""
    frame = make_people(ROWS, seed=5)
    if unit is not None:
        frame[unit] = 100_000 + np.cumsum(np.random.default_rng(6).random(ROWS) < 0.6)
    return frame


def canary_table(unit: str | None = None) -> pd.DataFrame:
    """The base table plus one canary row, or with a unit one canary customer of :data:`CANARY_UNIT_ROWS` rows."""
    base = base_table(unit)
    rows = base.iloc[[0] * (CANARY_UNIT_ROWS if unit else 1)].copy()
    rows["customer_id"] = int(base["customer_id"].max()) + 1
    rows["email"], rows["plan"], rows["income"], rows["age"], rows["visits"] = EMAIL, CATEGORY, INCOME, AGE, VISITS
    rows["visits"] = rows["visits"].astype("Int64")
    return pd.concat([base, rows], ignore_index=True)


def orders_table(people: pd.DataFrame, canary: bool = False) -> pd.DataFrame:
    """Each customer's orders (1 to 6), for the linked case; the canary customer (the people table's last row, when
    ``canary``) has :data:`CANARY_UNIT_ROWS` orders, each carrying canary values."""
    rng = np.random.default_rng(7)
    customers = people["customer_id"].to_numpy()[:ROWS]
    sizes = rng.integers(1, 7, customers.size)
    orders = pd.DataFrame(
        {
            "customer_id": np.repeat(customers, sizes),
            "amount": np.round(rng.lognormal(3, 0.5, int(sizes.sum())), 2),
            "channel": rng.choice(["web", "store"], int(sizes.sum())),
        }
    )
    if canary:
        extra = pd.DataFrame(
            {"customer_id": people["customer_id"].iloc[-1], "amount": INCOME, "channel": CATEGORY},
            index=range(CANARY_UNIT_ROWS),
        )
        orders = pd.concat([orders, extra], ignore_index=True)
    return orders


def needles() -> dict[str, list[bytes | re.Pattern[bytes]]]:
    """Byte patterns per canary: UTF-8 and UTF-16 text, numbers as text (not inside base64/hex) and packed."""
    found: dict[str, list[bytes | re.Pattern[bytes]]] = {
        name: [value.encode(), value.encode("utf-16-le")]
        for name, value in {"category": CATEGORY, "email": EMAIL}.items()
    }
    found["income"] = [b"73194286.4", struct.pack("<d", INCOME), struct.pack(">d", INCOME)]
    for name, number in {"age": AGE, "visits": VISITS}.items():
        found[name] = [
            re.compile(rb"(?<![A-Za-z0-9+/])" + str(number).encode() + rb"(?![A-Za-z0-9+/])"),
            struct.pack("<q", number),
            struct.pack("<d", float(number)),
            struct.pack(">d", float(number)),
        ]
    return found


def hits(blob: bytes, where: str) -> list[str]:
    out = []
    for name, patterns in needles().items():
        if any((p.search(blob) is not None) if isinstance(p, re.Pattern) else (p in blob) for p in patterns):
            out.append(f"{name} in {where}")
    return out


# --------------------------------------------------------------------------------------------------------------
# Normalisation
# --------------------------------------------------------------------------------------------------------------

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_MODEL_ID = re.compile(r"\bm-[0-9a-f]{32}\b")
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?|\d{8}T\d{6}(\.\d+)?Z?")
_DURATION_TEXT = [
    (re.compile(r"took [^\n]*"), "took <dur>"),
    (re.compile(r"\b\d+(\.\d+)? ?s\b"), "<dur> s"),
]
# the clock and the machine's load, not the data: durations, times, and the CPU threads chosen from the load
_DURATION_KEY = re.compile(
    r"seconds|duration|elapsed|_time$|_at$|\btime$|timestamp|created|updated|run_name$|cpu_threads$"
)
_LONG_HEX = re.compile(r"(?<![0-9A-Za-z])[0-9a-f]{12,}(?![0-9A-Za-z])")
_TMP = re.compile(re.escape(tempfile.gettempdir()) + r"/tmp[\w-]+")
_KEYED = re.compile(r"<keyed-fingerprint:\w+(:\w+)?>")
_DIGITS = re.compile(r"\d+")


class Normaliser:
    """Replaces what differs only because of the set-up (ids, folders, schema, clock)."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.exact: dict[str, str] = {}

    def add(self, value: str | None, placeholder: str) -> None:
        if value and value not in self.exact:
            self.exact[value] = placeholder

    def text(self, value: str) -> str:
        for raw, placeholder in sorted(self.exact.items(), key=lambda kv: -len(kv[0])):
            value = value.replace(raw, placeholder)
        value = _TMP.sub("<tmpdir>", value)
        value = _MODEL_ID.sub("m-<model>", value)
        value = _UUID.sub("<uuid>", value)
        return _TIMESTAMP.sub("<ts>", value)

    def message(self, value: str) -> str:
        value = self.text(value)
        for pattern, replacement in _DURATION_TEXT:
            value = pattern.sub(replacement, value)
        return value

    def key(self, key: str) -> str:
        return _LONG_HEX.sub("<hex>", _KEYED.sub("<keyed-fingerprint>", self.text(key)))

    def value(self, key: str, value: Any) -> Any:
        if _DURATION_KEY.search(key.rsplit(":", 1)[-1].rsplit(".", 1)[-1].lower()):
            return "<clock>"
        if isinstance(value, float) and math.isnan(value):
            return "nan"
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, (list, tuple)):
            return json.dumps(value, default=str)
        return value


def template(text: str) -> str:
    """A log line's key: digit runs become '#', long hex runs '<hex>' (so values, not shapes, are compared)."""
    return _DIGITS.sub("#", _LONG_HEX.sub("<hex>", _KEYED.sub("<keyed-fingerprint>", text))).strip()


def _item_id(item: Any, index: int) -> str:
    """GX expectations and results by type and column (stable when the suites differ), anything else by index."""
    config = item.get("expectation_config", item) if isinstance(item, dict) else None
    if isinstance(config, dict) and "type" in config and isinstance(config.get("kwargs"), dict):
        return f"{config['type']}/{config['kwargs'].get('column', 'table')}"
    return str(index)


class Collected:
    """The flat ``{location: value}`` dict of one run, plus raw texts for the canary search."""

    def __init__(self, norm: Normaliser) -> None:
        self.norm = norm
        self.values: dict[str, Any] = {}
        self.raw: list[tuple[str, bytes]] = []

    def put(self, key: str, value: Any) -> None:
        key = self.norm.key(key)
        value = self.norm.value(key, value)
        final, n = key, 1
        while final in self.values:
            n += 1
            final = f"{key}#{n}"
        self.values[final] = value

    def flat(self, prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            if not value:
                self.put(prefix, "{}")
            for k, v in value.items():
                self.flat(f"{prefix}.{k}" if prefix[-1:] != ":" else f"{prefix}{k}", v)
        elif isinstance(value, (list, tuple)):
            if not value:
                self.put(prefix, "[]")
            for i, v in enumerate(value):
                self.flat(f"{prefix}[{_item_id(v, i)}]", v)
        else:
            self.put(prefix, value)

    def lines(self, prefix: str, text: str, normalise=None) -> None:
        """Each line keyed by its template (repeats numbered by put)."""
        normalise = normalise or self.norm.message
        for line in text.splitlines():
            if line.strip():
                clean = normalise(line)
                self.put(f"{prefix}:{template(clean)}", clean)


# --------------------------------------------------------------------------------------------------------------
# Collectors
# --------------------------------------------------------------------------------------------------------------


class _Report(HTMLParser):
    """The report's text cells keyed by section and the last label, and its images by alt text."""

    def __init__(self) -> None:
        super().__init__()
        self.section = "head"
        self.label = ""
        self.cells: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "section":
            self.section, self.label = a.get("id") or "section", ""
        if tag == "img":
            src = (a.get("src") or "").encode()
            self.cells.append((f"img:{a.get('alt')}", hashlib.sha256(src).hexdigest()))

    def handle_data(self, data: str) -> None:
        data = data.strip()
        if not data or (self.section == "head" and "{" in data):  # the stylesheet
            return
        self.cells.append((f"{self.section}:{self.label}", data))
        if re.search(r"[A-Za-z]{3}", data):
            self.label = data[:60]


def collect_file(out: Collected, key: str, path: Path) -> None:
    blob = path.read_bytes()
    out.raw.append((key, blob))
    name = path.name
    try:
        if name.endswith(".json"):
            out.flat(f"{key}:", json.loads(blob))
        elif name.endswith(".jsonl"):
            for i, line in enumerate(blob.decode().splitlines()):
                event = json.loads(line)
                out.flat(
                    f"lineage[{i}]:{event.get('eventType')}:", {k: v for k, v in event.items() if k != "eventType"}
                )
        elif name.endswith((".yaml", ".yml")) or name == "MLmodel":
            out.flat(f"{key}:", yaml.safe_load(blob))
        elif name.endswith(".html"):
            parser = _Report()
            parser.feed(blob.decode())
            for cell_key, value in parser.cells:
                clean = out.norm.message(value) if not cell_key.startswith("img:") else value
                out.put(f"{key}:html:{template(out.norm.message(cell_key))}:{template(clean)}", clean)
        elif name.endswith((".txt", ".md", ".py", ".cfg")):
            out.lines(key, blob.decode())
        else:
            out.put(key, hashlib.sha256(blob).hexdigest())
    except (UnicodeDecodeError, json.JSONDecodeError, yaml.YAMLError):
        out.put(key, hashlib.sha256(blob).hexdigest())


def collect_files(out: Collected, root: Path) -> None:
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        relative = path.relative_to(root).as_posix()
        if path.name in ("spec.yaml",) and path.parent == root:
            continue  # the test's own input
        if path.name.startswith("mlflow.db"):
            out.raw.append((relative, path.read_bytes()))  # read through the API below; searched byte by byte
            continue
        if relative.startswith("home/lineage/"):
            collect_file(out, "lineage", path)
            continue
        collect_file(out, f"file:{relative}", path)


def collect_mlflow(out: Collected, tracking_uri: str, run_id: str) -> None:
    import mlflow

    client = mlflow.MlflowClient(tracking_uri)
    run = client.get_run(run_id)
    for k, v in run.data.params.items():
        try:
            parsed = json.loads(v)
        except (json.JSONDecodeError, TypeError):
            parsed = v
        if isinstance(parsed, dict):
            out.flat(f"mlflow:param:{k}.", parsed)
        else:
            out.put(f"mlflow:param:{k}", v)
    for k, v in run.data.tags.items():
        if k == "mlflow.note.content":  # the run's description: one location per line (the auditor's chain)
            out.lines("mlflow:note", v, out.norm.text)
        else:
            out.put(f"mlflow:tag:{k}", v)
    for k, v in run.data.metrics.items():
        out.put(f"mlflow:metric:{k}", v)
        history = client.get_metric_history(run_id, k)
        if len(history) > 1:
            out.put(f"mlflow:metric_history:{k}", [(m.step, m.value) for m in sorted(history, key=lambda m: m.step)])
    for i, di in enumerate(run.inputs.dataset_inputs if run.inputs else []):
        d = di.dataset
        out.flat(
            f"mlflow:dataset[{i}]:",
            {
                "name": d.name,
                "digest": d.digest,
                "source_type": d.source_type,
                "source": d.source,
                "schema": d.schema,
                "profile": d.profile,
                "tags": {t.key: t.value for t in di.tags},
            },
        )
    out.raw.append(("mlflow run", repr(run.to_dictionary()).encode()))
    for mv in client.search_model_versions():
        out.lines(f"mlflow:model_version[{mv.name}]:description", mv.description or "", out.norm.text)
        out.flat(
            f"mlflow:model_version[{mv.name}]:",
            {
                "tags": mv.tags,
                "aliases": list(mv.aliases),
                "source": mv.source,
                "run_id": mv.run_id,
                "status": mv.status,
            },
        )
        out.raw.append(("mlflow model version", repr(mv).encode()))
    try:
        models = client.search_logged_models(experiment_ids=[run.info.experiment_id])
    except Exception:  # noqa: BLE001 - older MLflow: no logged models
        models = []
    assert len(models) <= 1, "one logged model per run expected"
    for m in models:
        for k, v in (m.params or {}).items():
            out.put(f"mlflow:logged_model:param:{k}", v)
        for k, v in (m.tags or {}).items():
            out.put(f"mlflow:logged_model:tag:{k}", v)
        for x in m.metrics or []:
            out.put(f"mlflow:logged_model:metric:{x.key}", x.value)
        out.raw.append(("mlflow logged model", repr(m).encode()))


def collect_postgres(out: Collected, engine: sa.Engine, schema: str, sources: set[str]) -> None:
    inspector = sa.inspect(engine)
    tables = sorted(set(inspector.get_table_names(schema=schema)) - sources)
    views = sorted(inspector.get_view_names(schema=schema))
    out.put("pg:relations", [*tables, *views])
    with engine.connect() as conn:
        for table in tables:
            rows = conn.execute(sa.text(f'SELECT t::text FROM "{schema}"."{table}" t')).scalars().all()
            out.raw.append((f"table {table}", "\n".join(rows).encode()))
        for table in ("synthgate_catalog", "synthgate_ledger", "synthgate_events"):
            frame = pd.read_sql_table(table, conn, schema=schema)
            for i, row in enumerate(frame.to_dict("records")):
                for column, value in row.items():
                    if isinstance(value, pd.Timestamp):
                        value = "<ts>"
                    elif isinstance(value, (np.integer, np.floating)):
                        value = value.item()
                    out.put(f"pg:{table}[{i}].{column}", None if value is None or value is pd.NaT else value)
        for name in [*tables, *views]:
            comment = conn.execute(
                sa.text("SELECT obj_description(to_regclass(:n), 'pg_class')"), {"n": f'"{schema}"."{name}"'}
            ).scalar_one()
            if comment:
                out.raw.append((f"comment of {name}", comment.encode()))
                for part in re.split(r", (?![^()]*\))|\s*\(|\)\s*", comment):
                    if part.strip():
                        clean = out.norm.message(part.strip())
                        out.put(f"pg:comment:{template(name)}:{template(clean)}", clean)
        published = [v for v in views if not v.startswith("synthgate_")]
        assert published, f"no published view in {schema}: {views}"
        frames = {view: pd.read_sql_table(view, conn, schema=schema) for view in published}
    for view, frame in frames.items():
        out.put(f"published:{view}:rows", len(frame))
        out.put(f"published:{view}:columns", list(map(str, frame.columns)))
        for column in frame.columns:
            digest = hashlib.sha256(frame[column].astype(str).sort_values().str.cat(sep="\n").encode()).hexdigest()
            out.put(f"published:{view}:values:{column}", digest)
        out.raw.append((f"published rows of {view}", frame.to_csv(index=False).encode()))


def collect_prefect(out: Collected, flow_run_id: str) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, LogFilter, TaskRunFilter
    from prefect.client.schemas.sorting import LogSort
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=30)  # logs go to the API in background batches: send what is queued
    with get_client(sync_client=True) as client:
        run_id = uuid.UUID(flow_run_id)
        flow_run = client.read_flow_run(run_id)
        out.norm.add(flow_run.name, "<flow-run-name>")
        task_runs = client.read_task_runs(task_run_filter=TaskRunFilter(flow_run_id={"any_": [run_id]}))
        names = {}
        for tr in task_runs:
            base = re.sub(r"-[0-9a-f]{1,8}$", "", tr.name)
            names[tr.id] = base
            out.norm.add(tr.name, base)
            out.norm.add(str(tr.id), "<task-run>")
        logs = []
        offset = 0
        while batch := client.read_logs(
            log_filter=LogFilter(flow_run_id={"any_": [run_id]}), limit=200, offset=offset, sort=LogSort.TIMESTAMP_ASC
        ):
            logs += batch
            offset += len(batch)
        for log in logs:
            out.raw.append(("prefect log", log.message.encode()))
            where = names.get(log.task_run_id, "task") if log.task_run_id else "flow"
            clean = out.norm.message(log.message)
            out.put(f"prefect:log:{where}:{template(clean)}", clean)
        for a in client.read_artifacts(flow_run_filter=FlowRunFilter(id={"any_": [run_id]})):
            out.raw.append(("prefect artifact", f"{a.key} {a.description} {a.data}".encode()))
            prefix = f"prefect:artifact:{a.key}:{a.type}"
            if a.description:
                out.put(f"{prefix}:description", out.norm.message(a.description))
            data = a.data
            if isinstance(data, str) and a.type == "table":
                data = json.loads(data)
            if isinstance(data, str):
                out.lines(prefix, data)
            else:
                out.flat(f"{prefix}:", data)
        out.raw.append(("prefect flow run", flow_run.model_dump_json().encode()))
        out.flat("prefect:flow_run:parameters:", flow_run.parameters)
        out.put("prefect:flow_run:state", f"{flow_run.state.type.value} {flow_run.state.name}")
        out.put("prefect:flow_run:state_message", out.norm.message(flow_run.state.message or ""))
        for tr in sorted(task_runs, key=lambda t: (names[t.id], t.expected_start_time or t.created)):
            out.raw.append(("prefect task run", tr.model_dump_json().encode()))
            out.put(f"prefect:task_run:{names[tr.id]}:state", f"{tr.state.type.value} {tr.state.name}")
            out.put(f"prefect:task_run:{names[tr.id]}:state_message", out.norm.message(tr.state.message or ""))
    assert any(k.startswith("prefect:log:publish-table:published") for k in out.values), (
        "the Prefect logs were not found: the diff would prove nothing"
    )


# --------------------------------------------------------------------------------------------------------------
# The runs
# --------------------------------------------------------------------------------------------------------------


KEY = "leak-diff-test-key-" + "k" * 24  # the same fingerprint key in both runs


def keyed_fingerprint(schema: str, source: str = "people") -> str | None:
    """The snapshot digest the run should have published, if it is keyed: equal under the test's key to a fresh
    extract's, different under another key. None when the extract takes no key (an unkeyed fingerprint)."""
    from synthgate.spec import WarehouseTable
    from synthgate.warehouse.extract import extract_table

    if "key" not in inspect.signature(extract_table).parameters:
        return None
    table = WarehouseTable(url=PG_URL, table=source, schema=schema)
    mine = getattr(extract_table(table, key=KEY.encode()).fingerprint, "digest", None)
    other = getattr(extract_table(table, key=b"another key entirely").fingerprint, "digest", None)
    if not isinstance(mine, str) or len(mine) < 32 or mine == other:
        return None
    return mine


def refresh(
    label: str,
    root: Path,
    schema: str,
    frame: pd.DataFrame,
    pg_engine: sa.Engine,
    monkeypatch: pytest.MonkeyPatch,
    unit: str | None = None,
    orders: pd.DataFrame | None = None,
) -> Collected:
    """One full refresh of ``frame`` (with ``orders``, its child table, when given) in its own home, expectations
    folder, MLflow store and schema; all it wrote."""
    from synthgate.flows.refresh import refresh_table

    root.mkdir(parents=True)
    frame.to_sql("people", pg_engine, schema=schema, index=False)
    children = []
    if orders is not None:
        orders.to_sql("orders", pg_engine, schema=schema, index=False)
        where = {"url": PG_URL, "schema": schema}
        children = [
            {"source": where | {"table": "orders"}, "target": where | {"table": "orders_synthetic"}, "key": unit}
        ]
    monkeypatch.setenv("SYNTHGATE_HOME", str(root / "home"))
    monkeypatch.setenv("SYNTHGATE_EXPECTATIONS_DIR", str(root / "expectations"))
    monkeypatch.setenv("SYNTHGATE_MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
    monkeypatch.setenv("SYNTHGATE_FINGERPRINT_KEY", KEY)
    data = spec_dict(
        schema,
        table="people",
        target="people_synthetic",
        name="leakdiff",
        target_column="churned",
        privacy={"epsilon": 4.0, "delta": 1e-5} | ({"unit": unit} if unit else {}),
        training={"epochs": 1, "seed": 0, "device": "cpu", "hidden_dim": 32, "embedding_dim": 8},
        **({"children": children} if children else {}),
    )  # rows unset: the published row count is the DP row-count estimate
    result = refresh_table(str(write_spec(root, data)), trigger="test")
    assert result["status"] == "published"

    norm = Normaliser(label)
    for source in ["people"] + (["orders"] if orders is not None else []):
        if digest := keyed_fingerprint(schema, source):
            for n in range(len(digest), 11, -1):
                norm.add(digest[:n], f"<keyed-fingerprint:{label}:{source}>")
    norm.add(result["mlflow_run_id"], "<run>")
    for path in (root.resolve(), root):
        norm.add(str(path), "<root>")
        norm.add(path.as_uri(), "file://<root>")
    norm.add(schema, "<schema>")
    norm.add(result["mlflow_tracking_uri"], "<tracking-uri>")
    out = Collected(norm)
    import mlflow

    run = mlflow.MlflowClient(result["mlflow_tracking_uri"]).get_run(result["mlflow_run_id"])
    if len(run.info.experiment_id) > 3:  # a short number is the same in both stores
        norm.add(run.info.experiment_id, "<experiment>")
    norm.add(run.info.run_name, "<run-name>")
    flow_run_id = run.data.tags["prefect.flow_run_id"]
    norm.add(flow_run_id, "<flow-run>")
    collect_prefect(out, flow_run_id)
    collect_mlflow(out, result["mlflow_tracking_uri"], result["mlflow_run_id"])
    collect_files(out, root)
    collect_postgres(out, pg_engine, schema, {"people", "orders"})
    return out


@pytest.fixture
def second_schema(pg_engine: sa.Engine) -> Iterator[str]:
    schema = f"sg_{uuid.uuid4().hex[:10]}"
    with pg_engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    yield schema
    with pg_engine.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))


def _short(value: Any, limit: int = 160) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


MISSING = "<absent>"


def keyed_only(a: Any, b: Any) -> str | None:
    """KEYED_FINGERPRINT when the two values differ only by the verified keyed-fingerprint placeholders."""
    keyed = isinstance(a, str) and isinstance(b, str) and (_KEYED.search(a) or _KEYED.search(b))
    if keyed and _KEYED.sub("<kf>", a) == _KEYED.sub("<kf>", b):
        return KEYED_FINGERPRINT
    return None


def differences(base: dict[str, Any], canary: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    return {
        k: (base.get(k, MISSING), canary.get(k, MISSING))
        for k in sorted(base.keys() | canary.keys())
        if base.get(k, MISSING) != canary.get(k, MISSING)
    }


@pytest.mark.parametrize(
    ("unit", "linked"), [(None, False), ("customer_id", False), ("customer_id", True)], ids=["row", "unit", "linked"]
)
def test_only_dp_outputs_and_disclosed_aggregates_depend_on_a_row(
    prefect_harness, tmp_path, pg_engine, pg_schema, second_schema, monkeypatch, unit, linked
) -> None:
    # With a privacy unit the canary is a whole person: one customer with 40 rows, each carrying the canary values.
    # Linked: a parent table of customers (one row each) and their orders; the canary is one customer with 40 orders.
    if linked:
        people, with_canary = base_table(), canary_table()
        base_orders, canary_orders = orders_table(people), orders_table(with_canary, canary=True)
    else:
        people, with_canary, base_orders, canary_orders = base_table(unit), canary_table(unit), None, None
    base = refresh("base", tmp_path / "base", pg_schema, people, pg_engine, monkeypatch, unit, base_orders)
    canary = refresh(
        "canary", tmp_path / "canary", second_schema, with_canary, pg_engine, monkeypatch, unit, canary_orders
    )

    # The collection saw every place a run writes to (else the diff proves nothing).
    for prefix in (
        "mlflow:param:",
        "mlflow:tag:",
        "mlflow:metric:",
        "mlflow:dataset",
        "file:home/mlartifacts/",
        "file:home/reports/",
        "file:expectations/",
        "lineage[",
        "pg:synthgate_catalog[",
        "pg:synthgate_ledger[",
        "pg:synthgate_events[",
        "pg:comment:",
        "published:",
        "prefect:log:",
        "prefect:artifact:",
        "prefect:task_run:",
    ):
        assert any(k.startswith(prefix) for k in base.values), f"nothing collected under {prefix!r}"
        assert any(k.startswith(prefix) for k in canary.values), f"nothing collected under {prefix!r}"
    assert any("synthesizer.json:codecs" in k for k in canary.values) and any("weights.pt" in k for k in canary.values)

    diff = differences(base.values, canary.values)
    explained = {k: why for k, (a, b) in diff.items() if (why := allowed(k) or keyed_only(a, b))}
    leaks = {k: v for k, v in diff.items() if k not in explained}
    report = "\n".join(f"  {k}\n      base:   {_short(a)}\n      canary: {_short(b)}" for k, (a, b) in leaks.items())
    print(f"\n{len(diff)} differing locations: {len(explained)} allowed, {len(leaks)} not")
    print("allowed:\n" + "\n".join(f"  {k}  [{why}]" for k, why in explained.items()))
    print("NOT allowed:\n" + report)

    # The canary's values are nowhere in what the canary run wrote.
    found = sorted(
        {hit for where, blob in canary.raw for hit in hits(blob, where)}
        | {hit for k, v in canary.values.items() for hit in hits(f"{k}={v}".encode(), k)}
    )
    print("canary values found:\n" + "\n".join(f"  {h}" for h in found))

    assert not leaks, f"{len(leaks)} locations depend on one real row outside the DP outputs and disclosures:\n{report}"
    assert found == []
    # The check above could fail: the canary row was really in the second source, and only there.
    with pg_engine.connect() as conn:
        assert conn.execute(
            sa.text(f'SELECT count(*) FROM "{second_schema}".people WHERE plan = :c'), {"c": CATEGORY}
        ).scalar_one() == (CANARY_UNIT_ROWS if unit and not linked else 1)


#: Locations through which the canary row was observable on the release before the fixes (unkeyed fingerprint, exact
#: row counts, GX observed values of the real table, the training loss): the allowlist must never grow to cover them.
KNOWN_LEAKS = [
    "mlflow:tag:synthgate.source_fingerprint",
    "mlflow:metric:train_loss",
    "mlflow:metric_history:train_loss",
    "mlflow:dataset[0]:digest",
    "mlflow:dataset[0]:profile",
    "file:home/mlartifacts/leakdiff/<run>/artifacts/lineage/source_fingerprint.json:rows",
    "file:home/mlartifacts/leakdiff/<run>/artifacts/lineage/source_fingerprint.json:content_hash",
    "file:home/mlartifacts/leakdiff/<run>/artifacts/gx/source_validation.json:"
    "results[expect_table_row_count_to_be_between/table].result.observed_value",
    "file:home/mlartifacts/leakdiff/<run>/artifacts/gx/source_validation.json:"
    "results[expect_column_values_to_not_be_null/visits].result.unexpected_percent",
    "file:home/mlartifacts/leakdiff/<run>/artifacts/gx/source_validation.json:"
    "results[expect_column_values_to_not_be_null/age].result.element_count",
    "file:home/mlartifacts/leakdiff/models/m-<model>/artifacts/artifacts/generator/synthesizer.json:summary.final_loss",
    "lineage[1]:COMPLETE:inputs[0].facets.version.datasetVersion",
    "pg:synthgate_catalog[0].source_fingerprint",
    "pg:synthgate_ledger[0].source_fingerprint",
    "pg:comment:people_synthetic__v#:snapshot fingerprint <hex>",
    "prefect:log:extract-source:extracted people: # rows, # columns, fingerprint <hex>",
    "prefect:log:train-generator:epoch #/#: loss #.#, epsilon spent #.# (<dur> s)",
    (
        "prefect:log:train-generator:trained under epsilon #.# (rdp accounting), delta #.#e-#; "
        "noise multiplier #.#, loss #.#"
    ),
]


@pytest.mark.parametrize("location", KNOWN_LEAKS)
def test_the_allowlist_does_not_cover_known_leaks(location: str) -> None:
    assert allowed(location) is None
    # an unkeyed hash is never explained as the keyed fingerprint (no verified placeholder in it)
    assert keyed_only("c49fea88a8d5cf13dc39b9c5e1aa9de7", "625f32c630a12081b2fdcf77c7a4ed54") is None
