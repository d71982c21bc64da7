"""The table spec: one YAML file per governed table, validated by pydantic.

Credentials never live in the YAML: the password of a URL, and every query parameter named like a credential
(``password``, ``sslkey``, ``token``, ``api_key``, ...), must be a reference, ``${ENV_VAR}`` (without a default) or
``${secret:BLOCK_NAME}`` (a Prefect Secret block); anything else is refused when the spec is loaded, naming the section
and the parameter, never the value. Other placeholders may have a default (``${ENV_VAR:-default}``). References are
resolved when the spec is loaded (a value in a credential position is percent-encoded into the URL), and
:func:`redact_url` is the one function that hides them again wherever a URL is written (logs, errors, MLflow, lineage).

The YAML is bounded before it is resolved: its size, its nesting depth, and no aliases (``*name``), so a hostile spec
("billion laughs") is refused in milliseconds instead of expanding in memory; a key given twice is refused too
(plain YAML would keep the last ``epsilon:`` silently).
"""

from __future__ import annotations

import os
import re
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin
from urllib.parse import quote, unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from synthgate.errors import SpecError
from synthgate.secret_blocks import read_secret_block

_PLACEHOLDER = re.compile(r"\$\{(?P<name>[^}:]+(?::(?!-)[^}:]+)?)(?::-(?P<default>[^}]*))?\}")

#: Bounds of a spec file, checked before anything in it is resolved or validated.
MAX_SPEC_BYTES = 1_000_000
MAX_SPEC_DEPTH = 20
#: Where to read about spec keys, for messages.
SPEC_HELP = 'README.md, section "A table spec"'

#: Query parameters whose value is a credential (or a path to key material): references only, masked when shown.
_CREDENTIAL_PARAM = re.compile(r"pass|pwd|secret|token|key|credential|auth|signature|private|cookie|session", re.I)
#: Query parameters shown as they are by :func:`redact_url`; the value of every other one is masked.
_HARMLESS_PARAMS = frozenset(
    {
        "sslmode",
        "sslrootcert",
        "sslcert",
        "sslcrl",
        "connect_timeout",
        "timeout",
        "application_name",
        "charset",
        "client_encoding",
        "driver",
        "target_session_attrs",
        "gssencmode",
        "keepalives",
        "keepalives_idle",
        "keepalives_interval",
        "keepalives_count",
        "timezone",
        "isolation_level",
        "autocommit",
        "mode",
        "check_same_thread",
        "uri",
        "encrypt",
        "trustservercertificate",
        "warehouse",
        "role",
        "account",
        "region",
        "project",
        "schema",
        "database",
        "dbname",
        "host",
        "port",
        "location",
        "dataset",
    }
)
_MASK = "***"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class WarehouseTable(_Frozen):
    """A table in a warehouse reachable through a SQLAlchemy URL."""

    url: str = Field(description="SQLAlchemy URL; credentials only through ${ENV} or ${secret:NAME}.")
    table: str = Field(min_length=1, description="Table name (quoted by SQLAlchemy, any characters allowed).")
    db_schema: str | None = Field(default=None, alias="schema", description="Database schema, if any.")

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True, allow_inf_nan=False)

    @field_validator("url")
    @classmethod
    def _parseable(cls, url: str) -> str:
        try:
            make_url(url)
        except ArgumentError:
            raise ValueError("not a SQLAlchemy URL (dialect+driver://user@host:port/database)") from None
        except ValueError:  # a port that is no number: what follows the host's colon, maybe part of a password
            raise ValueError(
                "not a SQLAlchemy URL: its port is no number (a password holding '@' or ':' must be percent-encoded, "
                "or given as ${ENV_VAR}, which is encoded for you)"
            ) from None
        return url

    @property
    def display_url(self) -> str:
        """The URL with its password and secret query values masked (:func:`redact_url`)."""
        return redact_url(self.url)

    @property
    def qualified_name(self) -> str:
        """``schema.table``, or the table alone when no schema is given."""
        return f"{self.db_schema}.{self.table}" if self.db_schema else self.table

    def identity(self) -> tuple[str, ...]:
        """Which object this names, whatever the driver, credentials or default schema spelling."""
        url = make_url(self.url)
        backend = url.get_backend_name()
        if backend == "sqlite":
            database = str(Path(url.database).resolve()) if url.database and url.database != ":memory:" else ""
            return (backend, database, self.db_schema or "main", self.table)
        default_schema = {"postgresql": "public", "mysql": url.database, "mariadb": url.database}.get(backend)
        host = (url.host or "localhost").lower().replace("127.0.0.1", "localhost")
        return (
            backend,
            host,
            str(url.port or ""),
            url.database or "",
            self.db_schema or default_schema or "",
            self.table,
        )


