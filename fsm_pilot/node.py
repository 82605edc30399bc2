"""Facts about the worker node, measured cheaply, for getJob and the guards.

Everything here measures; nothing decides (the guards compare these numbers
with thresholds). Each reader tolerates a missing source, because worker
nodes range from bare metal to containers without ``/proc/cpuinfo`` details
or cgroup files.
"""

from __future__ import annotations

import contextlib
import os
import platform
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from fsm_pilot import procinfo

#: v1 reports "no limit" as a huge number (the page counter's maximum,
#: 2**63 rounded down to a page on 64-bit); anything this large is not a limit.
_V1_UNLIMITED = 2**60

#: RLIMIT_AS = maxrss x 3. RLIMIT_AS counts virtual memory, which runs well
#: above RSS (per-thread malloc arenas, mapped files, runtime reservations);
#: the pilot's monitor already kills at 2 x maxrss PSS with a proper
#: PAYLOADEXCEEDMAXMEM, so the rlimit sits above that and only stops a
#: runaway process the monitor has not caught yet.
RLIMIT_AS_FACTOR = 3

#: Lists one entry of argv[1]; runs in a child so a hung mount hangs the child only.
_LIST_SCRIPT = (
    "import os, sys\n"
    "try:\n"
    "    with os.scandir(sys.argv[1]) as it:\n"
    "        next(it, None)\n"
    "except OSError as e:\n"
    "    sys.exit(e.strerror or type(e).__name__)\n"
)
DEFAULT_CVMFS_CHECK: tuple[str, ...] = (sys.executable, "-I", "-S", "-c", _LIST_SCRIPT)

#: How long to wait for a killed check to go away; a process stuck in the
#: kernel on a dead mount may ignore SIGKILL, and the pilot must not hang too.
_REAP_GRACE = 0.5


@dataclass(frozen=True)
class NodeFacts:
    """One snapshot of the node; memory in MiB, disk in bytes as its consumers want."""

    hostname: str
    arch: str
    cpu_count: int
    cpu_mhz: float | None
    cpu_model: str
    memory_total_mb: float
    memory_available_mb: float
    disk_free_bytes: int
    load_avg: tuple[float, float, float]
    cgroup_memory_limit_bytes: int | None
    python: str


def collect_node_facts(workdir: Path) -> NodeFacts:
    """Measure the node now; ``workdir`` is where the disk space matters."""
    cpuinfo = _read_text(Path("/proc/cpuinfo"))
    memory_total, memory_available = procinfo.virtual_memory()
    return NodeFacts(
        hostname=socket.gethostname(),  # no DNS lookup: getfqdn() can stall for seconds
        arch=platform.machine(),
        cpu_count=procinfo.cpu_count(),
        cpu_mhz=_cpu_mhz(cpuinfo),
        cpu_model=cpuinfo_field(cpuinfo, "model name") or "",
        memory_total_mb=memory_total / 2**20,
        memory_available_mb=memory_available / 2**20,
        disk_free_bytes=free_disk_bytes(workdir),
        load_avg=os.getloadavg(),
        cgroup_memory_limit_bytes=cgroup_memory_limit(),
        python=platform.python_version(),
    )


def cpuinfo_field(cpuinfo: str, key: str) -> str | None:
    """First value of ``key`` in /proc/cpuinfo text (``key : value`` lines), if any."""
    for line in cpuinfo.splitlines():
        name, sep, value = line.partition(":")
        if sep and name.strip() == key:
            return value.strip()
    return None


def _cpu_mhz(cpuinfo: str) -> float | None:
    """psutil's current frequency, else /proc/cpuinfo's; VMs often expose neither."""
    current = procinfo.cpu_mhz()
    if current is not None:
        return current
    raw = cpuinfo_field(cpuinfo, "cpu MHz")
    try:
        return float(raw) if raw else None
    except ValueError:
        return None


def _read_text(path: Path) -> str:
    """File contents, or empty text when the file is absent or unreadable."""
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def free_disk_bytes(path: Path) -> int:
    """Bytes an unprivileged process can still write under ``path`` (root's reserve excluded)."""
    stat = os.statvfs(path)
    return stat.f_bavail * stat.f_frsize


# --- cgroup memory limit ----------------------------------------------------


