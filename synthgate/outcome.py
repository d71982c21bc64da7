"""What one refresh cost and produced: the privacy figures it reports and the summary it returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


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

    @classmethod
    def trained(cls, fit: Any) -> RunPrivacy:
        """From a :class:`~synthgate.generator.FitSummary` of this run."""
        return cls(fit.epsilon, fit.delta, fit.accounting, fit.epsilon, fit.engine)

    @classmethod
    def resampled(cls, catalog_row: dict[str, Any]) -> RunPrivacy:
        """From the catalog row of the published version whose model is re-sampled."""
        return cls(
            float(catalog_row["epsilon"]), float(catalog_row["delta"]), "reused", 0.0,
            resampled_from=catalog_row.get("resampled_from") or catalog_row["run_id"],
        )