class TargetTable(WarehouseTable):
    """Where the synthetic copy is published (versions behind a view, the catalog and the ledger live there too)."""

    create_schema: bool = Field(
        default=False,
        description="Create target.schema when it does not exist (PostgreSQL, MySQL/MariaDB); default: refuse the "
        "refresh, naming the schema, before any budget is spent.",
    )


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
KEY_KINDS = ("id", "uuid")  # fake kinds of key columns (the privacy unit is published as one)


#: The holdout split's scheme, part of :meth:`TableSpec.learning_digest`: 2 since each row's hash is hashed again
#: under the key (pandas keys text alone, and a table of numbers only was split by an unkeyed hash).
SPLIT_SCHEME = 2


class ColumnPolicy(_Frozen):
    """What happens to one column. Declared domains are public knowledge and cost no budget."""

    policy: ColumnPolicyName | None = Field(
        default=None,
        description="keep, drop, categorical or fake; unset: decided at each refresh from the column's name and SQL "
        "type (`synthgate profile SPEC --write` records a reviewed policy).",
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
    preprocessing_share: float | None = Field(
        default=None,
        gt=0,
        lt=0.8,
        description="Share of the zCDP budget for DP bounds, bins and category lists; unset: 0.3, up to 0.5 on wide "
        "tables (their many columns need the releases more than the network needs the rest).",
    )
    unit: str | None = Field(
        default=None,
        description="The column that identifies a person who may own several rows (customer_id, patient_id): epsilon "
        "and delta then protect each such unit with all its rows. Unset: one row = one individual.",
    )
    max_rows_per_unit: int | None = Field(
        default=None,
        ge=1,
        le=1_000_000,
        description="Most rows of one unit used (a larger unit keeps this many, picked at random); unset: chosen "
        "inside the budget, so that 99% of the units keep every row.",
    )

    @model_validator(mode="after")
    def _bound_needs_unit(self) -> PrivacyBudget:
        if self.max_rows_per_unit is not None and self.unit is None:
            raise ValueError("privacy.max_rows_per_unit needs privacy.unit (the column that identifies a person)")
        return self


class Training(_Frozen):
    """Generator training; every field is optional and chosen from the budget when absent."""

    epochs: int | None = Field(default=None, ge=1, le=1000)
    batch_size: int | None = Field(default=None, ge=8, le=1_000_000, description="Expected Poisson batch size.")
    noise_multiplier: float | None = Field(default=None, gt=0, description="Override; must fit the budget.")
    max_grad_norm: float = Field(default=1.0, gt=0)
    learning_rate: float = Field(default=1e-2, gt=0)
    embedding_dim: int = Field(default=16, ge=2, le=256)
    hidden_dim: int = Field(
        default=32, ge=8, le=2048, description="Width of each column head (small heads suit DP noise)."
    )
    numeric_bins: int = Field(default=24, ge=2, le=256)
    target_weight: float = Field(
        default=1.0,
        ge=1,
        le=20,
        description="Weight of the target column's loss: a larger share of each clipped gradient.",
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
        default="fast",
        description="DP-SGD engine: built-in ghost clipping (fast) or Opacus's PrivacyEngine (reference).",
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
        default=0.8, ge=0, le=2, description="Mean NNDR to training over mean NNDR to holdout (ideal 1)."
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
    max_children_tvd_excess: float = Field(
        default=0.15,
        ge=0,
        le=1,
        description="Linked tables: children-per-parent TVD (synthetic vs training) above the holdout's.",
    )
    max_dangling_excess: float = Field(
        default=0.05,
        ge=0,
        le=1,
        description="Linked tables: share of child rows naming no parent above the real share (referential integrity).",
    )
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
    timezone: str = Field(
        default="UTC", description="IANA time zone the cron expression is read in, e.g. Europe/Berlin."
    )
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
        day, weekday = cron.split()[2].upper(), cron.split()[4].upper()
        if "W" in day or "L" in weekday:  # cronsim reads them; the croniter of Prefect's scheduler refuses them
            raise ValueError(
                f"cron {cron!r}: Prefect's scheduler reads no W in the day field (nearest weekday) nor L in the "
                "weekday field (last of the month): give the days or weekdays themselves"
            )
        return cron

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, timezone: str) -> str:
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {timezone!r} (use an IANA name such as UTC or Europe/Berlin)"
            ) from None
        return timezone


