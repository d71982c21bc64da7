"""Secret values kept in a Prefect Secret block: the one place the core reads from Prefect.

A Secret block is a secret store (like an environment variable), not orchestration: reading one schedules, runs and
deploys nothing. Everything else of Prefect lives in ``flows/`` and ``tasks/`` (see README, "Layers").
"""

from __future__ import annotations


def read_secret_block(block: str) -> str:
    """The value of Prefect Secret block ``block``; any failure (no server, no block) raises the library's error."""
    from prefect.blocks.system import Secret

    return str(Secret.load(block).get())
