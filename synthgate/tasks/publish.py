"""Stage 7: publish a new version atomically with the catalog row, or hold back and say why."""

from __future__ import annotations

from prefect import get_run_logger, task

from synthgate import tracking
from synthgate.outcome import RefreshResult
from synthgate.tasks import PRIVATE, withheld
from synthgate.tasks.retry import WAREHOUSE_RETRIES
from synthgate.warehouse.publish import Published, publish_refresh


@task(name="publish-table", **WAREHOUSE_RETRIES, **PRIVATE)
@withheld
def publish_table(result: RefreshResult) -> Published:
    """Publish the next version with its catalog row (:func:`synthgate.warehouse.publish.publish_refresh`); the
    ledger row closes ``published`` in the same commit, and the model version becomes the production one."""
    spec = result.spec
    model_name = tracking.model_name(spec.name)
    published, *children = publish_refresh(result, model_name)
    logger = get_run_logger()
    for table, outcome in zip([published, *children], [result, *result.children], strict=True):
        outcome.published = table
        logger.info("published %s version %d: %d rows", table.name, table.version, outcome.rows)
        if table.pruned:
            logger.info("dropped versions %s (keep_versions=%d)", list(table.pruned), spec.publishing.keep_versions)
    if result.model_version is not None:
        tracking.set_production_alias(model_name, result.model_version)
    return published