def _plain_name(name: str) -> str:
    """``name`` with every character but letters, digits, _ and - replaced by _ (a child spec's name, and what tells
    two child tables apart in suites, metrics and reports)."""
    return re.sub(r"[^A-Za-z0-9_\-]", "_", name)


class ChildTable(_Frozen):
    """A child table published with its parent (the spec's own table) as one version: its rows refer to a parent row
    through ``key``, and the parent's key (``privacy.unit``) is the privacy unit of both (one parent with all its
    children)."""

    source: WarehouseTable
    target: TargetTable = Field(
        description="Where the synthetic children go: the parent target's warehouse and schema."
    )
    key: str = Field(min_length=1, description="The child's foreign key column naming its parent's privacy.unit.")
    columns: dict[str, ColumnPolicy] = Field(default_factory=dict)
    target_column: str | None = Field(default=None, description="The child's label for train-synthetic-test-real.")
    order_by: str | None = Field(
        default=None,
        description="A column that orders a parent's children (a timestamp): the model learns each child with its "
        "place in that order, and the synthetic children of a parent follow it.",
    )

    @property
    def name(self) -> str:
        """The child's name in suites, metrics and reports: its target table."""
        return self.target.table


class TableSpec(_Frozen):
    """One governed table: where it comes from, where its synthetic copy goes, and under what budget."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True, allow_inf_nan=False)

    name: str = Field(
        pattern=r"^[A-Za-z][A-Za-z0-9_\-]*$", description="Short name: experiment, suite and model names."
    )
    source: WarehouseTable
    target: TargetTable
    holdout: Holdout = Field(default_factory=lambda: Holdout(fraction=0.2))
    columns: dict[str, ColumnPolicy] = Field(default_factory=dict)
    target_column: str | None = Field(default=None, description="Label for train-synthetic-test-real checks.")
    # YAML `keys:`; the attribute is not called `keys`, which would shadow the mapping protocol (dict(spec)).
    key_columns: list[str] = Field(
        default_factory=list,
        alias="keys",
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
    schedule: Schedule | None = Field(
        default=None, description="Cron schedule of the table's deployment (none: on demand)."
    )
    children: list[ChildTable] = Field(
        default_factory=list,
        description="Child tables trained and published with this one (a customer's orders, their support tickets): "
        "one version, one budget, privacy.unit the parent's key (one customer with all their rows in every table).",
    )

    def policy(self, column: str) -> ColumnPolicy:
        """The column's declared policy, else an empty one (decided at each refresh from its name and SQL type)."""
        return self.columns.get(column, ColumnPolicy())

    def learning_digest(self) -> str:
        """Hash of what shapes a trained model (column policies, budget, training, target): a model trained under
        another digest does not answer this spec, so an unchanged snapshot is re-sampled only under the same one."""
        import hashlib
        import json

        learning: dict[str, Any] = {
            "columns": {k: v.model_dump() for k, v in sorted(self.columns.items())},
            "privacy": self.privacy.model_dump(exclude={"cap"}),
            "training": self.training.model_dump(exclude={"seed", "device"}),
            "target_column": self.target_column,
        }
        if self.children:  # absent otherwise: the digests of specs without children stay as they were
            learning["children"] = [c.model_dump(exclude={"source", "target"}) for c in self.children]
        # the holdout split's scheme: a model trained under an earlier one is retrained, not re-sampled (scored against
        # today's holdout, which partly held its training rows, its privacy scores would read safer than they are)
        learning["split"] = SPLIT_SCHEME
        return hashlib.sha256(json.dumps(learning, sort_keys=True, default=str).encode()).hexdigest()

    @model_validator(mode="after")
    def _target_not_dropped(self) -> TableSpec:
        if self.target_column and self.policy(self.target_column).policy in ("drop", "fake"):
            raise ValueError(f"target_column {self.target_column!r} cannot be dropped or faked")
        dropped = [k for k in self.key_columns if self.policy(k).policy == "drop"]
        if dropped:
            raise ValueError(f"keys {dropped} are dropped: a key must be published (keep or fake it)")
        return self

    @model_validator(mode="after")
    def _unit_is_faked(self) -> TableSpec:
        """The privacy unit identifies a person: it is published as a fake key (``fake: id`` unless another key kind is
        declared), never learned, dropped or kept as it is."""
        unit = self.privacy.unit
        if unit is None:
            return self
        if unit == self.target_column:
            raise ValueError(f"privacy.unit {unit!r} is the target_column: the unit identifies a person, not a label")
        if self.training.engine == "opacus":
            raise ValueError("privacy.unit needs training.engine 'fast' (Opacus clips rows, not units)")
        declared = self.policy(unit)
        if declared.policy not in (None, "fake") or (declared.fake is not None and declared.fake not in KEY_KINDS):
            raise ValueError(
                f"privacy.unit {unit!r} is declared {declared.policy or ''} {declared.fake or ''}".rstrip()
                + ": the unit column is published as a fake key; declare it 'policy: fake, fake: id' (or uuid) "
                "or leave it undeclared"
            )
        return self

    @model_validator(mode="after")
    def _children_link_to_the_unit(self) -> TableSpec:
        """A child names its parent through the parent's key, which is the privacy unit; both tables are published in
        one transaction, so in one warehouse and schema; the holdout is split by parent, so it is a fraction."""
        if not self.children:
            return self
        if self.privacy.unit is None:
            raise ValueError(
                "children need privacy.unit: the parent's key column, which the children's key refers to (one parent "
                "with all its children is the privacy unit)"
            )
        if self.holdout.table is not None:
            raise ValueError("linked tables split their holdout by parent: use holdout.fraction, not holdout.table")
        names = [_plain_name(c.target.table) for c in self.children]
        sources = [self.source.identity(), *(c.source.identity() for c in self.children)]
        for child in self.children:
            if (child.target.url, child.target.db_schema) != (self.target.url, self.target.db_schema):
                raise ValueError(
                    f"child target {child.target.table!r} must be in the parent target's warehouse and schema (both "
                    "are published in one transaction): give it the same url and schema as target"
                )
            if child.target.table == self.target.table:
                raise ValueError(f"the child's target.table {child.target.table!r} is the parent's target.table")
            if names.count(_plain_name(child.target.table)) > 1:
                raise ValueError(
                    f"two children publish to target.table {child.target.table!r} (or to a name that differs only in "
                    "characters other than letters, digits, _ and -, which suites, metrics and reports replace with "
                    "_): give each its own"
                )
            if sources.count(child.source.identity()) > 1:
                raise ValueError(
                    f"child source {child.source.table!r} is also read as the parent or as another child: one row "
                    "would then belong to two units (an employee and their manager, a transfer's sender and "
                    "receiver) and be protected at a multiple of epsilon. Link each source table once"
                )
            if child.target_column == child.key:
                raise ValueError(f"the child's target_column {child.key!r} is its key")
            order_policy = child.columns.get(child.order_by or "", ColumnPolicy()).policy
            if child.order_by is not None and (child.order_by == child.key or order_policy in ("drop", "fake")):
                raise ValueError(
                    f"the child's order_by {child.order_by!r} must be a learned column (not its key, dropped or faked)"
                )
            self.child_spec(child)  # the child's own checks: its key is faked, its target is not a real table
        return self

    def child_spec(self, child: ChildTable) -> TableSpec:
        """The child as a table spec of its own (its suites, extract, checks and scores): the parent's budget, gates
        and training, its key the privacy unit."""
        return TableSpec(
            name=_plain_name(f"{self.name}-{child.name}"),
            source=child.source,
            target=child.target,
            holdout=self.holdout,
            columns=child.columns,
            target_column=child.target_column,
            privacy=self.privacy.model_copy(update={"unit": child.key}),
            training=self.training,
            gates=self.gates,
            chunk_size=self.chunk_size,
            publishing=self.publishing,
        )

    @model_validator(mode="after")
    def _target_is_publishable(self) -> TableSpec:
        """The warehouses publishing is built and tested for: DuckDB's SQL lacks what the catalog's tables use (an
        auto-increment key, ``at`` as a column name), so a DuckDB target is refused here, before anything runs."""
        for target in (self.target, *(c.target for c in self.children)):
            if make_url(target.url).get_backend_name() == "duckdb":
                raise ValueError(
                    f"target {target.table!r} is in DuckDB, which Synthgate reads from but does not publish to: "
                    "publish to PostgreSQL, SQLite or MySQL/MariaDB"
                )
        return self

    @model_validator(mode="after")
    def _target_is_not_a_real_table(self) -> TableSpec:
        """Publishing replaces the target: it must never be the source or the holdout table."""
        target = self.target.identity()
        for role, table in (("source", self.source), ("holdout.table", self.holdout.table)):
            if table is not None and table.identity() == target:
                raise ValueError(
                    f"target and {role} are the same table ({table.qualified_name}): publishing would replace the real "
                    "table. Give the target another name or schema"
                )
        return self


