"""A real Prefect server, and workers, started as separate processes for one test and always stopped."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
PREFECT = [sys.executable, "-m", "prefect"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrefectStack:
    """``prefect server start`` on a free port with its own PREFECT_HOME; workers and commands share its env."""

    def __init__(self, home: Path, extra_env: Mapping[str, str]) -> None:
        self.port = free_port()
        self.api_url = f"http://127.0.0.1:{self.port}/api"
        self.home = home
        self.logs = home / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.env = {
            **os.environ,
            "PREFECT_HOME": str(home / "prefect"),
            "PREFECT_API_URL": self.api_url,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_UI_ENABLED": "false",
            "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "5",
            "PREFECT_SERVER_LOG_RETRYABLE_ERRORS": "true",  # a 503's cause in the server's log (a busy SQLite database)
            "PREFECT_LOGGING_LEVEL": "INFO",
            "COLUMNS": "200",  # `prefect deployment ls` prints full names and ids
            "PYTHONPATH": str(ROOT),
            "SYNTHGATE_PROJECT_DIR": str(ROOT),
            **extra_env,
        }
        self.processes: list[subprocess.Popen[bytes]] = []

    def _start(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        with (self.logs / f"{name}.log").open("wb") as log:  # the child keeps its own copy of the descriptor
            process = subprocess.Popen(
                args, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.processes.append(process)
        return process

    def start_server(self, timeout: float = 300) -> None:  # a busy 2-core machine: minutes; a crash: at once
        server = self._start("server", [*PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(self.port)])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if server.poll() is not None:
                raise RuntimeError(f"prefect server exited with {server.returncode}: {self.log_tail('server')}")
            try:
                if httpx.get(f"{self.api_url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise TimeoutError(f"prefect server not healthy after {timeout} s: {self.log_tail('server')}")

    def start_worker(self, pool: str, limit: int = 1) -> None:
        self._start(
            f"worker-{pool}", [*PREFECT, "worker", "start", "--pool", pool, "--type", "process", "--limit", str(limit)]
        )

    def start_serve(self, *args: str) -> None:
        self._start("serve", [sys.executable, "-m", "synthgate.cli", "serve", "--limit", "1", *args])

    def start_shell(self, name: str, command: str, drop: tuple[str, ...] = ()) -> None:
        """``command`` as a user types it in the project folder (a shell line), without the variables in ``drop``."""
        env = {k: v for k, v in self.env.items() if k not in drop}
        with (self.logs / f"{name}.log").open("wb") as log:  # the child keeps its own copy of the descriptor
            self.processes.append(
                subprocess.Popen(
                    ["bash", "-c", command],
                    cwd=ROOT,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )

    def run(
        self, args: list[str], timeout: float = 180, env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            args,
            cwd=ROOT,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def log_names(self) -> list[str]:
        """The processes whose output this stack keeps (server, worker-POOL, serve, ...)."""
        return sorted(path.stem for path in self.logs.glob("*.log"))

    def log_lines(self, name: str, containing: str) -> list[str]:
        """The lines of a process's output that contain ``containing`` (case-insensitive), for a failure's message."""
        return [line for line in self.log_tail(name, chars=10**7).splitlines() if containing.lower() in line.lower()]

    def log_tail(self, name: str, chars: int = 4000) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace")[-chars:] if path.is_file() else ""

    def stop(self) -> None:
        """SIGTERM each process group this stack started, then SIGKILL what is left."""
        for process in reversed(self.processes):
            _signal_group(process.pid, signal.SIGTERM)
        for process in reversed(self.processes):
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                _signal_group(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
            _signal_group(process.pid, signal.SIGKILL)  # children left in the group (a flow run's process)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with suppress(ProcessLookupError):
        os.killpg(pgid, sig)


@contextmanager
def prefect_stack(home: Path, extra_env: Mapping[str, str]) -> Iterator[PrefectStack]:
    stack = PrefectStack(home, extra_env)
    try:
        stack.start_server()
        yield stack
    finally:
        stack.stop()
