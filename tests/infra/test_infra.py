"""infra/: every file parses, and image names, ports, env vars and secrets agree across them (nothing is started)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from synthgate.settings import Settings
from tests.conftest import ROOT

INFRA = ROOT / "infra"
IMAGE = "ghcr.io/synthgate/synthgate:0.1.0"
PREFECT_VERSION = re.search(r'"prefect==([\d.]+)"', (ROOT / "pyproject.toml").read_text()).group(1)  # type: ignore[union-attr]


def load_all(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def dockerfile() -> dict[str, Any]:
    text = re.sub(r"\\\n\s*", " ", (INFRA / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    parsed: dict[str, Any] = {"ARG": {}, "ENV": {}, "WORKDIR": [], "FROM": [], "COPY": [], "CMD": None}
    for line in lines:
        instruction, _, rest = line.partition(" ")
        if instruction == "ARG":
            name, _, default = rest.partition("=")
            parsed["ARG"][name] = default
        elif instruction == "ENV":
            parsed["ENV"].update(dict(re.findall(r"(\w+)=(\S+)", rest)))
        elif instruction == "CMD":
            parsed["CMD"] = yaml.safe_load(rest)
        elif instruction in parsed:
            parsed[instruction].append(rest)
    return parsed


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((INFRA / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def k8s() -> dict[tuple[str, str], dict[str, Any]]:
    docs = [d for p in sorted((INFRA / "k8s").glob("*.yaml")) for d in load_all(p)]
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def test_every_file_parses():
    files = sorted(p for p in INFRA.rglob("*") if p.is_file())
    assert {p.relative_to(INFRA).as_posix() for p in files} >= {
        "Dockerfile",
        "docker-compose.yml",
        ".env.example",
        "postgres/init.sql",
        "helm/prefect-server-values.yaml",
        "helm/prefect-worker-values.yaml",
        "k8s/mlflow.yaml",
        "k8s/minio.yaml",
        "k8s/secrets.example.yaml",
    }
    for path in files:
        if path.suffix in (".yaml", ".yml"):
            assert load_all(path), path
    assert dockerfile()["FROM"] == ["${PYTHON_IMAGE}"]


def test_the_flow_image_builds_cpu_or_cuda_and_knows_its_project_folder():
    docker = dockerfile()
    assert docker["ARG"]["TORCH_VARIANT"] == "cpu"  # --build-arg TORCH_VARIANT=cu128 for CUDA
    assert docker["WORKDIR"] == [docker["ENV"]["SYNTHGATE_PROJECT_DIR"]] == ["/opt/synthgate"]
    assert docker["ENV"]["SYNTHGATE_EXPECTATIONS_DIR"].startswith(docker["ENV"]["SYNTHGATE_PROJECT_DIR"])
    copied = {c.split()[0] for c in docker["COPY"]}
    assert {"synthgate", "deployments", "expectations", "constraints.txt"} <= copied | {
        w for c in docker["COPY"] for w in c.split()
    }
    assert docker["CMD"][:3] == ["prefect", "worker", "start"]


def test_compose_images_ports_and_env_agree(compose):
    services = compose["services"]
    assert {"postgres", "minio", "mlflow", "prefect-server", "deploy", "worker"} <= set(services)
    for name in ("mlflow", "deploy", "worker"):
        assert services[name]["image"] == IMAGE and services[name]["build"]["dockerfile"] == "infra/Dockerfile"
    assert services["prefect-server"]["image"] == f"prefecthq/prefect:{PREFECT_VERSION}-python3.11"
    assert "4200:4200" in services["prefect-server"]["ports"] and "5000:5000" in services["mlflow"]["ports"]
    assert "--port 5000" in " ".join(services["mlflow"]["command"])
    worker_env = services["worker"]["environment"]
    assert worker_env["PREFECT_API_URL"] == "http://prefect-server:4200/api"
    assert worker_env["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert worker_env["SYNTHGATE_PROJECT_DIR"] == dockerfile()["ENV"]["SYNTHGATE_PROJECT_DIR"]
    pool = worker_env["SYNTHGATE_WORK_POOL"]
    assert services["worker"]["command"][services["worker"]["command"].index("--pool") + 1] == pool
    assert services["deploy"]["command"][services["deploy"]["command"].index("--pool") + 1] == pool
    assert services["mlflow"]["environment"]["MLFLOW_S3_ENDPOINT_URL"] == "http://minio:9000"
    assert "9000:9000" in services["minio"]["ports"]
    assert "s3://mlflow" in " ".join(services["mlflow"]["command"])
    assert "local/mlflow" in " ".join(services["minio-init"]["command"])
    db_urls = [
        services["prefect-server"]["environment"]["PREFECT_API_DATABASE_CONNECTION_URL"],
        services["mlflow"]["environment"]["MLFLOW_BACKEND_STORE_URI"],
    ]
    databases = set(re.findall(r"CREATE DATABASE (\w+);", (INFRA / "postgres" / "init.sql").read_text()))
    assert {url.rsplit("/", 1)[1] for url in db_urls} <= databases and all("@postgres:5432/" in u for u in db_urls)


def test_every_synthgate_setting_in_infra_is_a_real_one(compose):
    known = {f"SYNTHGATE_{name.upper()}" for name in Settings.model_fields} | {"SYNTHGATE_PROJECT_DIR"}
    text = "\n".join(p.read_text() for p in INFRA.rglob("*") if p.is_file())
    used = set(re.findall(r"\bSYNTHGATE_[A-Z_]+\b", text))
    assert used and used <= known, used - known


def test_compose_secrets_come_from_the_env_file(compose):
    text = (INFRA / "docker-compose.yml").read_text()
    referenced = set(re.findall(r"\$\{(\w+)(?::?[?-][^}]*)?\}", text))
    example = dict(
        line.split("=", 1)
        for line in (INFRA / ".env.example").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    assert referenced == set(example), referenced ^ set(example)
    for name, service in compose["services"].items():  # no literal credential: each comes from the env file
        for key, value in (service.get("environment") or {}).items():
            if re.search(r"PASSWORD|SECRET|_URI$|_URL$", key) and re.search(
                r"://[^/]*:[^@/]*@|PASSWORD|SECRET", key + str(value)
            ):
                assert "${" in str(value), f"{name}.{key} holds a literal credential"


def test_kubernetes_secrets_images_and_ports_agree(k8s):
    secrets = {name: set(doc["stringData"]) for (kind, name), doc in k8s.items() if kind == "Secret"}
    refs = set()
    for doc in k8s.values():
        for ref in re.findall(r"'secretKeyRef': \{'name': '([\w-]+)', 'key': '([\w-]+)'\}", str(doc)):
            refs.add(ref)
    assert refs and all(key in secrets.get(name, ()) for name, key in refs), refs
    server_values = yaml.safe_load((INFRA / "helm" / "prefect-server-values.yaml").read_text())
    assert (
        server_values["secret"]["name"] in secrets and "connection-string" in secrets[server_values["secret"]["name"]]
    )
    assert server_values["secret"]["create"] is False and server_values["postgresql"]["enabled"] is False

    [mlflow] = k8s[("Deployment", "mlflow")]["spec"]["template"]["spec"]["containers"]
    assert mlflow["image"] == IMAGE
    assert mlflow["ports"][0]["containerPort"] == k8s[("Service", "mlflow")]["spec"]["ports"][0]["port"] == 5000
    assert env_of(mlflow)["MLFLOW_S3_ENDPOINT_URL"] == "http://minio:9000"
    assert {p["port"] for p in k8s[("Service", "minio")]["spec"]["ports"]} >= {9000}
    assert "s3://mlflow" in " ".join(mlflow["args"]) and "local/mlflow" in str(k8s[("Job", "minio-create-bucket")])


def test_helm_values_agree_on_prefect_version_port_and_pool():
    server = yaml.safe_load((INFRA / "helm" / "prefect-server-values.yaml").read_text())
    worker = yaml.safe_load((INFRA / "helm" / "prefect-worker-values.yaml").read_text())["worker"]
    assert server["global"]["prefect"]["image"]["prefectTag"] == f"{PREFECT_VERSION}-python3.11"
    assert worker["image"]["prefectTag"] == f"{PREFECT_VERSION}-python3.11-kubernetes"
    assert worker["apiConfig"] == "server" and worker["config"]["type"] == "kubernetes"
    assert worker["serverApiConfig"]["apiUrl"].endswith(f":{server['service']['port']}/api")
    assert worker["serverApiConfig"]["apiUrl"].startswith("http://prefect-server.")
    header = (INFRA / "helm" / "prefect-worker-values.yaml").read_text()
    assert f"--pool {worker['config']['workPool']} --pool-type kubernetes --image {IMAGE}" in header
    assert "http://mlflow.synthgate.svc.cluster.local:5000" in header


@pytest.mark.skipif(not shutil.which("docker"), reason="no docker client")
def test_docker_compose_config_validates(tmp_path):
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        pytest.skip("docker client without the compose plugin")
    result = subprocess.run(
        [
            "docker",
            "compose",
            "-f",
            str(INFRA / "docker-compose.yml"),
            "--env-file",
            str(INFRA / ".env.example"),
            "config",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