def is_credential_param(name: str) -> bool:
    """Whether a URL query parameter is named like a credential (password, sslkey, token, api_key, ...)."""
    return bool(_CREDENTIAL_PARAM.search(str(name)))


def _shown_param(name: str) -> bool:
    return name.lower() in _HARMLESS_PARAMS and not is_credential_param(name)


def redact_url(url: Any, *, drop: bool = False) -> str:
    """The one way a URL is written anywhere (logs, errors, MLflow, lineage, catalog, comments, Prefect).

    The password and the value of every query parameter except a few harmless ones (``sslmode``,
    ``connect_timeout``, ...) become ``***``; with ``drop`` they are left out instead (a credential-free URL). A plain
    path comes back unchanged; a string that cannot be parsed as a URL comes back as ``<unparseable url>``.
    """
    if isinstance(url, URL):
        url = url.render_as_string(hide_password=False)
    url = str(url)
    if "://" not in url:
        return url if "@" not in url and "?" not in url else "<unparseable url>"
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return _redact_generic(url, drop)
    host, password = parsed.host, parsed.password
    if host and "@" in host:  # an unescaped @ in the password: what precedes the last @ is password too
        host, password = host.rsplit("@", 1)[1], "x"
    base = URL.create(
        parsed.drivername,
        parsed.username,
        None if drop or password is None else "x",
        host,
        parsed.port,
        parsed.database,
    ).render_as_string(hide_password=True)
    pairs = []
    for key, value in parsed.query.items():
        for item in value if isinstance(value, tuple) else (value,):
            if _shown_param(key):
                pairs.append(f"{quote(key, safe='')}={quote(item, safe='')}")
            elif not drop:
                pairs.append(f"{quote(key, safe='')}={_MASK}")
    return base + ("?" + "&".join(pairs) if pairs else "")


