"""Secret values kept in a Prefect Secret block: the one place the core reads from Prefect.

A Secret block is a secret store (like an environment variable), not orchestration: reading one schedules, runs and
deploys nothing. Everything else of Prefect lives in ``synthgate/flows/`` and ``synthgate/tasks/`` (README, "Layout").
"""

from __future__ import annotations

from typing import cast


def read_secret_block(block: str) -> str:
    """The value of Prefect Secret block ``block``; any failure (no server, no block) raises the library's error."""
    from prefect.blocks.system import Secret

    # load() is typed "block or coroutine": it returns the coroutine only to a caller inside an event loop, and the
    # core calls it from synchronous code, where it returns the block.
    secret = cast(Secret, Secret.load(block))
    return str(secret.get())
