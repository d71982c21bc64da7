"""The table spec: one YAML file per governed table, validated by pydantic.

Credentials never live in the YAML: a URL may reference ``${ENV_VAR}`` (with an optional
``${ENV_VAR:-default}``) or ``${secret:BLOCK_NAME}`` (a Prefect Secret block); they are
resolved when the spec is loaded, and :func:`redact_url` hides them again for logs.
"""

from __future__ import annotations

import os
import re
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from synthgate.errors import SpecError

_PLACEHOLDER = re.compile(r"\$\{(?P<name>[^}:]+(?::(?!-)[^}:]+)?)(?::-(?P<default>[^}]*))?\}")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class WarehouseTable(_Frozen):
    """A table in a warehouse reachable through a SQLAlchemy URL."""

    url: str = Field(description="SQLAlchemy URL; credentials only through ${ENV} or ${secret:NAME}.")
    table: str = Field(min_length=1, description="Table name (quoted by SQLAlchemy, any characters allowed).")
    db_schema: str | None = Field(default=None, alias="schema", description="Database schema, if any.")

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    @field_validator("url")
    @classmethod
    def _parseable(cls, url: str) -> str:
        try:
            make_url(url)
        except ArgumentError as exc:
            raise ValueError(f"not a SQLAlchemy URL: {exc}") from None
        return url

    @property
    def display_url(self) -> str:
        return redact_url(self.url)


class Holdout(_Frozen):
    """Real rows kept out of training, used only to evaluate the synthetic table."""

    table: WarehouseTable | None = Field(default=None, description="A separate holdout table.")
    fraction: float | None = Field(default=None, gt=0, lt=0.9, description="Or: split this share off the source.")

    @model_validator(mode="after")
    def _one_of(self) -> Holdout:
        if (self.table is None) == (self.fraction is None):
            raise ValueError("give exactly one of 'table' or 'fraction'")
        return self


ColumnPolicyName = Literal["keep", "drop", "categorical", "fake"]
FakeKind = Literal["id", "uuid", "name", "first_name", "last_name", "email", "phone_number", "address", "ssn"]


class ColumnPolicy(_Frozen):
    """What happens to one column. Declared domains are public knowledge and cost no budget."""

    policy: ColumnPolicyName | None = Field(
        default=None, description="keep, drop, categorical or fake; unset: decided at each refresh from the column's name and SQL "
        "type (`synthgate profile SPEC --write` records a reviewed policy)."
    )
    fake: FakeKind | None = Field(default=None, description="For policy 'fake': what kind of fake value to generate.")
    categories: list[str | int | bool] | None = Field(
        default=None, description="Public category domain (no privacy budget spent on discovering it)."
    )
    min: float | None = Field(default=None, description="Public lower bound of a numeric column.")
    max: float | None = Field(default=None, description="Public upper bound of a numeric column.")

    @model_validator(mode="after")
    def _consistent(self) -> ColumnPolicy:
        if self.policy == "fake" and self.fake is None:
            raise ValueError("policy 'fake' needs 'fake: <kind>' (id, email, name, ...)")
        if self.fake is not None and self.policy != "fake":
            raise ValueError("'fake' is only allowed with policy 'fake'")
        if self.min is not None and self.max is not None and self.min >= self.max:
            raise ValueError(f"min ({self.min}) must be below max ({self.max})")
        return self


class PrivacyBudget(_Frozen):
    """The (epsilon, delta) spent by one refresh, all uses of the real data included."""

    epsilon: float = Field(gt=0, le=100, description="Total epsilon of one refresh.")
    delta: float = Field(gt=0, lt=1e-2, description="Total delta; must be below 1/rows.")
    cap: float | None = Field(
        default=None, gt=0, description="Total epsilon this table may ever spend across refreshes (ledger-enforced)."
    )
    preprocessing_share: float = Field(
        default=0.3, gt=0, lt=0.8, description="Share of the zCDP budget for DP bounds, bins and category lists."
    )


class Training(_Frozen):
    """Generator training; every field is optional and chosen from the budget when absent."""

    epochs: int | None = Field(default=None, ge=1, le=1000)
    batch_size: int | None = Field(default=None, ge=8, le=1_000_000, description="Expected Poisson batch size.")
    noise_multiplier: float | None = Field(default=None, gt=0, description="Override; must fit the budget.")
    max_grad_norm: float = Field(default=1.0, gt=0)
    learning_rate: float = Field(default=1e-2, gt=0)
    embedding_dim: int = Field(default=16, ge=2, le=256)
    hidden_dim: int = Field(default=32, ge=8, le=2048, description="Width of each column head (small heads suit DP noise).")
    numeric_bins: int = Field(default=24, ge=2, le=256)
    target_weight: float = Field(
        default=1.0, ge=1, le=20, description="Weight of the target column's loss: a larger share of each clipped gradient."
    )
    ema_decay: float = Field(
        default=0.9, ge=0, lt=1, description="Sample from a moving average of the weights (0: off); free under DP."
    )
    seed: int = Field(
        default=0,
        description="Makes weight initialisation, sampling from the trained model and fake values repeatable. It never "
        "drives DP noise or which rows train: those draw fresh operating-system entropy on every run.",
    )
    device: Literal["auto", "cpu", "cuda"] = "auto"
    engine: Literal["fast", "opacus"] = Field(
        default="fast", description="DP-SGD engine: built-in ghost clipping (fast) or Opacus's PrivacyEngine (reference)."
    )