def _redact_generic(url: str, drop: bool) -> str:
    """:func:`redact_url` for URLs SQLAlchemy cannot parse (``http://``, ``databricks-uc://``, ...)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:{_MASK}@{hostport}" if ":" in userinfo and not drop else f"{user}@{hostport}"
    pairs = []
    for pair in parts.query.split("&") if parts.query else []:
        key, sep, _ = pair.partition("=")
        if sep and _shown_param(unquote(key)):
            pairs.append(pair)
        elif not drop:
            pairs.append(f"{key}={_MASK}" if sep else _MASK)
    text = f"{parts.scheme}://{netloc}{parts.path}"
    return text + ("?" + "&".join(pairs) if pairs else "") + (f"#{_MASK}" if parts.fragment and not drop else "")


def url_secrets(url: str) -> list[str]:
    """The secrets of a URL (password, masked query values), as given and percent-encoded, longest first."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return []
    values = [parsed.password or ""]
    if parsed.host and "@" in parsed.host:
        values.append(parsed.host.rsplit("@", 1)[0])
    for key, value in parsed.query.items():
        if not _shown_param(key):
            values += list(value) if isinstance(value, tuple) else [value]
    found = {v for value in values if value for v in (value, quote(value, safe=""), quote(value))}
    return sorted(found, key=len, reverse=True)


