"""Prefect tasks: thin wrappers that put the plain-Python core of ``synthgate`` on the orchestrator.

No task result is persisted or cached: several hold real rows (see :data:`PRIVATE`).
"""

from typing import TypedDict

from prefect.cache_policies import NO_CACHE, CachePolicy


class _PrivateOptions(TypedDict):
    """The ``@task`` options of :data:`PRIVATE`, typed so that ``**PRIVATE`` checks against ``task``'s signature."""

    persist_result: bool
    cache_policy: CachePolicy


#: Options for every task: results may hold real rows, so they are never persisted or cached.
PRIVATE: _PrivateOptions = {"persist_result": False, "cache_policy": NO_CACHE}
