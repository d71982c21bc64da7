"""CPU threads for training and sampling, sized to the cores this process can really use, in one place.

A PyTorch parallel region waits for its slowest thread: threads that outnumber the cores free to them spin and wait
on each other, and a refresh beside one busy process ran 2.35 times slower with two threads on two cores, but not
slower with one (issue 18). So the number of threads is

- ``SYNTHGATE_THREADS`` when set (fixed, never adjusted), else
- the cores this process may use (CPU affinity, and its cgroup's CPU quota in a container), shared by the trainings
  running at once in this process (``refresh-all`` without Dask runs tables as threads of one process), and reduced
  while other processes keep cores busy: measured from ``/proc/stat`` against this process's own CPU time, at the
  start and again about every second while training (a competing job that starts or stops mid-run is followed).
  With ``n`` cores and others busy on ``b`` of them it takes ``n * n / (n + b)``: all of them when alone, one of two
  beside one busy process, and a fair split between two trainings in two processes whichever started first.

A share sizes one pool: PyTorch's intra-op pool (training, sampling) or the BLAS libraries' (the evaluation's
nearest-row search); each pool's size from before its first share is restored when its last share ends. The
evaluation's scikit-learn models run single-threaded (:func:`synthgate.evaluation.features.single_threaded`). The
first choice is logged at INFO, changes at DEBUG; :class:`ThreadChoice` says why a number was chosen.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from synthgate.errors import SpecError

log = logging.getLogger(__name__)

#: Seconds between two measurements of the cores other processes use (one read of /proc/stat each).
ADJUST_EVERY = 1.0
#: The shortest interval a measurement covers (the first one waits for it): 25 clock ticks of 10 ms.
MIN_INTERVAL = 0.25
CGROUP_ROOT = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class ThreadChoice:
    """How many threads, and from what: the usable cores, the shares of them held here (trainings, samplings,
    searches), the cores others keep busy (None when not measured), and whether ``SYNTHGATE_THREADS`` fixed it."""

    threads: int
    usable: int
    sharing: int
    others_busy: float | None
    fixed: bool

    def describe(self) -> str:
        """One log line: the number and its reasons."""
        if self.fixed:
            return f"{self.threads} CPU threads (SYNTHGATE_THREADS)"
        busy = "" if self.others_busy is None else f", other processes busy on {self.others_busy:.1f}"
        return f"{self.threads} CPU threads ({self.usable} usable cores, {self.sharing} share(s) here{busy})"


def _cgroup_quota(root: Path = CGROUP_ROOT, membership: Path = Path("/proc/self/cgroup")) -> float | None:
    """The tightest CPU quota in cores of this process's cgroup and its ancestors (v2 ``cpu.max``; v1
    ``cpu.cfs_quota_us`` over ``cpu.cfs_period_us``), None when there is none."""
    folders = [root, root / "cpu"]
    try:
        for line in membership.read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            relative = path.strip("/")
            base = root if controllers == "" else root / "cpu" if "cpu" in controllers.split(",") else None
            if base is not None and relative:
                parts = Path(relative).parts
                folders += [base.joinpath(*parts[:i]) for i in range(1, len(parts) + 1)]
    except (OSError, ValueError):
        pass
    quotas = [q for folder in folders if (q := _quota_in(folder)) is not None]
    return min(quotas) if quotas else None


def _quota_in(folder: Path) -> float | None:
    try:
        quota, period = (folder / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota_us = int((folder / "cpu.cfs_quota_us").read_text())
        period_us = int((folder / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return quota_us / period_us if quota_us > 0 and period_us > 0 else None


def _affinity() -> set[int]:
    if hasattr(os, "sched_getaffinity"):
        return os.sched_getaffinity(0)
    return set(range(os.cpu_count() or 1))


def usable_cores() -> int:
    """The cores this process may run on: its CPU affinity, capped by its cgroup's CPU quota (at least one)."""
    cores = len(_affinity())
    quota = _cgroup_quota()
    return max(1, min(cores, math.floor(quota)) if quota else cores)


class _BusyMeter:
    """The cores other processes keep busy on this process's CPUs, from reads of ``/proc/stat`` (Linux)."""

    def __init__(self) -> None:
        self.cpus = {f"cpu{i}" for i in _affinity()}
        self.tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self.lock = threading.Lock()
        self.last = self._read()
        self.estimate: float | None = None

    def _read(self) -> tuple[float, float, float] | None:
        """(wall seconds, busy CPU seconds on our CPUs, this process's CPU seconds), None where /proc is missing."""
        try:
            lines = Path("/proc/stat").read_text().splitlines()
        except OSError:
            return None
        busy = 0
        for line in lines:
            name, *fields = line.split()
            if name in self.cpus:
                values = [int(v) for v in fields[:8]]
                busy += sum(values) - values[3] - values[4]  # all but idle and iowait
        own = os.times()
        return time.monotonic(), busy / self.tick, own.user + own.system

    def others_busy(self) -> float | None:
        """Cores busy with other processes since the previous measurement (None when not measurable). Counters move
        in clock ticks (10 ms): an interval under :data:`MIN_INTERVAL` would be mostly rounding, so the previous
        estimate stands until one has passed."""
        now = self._read()
        with self.lock:
            then = self.last
            if now is None or then is None:
                return None
            wall = now[0] - then[0]
            if wall >= MIN_INTERVAL:
                self.last = now
                self.estimate = max(0.0, ((now[1] - then[1]) - (now[2] - then[2])) / wall)
            return self.estimate


