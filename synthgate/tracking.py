"""MLflow: one experiment per table, a run per refresh, the generator as a registered pyfunc model."""

from __future__ import annotations

import json
import logging
import os

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow
import mlflow.pyfunc
import pandas as pd

from synthgate.errors import TrackingError

log = logging.getLogger(__name__)


def model_name(spec_name: str) -> str:
    return f"synthgate-{spec_name}"


def experiment_name(spec_name: str) -> str:
    return f"synthgate/{spec_name}"


def _safe_uri(uri: str) -> str:
    """The tracking URI with any password masked, for messages."""
    from synthgate.spec import redact_url

    return redact_url(uri)


def _mlflow():
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    return mlflow


@contextmanager
def start_run(tracking_uri: str, spec_name: str, tags: dict[str, str], artifact_root: Path | None = None) -> Iterator[Any]:
    """Open an MLflow run, or raise :class:`TrackingError` naming the store when it is unreachable."""
    mlflow = _mlflow()
    try:
        mlflow.set_tracking_uri(tracking_uri)
        client = mlflow.MlflowClient(tracking_uri)
        name = experiment_name(spec_name)
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            location = (artifact_root / spec_name).resolve().as_uri() if artifact_root else None
            experiment_id = client.create_experiment(name, artifact_location=location)
        else:
            experiment_id = experiment.experiment_id
        run = mlflow.start_run(experiment_id=experiment_id, tags=tags)
    except Exception as exc:  # noqa: BLE001 - any failure to open the store stops the run before the data is used
        raise TrackingError(
            f"MLflow tracking store {_safe_uri(tracking_uri)!r} is unreachable ({type(exc).__name__}): nothing was trained "
            "or published. Check MLFLOW_TRACKING_URI"
        ) from None
    try:
        yield run
    except BaseException:
        mlflow.end_run(status="FAILED")
        raise
    else:
        mlflow.end_run(status="FINISHED")


def log_params(params: dict[str, Any]) -> None:
    _mlflow().log_params({k: (json.dumps(v) if isinstance(v, (dict, list)) else v) for k, v in params.items()})


def log_metrics(metrics: dict[str, float], step: int | None = None) -> None:
    _mlflow().log_metrics({k: float(v) for k, v in metrics.items()}, step=step)


def set_tags(tags: dict[str, str]) -> None:
    _mlflow().set_tags(tags)


def log_dict(data: dict[str, Any], artifact_file: str) -> None:
    _mlflow().log_dict(data, artifact_file)


def log_artifact(path: Path, artifact_path: str | None = None) -> None:
    _mlflow().log_artifact(str(path), artifact_path)


class SynthesizerPyfunc(mlflow.pyfunc.PythonModel):
    """The generator as an MLflow model: input a frame with ``rows`` (and optionally ``seed``), get rows back."""

    def load_context(self, context) -> None:
        from synthgate.generator import DPSynthesizer

        self.synthesizer = DPSynthesizer.load(context.artifacts["generator"])

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        rows = int(model_input["rows"].iloc[0])
        seed = int(model_input["seed"].iloc[0]) if "seed" in model_input else None
        return self.synthesizer.sample(rows, seed=seed)


def log_generator(generator_dir: Path, spec_name: str, sample: pd.DataFrame) -> str | None:
    """Log the generator as a pyfunc model and register it; returns the registered version."""
    mlflow = _mlflow()
    from mlflow.models import infer_signature

    signature = infer_signature(pd.DataFrame({"rows": [10], "seed": [0]}), sample.head(10))
    info = mlflow.pyfunc.log_model(
        name="generator",
        python_model=SynthesizerPyfunc(),
        artifacts={"generator": str(generator_dir)},
        signature=signature,
        pip_requirements=["synthgate", "torch", "pandas", "numpy", "scipy", "opacus"],
        registered_model_name=model_name(spec_name),
    )
    return str(info.registered_model_version) if info.registered_model_version is not None else None


def load_generator(tracking_uri: str, name: str, version: str) -> Any:
    """The :class:`DPSynthesizer` of a registered model version (DP-trained weights and DP releases only)."""
    import tempfile

    from synthgate.generator import DPSynthesizer

    try:
        with tempfile.TemporaryDirectory() as tmp:
            local = _mlflow().artifacts.download_artifacts(
                artifact_uri=f"models:/{name}/{version}", dst_path=tmp, tracking_uri=tracking_uri
            )
            return DPSynthesizer.load(Path(local) / "artifacts" / "generator")
    except Exception as exc:  # noqa: BLE001 - a missing or unreadable model version
        raise TrackingError(
            f"cannot load model {name} version {version} from {_safe_uri(tracking_uri)} ({type(exc).__name__}): "
            "refresh with --retrain to train a new one"
        ) from None


def set_production_alias(name: str, version: str) -> None:
    """Move the registered model's ``production`` alias to the version just published (only then)."""
    try:
        _mlflow().MlflowClient().set_registered_model_alias(name, "production", version)
    except Exception as exc:  # noqa: BLE001 - the table is published; a stale alias is reported, not fatal
        log.warning("could not move alias 'production' of %s to version %s: %s", name, version, type(exc).__name__)


def git_commit(repo: Path | None = None) -> str | None:
    """The commit of the code that ran, when it runs from a git checkout (None otherwise)."""
    import subprocess

    where = repo or Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=5, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = out.stdout.strip()
    return commit if len(commit) == 40 else None


def run_summary(tracking_uri: str, run_id: str) -> dict[str, Any] | None:
    """Tags, status and experiment of a run for the audit; None when the store or the run is unavailable."""
    try:
        run = mlflow.MlflowClient(tracking_uri).get_run(run_id)
    except Exception:  # noqa: BLE001 - the audit reports what it can reach
        return None
    return {
        "experiment_id": run.info.experiment_id,
        "status": run.info.status,
        "tags": {k: v for k, v in run.data.tags.items() if k.startswith(("synthgate.", "prefect.", "mlflow.source.git"))},
    }


def model_aliases(tracking_uri: str, name: str) -> dict[str, str]:
    """Alias -> version of a registered model ({} when unavailable)."""
    try:
        model = mlflow.MlflowClient(tracking_uri).get_registered_model(name)
    except Exception:  # noqa: BLE001
        return {}
    return {alias: str(version) for alias, version in (model.aliases or {}).items()}


def run_url(tracking_uri: str, run_id: str) -> str:
    """A link to the run: the server's UI page when the store is a server, else the run's id in the store."""
    if tracking_uri.startswith(("http://", "https://")):
        run = mlflow.MlflowClient(tracking_uri).get_run(run_id)
        return f"{tracking_uri.rstrip('/')}/#/experiments/{run.info.experiment_id}/runs/{run_id}"
    return f"{tracking_uri}#run={run_id}"


def download_report(tracking_uri: str, run_id: str, destination: Path) -> Path:
    """Copy the HTML report of ``run_id`` from the MLflow store to ``destination``."""
    import shutil
    import tempfile

    client = mlflow.MlflowClient(tracking_uri)
    try:
        files = [a.path for a in client.list_artifacts(run_id, "report") if a.path.endswith(".html")]
    except Exception as exc:  # noqa: BLE001 - unknown run or unreachable store
        raise TrackingError(f"cannot read run {run_id!r} from {_safe_uri(tracking_uri)}: {type(exc).__name__}") from None
    if not files:
        raise TrackingError(f"run {run_id!r} has no report artifact (a run that failed before checking has none)")
    with tempfile.TemporaryDirectory() as tmp:
        local = client.download_artifacts(run_id, files[0], tmp)
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(local, destination)
    return destination
