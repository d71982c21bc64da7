"""Register or serve the deployments of ``deployments/prefect.yaml`` on Prefect (the orchestration layer: the core
``synthgate.deployments`` only renders the file).

``deploy`` creates or updates them on the Prefect server (workers of a work pool then run the flows); ``serve`` runs the
same deployments in this process with ``prefect.serve`` (one machine, no work pool). The two never share a deployment: a
deployment ``serve`` registered has no work pool and no pull steps, so a worker could not start its runs, and one
``deploy`` registered would be started by both. ``deploy`` replaces served deployments; ``serve`` refuses pooled ones
unless told to replace them.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from synthgate.deployments import (
    PREFECT_FILE,
    REFRESH_ALL_ENTRYPOINT,
    REFRESH_ENTRYPOINT,
    TABLES_DIR,
    prefect_config,
    project_root,
    pull_steps,
    render_prefect_yaml,
    require_project,
    run_directory,
)
from synthgate.errors import SpecError, SynthgateError
from synthgate.spec import redact_url

if TYPE_CHECKING:  # prefect is imported where it is used: the CLI starts without it
    from prefect import Flow


def check_prefect_yaml(root: Path | None = None) -> Path:
    """The prefect.yaml, or :class:`SpecError` when it is stale against the table specs."""
    root = require_project(root or project_root())
    path = root / PREFECT_FILE
    if not path.is_file() or path.read_text() != render_prefect_yaml(root):
        raise SpecError(f"{path} is out of date with {TABLES_DIR}/: run `synthgate deploy --write`")
    return path


def require_server(command: str) -> str:
    """The Prefect API URL in use, or :class:`SynthgateError` when none is configured: deployments registered with
    Prefect's temporary server would vanish when the command ends."""
    url = answering_server()
    if url is None:
        raise SynthgateError(
            f"no Prefect server configured (PREFECT_API_URL is unset): `synthgate {command}` would register with a "
            "temporary server that stops with the command. Start one with `prefect server start` and set "
            "PREFECT_API_URL=http://127.0.0.1:4200/api (or `prefect config set PREFECT_API_URL=...`)"
        )
    return url


def answering_server() -> str | None:
    """The Prefect server the environment (or the Prefect profile) names, once it answers its health check; None
    where none is named (a flow then starts Prefect's temporary server). One line naming it, password masked, when it
    does not answer: a flow would otherwise fail later as an unexpected error."""
    from prefect.settings import get_current_settings

    url = get_current_settings().api.url
    if not url:
        return None
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        problem = client.api_healthcheck()  # None when it answers
    if problem is not None:
        raise SynthgateError(
            f"the Prefect server at PREFECT_API_URL={redact_url(url)} does not answer ({type(problem).__name__}): "
            "start it (`prefect server start`), or point PREFECT_API_URL at one that runs"
        )
    return url


