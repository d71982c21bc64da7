"""Stage 1: extract the source (and holdout) with a keyed fingerprint."""

from __future__ import annotations

import pandas as pd
from prefect import get_run_logger, task

from synthgate import lineage, tracking
from synthgate.keys import row_hash_key
from synthgate.mlflow_dataset import log_source_dataset
from synthgate.spec import TableSpec
from synthgate.splitting import check_holdout_columns, split_holdout
from synthgate.tasks import PRIVATE, withheld
from synthgate.tasks.retry import WAREHOUSE_RETRIES
from synthgate.warehouse.extract import Extract, extract_table


@task(name="extract-source", **WAREHOUSE_RETRIES, **PRIVATE)
@withheld
def extract_source(spec: TableSpec, key: bytes) -> Extract:
    """The source table and its keyed fingerprint (the log names columns and the fingerprint, never a count)."""
    extract = extract_table(spec.source, spec.chunk_size, key=key, policies=spec.columns)
    get_run_logger().info(
        "extracted %s: %d columns, keyed fingerprint %s",
        spec.source.table,
        len(extract.columns),
        extract.fingerprint.short,
    )
    return extract


@task(name="extract-holdout", **WAREHOUSE_RETRIES, **PRIVATE)
@withheld
def extract_holdout(spec: TableSpec, source: Extract, key: bytes) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, holdout): a separate table, or a per-row (per-unit) keyed split of the source, which takes the source's
    rows out of it as it goes (the source is left with no rows: validate it first)."""
    if spec.holdout.table is not None:
        holdout = extract_table(
            spec.holdout.table, spec.chunk_size, key=key, policies=spec.columns, role="holdout.table"
        )
        check_holdout_columns(source.columns, holdout.columns)
        return source.frame, holdout.frame
    fraction = spec.holdout.fraction or 0.2
    return split_holdout(
        source.frame, source.row_hashes, fraction, unit=spec.privacy.unit, hash_key=row_hash_key(key), consume=True
    )


def record_source(spec: TableSpec, source: Extract, events: lineage.RunLineage) -> None:
    """The source's lineage in MLflow and OpenLineage: its columns and keyed fingerprint (never a count or an unkeyed
    hash)."""
    tracking.set_tags({"synthgate.source_fingerprint": source.fingerprint.digest})
    events.source_columns, events.source_fingerprint = source.columns, source.fingerprint.digest
    tracking.log_dict(source.fingerprint.as_dict(), "lineage/source_fingerprint.json")
    log_source_dataset(spec.source, source.fingerprint.digest, source.fingerprint.columns)