def scrub(text: str, url: str) -> str:
    """``text`` (say a driver's error, which may echo its DSN) with every secret of ``url`` replaced by ``***``."""
    for secret in url_secrets(url):
        text = text.replace(secret, _MASK)
    return text


# -- loading ------------------------------------------------------------------------------------------------------

#: Where a spec holds URLs, and the section name used in messages (a child's: :func:`_url_section`).
_URL_PATHS = {("source", "url"): "source", ("target", "url"): "target", ("holdout", "table", "url"): "holdout.table"}


def _url_section(path: tuple[Any, ...]) -> str | None:
    """The section name of the URL at ``path`` in a spec's tree (``children.0.source``), None where none is."""
    if path in _URL_PATHS:
        return _URL_PATHS[path]
    if len(path) == 4 and path[0] == "children" and isinstance(path[1], int) and path[3] == "url":
        return f"children.{path[1]}.{path[2]}" if path[2] in ("source", "target") else None
    return None


_TOKEN = re.compile(r"sgref(\d+)ref")
_REFERENCE_HINT = "give it as ${ENV_VAR} (without a default) or ${secret:BLOCK}"


def _placeholder_value(match: re.Match[str], where: Path) -> str:
    name, default = match.group("name"), match.group("default")
    if name.startswith("secret:"):
        return _read_secret_block(name.removeprefix("secret:"), where)
    value = os.environ.get(name, default)
    if value is None:
        raise SpecError(f"{where}: environment variable {name} is not set (referenced as ${{{name}}})")
    return value


def _resolve_placeholders(text: str, where: Path) -> str:
    return _PLACEHOLDER.sub(lambda match: _placeholder_value(match, where), text)


def _read_secret_block(block: str, where: Path) -> str:
    try:
        return read_secret_block(block)
    except Exception as exc:  # noqa: BLE001 - any failure means the secret is unavailable
        raise SpecError(f"{where}: cannot read Prefect Secret block {block!r}: {type(exc).__name__}") from None


