"""What one refresh cost and produced: the privacy figures it reports, what its stages hand each other, and the
summary it returns."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from synthgate.evaluation.relations import Relations
    from synthgate.evaluation.scorecard import Evaluation
    from synthgate.gates import GateVerdict, Scores
    from synthgate.generator import DPSynthesizer
    from synthgate.generator.linked import LinkedSynthesizer
    from synthgate.profiling import ColumnProfile
    from synthgate.spec import TableSpec
    from synthgate.validation import ValidationOutcome
    from synthgate.warehouse.extract import Extract
    from synthgate.warehouse.publish import Published


@dataclass(frozen=True)
class RunPrivacy:
    """The privacy figures of one refresh.

    ``epsilon``/``delta`` are the guarantee of the published rows: the accountant's figure of the fit that trained
    their model. ``spent`` is what this run added to the ledger: the same figure when it trained, 0 when it
    re-sampled the model of an unchanged snapshot (post-processing of a DP output is free).
    """

    epsilon: float
    delta: float
    accounting: str
    spent: float
    engine: str | None = None  # the DP-SGD engine that trained the model
    resampled_from: str | None = None  # MLflow run whose model was re-sampled, if any
    unit: str | None = None  # the privacy unit's column: epsilon is per unit (None: per row)
    max_rows_per_unit: int = 0  # the most rows of one unit that trained (0 without a unit)

    @classmethod
    def trained(cls, fit: Any) -> RunPrivacy:
        """From a :class:`~synthgate.generator.FitSummary` of this run."""
        return cls(
            fit.epsilon,
            fit.delta,
            fit.accounting,
            fit.epsilon,
            fit.engine,
            unit=fit.unit,
            max_rows_per_unit=fit.max_rows_per_unit,
        )

    @property
    def protects(self) -> str:
        """What the epsilon protects: a unit with all its rows, or one row."""
        from synthgate.generator.units import protected_unit

        return protected_unit(self.unit, self.max_rows_per_unit)

    @classmethod
    def resampled(cls, catalog_row: dict[str, Any]) -> RunPrivacy:
        """From the catalog row of the published version whose model is re-sampled."""
        return cls(
            float(catalog_row["epsilon"]),
            float(catalog_row["delta"]),
            "reused",
            0.0,
            resampled_from=catalog_row.get("resampled_from") or catalog_row["run_id"],
            unit=catalog_row.get("privacy_unit"),
            max_rows_per_unit=catalog_row.get("max_rows_per_unit") or 0,
        )


@dataclass(frozen=True)
class RunSummary:
    """What a refresh's summary (the Prefect artifact) shows: aggregates only."""

    spec_name: str
    verdict: str  # PUBLISHED, REJECTED or FAILED
    source_table: str
    target_table: str
    epsilon_budget: float
    delta: float
    mlflow_run_id: str
    mlflow_link: str  # tracking.run_url(): a URL on a tracking server, else the `mlflow ui` command and the page
    epsilon_spent: float | None = None
    accounting: str | None = None
    rows_published: int | None = None
    scores: Scores | None = None
    verdicts: tuple[GateVerdict, ...] = ()
    error: str | None = None


