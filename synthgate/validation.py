"""Great Expectations suites for the source extract and the synthetic table.

Suites are built from the spec and the table's declared schema, never from real values, and
kept as JSON under ``expectations/`` so that reviewers can read and edit them. Results use
the SUMMARY format with no partial unexpected values: they hold counts, never real values.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pandas as pd

from synthgate.errors import DataValidationError, SpecError
from synthgate.schema import Column, ColumnKind
from synthgate.spec import ColumnPolicy, TableSpec

if TYPE_CHECKING:
    from great_expectations.data_context import EphemeralDataContext

log = logging.getLogger(__name__)

RESULT_FORMAT = {"result_format": "SUMMARY", "partial_unexpected_count": 0, "include_unexpected_rows": False}
#: Real rows are validated with pass/fail only: SUMMARY would still carry exact counts (element_count,
#: unexpected_count, missing_count, the row count as observed_value), which are real data outside the budget.
SOURCE_RESULT_FORMAT = {"result_format": "BOOLEAN_ONLY"}

# pandas dtypes GX accepts per kind (GX resolves names through numpy and ``pandas.<Name>``).
_INTS = [
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "Int8Dtype",
    "Int16Dtype",
    "Int32Dtype",
    "Int64Dtype",
]
_DTYPES: dict[ColumnKind, list[str]] = {
    ColumnKind.INTEGER: [*_INTS, "float64"],  # integer columns with nulls arrive as float64
    ColumnKind.FLOAT: ["float32", "float64", "Float64Dtype", *_INTS],
    ColumnKind.BOOLEAN: ["bool", "BooleanDtype", "int64", "Int64Dtype"],
    ColumnKind.DATETIME: ["datetime64[ns]", "datetime64[us]", "datetime64[ms]", "datetime64[s]", "DatetimeTZDtype"],
    ColumnKind.CATEGORICAL: ["str", "StringDtype", "CategoricalDtype"],  # object columns are checked value by value
}


@dataclass(frozen=True)
class ValidationOutcome:
    """One suite run on one table: whether it passed, how many expectations ran and which failed (names only)."""

    suite_name: str
    success: bool
    evaluated: int
    failed: list[str]  # "expectation_type(column)" of each failed expectation: names, never values
    result: dict[str, Any]  # the GX result as JSON (SUMMARY format)
    created_suite: bool = False


def suite_path(expectations_dir: Path, spec: TableSpec, kind: str) -> Path:
    """Where a table's suite of ``kind`` (``source`` or ``synthetic``) is kept: ``<dir>/<table>.<kind>.json``."""
    return expectations_dir / f"{spec.name}.{kind}.json"


def _gx() -> tuple[ModuleType, EphemeralDataContext]:
    """GX with an ephemeral (in-memory) context, quiet: suites live as JSON in the repo, not in a GX project."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    # This module sets its own logger to INFO: "Created temporary directory ... for ephemeral docs site", each context.
    logging.getLogger("great_expectations.data_context.types.base").setLevel(logging.WARNING)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return gx, context


def build_source_suite(spec: TableSpec, columns: list[Column], policies: dict[str, ColumnPolicy]) -> dict[str, Any]:
    """Schema, types, non-emptiness and the spec's public domains, as a GX suite (JSON)."""
    gx, _ = _gx()
    expectations = [
        gx.expectations.ExpectTableColumnsToMatchOrderedList(column_list=[c.name for c in columns]),
        gx.expectations.ExpectTableRowCountToBeBetween(min_value=1),
    ]
    for c in columns:
        expectations += _column_expectations(policies.get(c.name, ColumnPolicy()), c)
    return _suite(f"{spec.name}.source", columns, expectations)


def published_columns(columns: list[Column], policies: dict[str, ColumnPolicy]) -> list[Column]:
    """The columns a synthetic table has: every column but the dropped ones."""
    return [c for c in columns if policies.get(c.name, ColumnPolicy()).policy != "drop"]