def _credential_slots(url: str) -> list[tuple[str, str]] | None:
    """(what, value) of each credential position of ``url``: the password and credential-like query values."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return None
    password = parsed.password
    if parsed.host and "@" in parsed.host:  # an unescaped @: the password runs on to the last @
        password = f"{password or ''}@{parsed.host.rsplit('@', 1)[0]}"
    slots = [("password", password)] if password else []
    for key, value in parsed.query.items():
        if is_credential_param(key):
            slots += [
                (f"value of query parameter {key!r}", item)
                for item in (value if isinstance(value, tuple) else (value,))
                if item
            ]
    return slots


def _tokenised(url: str, with_defaults: bool) -> tuple[str, list[re.Match[str]]]:
    """``url`` with each placeholder replaced by a token ``sgref<i>ref`` (or, ``with_defaults``, by its default)."""
    found = list(_PLACEHOLDER.finditer(url))
    index = {match.start(): i for i, match in enumerate(found)}

    def token(match: re.Match[str]) -> str:
        if with_defaults and match.group("default") is not None:
            return match.group("default")
        return f"sgref{index[match.start()]}ref"

    return _PLACEHOLDER.sub(token, url), found


def _check_url_credentials(url: str, section: str, where: Path) -> None:
    """Refuse a credential written in the spec: a literal, part literal, or a reference with a literal default."""
    for with_defaults in (False, True):
        tokenised, found = _tokenised(url, with_defaults)
        for what, value in _credential_slots(tokenised) or []:
            token = _TOKEN.fullmatch(value)
            if token is None and not with_defaults:
                raise SpecError(f"{where}: {section}.url holds a literal {what} (a credential): {_REFERENCE_HINT}")
            if token is None:
                raise SpecError(
                    f"{where}: {section}.url takes its {what} (a credential) from the literal default of a "
                    f"${{NAME:-...}} placeholder: {_REFERENCE_HINT}"
                )
            match = found[int(token.group(1))]
            if match.group("default") is not None:
                raise SpecError(
                    f"{where}: {section}.url gives its {what} (a credential) as ${{{match.group('name')}:-...}}, "
                    f"with a literal default: {_REFERENCE_HINT}"
                )


def _reject_literal_passwords(raw: dict[str, Any], where: Path) -> None:
    paths: list[tuple[Any, ...]] = list(_URL_PATHS)
    children = raw.get("children")
    if isinstance(children, list):
        paths += [("children", i, part, "url") for i in range(len(children)) for part in ("source", "target")]
    for path in paths:
        url = _at(raw, path)
        section = _url_section(path)
        if isinstance(url, str) and section is not None:
            _check_url_credentials(url, section, where)


def _at(tree: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        if isinstance(tree, dict):
            tree = tree.get(key)
        elif isinstance(tree, list) and isinstance(key, int) and 0 <= key < len(tree):
            tree = tree[key]
        else:
            return None
    return tree


def _resolve_url(url: str, where: Path) -> str:
    """Resolve a URL's placeholders; a reference that is a whole password or query value is percent-encoded, so
    a secret holding ``@``, ``/``, ``?`` or ``&`` stays the password (and is masked) instead of becoming the host."""
    tokenised, found = _tokenised(url, with_defaults=False)
    encoded: set[int] = set()
    try:
        parsed = make_url(tokenised)
    except (ArgumentError, ValueError):
        parsed = None
    if parsed is not None:
        values = [parsed.password or ""]
        for value in parsed.query.values():
            values += list(value) if isinstance(value, tuple) else [value]
        encoded = {int(token.group(1)) for value in values if (token := _TOKEN.fullmatch(value))}
    index = {match.start(): i for i, match in enumerate(found)}

    def substitute(match: re.Match[str]) -> str:
        value = _placeholder_value(match, where)
        return quote(value, safe="") if index[match.start()] in encoded else value

    return _PLACEHOLDER.sub(substitute, url)


class _Refused(Exception):
    """A spec outside the bounds of :class:`_BoundedLoader`."""


class _BoundedLoader(yaml.SafeLoader):
    """``yaml.safe_load`` without aliases (no "billion laughs"), with a bounded nesting depth and unique keys."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            line = self.peek_event().start_mark.line + 1
            raise _Refused(f"YAML aliases (*name, line {line}) are not allowed in a table spec: write the value out")
        self._depth += 1
        try:
            if self._depth > MAX_SPEC_DEPTH:
                line = self.peek_event().start_mark.line + 1
                raise _Refused(f"nested deeper than {MAX_SPEC_DEPTH} levels (line {line}): a table spec is shallow")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        """A mapping whose keys are given once: plain YAML keeps the last of two ``epsilon:`` keys silently, and a
        spec must mean what its reviewer reads."""
        mapping = super().construct_mapping(node, deep=deep)
        if len(mapping) < len(node.value):
            seen: set[Any] = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                if key in seen:
                    line = key_node.start_mark.line + 1
                    raise _Refused(f"duplicate key {str(key)[:80]!r} (line {line}): give each key once")
                seen.add(key)
        return mapping