def cgroup_memory_limit(root: Path = Path("/")) -> int | None:
    """The tightest memory limit on this process's cgroup and its ancestors, in bytes.

    v1 is used when the ``memory`` controller is mounted there (hybrid hosts
    list both), else v2. ``root`` replaces ``/`` so tests can use a fake tree.
    """
    paths = _cgroup_paths(_read_text(root / "proc/self/cgroup"))
    mount = root / "sys/fs/cgroup"
    if "memory" in paths:
        return _tightest_limit(mount / "memory", paths["memory"], "memory.limit_in_bytes")
    if "" in paths:
        return _tightest_limit(mount, paths[""], "memory.max")
    return None


def _cgroup_paths(text: str) -> dict[str, str]:
    """Controller -> cgroup path from /proc/self/cgroup; the v2 entry ``0::<path>`` is keyed ``""``."""
    paths: dict[str, str] = {}
    for line in text.splitlines():
        fields = line.split(":", 2)
        if len(fields) == 3:
            for controller in fields[1].split(","):
                paths[controller] = fields[2]
    return paths


def _tightest_limit(mount: Path, cgroup: str, filename: str) -> int | None:
    """Minimum over the cgroup and its ancestors: a parent's limit binds its children too.

    Walking up also covers containers whose /proc shows a host path that is
    not visible under their own mount: the mount root holds their limit.
    """
    parts = [part for part in cgroup.split("/") if part not in ("", ".", "..")]
    limits = []
    for depth in range(len(parts), -1, -1):
        limit = _read_limit(mount.joinpath(*parts[:depth], filename))
        if limit is not None:
            limits.append(limit)
    return min(limits, default=None)


def _read_limit(path: Path) -> int | None:
    """A limit file's value; None for "max", huge v1 values, absent or garbled files."""
    text = _read_text(path).strip()
    try:
        value = int(text)
    except ValueError:  # "max", empty (no such file) or garbage
        return None
    return value if 0 <= value < _V1_UNLIMITED else None


# --- payload memory limit ---------------------------------------------------


def payload_memory_limit(queuedata_maxrss_mb: int | None, cgroup_limit: int | None) -> int | None:
    """RLIMIT_AS bytes for the payload, or None to leave it unlimited.

    Only without a cgroup limit: a cgroup already enforces real memory, and
    an address-space limit on top would only break payloads that reserve
    much more virtual memory than they use. See ``RLIMIT_AS_FACTOR``.
    """
    if cgroup_limit is not None or queuedata_maxrss_mb is None or queuedata_maxrss_mb <= 0:
        return None
    return queuedata_maxrss_mb * 2**20 * RLIMIT_AS_FACTOR


# --- CVMFS ------------------------------------------------------------------


def cvmfs_alive(
    paths: Sequence[Path],
    timeout: float,
    check_command: Sequence[str] = DEFAULT_CVMFS_CHECK,
) -> tuple[bool, str]:
    """Whether every path exists and can be listed, within ``timeout`` seconds in total.

    A broken CVMFS mount hangs whoever touches it, so each path is listed by
    a short-lived child (``check_command`` plus the path as last argument)
    that is killed on timeout, never by the pilot itself.
    """
    deadline = time.monotonic() + timeout
    for path in paths:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False, f"{path}: not checked, {timeout:.1f} s budget used up"
        problem = _run_check([*check_command, str(path)], remaining)
        if problem is not None:
            return False, f"{path}: {problem}"
    return True, ""


def _run_check(argv: list[str], timeout: float) -> str | None:
    """Run one check; None when it succeeded, else why not."""
    try:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
    except OSError as err:
        return f"cannot start the check: {err.strerror}"
    try:
        _, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _abandon(proc)
        return f"listing timed out after {timeout:.1f} s"
    if proc.returncode != 0:
        message = stderr.decode("utf-8", errors="replace").strip()[-200:]
        return message or f"check exited with {proc.returncode}"
    return None


def _abandon(proc: subprocess.Popen[bytes]) -> None:
    """Kill a hung check and reap it if it dies promptly; never block on it for long."""
    proc.kill()
    # Stuck in the kernel: subprocess reaps it later and the pilot moves on.
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=_REAP_GRACE)
    if proc.stderr is not None:
        proc.stderr.close()
