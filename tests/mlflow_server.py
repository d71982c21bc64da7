"""A real MLflow tracking server or UI, started as a separate process for a test and always stopped."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

MLFLOW = str(Path(sys.executable).with_name("mlflow"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class MlflowProcess:
    """``argv`` (``mlflow server ...`` or ``mlflow ui ...``, without host and port) on a free port of 127.0.0.1.

    :meth:`start` returns at once (``url`` is known before the server answers, so other services can be started
    meanwhile); :meth:`wait` returns once ``/health`` answers; :meth:`stop` ends it and its workers."""

    def __init__(self, argv: Sequence[str], log: Path) -> None:
        self.argv = list(argv)
        self.log = log
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> MlflowProcess:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
        with self.log.open("w") as log:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(
                [*self.argv, "--host", "127.0.0.1", "--port", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        return self

    def wait(self, timeout: float = 150) -> str:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2):
                    return self.url
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"`{' '.join(self.argv)}` did not serve on {self.url}: {self.log.read_text()[-2000:]}"
                    ) from None
                time.sleep(0.5)

    def stop(self) -> None:
        """SIGTERM the process group, SIGKILL it when still there after 20 s, and what is left of it (its workers)."""
        if self.proc is None:
            return
        for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.proc.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        with suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)


def server_argv(folder: Path) -> list[str]:
    """``mlflow server`` with a SQLite store and served artifacts under ``folder``, one worker."""
    return [
        MLFLOW,
        "server",
        "--backend-store-uri",
        f"sqlite:///{folder / 'mlflow.db'}",
        "--artifacts-destination",
        str(folder / "artifacts"),
        "--workers",
        "1",
    ]


@contextmanager
def mlflow_process(argv: Sequence[str], log: Path, timeout: float = 150, wait: bool = True) -> Iterator[MlflowProcess]:
    """The started :class:`MlflowProcess` (healthy unless ``wait`` is false), stopped on the way out."""
    process = MlflowProcess(argv, log)
    try:
        process.start()
        if wait:
            process.wait(timeout)
        yield process
    finally:
        process.stop()


@contextmanager
def mlflow_server(folder: Path, timeout: float = 150, wait: bool = True) -> Iterator[MlflowProcess]:
    """A tracking server (:func:`server_argv`): its ``url`` is the tracking URI clients use (MLFLOW_TRACKING_URI)
    and the UI a browser opens."""
    folder.mkdir(parents=True, exist_ok=True)
    with mlflow_process(server_argv(folder), folder / "server.log", timeout, wait) as process:
        yield process