def build_synthetic_suite(
    spec: TableSpec, columns: list[Column], policies: dict[str, ColumnPolicy], rows: int | None = None
) -> dict[str, Any]:
    """What the published table promises: its columns, types and domains, and with ``rows`` its row count (a run's
    own figure: never in the stored suite, see :func:`with_row_count`)."""
    gx, _ = _gx()
    kept = published_columns(columns, policies)
    expectations = [gx.expectations.ExpectTableColumnsToMatchOrderedList(column_list=[c.name for c in kept])]
    if rows is not None:
        expectations.append(gx.expectations.ExpectTableRowCountToEqual(value=rows))
    for c in kept:
        policy = policies.get(c.name, ColumnPolicy())
        expectations += _column_expectations(policy, c)
        if policy.fake in ("id", "uuid"):
            expectations.append(gx.expectations.ExpectColumnValuesToBeUnique(column=c.name))
    return _suite(f"{spec.name}.synthetic", kept, expectations)


def _suite(name: str, columns: list[Column], expectations: list[Any]) -> dict[str, Any]:
    """A suite of ``expectations`` as JSON, made in one go: GX's ``add_expectation`` compares each new expectation
    with every earlier one (building a 500-column table's 1,000 took a minute); these are distinct by construction."""
    import great_expectations as gx

    suite = gx.ExpectationSuite(
        name=name, expectations=expectations, meta={"column_kinds": {c.name: c.kind.value for c in columns}}
    )
    return suite.to_json_dict()


def _column_expectations(policy: ColumnPolicy, column: Column) -> list[Any]:
    """A column's expectations: its types (unless faked), some values, and the spec's public domain."""
    import great_expectations as gx

    if policy.policy == "drop":
        return []
    # a number learned as categories is still a number, at the source and as sampled
    number = column.kind in (ColumnKind.INTEGER, ColumnKind.FLOAT)
    kind = ColumnKind.CATEGORICAL if policy.policy == "categorical" and not number else column.kind
    expectations: list[Any] = []
    if policy.policy != "fake":
        expectations.append(
            gx.expectations.ExpectColumnValuesToBeInTypeList(column=column.name, type_list=_DTYPES[kind])
        )
    # At least some values: an all-null column cannot be learned.
    expectations.append(gx.expectations.ExpectColumnValuesToNotBeNull(column=column.name, mostly=1e-9))
    if policy.categories is not None:
        expectations.append(
            gx.expectations.ExpectColumnValuesToBeInSet(column=column.name, value_set=list(policy.categories))
        )
    if policy.min is not None or policy.max is not None:
        expectations.append(
            gx.expectations.ExpectColumnValuesToBeBetween(
                column=column.name, min_value=policy.min, max_value=policy.max
            )
        )
    return expectations


