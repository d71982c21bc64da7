"""Stage 1: extract the source (and holdout) with a keyed fingerprint."""

from __future__ import annotations

import pandas as pd
from prefect import get_run_logger, task

from synthgate.spec import TableSpec
from synthgate.splitting import check_holdout_columns, split_holdout
from synthgate.warehouse.extract import Extract, extract_table
from tasks import PRIVATE
from tasks.retry import transient_warehouse_error


@task(name="extract-source", retries=2, retry_delay_seconds=[2, 10], retry_condition_fn=transient_warehouse_error, **PRIVATE)
def extract_source(spec: TableSpec, key: bytes) -> Extract:
    """The source table and its keyed fingerprint (the log names columns and the fingerprint, never a count)."""
    extract = extract_table(spec.source, spec.chunk_size, key=key, policies=spec.columns)
    get_run_logger().info(
        "extracted %s: %d columns, keyed fingerprint %s", spec.source.table, len(extract.columns), extract.fingerprint.short
    )
    return extract


@task(name="extract-holdout", retries=2, retry_delay_seconds=[2, 10], retry_condition_fn=transient_warehouse_error, **PRIVATE)
def extract_holdout(spec: TableSpec, source: Extract, key: bytes) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, holdout): a separate table, or a per-row keyed split of the source."""
    if spec.holdout.table is not None:
        holdout = extract_table(spec.holdout.table, spec.chunk_size, key=key, policies=spec.columns, role="holdout.table")
        check_holdout_columns(source.columns, holdout.columns)
        return source.frame, holdout.frame
    return split_holdout(source.frame, source.row_hashes, spec.holdout.fraction or 0.2)
