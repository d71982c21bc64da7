"""Register or serve the deployments of ``deployments/prefect.yaml``.

``deploy`` creates or updates them on the Prefect server (workers of a work pool then run the flows); ``serve`` runs the same
deployments in this process with ``prefect.serve`` (one machine, no work pool).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from synthgate.deployments import PREFECT_FILE, PROJECT_ROOT, prefect_config, render_prefect_yaml
from synthgate.errors import SpecError


def check_prefect_yaml(root: Path = PROJECT_ROOT) -> Path:
    """The prefect.yaml, or :class:`SpecError` when it is stale against the table specs."""
    path = root / PREFECT_FILE
    if not path.is_file() or path.read_text() != render_prefect_yaml(root):
        raise SpecError(f"{path} is out of date with deployments/tables/: run `synthgate deploy --write`")
    return path


def ensure_work_pool(name: str, pool_type: str) -> bool:
    """Create the work pool (with its type's default job template) when the server has none of that name.

    Returns True when it was created.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectNotFound
    from prefect.utilities.asyncutils import run_coro_as_sync
    from prefect.workers.utilities import get_default_base_job_template_for_infrastructure_type

    with get_client(sync_client=True) as client:
        try:
            client.read_work_pool(name)
            return False
        except ObjectNotFound:
            template = run_coro_as_sync(get_default_base_job_template_for_infrastructure_type(pool_type))
            if not template:
                raise SpecError(f"unknown work pool type {pool_type!r} (process, kubernetes, docker, ...)") from None
            client.create_work_pool(WorkPoolCreate(name=name, type=pool_type, base_job_template=template))
            return True


def deploy(pool: str, job_variables: dict[str, Any], root: Path = PROJECT_ROOT) -> list[str]:
    """Create or update every deployment of prefect.yaml on the server in use; returns ``flow/deployment`` names.

    The same as ``SYNTHGATE_WORK_POOL=<pool> prefect deploy --all --prefect-file deployments/prefect.yaml`` from the
    project folder, done through the client: no prompts, the pool and job variables come from options, and the
    file is checked against the specs first.
    """
    import yaml
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import DeploymentScheduleCreate
    from prefect.flows import load_flow_from_entrypoint
    from prefect.client.schemas.schedules import CronSchedule
    from prefect.utilities.callables import parameter_schema

    config = yaml.safe_load(check_prefect_yaml(root).read_text())
    names = []
    previous = Path.cwd()
    os.chdir(root)  # entrypoints are relative to the project folder
    try:
        with get_client(sync_client=True) as client:
            for d in config["deployments"]:
                flow = load_flow_from_entrypoint(d["entrypoint"])
                work_pool = {**d["work_pool"], "name": pool}  # the file's {{ $SYNTHGATE_WORK_POOL }}
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
                    work_pool_name=work_pool["name"],
                    work_queue_name=work_pool["work_queue_name"],
                    job_variables={**work_pool["job_variables"], **job_variables},
                    pull_steps=d.get("pull", config["pull"]),
                    schedules=schedules,
                )
                names.append(f"{flow.name}/{d['name']}")
    finally:
        os.chdir(previous)
    return names


def runner_deployments(root: Path = PROJECT_ROOT) -> list[Any]:
    """The deployments of prefect.yaml as in-process runner deployments (same names, parameters, schedules)."""
    from prefect.schedules import Cron

    from flows.refresh import refresh_table
    from flows.refresh_all import refresh_all

    flows = {"flows/refresh.py:refresh_table": refresh_table, "flows/refresh_all.py:refresh_all": refresh_all}
    result = []
    for d in prefect_config(root)["deployments"]:
        schedules = [
            Cron(s["cron"], timezone=s["timezone"], active=s["active"], parameters=s["parameters"]) for s in d["schedules"]
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


def serve(limit: int | None, root: Path = PROJECT_ROOT) -> None:
    """Serve every deployment in this process until interrupted (runs start in subprocesses in ``root``)."""
    from prefect import serve as prefect_serve

    os.chdir(root)
    prefect_serve(*runner_deployments(root), limit=limit)
