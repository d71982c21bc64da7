"""Prefect tasks: thin wrappers that put the plain-Python core of ``synthgate`` on the orchestrator.

No task result is persisted or cached: several hold real rows (see :data:`PRIVATE`).
"""

from prefect.cache_policies import NO_CACHE

#: Options for every task: results may hold real rows, so they are never persisted or cached.
PRIVATE = {"persist_result": False, "cache_policy": NO_CACHE}