class Gates(_Frozen):
    """Thresholds that must all hold before anything is published (every metric has one; defaults are lenient)."""

    # fidelity
    min_quality: float = Field(default=0.75, ge=0, le=1, description="SDMetrics overall quality score.")
    min_column_shapes: float = Field(default=0.7, ge=0, le=1, description="SDMetrics column shapes score.")
    min_column_pair_trends: float = Field(default=0.6, ge=0, le=1, description="SDMetrics column pair trends score.")
    max_tvd_1way_excess: float = Field(
        default=0.1, ge=0, le=1, description="Mean TVD of 1-way marginals above a same-sized holdout's (the ceiling)."
    )
    max_tvd_2way_excess: float = Field(default=0.15, ge=0, le=1, description="The same for 2-way marginals.")
    max_tvd_3way_excess: float = Field(default=0.2, ge=0, le=1, description="The same for sampled 3-way marginals.")
    # utility (gradient boosting; the linear model's gap counts in max_utility_gap)
    min_tstr_auc: float = Field(default=0.65, ge=0, le=1, description="Train-synthetic-test-real ROC AUC.")
    min_tstr_r2: float = Field(default=0.0, ge=-1, le=1, description="Train-synthetic-test-real R2 (numeric target).")
    max_utility_gap: float = Field(
        default=0.25, ge=0, le=1, description="Largest TRTR - TSTR over the gradient-boosting and linear models."
    )
    # privacy
    max_dcr_share: float = Field(
        default=0.60, ge=0, le=1, description="Share of synthetic rows closer to training than to holdout (ideal 0.5)."
    )
    min_nndr_ratio: float = Field(
        default=0.8, ge=0, le=2, description="Median NNDR to training over median NNDR to holdout (ideal 1)."
    )
    max_exact_copy_excess: float = Field(
        default=0.02, ge=0, le=1, description="Share of exact copies of training rows minus the holdout's share."
    )
    max_mia_auc: float = Field(default=0.6, ge=0.5, le=1, description="Distance-based membership inference ROC AUC.")
    max_singling_out_risk: float = Field(default=0.1, ge=0, le=1, description="Anonymeter-style singling-out risk.")
    max_linkability_risk: float = Field(default=0.1, ge=0, le=1, description="Anonymeter-style linkability risk.")
    max_inference_risk: float = Field(default=0.2, ge=0, le=1, description="Largest Anonymeter-style inference risk.")
    # validity
    synthetic_suite: bool = Field(default=True, description="The synthetic GX suite must pass.")
    max_duplicate_key_share: float = Field(
        default=0.0, ge=0, le=1, description="Share of synthetic rows whose declared key repeats another row's."
    )


class Publishing(_Frozen):
    """How published versions are kept: each publish is a table ``<target>__v<N>`` behind a view."""

    keep_versions: int = Field(
        default=3, ge=1, le=100, description="Versions kept for rollback (the current one always stays)."
    )


class Schedule(_Frozen):
    """When the refresh runs by itself: a cron expression read in a time zone (a Prefect cron schedule)."""

    cron: str = Field(description="Five-field cron expression, e.g. '0 2 * * *' for 02:00 every day.")
    timezone: str = Field(default="UTC", description="IANA time zone the cron expression is read in, e.g. Europe/Berlin.")
    active: bool = Field(default=True, description="Set false to keep the schedule but pause it.")

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, cron: str) -> str:
        from cronsim import CronSim, CronSimError

        if len(cron.split()) != 5:
            raise ValueError(f"cron {cron!r} must have five fields (minute hour day month weekday)")
        try:
            CronSim(cron, datetime.now())
        except CronSimError as exc:
            raise ValueError(f"invalid cron {cron!r}: {exc}") from None
        return cron

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, timezone: str) -> str:
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {timezone!r} (use an IANA name such as UTC or Europe/Berlin)") from None
        return timezone