def ensure_work_pool(name: str, pool_type: str) -> tuple[str, bool]:
    """The work pool's type, and whether it was created now (with ``pool_type``'s default job template) because the
    server had none of that name."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectNotFound
    from prefect.utilities.asyncutils import run_coro_as_sync
    from prefect.workers.utilities import get_default_base_job_template_for_infrastructure_type

    with get_client(sync_client=True) as client:
        try:
            return client.read_work_pool(name).type, False
        except ObjectNotFound:
            template = run_coro_as_sync(get_default_base_job_template_for_infrastructure_type(pool_type))
            if not template:
                raise SpecError(f"unknown work pool type {pool_type!r} (process, kubernetes, docker, ...)") from None
            client.create_work_pool(WorkPoolCreate(name=name, type=pool_type, base_job_template=template))
            return pool_type, True


@dataclass
class Deployed:
    """What ``deploy`` registered, and where its runs start."""

    pool: str
    pool_type: str
    directory: str
    names: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)  # deployments `synthgate serve` had registered
    stale: list[str] = field(default_factory=list)  # Synthgate's deployments prefect.yaml no longer names: kept
    pruned: list[str] = field(default_factory=list)  # the same, deleted (``prune``)


def _existing(client: Any, name: str) -> Any | None:
    from prefect.exceptions import ObjectNotFound

    try:
        return client.read_deployment_by_name(name)
    except ObjectNotFound:
        return None


def deploy(
    pool: str,
    pool_type: str,
    job_variables: dict[str, Any],
    project_dir: str | None = None,
    root: Path | None = None,
    *,
    prune: bool = False,
) -> Deployed:
    """Create or update every deployment of prefect.yaml on the server in use, for work pool ``pool`` of type
    ``pool_type``.

    The same as ``SYNTHGATE_WORK_POOL=<pool> prefect deploy --all --prefect-file deployments/prefect.yaml`` from the
    project folder, done through the client: no prompts, the pool and job variables come from options, the file is
    checked against the specs first, and the runs' folder is decided here (:func:`run_directory`): for a process pool
    the project's absolute folder, so a plain ``prefect worker start --pool <pool>`` runs them. A deployment that
    ``synthgate serve`` registered under the same name is deleted first: its new id is one no serving process polls.
    Synthgate's deployments for ``pool`` that the file no longer names (a spec deleted or renamed) keep their
    schedules on the server, and a renamed spec's old one refreshes the same table beside the new one: they are
    listed (:attr:`Deployed.stale`), and deleted with ``prune``.
    """
    import yaml
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import DeploymentScheduleCreate
    from prefect.client.schemas.schedules import CronSchedule
    from prefect.flows import load_flow_from_entrypoint
    from prefect.utilities.callables import parameter_schema

    root = root or project_root()
    config = yaml.safe_load(check_prefect_yaml(root).read_text())
    directory = run_directory(pool_type, project_dir, root)
    # --project-dir names the folder as the workers' machine has it: checked here only where it exists here too
    here = Path(directory)
    if pool_type == "process" and here.is_dir() and not (here / TABLES_DIR).is_dir():
        raise SpecError(
            f"{directory} holds no {TABLES_DIR}/: a process worker could not find the table specs there. Give "
            "--project-dir the folder of the Synthgate project (the one with deployments/ and expectations/)"
        )
    result = Deployed(pool, pool_type, directory)
    with get_client(sync_client=True) as client:
        for d in config["deployments"]:
            flow: Flow[..., Any] = load_flow_from_entrypoint(d["entrypoint"])
            name = f"{flow.name}/{d['name']}"
            existing = _existing(client, name)
            if existing is not None and existing.work_pool_name is None:
                client.delete_deployment(existing.id)
                result.replaced.append(name)
            schedules = [
                DeploymentScheduleCreate(
                    schedule=CronSchedule(cron=s["cron"], timezone=s["timezone"]),
                    active=s["active"],
                    parameters=s["parameters"],
                )
                for s in d["schedules"]
            ]
            client.create_deployment(
                flow_id=client.create_flow_from_name(flow.name),
                name=d["name"],
                description=d["description"],
                entrypoint=d["entrypoint"],
                tags=d["tags"],
                parameters=d["parameters"],
                parameter_openapi_schema=parameter_schema(flow).model_dump_for_openapi(),
                enforce_parameter_schema=d["enforce_parameter_schema"],
                concurrency_limit=d["concurrency_limit"],
                work_pool_name=pool,  # the file's {{ $SYNTHGATE_WORK_POOL }}
                work_queue_name=d["work_pool"]["work_queue_name"],
                job_variables={**d["work_pool"]["job_variables"], **job_variables},
                pull_steps=pull_steps(directory),  # the file's {{ $SYNTHGATE_PROJECT_DIR }}
                schedules=schedules,
            )
            result.names.append(name)
        for name, deployment_id in _not_in(client, result.names, pool):
            if prune:
                client.delete_deployment(deployment_id)
                result.pruned.append(name)
            else:
                result.stale.append(name)
    return result


def _not_in(client: Any, names: list[str], pool: str) -> list[tuple[str, Any]]:
    """(Name, id) of every deployment tagged ``synthgate`` for work pool ``pool`` whose name is not in ``names``: the
    pool's own, not another project's on a shared server."""
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterTags,
        WorkPoolFilter,
        WorkPoolFilterName,
    )

    tagged: list[Any] = []
    page = 200
    while True:  # every page: the server answers 200 at most
        found = client.read_deployments(
            deployment_filter=DeploymentFilter(tags=DeploymentFilterTags(all_=["synthgate"])),
            work_pool_filter=WorkPoolFilter(name=WorkPoolFilterName(any_=[pool])),
            limit=page,
            offset=len(tagged),
        )
        tagged += found
        if len(found) < page:
            break
    flows: dict[Any, str] = {}
    stale = []
    for d in tagged:
        if d.flow_id not in flows:
            flows[d.flow_id] = client.read_flow(d.flow_id).name
        name = f"{flows[d.flow_id]}/{d.name}"
        if name not in names:
            stale.append((name, d.id))
    return sorted(stale)


def worker_command(pool: str, pool_type: str) -> str:
    """The command that starts a worker for ``pool``: this environment's ``prefect``, and the server URL when it
    comes from the environment (a Prefect profile is read by the worker on its own)."""
    here = Path(sys.executable).parent / "prefect"
    on_path = shutil.which("prefect")
    prefect = "prefect" if here.is_file() and on_path and Path(on_path).resolve() == here.resolve() else str(here)
    url = os.environ.get("PREFECT_API_URL")
    # a URL with credentials is never printed: the shell that runs the command has it in its environment
    shown = '"$PREFECT_API_URL"' if url and redact_url(url) != url else url
    prefix = f"PREFECT_API_URL={shown} " if url else ""
    kind = "" if pool_type == "process" else f" --type {pool_type}"
    return f"{prefix}{prefect} worker start --pool {pool}{kind}"


def runner_deployments(root: Path | None = None) -> list[Any]:
    """The deployments of prefect.yaml as in-process runner deployments (same names, parameters, schedules)."""
    from prefect.schedules import Cron

    from synthgate.flows.refresh import refresh_table
    from synthgate.flows.refresh_all import refresh_all

    root = root or project_root()
    flows: dict[str, Flow[..., Any]] = {
        REFRESH_ENTRYPOINT: refresh_table,
        REFRESH_ALL_ENTRYPOINT: refresh_all,
    }
    result = []
    for d in prefect_config(root)["deployments"]:
        schedules = [
            Cron(s["cron"], timezone=s["timezone"], active=s["active"], parameters=s["parameters"])
            for s in d["schedules"]
        ]
        result.append(
            flows[d["entrypoint"]].to_deployment(
                name=d["name"],
                description=d["description"],
                tags=d["tags"],
                parameters=d["parameters"],
                schedules=schedules,
                concurrency_limit=d["concurrency_limit"],
                enforce_parameter_schema=d["enforce_parameter_schema"],
            )
        )
    return result


def prepare_serve(replace: bool, root: Path | None = None) -> tuple[list[Any], dict[str, str]]:
    """The runner deployments to serve, after deleting (``replace``) or refusing the deployments of the same names
    that a work pool's workers run: served under the same name, they would keep their work pool and lose their pull
    steps, and every run would crash ("Downloading flow code from storage at None"). Returns the deployments and the
    replaced names with their work pool."""
    from prefect.client.orchestration import get_client

    root = root or project_root()
    os.chdir(root)  # runs start here: spec paths are relative to it
    deployments = runner_deployments(root)
    with get_client(sync_client=True) as client:
        pooled = {}
        for d in deployments:
            existing = _existing(client, f"{d.flow_name}/{d.name}")
            if existing is not None and existing.work_pool_name is not None:
                pooled[f"{d.flow_name}/{d.name}"] = existing
        if pooled and not replace:
            pools = sorted({e.work_pool_name for e in pooled.values()})
            raise SynthgateError(
                f"{', '.join(pooled)} {'is' if len(pooled) == 1 else 'are'} deployed to work pool "
                f"{', '.join(repr(p) for p in pools)} (`synthgate deploy`): their runs belong to that pool's workers, "
                "and serving the same names here would break them. Run `synthgate serve --replace` to replace them "
                "with deployments served by this process, or keep them and start a worker: "
                f"prefect worker start --pool {pools[0]}"
            )
        for existing in pooled.values():
            client.delete_deployment(existing.id)
    return deployments, {name: e.work_pool_name for name, e in pooled.items()}


def serve(deployments: list[Any], limit: int | None) -> None:
    """Serve ``deployments`` (from :func:`prepare_serve`) in this process until interrupted."""
    from prefect import serve as prefect_serve

    prefect_serve(*deployments, limit=limit)
