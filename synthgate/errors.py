"""Project exceptions. Every message says what is wrong and what to do about it.

Messages never carry a real value from a source table: they name tables, columns,
gates and budgets only.
"""

from __future__ import annotations


class SynthgateError(Exception):
    """Base of every error Synthgate raises on purpose."""


class SpecError(SynthgateError):
    """A table spec is malformed or inconsistent with the data."""


class UsageError(SynthgateError):
    """The command line itself is wrong: an unknown option, a missing argument, an override out of its bounds."""


class WarehouseError(SynthgateError):
    """A warehouse cannot be reached, or a table is missing or unreadable.

    ``transient`` says whether the same call may succeed later (a refused or dropped connection, a timeout): the
    flow's tasks retry only those. A wrong role, password, database or host, or a missing driver, is permanent.
    """

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


class MissingTableError(WarehouseError):
    """The source (or holdout) table does not exist: permanent (waiting does not create it)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, transient=False)


class DataValidationError(SynthgateError):
    """The extracted table failed its Great Expectations suite or a basic data check."""


class PrivacyBudgetError(SynthgateError):
    """The privacy budget is too small for training, or would be exceeded."""


class GateFailedError(SynthgateError):
    """One or more quality or privacy gates failed: nothing is published."""

    def __init__(self, message: str, verdicts: list | None = None) -> None:
        super().__init__(message)
        self.verdicts = verdicts or []


class TrackingError(SynthgateError):
    """The MLflow tracking store cannot be reached or written."""


class OutputError(SynthgateError):
    """A local output (the report, MLflow's local artifacts) cannot be written: permissions or disk space."""


class PublishError(SynthgateError):
    """Publishing the synthetic table failed; the previous version is untouched."""


class UnexpectedError(SynthgateError):
    """A bug: an exception Synthgate did not raise on purpose, raised in its place where it would leave a task
    (:func:`synthgate.tasks.withheld`). Its message names the exception's type and the task, never the exception's
    own message (a library's message may quote a value from a row, and Prefect writes it into the run's state and
    logs); ``original`` keeps it in this process (``synthgate --debug`` prints its traceback)."""

    def __init__(self, message: str, original: BaseException | None = None) -> None:
        super().__init__(message)
        self.original = original

    @classmethod
    def instead_of(cls, original: BaseException, where: str) -> UnexpectedError:
        """The error that stands for ``original``, raised in ``where`` (a task's name)."""
        return cls(
            f"unexpected {type(original).__name__} in {where} (a bug; its message is withheld, since it may quote a "
            "value from a row): run `synthgate --debug ...` for its traceback",
            original,
        )


def one_line(exc: BaseException) -> str:
    """An error's message as one line (its lines joined by "; "), or its type's name when it has none."""
    return "; ".join(line.strip() for line in str(exc).splitlines() if line.strip()) or type(exc).__name__
