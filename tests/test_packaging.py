"""The installed package is self-contained: its wheel, installed into a fresh virtual environment, runs
``synthgate demo`` from a folder outside the checkout (no checkout file is read, no top-level ``flows``/``tasks``)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import ROOT

pytestmark = pytest.mark.integration

#: What the wheel is built from: the package and its metadata (a copy, so the build leaves nothing in the checkout).
SOURCES = ("pyproject.toml", "README.md", "synthgate")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    source, out = tmp_path_factory.mktemp("source"), tmp_path_factory.mktemp("wheel")
    for name in SOURCES:
        copy = shutil.copytree if (ROOT / name).is_dir() else shutil.copy2
        copy(
            ROOT / name,
            source / name,
            **({"ignore": shutil.ignore_patterns("__pycache__")} if copy is shutil.copytree else {}),
        )
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(out), "."],
        cwd=source,
        check=True,
        capture_output=True,
    )
    [built] = out.glob("synthgate-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(tmp_path_factory, wheel) -> Path:
    """A fresh virtual environment with the wheel installed; its dependencies come from this environment's
    site-packages as a plain path (so this environment's editable install of the checkout is not activated)."""
    env = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True)
    site = Path(
        subprocess.run(
            [env / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", env / "bin" / "python", "install", "--quiet", "--no-deps", wheel],
        check=True,
        capture_output=True,
    )
    return env


def test_the_wheel_holds_one_package_with_its_demo(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names} == {"synthgate", wheel.name.split("-py3")[0] + ".dist-info"}
    for needed in (
        "synthgate/flows/refresh.py",
        "synthgate/tasks/train.py",
        "synthgate/demo_data/adult.yaml",
        "synthgate/demo_data/adult/train.csv",
        "synthgate/demo_data/adult/test.csv",
        "synthgate/demo_data/expectations/adult.source.json",
        "synthgate/demo_data/expectations/adult.synthetic.json",
        "synthgate/py.typed",
    ):
        assert needed in names


def clean_environment(tmp: Path) -> dict[str, str]:
    """This process's environment without anything that points at the checkout or at a server."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SYNTHGATE_", "PREFECT_", "MLFLOW_")) and k not in ("PYTHONPATH", "VIRTUAL_ENV")
    }
    return env | {"PREFECT_HOME": str(tmp / "prefect"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}


def test_the_installed_package_runs_the_demo_outside_the_checkout(venv, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = clean_environment(tmp_path)
    python = str(venv / "bin" / "python")
    where = subprocess.run(
        [
            python,
            "-c",
            "import synthgate.flows.refresh as m, importlib.util as u; print(m.__file__, u.find_spec('flows'))",
        ],
        cwd=elsewhere,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    assert Path(where[0]).is_relative_to(venv) and where[1] == "None"  # the installed copy; no top-level `flows`

    home = tmp_path / "home"
    done = subprocess.run(
        [str(venv / "bin" / "synthgate"), "demo", "--home", str(home), "--json"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=840,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["status"] == "published"
    engine = sa.create_engine(f"sqlite:///{home / 'warehouse.db'}")
    with engine.connect() as conn:
        rows = conn.execute(sa.text(f"SELECT COUNT(*) FROM {result['published_table']}")).scalar_one()
    engine.dispose()
    assert rows > 1000
    assert sorted(p.name for p in elsewhere.iterdir()) == []  # nothing written where it ran: all under --home
