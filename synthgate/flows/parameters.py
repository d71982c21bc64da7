"""Flow parameters as pydantic models: the Prefect UI renders them as a validated form with descriptions.

Deployments set ``enforce_parameter_schema: true``, so the server rejects a run whose parameters break these
bounds before any worker picks it up.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from synthgate.deployments import TABLES_DIR
from synthgate.spec import TableSpec, spec_from_dict

#: What started a run: cli, demo, refresh-all, or for a deployment's run schedule, ui, api, automation (recorded in the
#: catalog and ledger).
Trigger = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_\-]{0,31}$")]


class RefreshParameters(BaseModel):
    """One table's refresh: which spec, and optional overrides of its budget and size for this run only."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False, title="Refresh parameters")

    spec_path: str = Field(
        min_length=1,
        description="Table spec YAML, relative to the project folder the worker runs in "
        "(e.g. deployments/tables/adult.yaml).",
    )
    epsilon: float | None = Field(
        default=None,
        gt=0,
        le=100,
        description="Override the spec's privacy.epsilon for this run (must be positive; the budget cap still "
        "applies).",
    )
    rows: int | None = Field(
        default=None,
        ge=1,
        le=100_000_000,
        description="Override how many synthetic rows to generate (1 to 100,000,000).",
    )
    retrain: bool = Field(
        default=False,
        description="Train anew even when the source is unchanged since the published version (which would otherwise "
        "be re-sampled from its model at no privacy cost).",
    )

    @model_validator(mode="before")
    @classmethod
    def _from_path(cls, value: Any) -> Any:
        """Plain-Python callers may pass just the spec path: ``refresh_table("deployments/tables/adult.yaml")``."""
        if isinstance(value, str):
            return {"spec_path": value}
        if hasattr(value, "__fspath__"):
            return {"spec_path": str(value)}
        return value


class RefreshAllParameters(BaseModel):
    """Refresh every table spec in a folder; each table runs as its own subflow."""

    model_config = ConfigDict(frozen=True, extra="forbid", title="Refresh-all parameters")

    specs_dir: str = Field(
        default=str(TABLES_DIR),
        min_length=1,
        description="Folder of table spec YAML files (relative to the project folder).",
    )
    pattern: str = Field(default="*.yaml", min_length=1, description="Glob of the spec files inside the folder.")


def apply_overrides(spec: TableSpec, request: RefreshParameters) -> TableSpec:
    """The spec with this run's overrides, validated again as a whole (e.g. epsilon against the spec's bounds)."""
    if request.epsilon is None and request.rows is None:
        return spec
    data = spec.model_dump(by_alias=True, exclude_unset=True)
    if request.epsilon is not None:
        data["privacy"] = {**data["privacy"], "epsilon": request.epsilon}
    if request.rows is not None:
        data["rows"] = request.rows
    return spec_from_dict(data, f"{request.spec_path} (with run overrides)")