def choose(*, usable: int, sharing: int, others_busy: float | None, fixed: int | None = None) -> ThreadChoice:
    """The thread count for each of ``sharing`` shares (trainings, samplings, searches) of ``usable`` cores while
    others keep ``others_busy`` cores busy."""
    if fixed is not None:
        return ThreadChoice(fixed, usable, sharing, others_busy, True)
    share = max(1, usable // max(1, sharing))
    if others_busy is not None:
        cores = len(_affinity())  # the others are measured on these (a quota may be below them: ``share`` caps it)
        share = min(share, max(1, round(cores * cores / (cores + others_busy))))
    return ThreadChoice(share, usable, sharing, others_busy, False)


def configured_threads() -> int | None:
    """``SYNTHGATE_THREADS`` (see :class:`synthgate.settings.Settings`), read alone: a bad unrelated setting must not
    stop a training."""
    raw = os.environ.get("SYNTHGATE_THREADS", "").strip()
    if not raw:
        return None
    if not raw.isdigit() or not 1 <= int(raw) <= 1024:
        raise SpecError("SYNTHGATE_THREADS must be a whole number from 1 to 1024 (or unset: chosen per run)")
    return int(raw)


_lock = threading.Lock()
_running = 0  # shares held in this process (trainings, samplings, searches)
_meter_instance: _BusyMeter | None = None


class _Pool:
    """A process-wide thread pool that shares resize: PyTorch's intra-op pool, or the BLAS libraries' (numpy's
    OpenBLAS, through threadpoolctl). Its size from before the first share is put back when the last one ends, so
    shares that end in any order leave it as they found it."""

    def __init__(self, kind: Literal["torch", "blas"]) -> None:
        self.kind = kind
        self.running = 0
        self.restore: Callable[[], None] | None = None

    def resize(self, threads: int) -> None:
        if self.kind == "torch":
            import torch

            torch.set_num_threads(threads)
        else:
            _blas().limit(limits=threads)

    def enter(self) -> None:
        """Count one more share (under the lock); the first remembers the pool's size."""
        if self.running == 0:
            if self.kind == "torch":
                import torch

                before = torch.get_num_threads()
                self.restore = lambda: torch.set_num_threads(before)
            else:
                self.restore = _blas().limit(limits=None).restore_original_limits  # sets nothing, remembers
        self.running += 1

    def leave(self) -> None:
        """Count one share fewer (under the lock); the last puts the pool's size back."""
        self.running -= 1
        if self.running == 0 and self.restore is not None:
            self.restore()
            self.restore = None


def _blas() -> Any:
    """The controller (threadpoolctl) of the BLAS libraries loaded in this process: not OpenMP's, not PyTorch's."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController().select(user_api="blas")


_pools = {"torch": _Pool("torch"), "blas": _Pool("blas")}


def _meter() -> _BusyMeter:
    """The process's meter; the first one waits for a first measurement (later ones measure since the last)."""
    global _meter_instance
    with _lock:
        created = _meter_instance is None
        if _meter_instance is None:
            _meter_instance = _BusyMeter()
        meter = _meter_instance
    if created:
        time.sleep(MIN_INTERVAL)
    return meter


class CpuThreads:
    """The thread count of one training, sampling or search, kept right while it runs (:meth:`adjust`)."""

    def __init__(self, fixed: int | None, resize: Callable[[int], None]) -> None:
        self.fixed = fixed
        self.resize = resize
        self.checked = time.monotonic()
        self.applied = 0
        self.choice = self.first = self._apply()

    def _apply(self) -> ThreadChoice:
        others = None if self.fixed is not None else _meter().others_busy()
        with _lock:
            sharing = _running
        choice = choose(usable=usable_cores(), sharing=sharing, others_busy=others, fixed=self.fixed)
        if choice.threads != self.applied:
            if self.applied:
                log.debug("CPU threads %d -> %s", self.applied, choice.describe())
            self.resize(choice.threads)
            self.applied = choice.threads
        return choice

    def adjust(self) -> None:
        """Re-measure at most every :data:`ADJUST_EVERY` seconds and resize the pool when the free cores changed."""
        if self.fixed is None and time.monotonic() - self.checked >= ADJUST_EVERY:
            self.checked = time.monotonic()
            self.choice = self._apply()


@contextmanager
def cpu_share(purpose: str, *, pool: Literal["torch", "blas"] = "torch") -> Iterator[CpuThreads]:
    """Hold a share of this process's cores while ``purpose`` (training, sampling, a search) runs, sizing PyTorch's
    or the BLAS ``pool`` by :func:`choose` (``SYNTHGATE_THREADS`` sets the count outright); the choice is logged at
    INFO."""
    global _running
    fixed = configured_threads()
    sized = _pools[pool]
    with _lock:
        _running += 1
        sized.enter()
    try:
        threads = CpuThreads(fixed, sized.resize)
        log.info("%s on %s", purpose, threads.choice.describe())
        yield threads
    finally:
        with _lock:
            _running -= 1
            sized.leave()
