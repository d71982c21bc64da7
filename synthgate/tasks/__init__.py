"""Prefect tasks: thin wrappers that put the plain-Python core of ``synthgate`` on the orchestrator.

No task result is persisted or cached: several hold real rows (see :data:`PRIVATE`), and no task lets an exception's
message out unless Synthgate wrote it (:func:`withheld`).
"""

import functools
import logging
from collections.abc import Callable
from typing import ParamSpec, TypedDict, TypeVar

from prefect.cache_policies import NO_CACHE, CachePolicy

from synthgate.errors import SynthgateError, UnexpectedError

P = ParamSpec("P")
R = TypeVar("R")
log = logging.getLogger(__name__)


class _PrivateOptions(TypedDict):
    """The ``@task`` options of :data:`PRIVATE`, typed so that ``**PRIVATE`` checks against ``task``'s signature."""

    persist_result: bool
    cache_policy: CachePolicy


#: Options for every task: results may hold real rows, so they are never persisted or cached.
PRIVATE: _PrivateOptions = {"persist_result": False, "cache_policy": NO_CACHE}


def withheld(fn: Callable[P, R]) -> Callable[P, R]:
    """``fn`` (a task's function) with an unexpected exception raised as :class:`UnexpectedError`, which names its
    type and the task only: Prefect writes a failed task's exception message into its state and logs, and a library's
    message may quote a value from a row (``could not convert string to float: '...'``). A :class:`SynthgateError`
    passes as it is (its message never holds a value), and so does a ``TimeoutError`` (Prefect's task timeouts). The
    original's traceback is logged at DEBUG in this process only."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except (SynthgateError, TimeoutError):
            raise
        except Exception as exc:
            log.debug("unexpected %s in %s", type(exc).__name__, fn.__name__, exc_info=exc)
            raise UnexpectedError.instead_of(exc, fn.__name__) from None

    return wrapper
