"""What a flow-run process logs: its stages and outcome, not library noise; a Synthgate error as its one line.

:func:`install` runs when a flow module is imported: in ``synthgate refresh``, in a worker's flow-run process and in
``synthgate serve``'s runs alike.

- Warnings that libraries raise about their own future (``FutureWarning``, ``DeprecationWarning``: SDMetrics'
  deprecated report module, ...) and MLflow's hints about model signatures are not shown: nothing a table owner can
  act on. Warnings raised by Synthgate's own code still are.
- MLflow's own console stream ("Successfully registered model ...", "Created version ...", its notice that a Python
  model is pickled) is silenced; its warnings and errors reach the console through Python logging, formatted like
  every other library's.
- A :class:`SynthgateError` reaches Prefect's logs as one line: its message names the problem and what to do, so the
  traceback Prefect's engine attaches is dropped, and the engine's own "exited with unexpected exception" record for
  it is not written (the flow logged the error and ended in a named state: ``Rejected`` for a gate failure, an
  expected outcome). Any other exception keeps its traceback; ``PREFECT_LOGGING_LEVEL=DEBUG`` keeps them all.
"""

from __future__ import annotations

import contextlib
import logging
import warnings

from synthgate.errors import SynthgateError

#: Libraries whose FutureWarnings and DeprecationWarnings concern their own next versions, not a refresh.
_LIBRARIES = r"(sdmetrics|sdv|rdt|copulas|mlflow|great_expectations|opacus|torch|sklearn|pandas|anonymeter)(\.|$)"
#: Prefect's loggers that attach an exception's traceback to a run's log: the engine, flow runs, task runs.
_RUN_LOGGERS = ("prefect.engine", "prefect.flow_runs", "prefect.task_runs")
#: The engine's records about a flow run that ended with an exception (it logs the exception once more).
_ENGINE_EXIT = ("Engine execution exited with unexpected exception", "Execution of flow run", "Execution exited")

_installed = False


_LOGGED = "_synthgate_logged"


def mark_logged(error: BaseException) -> None:
    """Note that the flow logged ``error`` with its traceback: the engine's record of it would repeat it."""
    with contextlib.suppress(AttributeError):  # an exception type without a __dict__
        setattr(error, _LOGGED, True)


class OneLineSynthgateErrors(logging.Filter):
    """On Prefect's run loggers: a record carrying a :class:`SynthgateError` loses its traceback, and the engine's
    generic exit record is dropped for it and for an error the flow already logged. Other records pass as they are."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Whether ``record`` is written; a Synthgate error's record is stripped of its traceback on the way."""
        error = record.exc_info[1] if record.exc_info else None
        if error is None or logging.getLogger("prefect").isEnabledFor(logging.DEBUG):
            return True
        expected = isinstance(error, SynthgateError)
        if str(record.msg).startswith(_ENGINE_EXIT) and (expected or getattr(error, _LOGGED, False)):
            return False
        if expected:
            record.exc_info, record.exc_text = None, None
        return True


def _quiet_mlflow() -> None:
    try:
        from mlflow.utils import logging_utils
    except ImportError:  # pragma: no cover - mlflow is a dependency
        return
    logging_utils.disable_logging()  # eprint()'s progress lines and MLflow's own handler
    mlflow_logger = logging.getLogger("mlflow")
    mlflow_logger.propagate = True  # its warnings and errors: through the root logger's (Prefect's) console
    logging.getLogger("mlflow.pyfunc").setLevel(logging.ERROR)  # "Passing a Python object as python_model ..."


def install() -> None:
    """Quiet the libraries and make Synthgate errors one line in this process (idempotent)."""
    global _installed
    if _installed:
        return
    _installed = True
    for category in (FutureWarning, DeprecationWarning):
        warnings.filterwarnings("ignore", category=category, module=_LIBRARIES)
    warnings.filterwarnings("ignore", category=UserWarning, module=r"mlflow(\.|$)")
    _quiet_mlflow()
    one_line = OneLineSynthgateErrors()
    for name in _RUN_LOGGERS:
        logging.getLogger(name).addFilter(one_line)