def write_suite(path: Path, suite: dict[str, Any]) -> Path:
    """Write ``suite`` as the reviewed JSON file at ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(suite, indent=2) + "\n")
    return path


def _load_or_create(path: Path, build: Callable[[], dict[str, Any]]) -> tuple[dict[str, Any], bool]:
    """The suite stored at ``path``, or a new one built and written there when none is (True: created now).

    Suites are reviewed files: a refresh creates a missing one and never rewrites one (``synthgate suites --write``
    does, on purpose)."""
    if path.is_file():
        return json.loads(path.read_text()), False
    suite = build()
    write_suite(path, suite)
    log.info("created suite %s", path)
    return suite, True


def load_or_create_source_suite(
    expectations_dir: Path, spec: TableSpec, columns: list[Column], policies: dict[str, ColumnPolicy]
) -> tuple[dict[str, Any], bool]:
    """The source suite (created from the schema and the spec's domains when missing) and whether it was created."""
    return _load_or_create(
        suite_path(expectations_dir, spec, "source"), lambda: build_source_suite(spec, columns, policies)
    )


def load_or_create_synthetic_suite(
    expectations_dir: Path, spec: TableSpec, columns: list[Column], policies: dict[str, ColumnPolicy]
) -> tuple[dict[str, Any], bool]:
    """The synthetic suite (created when missing, without a row count) and whether it was created. Raises
    :class:`DataValidationError` when it no longer describes the columns the spec now publishes."""
    path = suite_path(expectations_dir, spec, "synthetic")
    suite, created = _load_or_create(path, lambda: build_synthetic_suite(spec, columns, policies))
    drift = schema_drift(suite, published_columns(columns, policies))
    if drift:
        raise DataValidationError(
            f"the synthetic suite {path} no longer matches the columns {spec.name!r} publishes: "
            + "; ".join(drift)
            + ". Review the change, then rewrite the suite with `synthgate suites SPEC --write` (or edit it)"
        )
    return suite, created


def with_row_count(suite: dict[str, Any], rows: int) -> dict[str, Any]:
    """``suite`` (not changed) plus this run's own row count, second as in a suite built with ``rows``."""
    expectation = {
        "type": "expect_table_row_count_to_equal",
        "kwargs": {"value": rows},
        "meta": {},
        "severity": "critical",
    }
    expectations = [e for e in suite["expectations"] if e["type"] != expectation["type"]]
    return {**suite, "expectations": [*expectations[:1], expectation, *expectations[1:]]}


def schema_drift(suite: dict[str, Any], columns: list[Column]) -> list[str]:
    """Differences between the suite's recorded column kinds and the table's: added, removed, retyped."""
    saved: dict[str, str] = (suite.get("meta") or {}).get("column_kinds") or {}
    if not saved:
        return []
    now = {c.name: c.kind.value for c in columns}
    problems = [f"column {n!r} was removed" for n in saved if n not in now]
    problems += [f"column {n!r} was added" for n in now if n not in saved]
    problems += [f"column {n!r} changed from {saved[n]} to {now[n]}" for n in now if n in saved and saved[n] != now[n]]
    return problems


#: Column expectations are validated this many columns at a time, on a frame of those columns: GX's pandas engine
#: copies the whole frame for each column expectation's condition (a 500-column table's synthetic suite took 34 s).
COLUMNS_PER_BATCH = 20
#: And at most this many cells (or one column): each copy of a block of a 10M-row table's 15 columns was gigabytes.
CELLS_PER_BATCH = 2_000_000
#: The expectations that read their own column only (those Synthgate writes): validated in column blocks. Any other
#: (a position, a pair of columns, a custom one) and any with a row condition sees the whole frame.
_OWN_COLUMN = {
    "expect_column_values_to_be_in_type_list",
    "expect_column_values_to_not_be_null",
    "expect_column_values_to_be_in_set",
    "expect_column_values_to_be_between",
    "expect_column_values_to_be_unique",
}
_ORDER = "synthgate_order"  # an expectation's place in the suite, in its meta while the blocks are validated


def validate(frame: pd.DataFrame, suite_json: dict[str, Any], *, real_rows: bool = False) -> ValidationOutcome:
    """Run a suite on a DataFrame with GX: SUMMARY results without values, or pass/fail only for ``real_rows``.

    On a frame of more columns than a block holds (:data:`COLUMNS_PER_BATCH`, fewer on a tall frame:
    :data:`CELLS_PER_BATCH`), the table's expectations (and any that may read other columns) see the whole frame and
    the others their block of columns. One result comes back, in the suite's order."""
    gx, context = _gx()
    frame = _without_time_zones(frame)
    batch_definition = (
        context.data_sources.add_pandas("synthgate")
        .add_dataframe_asset("table")
        .add_batch_definition_whole_dataframe("whole")
    )
    expectations = [e | {"meta": (e.get("meta") or {}) | {_ORDER: i}} for i, e in enumerate(suite_json["expectations"])]
    per_block = max(1, min(COLUMNS_PER_BATCH, CELLS_PER_BATCH // max(len(frame), 1)))
    narrow = frame.shape[1] <= per_block  # one batch: nothing to gain from blocks
    batches = (
        [(None, expectations)]
        if narrow
        else _column_blocks(expectations, [c for c in frame.columns if isinstance(c, str)], per_block)
    )
    parts = []
    for columns, block in batches:
        suite = gx.ExpectationSuite(
            **{k: v for k, v in suite_json.items() if k not in ("id", "expectations")}, expectations=block
        )
        batch = batch_definition.get_batch(batch_parameters={"dataframe": frame if columns is None else frame[columns]})
        parts.append(
            batch.validate(suite, result_format=SOURCE_RESULT_FORMAT if real_rows else RESULT_FORMAT).to_json_dict()
        )
    result = _merged(parts)
    failed = [
        f"{r['expectation_config']['type']}({r['expectation_config']['kwargs'].get('column', 'table')})"
        for r in result["results"]
        if not r["success"]
    ]
    return ValidationOutcome(
        suite_name=suite_json["name"],
        success=bool(result["success"]),
        evaluated=len(result["results"]),
        failed=failed,
        result=_scrub(result),
    )


def _column_blocks(
    expectations: list[dict[str, Any]], present: list[str], per_block: int
) -> list[tuple[list[str] | None, list[dict[str, Any]]]]:
    """The suite in batches: (None: the whole frame, with the table's expectations, those of absent columns and any
    that may read other columns), then (a block of columns, their expectations)."""
    whole: list[dict[str, Any]] = []
    by_column: dict[str, list[dict[str, Any]]] = {}
    have = set(present)
    for e in expectations:
        column, kwargs = e["kwargs"].get("column"), e["kwargs"]
        own = e["type"] in _OWN_COLUMN and not kwargs.get("row_condition") and not kwargs.get("result_format")
        if own and isinstance(column, str) and column in have:
            by_column.setdefault(column, []).append(e)
        else:
            whole.append(e)
    names = list(by_column)
    blocks = [names[i : i + per_block] for i in range(0, len(names), per_block)]
    out: list[tuple[list[str] | None, list[dict[str, Any]]]] = [(None, whole)] if whole or not blocks else []
    return out + [(block, [e for name in block for e in by_column[name]]) for block in blocks]


def _merged(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """The blocks' GX results as one: their results in the suite's order (the order tags removed), the statistics and
    success over all of them, the rest (suite name, meta) from the last block."""
    results = sorted(
        (r for part in parts for r in part["results"]), key=lambda r: r["expectation_config"]["meta"][_ORDER]
    )
    for r in results:
        del r["expectation_config"]["meta"][_ORDER]
    passed = sum(bool(r["success"]) for r in results)
    return parts[-1] | {
        "success": passed == len(results),
        "results": results,
        "statistics": {
            "evaluated_expectations": len(results),
            "successful_expectations": passed,
            "unsuccessful_expectations": len(results) - passed,
            "success_percent": passed / len(results) * 100 if results else None,  # GX's own expression
        },
    }


def _without_time_zones(frame: pd.DataFrame) -> pd.DataFrame:
    """Time-zone-aware datetimes as naive UTC: GX's type list cannot name a zoned dtype (``datetime64[ns, UTC]``)."""
    zoned = [name for name, dtype in frame.dtypes.items() if isinstance(dtype, pd.DatetimeTZDtype)]
    if not zoned:
        return frame
    view = frame.copy(deep=False)
    for name in zoned:
        view[name] = frame[name].dt.tz_convert("UTC").dt.tz_localize(None)
    return view


def check_spec_columns(spec: TableSpec, columns: list[Column]) -> None:
    """The spec's target column, privacy unit, keys and declared column policies must name columns of the table (names
    only, no data)."""
    names = {c.name for c in columns}
    if spec.target_column is not None and spec.target_column not in names:
        raise SpecError(
            f"target_column {spec.target_column!r} is not a column of {spec.source.table!r}: fix target_column in the "
            "spec"
        )
    if spec.privacy.unit is not None and spec.privacy.unit not in names:
        raise SpecError(
            f"privacy.unit {spec.privacy.unit!r} is not a column of {spec.source.table!r}: name the column that "
            "identifies a person"
        )
    missing_keys = [k for k in spec.key_columns if k not in names]
    if missing_keys:
        raise SpecError(
            f"keys {missing_keys} are not columns of {spec.source.table!r}: fix keys in the spec (the columns that "
            "stay unique in the synthetic table)"
        )
    unknown = sorted(set(spec.columns) - names)
    if unknown:
        raise SpecError(
            f"the spec declares policies for columns {unknown} that {spec.source.table!r} does not have: "
            "fix or remove them under columns:"
        )
    by_name = {c.name: c for c in columns}
    for name, declared in spec.columns.items():
        if problem := _policy_misfit(by_name[name], declared):
            raise SpecError(f"columns.{name} in the spec: {problem}")


def _policy_misfit(column: Column, declared: ColumnPolicy) -> str | None:
    """Why a declared policy does not fit the column's SQL type (a date with categories, text with bounds), or None.
    Found here, from the schema, it is one line before the budget is spent; later it failed the source suite after
    every row was read, or was silently ignored (date bounds read as seconds since 1970)."""
    kind, sql_type = column.kind, column.sql_type
    number = kind in (ColumnKind.INTEGER, ColumnKind.FLOAT)
    if declared.policy == "categorical" and kind in (ColumnKind.DATETIME, ColumnKind.BOOLEAN):
        return f"a {sql_type} column is learned as such, not as categories: remove `policy: categorical`"
    if declared.categories is not None and kind in (ColumnKind.DATETIME, ColumnKind.BOOLEAN):
        return f"a {sql_type} column takes no declared categories: remove `categories`"
    if declared.categories is not None and number and any(isinstance(v, (str, bool)) for v in declared.categories):
        return f"the categories of a {sql_type} column are numbers: list numbers, or cast the column to text in a view"
    if (declared.min is not None or declared.max is not None) and not number:
        return f"`min` and `max` bound a number column, and this one is {sql_type}: remove them"
    return None


def _scrub(result: dict[str, Any]) -> dict[str, Any]:
    """Drop what could carry values even in SUMMARY format (observed values of aggregate expectations)."""
    for r in result.get("results", []):
        observed = r.get("result", {}).get("observed_value")
        if observed is not None and r["expectation_config"]["type"] not in (
            "expect_table_columns_to_match_ordered_list",
            "expect_table_row_count_to_be_between",
            "expect_table_row_count_to_equal",
            "expect_column_values_to_be_in_type_list",
        ):
            r["result"]["observed_value"] = "<redacted>"
        r["result"].pop("partial_unexpected_list", None)
        r["result"].pop("partial_unexpected_counts", None)
        r["result"].pop("partial_unexpected_index_list", None)
        if isinstance(r.get("exception_info"), dict):
            r["exception_info"] = _withheld_exception(r["exception_info"])
    result.get("meta", {}).pop("batch_markers", None)
    return result


def _withheld_exception(info: dict[str, Any]) -> dict[str, Any]:
    """An expectation's ``exception_info`` (one, or one per metric) with whether it raised, never the message or
    traceback: a library's message can quote a value (a user's suite may call any expectation)."""
    if "raised_exception" not in info:
        return {k: _withheld_exception(v) for k, v in info.items() if isinstance(v, dict)}  # nothing else kept
    raised = bool(info["raised_exception"])
    return {"raised_exception": raised, **({"exception_message": "<withheld: it may quote a value>"} if raised else {})}


def validate_source(
    expectations_dir: Path,
    spec: TableSpec,
    frame: pd.DataFrame,
    columns: list[Column],
    policies: dict[str, ColumnPolicy],
) -> ValidationOutcome:
    """Validate the extract against the saved suite (created on first run). Raises on failure."""
    suite, created = load_or_create_source_suite(expectations_dir, spec, columns, policies)
    drift = schema_drift(suite, columns)
    if drift:
        raise DataValidationError(
            f"schema drift in {spec.source.table!r} against {suite_path(expectations_dir, spec, 'source')}: "
            + "; ".join(drift)
            + ". Update the spec and delete or edit the suite to accept the new schema"
        )
    check_spec_columns(spec, columns)
    outcome = validate(frame, suite, real_rows=True)
    outcome = ValidationOutcome(**{**outcome.__dict__, "created_suite": created})
    if not outcome.success:
        raise DataValidationError(
            f"source table {spec.source.table!r} failed {len(outcome.failed)} of {outcome.evaluated} expectations "
            f"in suite {outcome.suite_name}: {', '.join(outcome.failed)}"
        )
    return outcome


def validate_synthetic(
    expectations_dir: Path,
    spec: TableSpec,
    frame: pd.DataFrame,
    columns: list[Column],
    policies: dict[str, ColumnPolicy],
    unreleased: list[str] | None = None,
    repeating_keys: list[str] | None = None,
) -> ValidationOutcome:
    """Validate the synthetic rows against the stored suite (created when missing), with this run's row count and
    without what this run's DP decisions void (:func:`waived`)."""
    suite, created = load_or_create_synthetic_suite(expectations_dir, spec, columns, policies)
    suite = waived(with_row_count(suite, len(frame)), unreleased=unreleased or [], repeating_keys=repeating_keys or [])
    return replace(validate(frame, suite), created_suite=created)


def waived(suite: dict[str, Any], *, unreleased: list[str], repeating_keys: list[str]) -> dict[str, Any]:
    """``suite`` (not changed) without the expectations this run's DP decisions void.

    Each is logged by the run:

    - the not-null expectation of ``unreleased`` columns: values the budget could not locate (a figure 95% of rows
      leave NULL, on a wide table), which the generator samples as NULL rather than place them anywhere;
    - the uniqueness of faked keys that the DP count of their distinct values shows repeating (a case number shared
      by a few rows): the generator repeats them with that group size, as the real key does.

    Every other expectation of theirs stands."""

    def void(e: dict[str, Any]) -> bool:
        column = e["kwargs"].get("column")
        return (e["type"] == "expect_column_values_to_not_be_null" and column in unreleased) or (
            e["type"] == "expect_column_values_to_be_unique" and column in repeating_keys
        )

    return {**suite, "expectations": [e for e in suite["expectations"] if not void(e)]}


def write_suites(
    expectations_dir: Path, spec: TableSpec, columns: list[Column], policies: dict[str, ColumnPolicy]
) -> list[Path]:
    """Write both suites anew from the schema and the spec (no row is read): a reviewed change, never a refresh's."""
    return [
        write_suite(suite_path(expectations_dir, spec, "source"), build_source_suite(spec, columns, policies)),
        write_suite(suite_path(expectations_dir, spec, "synthetic"), build_synthetic_suite(spec, columns, policies)),
    ]


def suite_differences(
    expectations_dir: Path, spec: TableSpec, columns: list[Column], policies: dict[str, ColumnPolicy]
) -> dict[Path, list[str] | None]:
    """Each stored suite's schema differences from the spec and the schema (None: no suite there yet)."""
    kept = {"source": columns, "synthetic": published_columns(columns, policies)}
    out: dict[Path, list[str] | None] = {}
    for kind, expected in kept.items():
        path = suite_path(expectations_dir, spec, kind)
        out[path] = schema_drift(json.loads(path.read_text()), expected) if path.is_file() else None
    return out
