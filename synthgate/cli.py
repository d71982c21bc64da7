"""``synthgate``: the command line for every job a user runs by hand."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from typer.core import TyperGroup
from typer.exceptions import TyperException

from synthgate.deployments import TABLES_DIR
from synthgate.errors import SpecError, SynthgateError, UnexpectedError, UsageError, one_line

if TYPE_CHECKING:
    # TyperGroup's methods take the Context of the click that typer vendors; typer.Context is a subclass of it.
    from typer._click import Context as ClickContext

    from synthgate.spec import TableSpec


class _CleanErrors(TyperGroup):
    """Every error a command lets through ends as one line on stderr (and one JSON object on stdout with --json),
    exit code 2, never a traceback: ``synthgate --debug COMMAND`` shows the traceback instead. Usage errors (an
    unknown option, a value of the wrong type, a missing argument) too: one line naming the option, not click's
    usage box."""

    def parse_args(self, ctx: ClickContext, args: list[str]) -> list[str]:
        ctx.meta["synthgate.json"] = "--json" in args
        try:
            return super().parse_args(ctx, args)
        except TyperException as exc:  # the group's own options (`synthgate --bogus ...`): one line as well
            if _DEBUG or type(exc).__name__ in ("Exit", "Abort", "NoArgsIsHelpError"):  # bare `synthgate`: the help
                raise
            self._usage_error(exc, ctx)
            raise  # pragma: no cover - _usage_error always ends the command

    @staticmethod
    def _usage_error(exc: TyperException, ctx: ClickContext) -> None:
        """End the command on a usage error: its one line, naming the command's help."""
        context = getattr(exc, "ctx", None) or ctx
        command = getattr(context, "command_path", None) or "synthgate"
        message = " ".join(exc.format_message().split())
        _fail(UsageError(f"{message} (see `{command} --help`)"), bool(ctx.meta.get("synthgate.json")))

    def invoke(self, ctx: ClickContext) -> Any:
        try:
            return super().invoke(ctx)
        except TyperException as exc:  # a usage error of a subcommand (Exit and Abort are not TyperExceptions)
            if _DEBUG:
                raise
            self._usage_error(exc, ctx)
        except SynthgateError as exc:  # what a command lets through: its one line (with --debug, its traceback too)
            _fail(exc, bool(ctx.meta.get("synthgate.json")))
        except Exception as exc:
            if _DEBUG or type(exc).__module__.split(".")[0] in ("typer", "click"):  # Exit, Abort
                raise
            as_json = bool(ctx.meta.get("synthgate.json"))
            # An unexpected error: its type only, since a library's message may quote a value from a row.
            _fail(
                SynthgateError(f"unexpected {type(exc).__name__}; run `synthgate --debug ...` for the traceback"),
                as_json,
            )


#: The arguments and options several commands share.
_SPEC_OR_TABLE = typer.Argument(..., help="Table spec YAML, or a table's name (looked up in --specs-dir).")
_SPECS_DIR = typer.Option(TABLES_DIR, help="Where table specs are, for a table name.")
_JSON = typer.Option(False, "--json", help="Print JSON.")

#: Set by the global --debug option: errors then show their traceback.
_DEBUG = False

app = typer.Typer(
    cls=_CleanErrors,
    help="Governed, differentially private synthetic copies of warehouse tables.\n\n"
    "A table spec (YAML, see deployments/tables/) says where a table comes from, where its synthetic copy "
    "goes, and under what privacy budget. `synthgate refresh SPEC` runs the whole pipeline once.",
    no_args_is_help=True,
    add_completion=False,
)


def _quiet_libraries() -> None:
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("TQDM_DISABLE", "1")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)  # "Creating initial MLflow database tables"


@app.callback()
def _options(
    ctx: typer.Context,
    debug: bool = typer.Option(False, "--debug", help="Show the traceback of an error (default: one line)."),
) -> None:
    """Governed, differentially private synthetic copies of warehouse tables."""
    global _DEBUG
    _DEBUG = debug


