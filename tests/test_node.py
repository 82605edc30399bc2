"""Worker-node facts: real measurements on this machine, cgroup parsing on fake trees."""

from __future__ import annotations

import os
import platform
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from fsm_pilot.node import (
    RLIMIT_AS_FACTOR,
    cgroup_memory_limit,
    collect_node_facts,
    cpuinfo_field,
    cvmfs_alive,
    free_disk_bytes,
    payload_memory_limit,
)

GIB = 2**30
V1_NO_LIMIT = "9223372036854771712"  # the kernel's page-counter maximum on 64-bit with 4 KiB pages


# --- this machine -----------------------------------------------------------


def test_node_facts_on_this_machine(tmp_path: Path) -> None:
    facts = collect_node_facts(tmp_path)
    assert facts.hostname == socket.gethostname() != ""
    assert facts.arch == platform.machine() != ""
    assert facts.cpu_count >= 1
    assert facts.cpu_mhz is None or 10 < facts.cpu_mhz < 100_000
    assert 64 < facts.memory_total_mb < 2**30
    assert 0 < facts.memory_available_mb <= facts.memory_total_mb
    assert facts.disk_free_bytes > 0
    assert len(facts.load_avg) == 3
    assert all(load >= 0 for load in facts.load_avg)
    assert facts.cgroup_memory_limit_bytes is None or facts.cgroup_memory_limit_bytes > 0
    assert facts.python == platform.python_version()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists() and "model name" in cpuinfo.read_text():
        assert facts.cpu_model != ""


@pytest.mark.skipif(shutil.which("df") is None, reason="needs df as the independent oracle")
def test_free_disk_bytes_agrees_with_df(tmp_path: Path) -> None:
    out = subprocess.run(["df", "-B1", "--output=avail", str(tmp_path)], capture_output=True, text=True,
                         check=True).stdout
    from_df = int(out.split()[-1])
    assert abs(free_disk_bytes(tmp_path) - from_df) < 64 * 2**20  # other tests write meanwhile


def test_free_disk_bytes_missing_dir(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        free_disk_bytes(tmp_path / "absent")


def test_real_cgroup_limit_is_readable() -> None:
    limit = cgroup_memory_limit()
    assert limit is None or 0 < limit < 2**60


@pytest.mark.parametrize(
    ("text", "key", "expected"),
    [
        ("processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Gold\ncpu MHz\t\t: 2400.000\n", "model name",
         "Intel(R) Xeon(R) Gold"),
        ("processor\t: 0\ncpu MHz\t\t: 2400.000\n", "cpu MHz", "2400.000"),
        ("processor\t: 0\nBogoMIPS\t: 50.00\nCPU implementer\t: 0x41\n", "model name", None),  # aarch64
        ("", "model name", None),
    ],
)
def test_cpuinfo_field(text: str, key: str, expected: str | None) -> None:
    assert cpuinfo_field(text, key) == expected


# --- cgroups on fake trees --------------------------------------------------
# The machine's real cgroup cannot be changed by a test, so these build the same
# files (/proc/self/cgroup and /sys/fs/cgroup/...) under tmp_path and pass it as root.


def _tree(root: Path, proc_cgroup: str | None, files: dict[str, str]) -> Path:
    if proc_cgroup is not None:
        (root / "proc/self").mkdir(parents=True)
        (root / "proc/self/cgroup").write_text(proc_cgroup)
    for relative, content in files.items():
        path = root / "sys/fs/cgroup" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content + "\n")
    return root