def read_yaml(where: Path) -> Any:
    """A spec file's YAML, unresolved (``${...}`` as written), or :class:`SpecError`: at most ``MAX_SPEC_BYTES`` of
    UTF-8, no aliases, bounded nesting, unique keys; errors name the problem and its place, never a line of it."""
    try:
        with where.open("rb") as stream:
            data = stream.read(MAX_SPEC_BYTES + 1)
    except OSError as exc:
        raise SpecError(f"{where}: cannot read the spec: {exc.strerror or type(exc).__name__}") from None
    if len(data) > MAX_SPEC_BYTES:
        raise SpecError(f"{where}: larger than {MAX_SPEC_BYTES // 1000} kB: a table spec is a short YAML file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(f"{where}: not UTF-8 text (byte {exc.start})") from None
    loader = _BoundedLoader(text)
    try:
        return loader.get_single_data()
    except _Refused as exc:
        raise SpecError(f"{where}: {exc}") from None
    except yaml.MarkedYAMLError as exc:  # the problem and where, never the snippet (it may hold a literal password)
        mark = exc.problem_mark
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise SpecError(f"{where}: not valid YAML: {exc.problem or exc.context or 'unreadable'}{at}") from None
    except yaml.YAMLError as exc:
        raise SpecError(f"{where}: not valid YAML ({type(exc).__name__})") from None
    except (ValueError, OverflowError, RecursionError) as exc:  # e.g. an integer of 10,000 digits, a 13th month
        raise SpecError(f"{where}: not valid YAML: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}") from None
    finally:
        loader.dispose()


def _model_in(annotation: Any) -> tuple[type[BaseModel] | None, bool]:
    """The pydantic model an annotation holds, and whether a mapping key comes before it (``dict[str, Model]``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    keyed = get_origin(annotation) is dict
    for arg in get_args(annotation)[1:] if keyed else get_args(annotation):
        model, inner = _model_in(arg)
        if model is not None:
            return model, keyed or inner
    return None, False


def allowed_keys(loc: tuple[Any, ...]) -> list[str] | None:
    """The keys a spec allows in the section holding ``loc`` (a pydantic error location), or None if unknown."""
    model: type[BaseModel] = TableSpec
    parts = list(loc[:-1])
    while parts:
        fields = {field.alias or name: field for name, field in model.model_fields.items()}
        field = fields.get(str(parts.pop(0)))
        found, keyed = _model_in(field.annotation) if field is not None else (None, False)
        if found is None:
            return None
        if keyed:
            if not parts:
                return None
            parts.pop(0)
        model = found
    return sorted(field.alias or name for name, field in model.model_fields.items())


def format_validation_error(exc: ValidationError, where: str) -> str:
    """One line: every problem by its location, never the offending value."""
    problems = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "<root>"
        if err["type"] == "extra_forbidden":
            keys = allowed_keys(tuple(err["loc"]))
            allowed = f"allowed here: {', '.join(keys)}; " if keys else ""
            problems.append(f"{loc}: unknown key (check the spelling; {allowed}see {SPEC_HELP})")
        else:
            problems.append(f"{loc}: {' '.join(err['msg'].split())}")
    return f"{where}: invalid table spec: " + "; ".join(problems)


def load_spec(path: str | Path) -> TableSpec:
    """Read, bound, resolve and validate a YAML table spec, or raise :class:`SpecError` (one line)."""
    where = Path(path)
    if not where.is_file():
        raise SpecError(f"spec file not found: {where}")
    raw = read_yaml(where)
    if not isinstance(raw, dict):
        raise SpecError(f"{where}: a table spec is a YAML mapping, got {type(raw).__name__}")
    _reject_literal_passwords(raw, where)
    return spec_from_dict(_resolve_tree(raw, where), str(where))


def _resolve_tree(node: Any, where: Path, path: tuple[Any, ...] = ()) -> Any:
    if isinstance(node, str):
        return _resolve_url(node, where) if _url_section(path) is not None else _resolve_placeholders(node, where)
    if isinstance(node, dict):
        return {key: _resolve_tree(value, where, (*path, key)) for key, value in node.items()}
    if isinstance(node, list):
        return [_resolve_tree(value, where, (*path, i)) for i, value in enumerate(node)]
    return node


def spec_from_dict(data: dict[str, Any], where: str = "spec") -> TableSpec:
    """Validate a spec mapping; a validation error becomes a :class:`SpecError` naming ``where``."""
    try:
        return TableSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(format_validation_error(exc, where)) from None
