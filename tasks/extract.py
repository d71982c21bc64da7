"""Stage 1: extract the source (and holdout) with a fingerprint."""

from __future__ import annotations

import pandas as pd
from prefect import get_run_logger, task

from synthgate.spec import TableSpec
from synthgate.splitting import check_holdout_columns, split_holdout
from synthgate.warehouse.extract import Extract, extract_table
from tasks import PRIVATE
from tasks.retry import transient_warehouse_error


@task(name="extract-source", retries=2, retry_delay_seconds=[2, 10], retry_condition_fn=transient_warehouse_error, **PRIVATE)
def extract_source(spec: TableSpec) -> Extract:
    logger = get_run_logger()
    extract = extract_table(spec.source, spec.chunk_size, progress=lambda n: logger.debug("extracted %d rows", n))
    logger.info(
        "extracted %s: %d rows, %d columns, fingerprint %s",
        spec.source.table, extract.fingerprint.rows, len(extract.columns), extract.fingerprint.short,
    )
    return extract


@task(name="extract-holdout", retries=2, retry_delay_seconds=[2, 10], retry_condition_fn=transient_warehouse_error, **PRIVATE)
def extract_holdout(spec: TableSpec, source: Extract) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, holdout): a separate table, or a seeded split of the source."""
    if spec.holdout.table is not None:
        holdout = extract_table(spec.holdout.table, spec.chunk_size)
        check_holdout_columns(source.columns, holdout.columns)
        return source.frame, holdout.frame
    return split_holdout(source.frame, spec.holdout.fraction or 0.2, spec.training.seed)