class TableSpec(_Frozen):
    """One governed table: where it comes from, where its synthetic copy goes, and under what budget."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_\-]*$", description="Short name: experiment, suite and model names.")
    source: WarehouseTable
    target: WarehouseTable
    holdout: Holdout = Field(default_factory=lambda: Holdout(fraction=0.2))
    columns: dict[str, ColumnPolicy] = Field(default_factory=dict)
    target_column: str | None = Field(default=None, description="Label for train-synthetic-test-real checks.")
    # YAML `keys:`; the attribute is not called `keys`, which would shadow the mapping protocol (dict(spec)).
    key_columns: list[str] = Field(
        default_factory=list, alias="keys",
        description="Columns that together identify a row: unique in the synthetic table.",
    )
    privacy: PrivacyBudget
    training: Training = Field(default_factory=Training)
    gates: Gates = Field(default_factory=Gates)
    rows: Annotated[int, Field(ge=1, le=100_000_000)] | None = Field(
        default=None, description="Synthetic rows to generate (default: the DP estimate of the source row count)."
    )
    chunk_size: int = Field(default=50_000, ge=100, description="Rows per chunk when extracting.")
    publishing: Publishing = Field(default_factory=Publishing)
    schedule: Schedule | None = Field(default=None, description="Cron schedule of the table's deployment (none: on demand).")

    def policy(self, column: str) -> ColumnPolicy:
        return self.columns.get(column, ColumnPolicy())

    def learning_digest(self) -> str:
        """Hash of what shapes a trained model (column policies, budget, training, target): a model trained under
        another digest does not answer this spec, so an unchanged snapshot is re-sampled only under the same one."""
        import hashlib
        import json

        learning = {
            "columns": {k: v.model_dump() for k, v in sorted(self.columns.items())},
            "privacy": self.privacy.model_dump(exclude={"cap"}),
            "training": self.training.model_dump(exclude={"seed", "device"}),
            "target_column": self.target_column,
        }
        return hashlib.sha256(json.dumps(learning, sort_keys=True, default=str).encode()).hexdigest()

    @model_validator(mode="after")
    def _target_not_dropped(self) -> TableSpec:
        if self.target_column and self.policy(self.target_column).policy in ("drop", "fake"):
            raise ValueError(f"target_column {self.target_column!r} cannot be dropped or faked")
        dropped = [k for k in self.key_columns if self.policy(k).policy == "drop"]
        if dropped:
            raise ValueError(f"keys {dropped} are dropped: a key must be published (keep or fake it)")
        return self


def redact_url(url: str) -> str:
    """A URL safe to log: the password is replaced by ***."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable url>"


def _resolve_placeholders(text: str, where: Path) -> str:
    def substitute(match: re.Match[str]) -> str:
        name, default = match.group("name"), match.group("default")
        if name.startswith("secret:"):
            return _read_secret_block(name.removeprefix("secret:"), where)
        value = os.environ.get(name, default)
        if value is None:
            raise SpecError(f"{where}: environment variable {name} is not set (referenced as ${{{name}}})")
        return value

    return _PLACEHOLDER.sub(substitute, text)


def _read_secret_block(block: str, where: Path) -> str:
    try:
        from prefect.blocks.system import Secret

        return str(Secret.load(block).get())
    except Exception as exc:  # noqa: BLE001 - any failure means the secret is unavailable
        raise SpecError(f"{where}: cannot read Prefect Secret block {block!r}: {type(exc).__name__}") from None


def _reject_literal_passwords(raw: dict[str, Any], where: Path) -> None:
    holdout = raw.get("holdout") if isinstance(raw.get("holdout"), dict) else {}
    tables = {"source": raw.get("source"), "target": raw.get("target"), "holdout.table": holdout.get("table")}
    for section, table in tables.items():
        url = table.get("url") if isinstance(table, dict) else None
        if not isinstance(url, str) or "${" in url:
            continue  # placeholders are resolved from the environment or a secret block
        try:
            literal = make_url(url).password
        except ArgumentError:
            continue  # reported by the model with a better message
        if literal:
            raise SpecError(
                f"{where}: {section}.url holds a literal password; reference it as ${{ENV_VAR}} or ${{secret:BLOCK}}"
            )


def format_validation_error(exc: ValidationError, where: str) -> str:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "<root>"
        if err["type"] == "extra_forbidden":
            lines.append(f"  {loc}: unknown key (check the spelling; see `synthgate spec --help`)")
        else:
            lines.append(f"  {loc}: {err['msg']}")
    return f"{where}: invalid table spec:\n" + "\n".join(lines)


def load_spec(path: str | Path) -> TableSpec:
    """Read, resolve and validate a YAML table spec, or raise :class:`SpecError`."""
    where = Path(path)
    if not where.is_file():
        raise SpecError(f"spec file not found: {where}")
    try:
        raw = yaml.safe_load(where.read_text())
    except yaml.YAMLError as exc:
        raise SpecError(f"{where}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise SpecError(f"{where}: a table spec is a YAML mapping, got {type(raw).__name__}")
    _reject_literal_passwords(raw, where)
    return spec_from_dict(_resolve_tree(raw, where), str(where))


def _resolve_tree(node: Any, where: Path) -> Any:
    if isinstance(node, str):
        return _resolve_placeholders(node, where)
    if isinstance(node, dict):
        return {key: _resolve_tree(value, where) for key, value in node.items()}
    if isinstance(node, list):
        return [_resolve_tree(value, where) for value in node]
    return node


def spec_from_dict(data: dict[str, Any], where: str = "spec") -> TableSpec:
    try:
        return TableSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(format_validation_error(exc, where)) from None