@dataclass
class RefreshResult:
    """Everything one refresh got to, filled stage by stage: what the stages hand each other (real rows included:
    never persisted, never printed) and what is summarised on every way out (aggregates only)."""

    spec: TableSpec
    run_id: str
    tracking_uri: str
    trigger: str
    report_path: Path
    stage_seconds: dict[str, float] = field(default_factory=dict)
    source: Extract | None = field(default=None, repr=False)
    train: pd.DataFrame | None = field(default=None, repr=False)
    holdout: pd.DataFrame | None = field(default=None, repr=False)
    train_hashes: np.ndarray | None = field(default=None, repr=False)  # every training row's, once ``train`` is bounded
    profiles: list[ColumnProfile] = field(default_factory=list, repr=False)
    source_check: ValidationOutcome | None = field(default=None, repr=False)
    synthesizer: DPSynthesizer | None = field(default=None, repr=False)
    privacy: RunPrivacy | None = None
    synthetic: pd.DataFrame | None = field(default=None, repr=False)
    synthetic_check: ValidationOutcome | None = field(default=None, repr=False)
    evaluation: Evaluation | None = field(default=None, repr=False)
    verdicts: list[GateVerdict] = field(default_factory=list)
    model_version: str | None = None
    published: Published | None = None
    # A parent with its child tables (spec.children): one result per child and the linked generator on the parent's;
    # on a child's, its relations with the parent
    children: list[RefreshResult] = field(default_factory=list, repr=False)
    linked: LinkedSynthesizer | None = field(default=None, repr=False)
    relations: Relations | None = None

    def keep_evaluation_rows(self) -> None:
        """Once the model is trained (or loaded), keep of the real rows what the checks read: a bounded sample of the
        training and holdout rows and the hashes of every training row for the exact copies
        (:func:`~synthgate.evaluation.scorecard.training_rows_for_evaluation`). A 10M-row table's training rows are
        then not held while 10M synthetic rows are sampled and checked."""
        from synthgate.evaluation.scorecard import evaluation_rows, training_rows_for_evaluation

        assert self.train is not None and self.holdout is not None and self.synthesizer is not None
        unit, seed = self.spec.privacy.unit, self.spec.training.seed
        columns = self.synthesizer.learned
        self.train, self.train_hashes = training_rows_for_evaluation(self.train, columns=columns, unit=unit, seed=seed)
        self.holdout = evaluation_rows(self.holdout, unit=unit, seed=seed)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time a stage: its wall time goes to ``stage_seconds`` (the summary, the report, MLflow), added to the time of
        its earlier parts (the extract resumes after validation, to split the source)."""
        began = time.perf_counter()
        try:
            yield
        finally:
            self.stage_seconds[name] = round(self.stage_seconds.get(name, 0.0) + time.perf_counter() - began, 2)

    @property
    def rows(self) -> int | None:
        """How many synthetic rows were sampled (None before sampling)."""
        return None if self.synthetic is None else len(self.synthetic)

    @property
    def scores(self) -> Scores | None:
        """The aggregate scores (None before scoring)."""
        return None if self.evaluation is None else self.evaluation.scores

    @property
    def fingerprint(self) -> str:
        """The source snapshot's keyed fingerprint."""
        assert self.source is not None
        return self.source.fingerprint.digest

    @property
    def passed(self) -> bool:
        """Whether every gate passed."""
        return all(v.passed for v in self.verdicts)

    def summary(self, verdict: str, error: str | None = None) -> RunSummary:
        """The Prefect summary artifact's content."""
        from synthgate import tracking
        from synthgate.warehouse.engine import qualified

        try:
            link = tracking.run_url(self.tracking_uri, self.run_id)
        except Exception:  # noqa: BLE001 - a link is a convenience
            link = f"{self.tracking_uri}#run={self.run_id}"
        return RunSummary(
            spec_name=self.spec.name,
            verdict=verdict,
            source_table=qualified(self.spec.source),
            target_table=qualified(self.spec.target),
            epsilon_budget=self.spec.privacy.epsilon,
            delta=self.spec.privacy.delta,
            mlflow_run_id=self.run_id,
            mlflow_link=link,
            epsilon_spent=None if self.privacy is None else self.privacy.spent,
            accounting=None if self.privacy is None else self.privacy.accounting,
            rows_published=self.rows if self.published is not None else None,
            scores=self.scores,
            verdicts=tuple(self.verdicts),
            error=error,
        )

    def as_dict(self) -> dict[str, Any]:
        """The CLI's and the flow's return value: this table's (:meth:`table_dict`), the run's, and each child's."""
        from synthgate import tracking

        assert self.privacy is not None
        return (
            {"status": "published"}
            | self.table_dict()
            | {
                "epsilon_spent": round(self.privacy.spent, 4),
                "epsilon_guarantee": round(self.privacy.epsilon, 4),
                "epsilon_budget": self.spec.privacy.epsilon,
                "delta": self.privacy.delta,
                "accounting": self.privacy.accounting,
                "resampled_from": self.privacy.resampled_from,
                "mlflow_run_id": self.run_id,
                "mlflow_tracking_uri": tracking.safe_uri(self.tracking_uri),  # never a password
                "model_version": self.model_version,
                "stage_seconds": self.stage_seconds,
            }
            | ({"children": [c.table_dict() for c in self.children]} if self.children else {})
        )

    def table_dict(self) -> dict[str, Any]:
        """Where this table went, its scores, gates and report (a linked refresh's child: its part of the return)."""
        assert self.published is not None and self.scores is not None
        scores = self.scores
        return {
            "source_table": self.spec.source.table,
            "published_table": self.published.name,
            "published_version": self.published.version,
            "rows_published": self.rows,
            "quality_score": round(scores.quality, 4),
            "column_shapes": round(scores.column_shapes, 4),
            "column_pair_trends": round(scores.column_pair_trends, 4),
            "tstr_auc": None if scores.tstr is None else round(scores.tstr, 4),
            "trtr_auc": None if scores.trtr is None else round(scores.trtr, 4),
            "dcr_share": round(scores.dcr_share, 4),
            "mia_auc": round(scores.mia_auc, 4),
            "risks": {k: round(getattr(scores, f"{k}_risk"), 4) for k in ("singling_out", "linkability", "inference")},
            "gates": {v.name: v.passed for v in self.verdicts},
            "report": str(self.report_path.resolve()),
        } | ({"relations": {k: round(v, 4) for k, v in self.relations.as_metrics().items()}} if self.relations else {})
