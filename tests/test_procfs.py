"""The /proc readers against psutil, on real processes: the fallback must report the same numbers.

A frozen tree (SIGSTOP) cannot change its memory or CPU times, so RSS, VMS
and CPU times must match exactly; PSS may still move by the shared part
(other processes on the machine map the same libraries), so it is bounded by
that part. psutil is the reference here: the dev venv has it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from fsm_pilot import procfs, procinfo
from fsm_pilot.payload import Payload, descendants, kill_tree, measure_tree, start_payload
from fsm_pilot.payload.subreaper import read_stat
from tests.pilotrun import wait_for

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux-only pilot")

MIB = 1 << 20
#: Burns 0.3 s of CPU and exits: the shell reaps it, so the shell has children_user time.
BURN = "import time\nwhile time.process_time() < 0.3:\n    pass\n"
#: Holds 30 MiB touched, starts a sleeping child, says "ready" and waits (the test kills it).
HOLD = f"""
import subprocess, sys, time
from pathlib import Path
block = bytearray({30 * MIB})
block[::4096] = b"x" * len(block[::4096])
child = subprocess.Popen(["sleep", "300"])
Path(sys.argv[1]).write_text(str(child.pid))
time.sleep(300)
"""


@pytest.fixture
def tree(tmp_path: Path) -> Iterator[Payload]:
    """sh -> python (holding memory) -> sleep, after sh reaped a CPU-burning python; all SIGSTOPped."""
    ready = tmp_path / "ready"
    script = '"$0" -c "$1" && "$0" -c "$2" "$3"'
    payload = start_payload(["sh", "-c", script, sys.executable, BURN, HOLD, str(ready)], tmp_path,
                            tmp_path / "out", tmp_path / "err", {"PATH": os.environ.get("PATH", os.defpath)})
    try:
        wait_for(ready.exists, what="the tree to be built")
        os.killpg(payload.pid, signal.SIGSTOP)
        wait_for(lambda: all(s.state == "T" for s in descendants(payload)), what="every member stopped")
        yield payload
    finally:
        kill_tree(payload, 0.5)
        payload.close()


def test_a_frozen_tree_reads_the_same_from_proc_as_from_psutil(tree: Payload) -> None:
    members = descendants(tree)
    assert len(members) == 3
    for member in members:
        proc = psutil.Process(member.pid)
        with proc.oneshot():
            mem, times, full = proc.memory_info(), proc.cpu_times(), proc.memory_full_info()
        mine = procfs.sample(member.pid)
        assert mine is not None and not mine.zombie
        assert (mine.rss, mine.vms) == (mem.rss, mem.vms)
        assert mine.cpu == (times.user, times.system, times.children_user, times.children_system)
        shared = max(full.rss - full.uss, 0)
        assert mine.pss is not None and abs(mine.pss - full.pss) <= shared, (mine.pss, full.pss, shared)
    shell = procfs.sample(tree.pid)
    assert shell is not None and shell.cpu.children_user + shell.cpu.children_system >= 0.2  # the reaped burner
    holder = max((procfs.sample(m.pid) for m in members), key=lambda s: s.rss if s else 0)
    assert holder is not None and holder.rss >= 30 * MIB


def test_measure_tree_equals_the_sum_of_the_proc_readings(tree: Payload) -> None:
    usage = measure_tree(tree)  # through psutil in this venv
    readings = [procfs.sample(m.pid) for m in descendants(tree)]
    assert all(r is not None for r in readings)
    assert usage.nprocs == len(readings) == 3
    assert usage.rss_kb == sum(r.rss // 1024 for r in readings if r)
    assert usage.cpu_seconds == pytest.approx(sum(r.cpu.total() for r in readings if r), abs=1e-9)


def test_a_running_process_reads_between_two_psutil_readings(tmp_path: Path) -> None:
    """CPU times only grow: a /proc reading taken between two psutil readings lies between them."""
    stop = tmp_path / "stop"
    busy = subprocess.Popen([sys.executable, "-c", "import os, sys\nwhile not os.path.exists(sys.argv[1]):\n"
                             "    pass\n", str(stop)])
    try:
        proc = psutil.Process(busy.pid)
        wait_for(lambda: proc.cpu_times().user > 0, what="the busy loop to have run")
        before = proc.cpu_times()
        head = procfs.state_and_times(busy.pid)
        after = proc.cpu_times()
        assert head is not None
        state, mine = head
        assert state in {"R", "S", "D"}
        assert before.user <= mine.user <= after.user
        assert before.system <= mine.system <= after.system
    finally:
        stop.touch()
        busy.wait(30)


def test_a_zombie_is_seen_and_a_reaped_process_is_gone(tmp_path: Path) -> None:
    child = subprocess.Popen(["true"])
    wait_for(lambda: (s := read_stat(child.pid)) is not None and s.state == "Z", what="the zombie")
    mine = procfs.sample(child.pid)
    assert mine is not None and mine.zombie and mine.pss is None
    assert psutil.Process(child.pid).status() == psutil.STATUS_ZOMBIE
    child.wait()
    assert procfs.sample(child.pid) is None and procfs.memory(child.pid) is None
    assert procfs.state_and_times(child.pid) is None and procfs.pss(child.pid) is None
    assert procinfo.sample(child.pid) is None and procinfo.vms(child.pid) is None


def test_a_command_name_with_parentheses_and_spaces_parses(tmp_path: Path) -> None:
    odd = tmp_path / "a) b (c"
    shutil.copy(shutil.which("sleep") or "/bin/sleep", odd)
    proc = subprocess.Popen([str(odd), "300"])
    try:
        sleeper = psutil.Process(proc.pid)
        wait_for(lambda: sleeper.name() == odd.name[:15] and sleeper.status() == psutil.STATUS_SLEEPING,
                 what="the renamed sleep asleep")
        head = procfs.state_and_times(proc.pid)
        assert head is not None and head[0] == "S"
        times = sleeper.cpu_times()
        assert head[1] == (times.user, times.system, times.children_user, times.children_system)
    finally:
        proc.kill()
        proc.wait()


def test_node_figures_match_psutil() -> None:
    total, available = procfs.virtual_memory() or (0, 0)
    assert total == psutil.virtual_memory().total
    assert 0 < available <= total
    assert procfs.cpu_count() == psutil.cpu_count(logical=True)
    assert procinfo.SOURCE == "psutil" and procinfo.UNAVAILABLE is None  # primary where it loads
