"""Helpers shared by the publishing tests (imported by them and by the subprocesses they start)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from synthgate.schema import Column, ColumnKind
from synthgate.spec import WarehouseTable
from synthgate.warehouse import governance
from synthgate.warehouse.publish import Published, publish

COLUMNS = [
    Column("marker", ColumnKind.INTEGER, "BIGINT"),
    Column("score", ColumnKind.FLOAT, "FLOAT"),
    Column("label", ColumnKind.CATEGORICAL, "TEXT"),
    Column("seen", ColumnKind.DATETIME, "TIMESTAMP"),
    Column("flag", ColumnKind.BOOLEAN, "BOOLEAN"),
    Column("extra", ColumnKind.CATEGORICAL, "TEXT"),
]


def version_frame(marker: int, rows: int, extra_column: bool = False) -> pd.DataFrame:
    """Every row carries ``marker``, so a reader can tell which version (and whether all of it) it saw."""
    rng = np.random.default_rng(marker)
    frame = pd.DataFrame(
        {
            "marker": np.full(rows, marker),
            "score": rng.normal(size=rows),
            "label": pd.Series(rng.choice(["a", "b", 'c,"quoted"', None], rows), dtype=object),
            "seen": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 10**6, rows), unit="s"),
            "flag": pd.array(rng.choice([True, False, None], rows), dtype="boolean"),
        }
    )
    if extra_column:
        frame["extra"] = "x"
    return frame


def catalog_writer(target: WarehouseTable, run_id: str, rows: int, parent: str | None = None, hold=None):
    """A publish's in-transaction callback: the version's catalog row (a child's names its ``parent``), then
    ``hold(conn)`` (to crash or stall the transaction there)."""

    def record(conn, version: int) -> None:
        governance.catalog_row(
            conn,
            run_id=run_id if parent is None else f"{run_id}/{target.table}",
            spec_name="people",
            published_table=target.table,
            rows=rows,
            source_table="people",
            source_fingerprint="f" * 64,
            epsilon=1.0,
            delta=1e-5,
            gates={"quality": True},
            scores={"quality": 0.9},
            mlflow_run_id=run_id,
            model_name="m",
            model_version=str(version),
            trigger="test",
            version=version,
            version_table=f"{target.table}__v{version}",
            parent_table=parent,
        )
        if hold is not None:
            hold(conn)

    return record


def publish_version(target: WarehouseTable, frame: pd.DataFrame, run_id: str, keep: int = 3, hold=None) -> Published:
    """Publish with a catalog row; ``hold(conn)`` runs inside the transaction (to crash or stall it there)."""
    return publish(
        target,
        frame,
        COLUMNS,
        run_id,
        catalog_writer(target, run_id, len(frame), hold=hold),
        keep_versions=keep,
        comment=lambda v: f"version {v} of {run_id}",
        trigger="test",
    )