_CASES: dict[str, tuple[str | None, dict[str, str], int | None]] = {
    "v2 leaf limit": ("0::/job/pay\n", {"job/pay/memory.max": str(GIB), "job/memory.max": "max"}, GIB),
    "v2 max everywhere": ("0::/job\n", {"job/memory.max": "max"}, None),
    "v2 parent tighter": ("0::/a/b\n", {"a/b/memory.max": "max", "a/memory.max": str(GIB // 2)}, GIB // 2),
    "v2 leaf tighter": ("0::/a/b\n", {"a/b/memory.max": str(GIB), "a/memory.max": str(4 * GIB)}, GIB),
    "v2 host path hidden": ("0::/kubepods/pod1/c1\n", {"memory.max": str(2 * GIB)}, 2 * GIB),
    "v2 root no files": ("0::/\n", {"cgroup.controllers": "cpu memory"}, None),
    "v1 limit": ("4:memory:/slurm/job7\n0::/\n", {"memory/slurm/job7/memory.limit_in_bytes": str(3 * GIB)},
                 3 * GIB),
    "v1 page-counter max": ("4:memory:/x\n", {"memory/x/memory.limit_in_bytes": V1_NO_LIMIT}, None),
    "v1 2**60": ("4:memory:/x\n", {"memory/x/memory.limit_in_bytes": str(2**60)}, None),
    "v1 joint controllers": ("7:cpu,memory:/y\n", {"memory/y/memory.limit_in_bytes": str(GIB)}, GIB),
    "v1 wins on hybrid": ("4:memory:/x\n0::/x\n",
                          {"memory/x/memory.limit_in_bytes": str(GIB), "x/memory.max": str(8 * GIB)}, GIB),
    "garbage value": ("0::/x\n", {"x/memory.max": "lots"}, None),
    "no proc file": (None, {"memory.max": str(GIB)}, None),
    "dotdot path": ("0::/../../elsewhere\n", {"memory.max": str(GIB)}, GIB),
}


@pytest.mark.parametrize("case", sorted(_CASES))
def test_cgroup_memory_limit_fake_tree(tmp_path: Path, case: str) -> None:
    proc_cgroup, files, expected = _CASES[case]
    assert cgroup_memory_limit(_tree(tmp_path, proc_cgroup, files)) == expected


# --- payload memory limit ---------------------------------------------------


@pytest.mark.parametrize(
    ("maxrss_mb", "cgroup", "expected"),
    [
        (2000, None, 2000 * 2**20 * RLIMIT_AS_FACTOR),
        (2000, 4 * GIB, None),  # the cgroup already enforces memory
        (0, None, None),  # queuedata "no limit"
        (-1, None, None),
        (None, None, None),
    ],
)
def test_payload_memory_limit(maxrss_mb: int | None, cgroup: int | None, expected: int | None) -> None:
    assert payload_memory_limit(maxrss_mb, cgroup) == expected


def test_rlimit_as_sits_above_the_monitor_kill_line() -> None:
    # The monitor kills at 2 x maxrss (PSS) with a proper error; the rlimit must not pre-empt it.
    limit = payload_memory_limit(1000, None)
    assert limit is not None and limit > 2 * 1000 * 2**20


# --- CVMFS ------------------------------------------------------------------


def test_cvmfs_alive_on_listable_dirs(tmp_path: Path) -> None:
    (tmp_path / "repo").mkdir()
    (tmp_path / "repo/entry").write_text("x")
    assert cvmfs_alive([tmp_path, tmp_path / "repo"], timeout=10) == (True, "")


def test_cvmfs_alive_no_paths() -> None:
    assert cvmfs_alive([], timeout=1) == (True, "")


@pytest.mark.parametrize(("name", "make_file", "reason"), [("absent", False, "No such file"),
                                                           ("plainfile", True, "Not a directory")])
def test_cvmfs_alive_bad_path(tmp_path: Path, name: str, make_file: bool, reason: str) -> None:
    target = tmp_path / name
    if make_file:
        target.write_text("not a repository")
    alive, why = cvmfs_alive([tmp_path, target], timeout=10)
    assert not alive
    assert str(target) in why and reason in why


def test_cvmfs_alive_times_out_and_leaves_no_child(tmp_path: Path) -> None:
    # Stands in for a hung FUSE mount: a check that blocks far longer than the budget.
    hang = (sys.executable, "-c", "import time; time.sleep(30)")
    start = time.monotonic()
    alive, why = cvmfs_alive([tmp_path], timeout=0.3, check_command=hang)
    elapsed = time.monotonic() - start
    assert not alive
    assert "timed out" in why and str(tmp_path) in why
    assert elapsed < 2.0
    assert psutil.Process(os.getpid()).children() == []


def test_cvmfs_alive_budget_is_shared(tmp_path: Path) -> None:
    # Each check takes 0.8 s: the first fits the 1.4 s budget, the second cannot.
    slow = (sys.executable, "-c", "import time; time.sleep(0.8)")
    alive, why = cvmfs_alive([tmp_path, tmp_path / "second"], timeout=1.4, check_command=slow)
    assert not alive
    assert str(tmp_path / "second") in why


def test_cvmfs_alive_check_cannot_start(tmp_path: Path) -> None:
    alive, why = cvmfs_alive([tmp_path], timeout=1, check_command=(str(tmp_path / "no-such-binary"),))
    assert not alive
    assert "cannot start" in why