class _WithoutTraceback(logging.Formatter):
    """A console handler's formatter, minus tracebacks: a failed flow's error reaches the terminal as the command's
    one ``error:`` line, and Prefect's engine would print its traceback above it (``--debug`` keeps them). The record
    is left as it was for every other handler (Prefect's API logs keep their tracebacks)."""

    def __init__(self, inner: logging.Formatter | None) -> None:
        super().__init__()
        self.inner = inner or logging.Formatter()

    def format(self, record: logging.LogRecord) -> str:
        kept = record.exc_info, record.exc_text, record.stack_info
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        try:
            return self.inner.format(record)
        finally:
            record.exc_info, record.exc_text, record.stack_info = kept


class _StagesOnly(logging.Filter):
    """A console handler's filter: the lines of a run a person reads are its stages and outcome. A task's "Finished
    in state Completed()" (one per task, the stage's own line says what it did) and the docs link under Prefect's
    "Starting temporary server" are left to Prefect's logs."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.msg)
        if record.name == "prefect.task_runs" and message.startswith("Finished in state Completed"):
            return False
        if record.name == "prefect" and message.startswith("Starting temporary server") and "\n" in message:
            record.msg, record.args = message.splitlines()[0], None
        return True


def _console_without_tracebacks() -> None:
    """The console handlers (Prefect's, on the root logger) print stages, not per-task completions, and, unless
    ``--debug``, no traceback. Call it after Prefect configured its logging (importing a flow does)."""
    for handler in logging.getLogger().handlers:
        if not isinstance(handler, logging.StreamHandler):
            continue
        if not any(isinstance(f, _StagesOnly) for f in handler.filters):
            handler.addFilter(_StagesOnly())
        if not _DEBUG and not isinstance(handler.formatter, _WithoutTraceback):
            handler.setFormatter(_WithoutTraceback(handler.formatter))


def _fail(exc: Exception, as_json: bool) -> None:
    """End the command: one line on stderr (one JSON object on stdout with --json), exit code 2."""
    message = one_line(exc)
    if _DEBUG:
        import traceback

        traceback.print_exception(exc, file=sys.stderr)
        if isinstance(exc, UnexpectedError) and exc.original is not None:  # the bug it stands for
            traceback.print_exception(exc.original, file=sys.stderr)
    if as_json:
        typer.echo(json.dumps({"status": "failed", "error_type": type(exc).__name__, "error": message}))
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2)


@app.command()
def refresh(
    spec: Path = typer.Argument(..., help="Table spec YAML, e.g. deployments/tables/adult.yaml.", exists=False),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON summary object at the end."),
    trigger: str = typer.Option("cli", help="What started this run (recorded in the catalog and ledger)."),
    epsilon: float = typer.Option(None, help="Override the spec's privacy.epsilon for this run."),
    rows: int = typer.Option(None, help="Override how many synthetic rows to generate."),
    retrain: bool = typer.Option(
        False,
        "--retrain",
        help="Train anew even when the source is unchanged (default: re-sample the published model for free).",
    ),
) -> None:
    """Run the refresh flow for one table: extract, validate, train under DP (or re-sample), check, log, publish."""
    _quiet_libraries()
    from pydantic import TypeAdapter, ValidationError

    from synthgate.flows.parameters import RefreshParameters, Trigger, apply_overrides
    from synthgate.settings import get_settings
    from synthgate.spec import load_spec

    try:
        request = RefreshParameters(spec_path=str(spec), epsilon=epsilon, rows=rows, retrain=retrain)
        TypeAdapter(Trigger).validate_python(trigger)
    except ValidationError as exc:
        _fail(
            UsageError("; ".join(f"--{e['loc'][0] if e['loc'] else 'trigger'}: {e['msg']}" for e in exc.errors())),
            as_json,
        )
        return
    # Settings, spec, overrides and the preflight (warehouses, target schema and privileges, budget cap, source
    # metadata) are checked here, in seconds: the flow call below starts Prefect (a temporary server when none is
    # configured), which takes tens of seconds before the flow would find the same error. The flow checks again.
    settings = get_settings()
    table_spec = apply_overrides(load_spec(request.spec_path), request)
    _preflight(table_spec, settings.budget_cap(table_spec.privacy.cap))
    from synthgate.flows.deploy import answering_server
    from synthgate.flows.refresh import refresh_table

    answering_server()
    _console_without_tracebacks()
    result = refresh_table(request, trigger=trigger)
    _print_result(result, as_json)


def _preflight(table_spec: TableSpec, cap: float) -> None:
    """The flow's preflight, before Prefect starts. A transient warehouse error (a refused or dropped connection) is
    left to the flow, whose preflight task retries it."""
    from synthgate import preflight
    from synthgate.errors import WarehouseError

    try:
        if preflight.run(table_spec, cap):
            typer.echo(f"created schema {table_spec.target.db_schema} for the target (target.create_schema)", err=True)
    except WarehouseError as exc:
        if not exc.transient:
            raise


def _print_result(result: dict, as_json: bool) -> None:
    from synthgate import tracking

    if as_json:
        typer.echo(json.dumps(result, default=str))
        return
    typer.echo(f"published {result['published_table']} ({result['rows_published']} rows)")
    if result.get("resampled_from"):
        typer.echo(f"  source unchanged: re-sampled the model of run {result['resampled_from']}, no epsilon spent")
    typer.echo(
        f"  epsilon spent   {result['epsilon_spent']} (published rows: epsilon {result['epsilon_guarantee']}, "
        f"delta {result['delta']:g})"
    )
    typer.echo(
        f"  quality         {result['quality_score']}   TSTR AUC {result['tstr_auc']}   DCR share {result['dcr_share']}"
    )
    for child in result.get("children", []):  # published with it, as the same version
        typer.echo(
            f"  with {child['published_table']} ({child['rows_published']} rows): quality {child['quality_score']}   "
            f"TSTR AUC {child['tstr_auc']}   DCR share {child['dcr_share']}"
        )
        relations = child.get("relations", {})
        typer.echo(
            f"    relations     children per parent TVD {relations.get('relations.children_tvd')} (holdout "
            f"{relations.get('relations.children_tvd_holdout')}), child rows naming no parent "
            f"{relations.get('relations.dangling_share')}"
        )
    typer.echo(f"  MLflow run      {tracking.run_url(result['mlflow_tracking_uri'], result['mlflow_run_id'])}")
    typer.echo(f"  report          {result['report']}")


@app.command()
def profile(
    spec: Path = typer.Argument(..., help="Table spec YAML."),
    write: bool = typer.Option(
        False, "--write", help="Record the proposals in the spec file (policy and fake kind of each undeclared column)."
    ),
) -> None:
    """Propose column policies from SDV's detection on a sample of real rows; --write records them in the spec.

    A spec with child tables is profiled table by table, the parent first; each child's proposals go to its own
    ``columns:``. Profiling reads real values outside the privacy budget, so it is a decision a person takes once:
    refreshes never profile. They use the spec's policies and, for a column with none, decide from its name and SQL
    type alone.
    """
    _quiet_libraries()
    from synthgate.profiling import propose, repeating_person_keys, write_policies
    from synthgate.spec import load_spec
    from synthgate.warehouse.extract import extract_table

    table_spec = load_spec(spec)
    tables = [(None, table_spec), *((i, table_spec.child_spec(c)) for i, c in enumerate(table_spec.children))]
    proposals = []  # every table is profiled before anything is written: a failure leaves the spec as it was
    for child, one in tables:
        extract = extract_table(one.source, one.chunk_size, policies=one.columns)
        profiles = propose(one, extract.frame, extract.columns)
        typer.echo(
            f"SDV detection on a sample of the real rows of {one.source.table} (read outside the privacy budget, at "
            "your request)",
            err=True,
        )
        if child is not None:
            typer.echo(f"\nchild table {one.source.table} (children[{child}]):")
        typer.echo(f"{'column':30s} {'kind':12s} {'sdtype':14s} proposed policy: reason")
        for p in profiles:
            fake = f" ({p.proposed.fake})" if p.proposed.fake else ""
            typer.echo(f"{p.name:30s} {p.kind.value:12s} {p.sdtype:14s} {p.proposed.policy}{fake}: {p.reason}")
        for key in repeating_person_keys(one, extract.frame, profiles):
            typer.echo(
                f"warning: {key} looks like the key of a person who owns several rows (its values repeat). Without "
                "privacy.unit epsilon protects one row, not a person: if one person owns several rows, set "
                f"privacy: {{unit: {key}}} in the spec",
                err=True,
            )
        if all(p.declared for p in profiles):
            typer.echo(f"every column of {one.source.table} already has a policy in {spec}: nothing to record")
        else:
            proposals.append((child, profiles))
    if not proposals:
        return
    if not write:
        undeclared = sum(not p.declared for _, profiles in proposals for p in profiles)
        typer.echo(
            f"\n{undeclared} proposals, not recorded: run `synthgate profile {spec} --write` to record them in the "
            "spec (or edit its columns: sections by hand)"
        )
        return
    before = spec.read_text()
    try:
        for child, profiles in proposals:
            written = write_policies(spec, profiles, child=child)
            typer.echo(f"\nrecorded in {spec} ({'columns:' if child is None else f'children[{child}].columns:'}):")
            for name, policy in written.items():
                fake = f", fake: {policy.fake}" if policy.fake else ""
                typer.echo(f"  {name}: {{policy: {policy.policy}{fake}}}")
    except BaseException:
        spec.write_text(before)  # all the tables' proposals or none
        raise
    typer.echo(
        "These policies are now a recorded human decision: review the change and commit it. Refreshes use them and "
        "never read the data to decide policies; only policy and fake kind were written, nothing SDV saw in the data."
    )


@app.command()
def suites(
    spec: Path = typer.Argument(..., help="Table spec YAML."),
    write: bool = typer.Option(False, "--write", help="Write both suites anew from the spec and the source's schema."),
) -> None:
    """Show whether a table's GX suites (expectations/) still match its spec and source schema; --write writes them.

    Suites are reviewed files: a refresh creates a missing one and never rewrites one, so a change to them is a
    decision a person takes and commits. Only the source's metadata is read, never a row.
    """
    from synthgate.profiling import effective_policies, policies_from_schema
    from synthgate.settings import get_settings
    from synthgate.spec import load_spec
    from synthgate.validation import suite_differences, write_suites
    from synthgate.warehouse.extract import table_columns

    table_spec = load_spec(spec)
    columns = table_columns(table_spec.source, table_spec.columns)
    policies = effective_policies(policies_from_schema(table_spec, columns))
    expectations_dir = get_settings().expectations_dir
    if write:
        for path in write_suites(expectations_dir, table_spec, columns, policies):
            typer.echo(f"wrote {path}: review the change and commit it")
        return
    for path, drift in suite_differences(expectations_dir, table_spec, columns, policies).items():
        state = "missing (the next refresh creates it)" if drift is None else "; ".join(drift) or "matches the schema"
        typer.echo(f"{path}: {state}")


@app.command()
def check_spec(spec: Path = typer.Argument(..., help="Table spec YAML.")) -> None:
    """Validate a table spec (keys, types, budgets) without touching any warehouse."""
    from synthgate.spec import load_spec

    table_spec = load_spec(spec)
    typer.echo(f"{spec}: valid spec for table {table_spec.name!r}")


@app.command()
def budget(
    spec: Path = typer.Argument(..., help="Table spec YAML (names the table and its target warehouse)."),
    as_json: bool = _JSON,
) -> None:
    """Show a table's privacy budget: spent, remaining under its cap, and every refresh in the ledger."""
    from synthgate.settings import get_settings
    from synthgate.spec import load_spec
    from synthgate.warehouse.engine import governed_engine
    from synthgate.warehouse.governance import budget_summary

    table_spec = load_spec(spec)
    cap = get_settings().budget_cap(table_spec.privacy.cap)
    engine = governed_engine(table_spec.target, read_only=True)
    summary = budget_summary(engine, table_spec.name, cap, source=table_spec.source)
    if as_json:
        typer.echo(json.dumps(summary, default=str))
        return
    remaining = "no cap" if cap is None else f"{summary['remaining']:.4g} of cap {cap:g}"
    typer.echo(
        f"{table_spec.name}: epsilon spent {summary['epsilon_spent']:.4g} over {summary['refreshes']} refreshes; "
        f"remaining {remaining}"
    )
    for row in summary["history"]:
        typer.echo(
            f"  {row['started_at'][:19]}  {row['status']:9s} epsilon {row['epsilon_spent']:.4g}  "
            f"delta {row['delta']:.2g}  run {row['mlflow_run_id']}  ({row['trigger']})"
        )


@app.command()
def rollback(
    spec_or_table: str = _SPEC_OR_TABLE,
    reason: str = typer.Option(None, "--reason", help="Why (required; recorded with the rollback and on the model)."),
    to: int = typer.Option(None, "--to", help="Version to point the name at (default: the one before the current)."),
    specs_dir: Path = _SPECS_DIR,
    as_json: bool = _JSON,
) -> None:
    """Point a published table's name back at an earlier kept version, move the model's production alias with it,
    and record the rollback and its reason."""
    _quiet_libraries()
    from synthgate.audit import resolve_spec
    from synthgate.rollback import check_reason, rollback_table
    from synthgate.settings import get_settings

    check_reason(reason)
    moved = rollback_table(resolve_spec(spec_or_table, specs_dir), get_settings(), to, reason, trigger="cli")
    if as_json:
        typer.echo(json.dumps(moved))
        return
    model = moved["model"]
    alias = (
        f"alias production of {model['name']} now on version {model['production']}"
        if model["production"]
        else f"version {moved['version']} has no registered model: {model['name']} has no production alias now"
    )
    typer.echo(f"{moved['table']} now points at version {moved['version']} (was {moved['previous_version']}); {alias}")


def _print_moved(moved: object, status: str, as_json: bool, text: str) -> None:
    """Where a rollback or migration left the name: one JSON object, or one line."""
    if as_json:
        fields = ("name", "version", "previous_version", "version_table")
        typer.echo(
            json.dumps({"status": status} | {("table" if f == "name" else f): getattr(moved, f) for f in fields})
        )
    else:
        typer.echo(text)


@app.command()
def migrate(
    spec_or_table: str = _SPEC_OR_TABLE,
    specs_dir: Path = _SPECS_DIR,
    as_json: bool = _JSON,
) -> None:
    """Make the existing TABLE at a spec's target name a version behind the view (a table an older release published).

    Publishing never does this on its own: it refuses a target name taken by anything Synthgate did not create.
    From then on the table is Synthgate's: a later refresh publishes the next version, and keep_versions may drop it.
    """
    from synthgate.audit import resolve_spec
    from synthgate.warehouse.publish import migrate as do_migrate

    table_spec = resolve_spec(spec_or_table, specs_dir)
    moved = do_migrate(table_spec.target, trigger="cli")
    _print_moved(
        moved,
        "migrated",
        as_json,
        f"the table {moved.name} is now version {moved.version} ({moved.version_table}); its name is a view on it",
    )


@app.command()
def audit(
    spec_or_table: str = _SPEC_OR_TABLE,
    specs_dir: Path = _SPECS_DIR,
    as_json: bool = _JSON,
) -> None:
    """Versions, sources, budgets, gates, models and triggers of a table, from the catalog, ledger and MLflow."""
    _quiet_libraries()
    from synthgate.audit import audit as build_audit
    from synthgate.audit import resolve_spec
    from synthgate.settings import get_settings

    record = build_audit(resolve_spec(spec_or_table, specs_dir), get_settings())
    if as_json:
        typer.echo(json.dumps(record, default=str, indent=2))
        return
    budget = record["budget"]
    cap = "no cap" if budget["cap"] is None else f"{budget['remaining']:.4g} left of cap {budget['cap']:g}"
    typer.echo(
        f"{record['published_name']}: version {record['current_version']} published; kept {record['kept_versions']}"
    )
    typer.echo(f"  budget: epsilon {budget['epsilon_spent']:.4g} spent over {budget['refreshes']} refreshes; {cap}")
    if record["chain"]:
        typer.echo(
            f"  audit chain of version {record['current_version']} (the same steps as its MLflow run's description):"
        )
        for step in record["chain"]:
            typer.echo(f"    {step['step']:16s} {step['text']}")
    typer.echo("  versions:")
    for v in record["versions"]:
        mark = "*" if v["current"] else " "
        gates = ", ".join(f"{k} {'pass' if ok else 'FAIL'}" for k, ok in v["gates"].items())
        typer.echo(
            f" {mark}v{v['version']}  {v['created_at'][:19]}  {v['rows']} rows  epsilon {v['budget']['epsilon']:.4g}  "
            f"source {v['source']['table']}@{v['source']['fingerprint'][:12]}  model {v['model']['name']} "
            f"v{v['model']['version']}  run {v['mlflow_run_id']}  ({v['trigger']})  {gates}"
        )
    for e in record["events"]:
        if e["action"] in ("rollback", "migrate"):
            why = f": {e['detail']}" if e["action"] == "rollback" and e.get("detail") else ""
            typer.echo(
                f"  {str(e['at'])[:19]}  {e['action']} to v{e['version']} (from v{e['previous_version']}) "
                f"({e['trigger']}){why}"
            )
    for r in record["refreshes"]:
        if r["unfinished"]:
            typer.echo(
                f"  run {r['run_id']} never finished ({r['status']}): its epsilon {r['epsilon_spent']:.4g} counts"
            )


@app.command()
def report(
    run_id: str = typer.Argument(..., help="MLflow run id of an earlier refresh."),
    out: Path = typer.Option(None, help="Where to write the HTML (default: the reports folder under SYNTHGATE_HOME)."),
) -> None:
    """Fetch the HTML report of an earlier run from MLflow and write it to a file."""
    _quiet_libraries()
    from synthgate import tracking
    from synthgate.settings import get_settings

    settings = get_settings()
    path = tracking.download_report(settings.tracking_uri(), run_id, out or settings.reports_dir / f"{run_id}.html")
    typer.echo(str(path))


@app.command()
def demo(
    home: Path = typer.Option(
        None,
        help="Working folder for the embedded warehouse, MLflow store and reports (default: SYNTHGATE_HOME, else "
        ".synthgate).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the JSON summary."),
    load_only: bool = typer.Option(
        False, "--load-only", help="Load the warehouse only: for a stack whose scheduled adult deployment reads it."
    ),
) -> None:
    """Load UCI Adult into an embedded SQLite warehouse and refresh its synthetic copy end to end."""
    _quiet_libraries()
    from synthgate.demo import DEMO_EXPECTATIONS, DEMO_SPEC, load_demo_warehouse
    from synthgate.settings import get_settings

    home = home or get_settings().home

    os.environ["SYNTHGATE_HOME"] = str(home.resolve())
    os.environ["SYNTHGATE_EXPECTATIONS_DIR"] = str(DEMO_EXPECTATIONS)  # the spec's reviewed suites, from any folder

    url = load_demo_warehouse(home)
    typer.echo(f"loaded UCI Adult into {url} (tables adult, adult_test)", err=True)
    if load_only:
        return
    from synthgate.flows.deploy import answering_server
    from synthgate.flows.refresh import refresh_table

    answering_server()
    _console_without_tracebacks()
    # The flow takes a plain spec path too (RefreshParameters' before-validator), and Prefect records the call's
    # arguments as the run's parameters: the demo run keeps the path. The flow's annotation names the model only.
    result = refresh_table(str(DEMO_SPEC), trigger="demo")  # type: ignore[call-overload]
    _print_result(result, as_json)
    if not as_json:
        typer.echo(f"  synthetic table {result['published_table']} in sqlite:///{(home / 'warehouse.db').resolve()}")


@app.command("refresh-all")
def refresh_all_command(
    specs_dir: Path = typer.Argument(TABLES_DIR, help="Folder of table specs."),
    as_json: bool = typer.Option(False, "--json", help="Print the outcomes as JSON."),
) -> None:
    # The docstring is this command's line in `synthgate --help`, which keeps its line breaks: it stays one line.
    """Refresh every spec in a folder in parallel (Dask when SYNTHGATE_DASK_ADDRESS or SYNTHGATE_DASK_WORKERS is set)."""  # noqa: E501
    _quiet_libraries()
    from synthgate.flows.parameters import RefreshAllParameters

    request = RefreshAllParameters(specs_dir=str(specs_dir))
    if not any(p.is_file() for p in specs_dir.glob(request.pattern)):  # before the flow's imports and Prefect
        raise SpecError(f"no table specs match {request.pattern!r} in {specs_dir}")
    from synthgate.flows.deploy import answering_server
    from synthgate.flows.refresh_all import refresh_all

    answering_server()
    _console_without_tracebacks()
    outcomes = refresh_all(request, trigger="cli")
    if as_json:
        typer.echo(json.dumps(outcomes, default=str))
    for o in outcomes if not as_json else []:
        typer.echo(f"{o['table']:24s} {o['status']:9s} " + (o.get("published_table") or o.get("error", "")))
    if any(o["status"] != "published" for o in outcomes):
        raise typer.Exit(code=1)


@app.command()
def deploy(
    pool: str = typer.Option(
        None, help="Work pool the deployments run on (default: SYNTHGATE_WORK_POOL, else synthgate)."
    ),
    pool_type: str = typer.Option(
        "process", help="Type of the work pool to create when the server has none by that name."
    ),
    image: str = typer.Option(
        None, help="Flow image for container work pools (kubernetes, docker): sets job variable image."
    ),
    env: list[str] = typer.Option(
        [], "--env", help="KEY=VALUE for the flow runs' environment (job variable env); repeatable."
    ),
    project_dir: str = typer.Option(
        None,
        help="Folder the flow runs start in, as the workers see it (default: this project's folder for a process "
        "pool; $SYNTHGATE_PROJECT_DIR on the worker for container pools, which the flow image sets).",
    ),
    write: bool = typer.Option(
        False, "--write", help="Regenerate deployments/prefect.yaml from the table specs first."
    ),
    prune: bool = typer.Option(
        False, "--prune", help="Delete Synthgate's deployments that no spec names any more (deleted or renamed specs)."
    ),
) -> None:
    """Register the deployments of deployments/prefect.yaml with the Prefect server in use (PREFECT_API_URL)."""
    _quiet_libraries()
    from synthgate.deployments import cap_warnings, project_root, write_prefect_yaml
    from synthgate.flows import deploy as deploying
    from synthgate.settings import get_settings

    pairs = [item.partition("=") for item in env]
    if any(not key or not sep for key, sep, _ in pairs):
        _fail(UsageError("--env takes KEY=VALUE"), False)
    job_variables: dict[str, object] = {"image": image} if image else {}
    if pairs:
        job_variables["env"] = {key: value for key, _, value in pairs}
    pool_name = pool or get_settings().work_pool
    root = project_root()
    if write:
        typer.echo(f"wrote {write_prefect_yaml(root)}", err=True)
    deploying.check_prefect_yaml(root)
    deploying.require_server("deploy")
    actual_type, created = deploying.ensure_work_pool(pool_name, pool_type)
    if created:
        typer.echo(f"created work pool {pool_name!r} ({actual_type})", err=True)
    deployed = deploying.deploy(pool_name, actual_type, job_variables, project_dir, root, prune=prune)
    for name in deployed.replaced:
        typer.echo(f"replaced {name}, which `synthgate serve` had registered: stop that process", err=True)
    for name in deployed.pruned:
        typer.echo(f"deleted {name}: no spec names it any more", err=True)
    for name in deployed.stale:
        typer.secho(
            f"warning: {name} is Synthgate's but no spec names it any more, and it keeps its schedule: "
            "`synthgate deploy --prune` deletes it",
            fg=typer.colors.YELLOW,
            err=True,
        )
    for name in deployed.names:
        typer.echo(f"deployed {name} (work pool {pool_name})")
    for warning in cap_warnings(get_settings().default_budget_cap, root):
        typer.secho(f"warning: {warning}", fg=typer.colors.YELLOW, err=True)
    where = "runs start in" if actual_type == "process" else "runs start in (resolved on the worker)"
    typer.echo(f"{where} {deployed.directory}")
    typer.echo(f"next: start a worker for work pool {pool_name!r}:")
    command = deploying.worker_command(pool_name, actual_type)
    typer.echo(f"  {command}")
    if '"$PREFECT_API_URL"' in command:
        typer.echo("  (PREFECT_API_URL holds a password, not printed: set it where the worker runs)", err=True)


@app.command()
def serve(
    limit: int = typer.Option(None, min=1, help="Most flow runs at once (default: no limit)."),
    replace: bool = typer.Option(
        False,
        "--replace",
        help="Replace deployments of the same names that `synthgate deploy` registered for a work pool.",
    ),
) -> None:
    """Serve every deployment from this one long-lived process (flow.serve): schedules and UI runs, no work pool."""
    _quiet_libraries()
    from synthgate.flows import deploy as deploying

    deploying.require_server("serve")
    deployments, replaced = deploying.prepare_serve(replace)
    for name, pool in replaced.items():
        typer.echo(
            f"replaced {name} (was deployed to work pool {pool!r}; its workers no longer get its runs)", err=True
        )
    deploying.serve(deployments, limit)


def main() -> None:
    """Entry point of the ``synthgate`` command: run the app; Ctrl-C exits with status 130, without a traceback."""
    try:
        app()
    except KeyboardInterrupt:  # pragma: no cover
        sys.exit(130)


if __name__ == "__main__":
    main()
