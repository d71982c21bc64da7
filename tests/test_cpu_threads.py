import subprocess
import sys
import time

import pytest
import torch

from synthgate import cpu_threads
from synthgate.cpu_threads import choose, cpu_share


def test_threads_share_the_usable_cores_and_leave_busy_ones():
    assert choose(usable=8, sharing=1, others_busy=None).threads == 8
    assert choose(usable=8, sharing=4, others_busy=None).threads == 2
    assert choose(usable=2, sharing=4, others_busy=None).threads == 1  # never zero
    cores = len(cpu_threads._affinity())
    assert choose(usable=cores, sharing=1, others_busy=0.1).threads == cores  # noise is not a busy core
    assert choose(usable=cores, sharing=1, others_busy=float(cores + 3)).threads == max(1, round(cores / 2.5))
    if cores == 2:  # this machine: one of two cores beside one busy process, one beside two
        assert choose(usable=2, sharing=1, others_busy=1.0).threads == 1
        assert choose(usable=2, sharing=1, others_busy=2.0).threads == 1
    fixed = choose(usable=2, sharing=4, others_busy=2.0, fixed=6)
    assert (fixed.threads, fixed.fixed) == (6, True) and "SYNTHGATE_THREADS" in fixed.describe()


def test_a_cgroup_quota_caps_the_cores(tmp_path):
    none = tmp_path / "no-membership"
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert cpu_threads._cgroup_quota(tmp_path, none) == 1.5
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert cpu_threads._cgroup_quota(tmp_path, none) is None
    nested = tmp_path / "system.slice" / "worker.scope"  # cgroup v2: the process's own group, below the root
    nested.mkdir(parents=True)
    (nested / "cpu.max").write_text("250000 100000\n")
    (tmp_path / "system.slice" / "cpu.max").write_text("300000 100000\n")
    membership = tmp_path / "cgroup"
    membership.write_text("0::/system.slice/worker.scope\n")
    assert cpu_threads._cgroup_quota(tmp_path, membership) == 2.5  # the tightest on the way up
    v1 = tmp_path / "v1"
    (v1 / "cpu" / "pod").mkdir(parents=True)
    (v1 / "cpu" / "pod" / "cpu.cfs_quota_us").write_text("300000\n")
    (v1 / "cpu" / "pod" / "cpu.cfs_period_us").write_text("100000\n")
    membership.write_text("4:cpu,cpuacct:/pod\n3:memory:/pod\n")
    assert cpu_threads._cgroup_quota(v1, membership) == 3.0
    (v1 / "cpu" / "pod" / "cpu.cfs_quota_us").write_text("-1\n")
    assert cpu_threads._cgroup_quota(v1, membership) is None
    assert cpu_threads.usable_cores() >= 1


def test_shares_count_the_trainings_running_at_once_and_the_setting_fixes_the_count(monkeypatch):
    from synthgate.errors import SpecError

    before = torch.get_num_threads()
    monkeypatch.delenv("SYNTHGATE_THREADS", raising=False)
    with cpu_share("training") as one, cpu_share("training") as two:
        assert one.choice.sharing == 1 and two.choice.sharing == 2
        assert torch.get_num_threads() == two.choice.threads
    monkeypatch.setenv("SYNTHGATE_THREADS", "3")
    with cpu_share("sampling") as fixed:
        assert fixed.choice.fixed and torch.get_num_threads() == 3
    assert torch.get_num_threads() == before  # restored when the last share ends
    monkeypatch.setenv("SYNTHGATE_THREADS", "many")
    with pytest.raises(SpecError, match="SYNTHGATE_THREADS"), cpu_share("training"):
        pass


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/stat")
def test_the_meter_sees_a_competing_process():
    meter = cpu_threads._BusyMeter()
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(1.5)
        busy = meter.others_busy()
    finally:
        spinner.kill()
        spinner.wait()
    assert busy is not None and busy >= 0.6  # one core spinning (minus what else the machine does)
    time.sleep(0.5)
    meter.others_busy()
    own = time.monotonic()
    while time.monotonic() - own < 0.5:  # this process's own work is not another process's
        pass
    assert meter.others_busy() < busy
    assert meter.others_busy() == meter.estimate  # an interval of a few clock ticks keeps the last estimate
