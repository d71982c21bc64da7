"""Process-wide settings from the environment (prefix ``SYNTHGATE_``), with embedded defaults."""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from synthgate.errors import SynthgateError


class Settings(BaseSettings):
    """Synthgate's settings, each read from ``SYNTHGATE_<NAME>`` in the environment, else its default."""

    model_config = SettingsConfigDict(env_prefix="SYNTHGATE_", frozen=True, extra="forbid", allow_inf_nan=False)

    home: Path = Field(
        default=Path(".synthgate"), description="Working folder: embedded warehouse, MLflow store, reports."
    )
    expectations_dir: Path = Field(default=Path("expectations"), description="Where GX suites are kept.")
    mlflow_tracking_uri: str | None = Field(
        default=None, description="Default: MLFLOW_TRACKING_URI, else SQLite under home."
    )
    trigger: str = Field(
        default="cli",
        pattern=r"^[a-z][a-z0-9_\-]{0,31}$",
        description="What started a run called from Python or a process without its own: cli, schedule, ui, api.",
    )
    default_budget_cap: float = Field(
        default=10.0,
        gt=0,
        description="Organisation default for privacy.cap: total epsilon per table across refreshes.",
    )
    fingerprint_key: SecretStr | None = Field(
        default=None,
        description="Secret key of the keyed snapshot fingerprint (HMAC); unset: a Prefect Secret block, else a key "
        "file under home created on first use.",
    )
    fingerprint_key_block: str | None = Field(
        default=None, description="Name of a Prefect Secret block holding the fingerprint key."
    )
    openlineage_url: str | None = Field(
        default=None, description="OpenLineage HTTP endpoint (e.g. Marquez); unset: events go to a file under home."
    )
    openlineage_api_key: str | None = Field(default=None, description="Bearer token for the OpenLineage endpoint.")
    openlineage_namespace: str = Field(default="synthgate", description="OpenLineage job namespace.")

    dask_address: str | None = Field(
        default=None,
        description="refresh-all: Dask scheduler address (tcp://host:8786); tables then run on its workers.",
    )
    dask_workers: int | None = Field(
        default=None, ge=1, le=256, description="refresh-all: start a local Dask cluster of this many worker processes."
    )
    threads: int | None = Field(
        default=None,
        ge=1,
        le=1024,
        description="CPU threads of training and sampling; unset: the usable cores (affinity, cgroup quota) shared by "
        "the trainings running at once, and at most the cores other processes leave idle (synthgate/cpu_threads.py).",
    )
    max_parallel_tables: int = Field(
        default=4,
        ge=1,
        le=64,
        description="refresh-all without Dask: tables refreshed at once, in threads of one process.",
    )
    work_pool: str = Field(
        default="synthgate", min_length=1, description="Prefect work pool `synthgate deploy` targets."
    )

    def budget_cap(self, spec_cap: float | None) -> float:
        """The table's cap: the spec's own, else the organisation default."""
        return spec_cap if spec_cap is not None else self.default_budget_cap

    def tracking_uri(self) -> str:
        """The MLflow tracking URI: the setting, else MLFLOW_TRACKING_URI, else a SQLite store under home."""
        import os

        return (
            self.mlflow_tracking_uri
            or os.environ.get("MLFLOW_TRACKING_URI")
            or f"sqlite:///{(self.home / 'mlflow.db').resolve()}"
        )

    @property
    def reports_dir(self) -> Path:
        """Where run reports (HTML) are written."""
        return self.home / "reports"

    @property
    def lineage_file(self) -> Path:
        """The JSON-lines file OpenLineage events go to when no endpoint is configured."""
        return self.home / "lineage" / "openlineage.jsonl"

    @property
    def artifacts_dir(self) -> Path:
        """Where the embedded MLflow store keeps run artifacts."""
        return self.home / "mlartifacts"

    @property
    def secrets_dir(self) -> Path:
        """Key material of the embedded set-up: never under the MLflow, report or lineage folders."""
        return self.home / "secrets"


def get_settings() -> Settings:
    """The settings, or :class:`SynthgateError` naming each bad ``SYNTHGATE_*`` variable (never its value), or one
    that is not a setting but spelled like one (:func:`_misspelled`)."""
    misspelled = _misspelled(os.environ)
    if misspelled:
        raise SynthgateError(f"unknown setting in the environment: {misspelled}")
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"SYNTHGATE_{str(err['loc'][0]).upper()}: {' '.join(err['msg'].split())}" if err["loc"] else err["msg"]
            for err in exc.errors()
        )
        raise SynthgateError(f"invalid setting in the environment: {problems}") from None


def _misspelled(environ: Mapping[str, str]) -> str:
    """``SYNTHGATE_*`` variables that name no setting but nearly name one, each with the setting meant, joined by
    "; " (empty when none). Read from the environment, a misspelled setting would be ignored without a word, and
    ``SYNTHGATE_DEFAULT_BUDGETCAP=2`` would leave every table's privacy cap at 10; other names (the test and
    benchmark tools' own) are left alone."""
    settings = [name.upper() for name in Settings.model_fields]
    found = []
    for variable in sorted(environ):
        name = variable.removeprefix("SYNTHGATE_")
        if name == variable or name in settings:
            continue
        meant = difflib.get_close_matches(name, settings, n=1, cutoff=0.8)
        if meant:
            found.append(f"{variable} (did you mean SYNTHGATE_{meant[0]}?)")
    return "; ".join(found)
