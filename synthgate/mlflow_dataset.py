"""The source table as an MLflow dataset input: MLflow has no SQL source, so a custom one for warehouse tables.

The source records the URL without credentials, the table and schema; the dataset records the snapshot
fingerprint as its digest and the column types as its schema. No rows, no values.
"""

from __future__ import annotations

import json
from typing import Any

from mlflow.data.dataset import Dataset
from mlflow.data.dataset_source import DatasetSource

from synthgate.spec import WarehouseTable, redact_url


def credential_free_url(url: str) -> str:
    """The URL without its password or any query argument that could carry a secret (:func:`redact_url`, dropping)."""
    return redact_url(url, drop=True)


class WarehouseTableSource(DatasetSource):
    """A table in a SQLAlchemy warehouse, named by a credential-free URL."""

    def __init__(self, url: str, table: str, db_schema: str | None = None) -> None:
        self.url = credential_free_url(url)
        self.table = table
        self.db_schema = db_schema

    @staticmethod
    def _get_source_type() -> str:
        return "warehouse_table"

    def load(self) -> Any:
        """Refuse: the real rows are never loaded back from MLflow."""
        raise NotImplementedError("the real table is governed: read it through synthgate's extract, not from MLflow")

    @staticmethod
    def _can_resolve(raw_source: Any) -> bool:
        return isinstance(raw_source, WarehouseTable)

    @classmethod
    def _resolve(cls, raw_source: Any) -> WarehouseTableSource:
        return cls(raw_source.url, raw_source.table, raw_source.db_schema)

    def to_dict(self) -> dict[str, Any]:
        """The source as MLflow stores it: credential-free URL, table and schema."""
        return {"url": self.url, "table": self.table, "schema": self.db_schema}

    @classmethod
    def from_dict(cls, source_dict: dict[Any, Any]) -> WarehouseTableSource:
        """The source back from the mapping :meth:`to_dict` made."""
        return cls(source_dict["url"], source_dict["table"], source_dict.get("schema"))


class WarehouseSnapshot(Dataset):
    """One extracted snapshot of a warehouse table: fingerprint as digest, column types as schema."""

    def __init__(self, source: WarehouseTableSource, name: str, fingerprint: str, columns: dict[str, str]):
        self._columns = columns
        self._fingerprint = fingerprint
        super().__init__(source=source, name=name, digest=fingerprint[:36])

    def _compute_digest(self) -> str:
        return self._fingerprint[:36]

    def to_dict(self) -> dict[str, str]:
        """MLflow's dataset fields, plus the schema and profile as JSON strings."""
        return super().to_dict() | {"schema": json.dumps(self.schema), "profile": json.dumps(self.profile)}

    @property
    def profile(self) -> Any | None:
        """The snapshot fingerprint only (no row count, which is not differentially private)."""
        return {"fingerprint": self._fingerprint}  # the row count is not DP: it stays out of MLflow

    @property
    def schema(self) -> Any | None:
        """The column names and their types."""
        return {"columns": [{"name": n, "type": t} for n, t in self._columns.items()]}


def log_source_dataset(table: WarehouseTable, fingerprint: str, columns: dict[str, str]) -> None:
    """Log the source snapshot as the active MLflow run's input dataset, context ``source``."""
    import mlflow

    source = WarehouseTableSource(table.url, table.table, table.db_schema)
    name = f"{table.db_schema}.{table.table}" if table.db_schema else table.table
    mlflow.log_input(WarehouseSnapshot(source, name, fingerprint, columns), context="source")
