"""Process and node figures read straight from /proc: the files psutil reads on Linux, without its C extension.

fsm_pilot.procinfo uses these where psutil cannot load (no wheel for the
platform, a ``noexec`` mount, musl, a broken copy). They read the same fields
with the same arithmetic as psutil 5.9-7.x (statm pages x page size, stat
ticks / SC_CLK_TCK, the ``Pss:`` line of smaps_rollup, MemAvailable), so the
numbers do not depend on which source a node could load. No reader raises: a
payload process may exit, or be another user's, between any two reads.
"""

from __future__ import annotations

import os
from typing import NamedTuple

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
#: /proc/<pid>/stat state of a process that has exited and awaits its reaper.
ZOMBIE = "Z"


class CpuTimes(NamedTuple):
    """CPU seconds of one process and of its reaped children (psutil.Process.cpu_times' first four)."""

    user: float
    system: float
    children_user: float
    children_system: float

    def total(self) -> float:
        """Everything: the process's own time and its waited-for children's."""
        return self.user + self.system + self.children_user + self.children_system


class ProcSample(NamedTuple):
    """One process at one moment; memory in bytes."""

    rss: int
    vms: int
    pss: int | None  #: None when not asked for or unreadable (permission, no smaps)
    cpu: CpuTimes
    zombie: bool


def _read(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


def state_and_times(pid: int) -> tuple[str, CpuTimes] | None:
    """Process state letter and CPU times from /proc/<pid>/stat; None if gone or unreadable."""
    try:
        data = _read(f"/proc/{pid}/stat")
        fields = data[data.rindex(b")") + 2 :].split()  # comm may hold spaces and ')'
        ticks = [int(value) / CLOCK_TICKS for value in fields[11:15]]
        return fields[0].decode(), CpuTimes(*ticks)
    except (OSError, ValueError, IndexError, TypeError):
        return None


def memory(pid: int) -> tuple[int, int] | None:
    """(RSS, VMS) in bytes from /proc/<pid>/statm; None if gone or unreadable."""
    try:
        size, resident = _read(f"/proc/{pid}/statm").split()[:2]
        return int(resident) * PAGE_SIZE, int(size) * PAGE_SIZE
    except (OSError, ValueError):
        return None


def _pss_line_total(data: bytes) -> int:
    """Sum of the ``Pss:`` lines in kB (one in smaps_rollup, one per mapping in smaps)."""
    return sum(int(line.split()[1]) for line in data.splitlines() if line.startswith(b"Pss:"))


def pss(pid: int) -> int | None:
    """Proportional set size in bytes: smaps_rollup, else the summed smaps (as psutil does).

    smaps_rollup exists since Linux 4.14 and answers ENOENT/ESRCH for some
    live processes; smaps is slower but answers more often. None when neither
    can be read (another user's process, or it is gone).
    """
    for name in ("smaps_rollup", "smaps"):
        try:
            return _pss_line_total(_read(f"/proc/{pid}/{name}")) * 1024
        except (FileNotFoundError, ProcessLookupError):
            continue
        except (OSError, ValueError, IndexError):
            return None
    return None


def sample(pid: int, *, with_pss: bool = True) -> ProcSample | None:
    """RSS, VMS, PSS, CPU times and zombie state of ``pid``; None if it vanished mid-read.

    A PSS that cannot be read from a process that still exists is None in the
    sample; one that cannot be read because the process is gone drops the sample.
    """
    head = state_and_times(pid)
    mem = memory(pid)
    if head is None or mem is None:
        return None
    state, times = head
    zombie = state == ZOMBIE
    proportional = pss(pid) if with_pss and not zombie else None
    if proportional is None and with_pss and not zombie and state_and_times(pid) is None:
        return None
    return ProcSample(mem[0], mem[1], proportional, times, zombie)


def meminfo() -> dict[str, int]:
    """/proc/meminfo as bytes per field name (``MemTotal`` ...); empty if unreadable."""
    values: dict[str, int] = {}
    try:
        data = _read("/proc/meminfo")
    except OSError:
        return values
    for line in data.splitlines():
        name, _, rest = line.partition(b":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            values[name.decode(errors="replace")] = int(parts[0]) * (1024 if parts[1:] == [b"kB"] else 1)
    return values


def virtual_memory() -> tuple[int, int] | None:
    """(total, available) bytes: MemTotal and MemAvailable (Linux >= 3.14).

    Without a usable MemAvailable, free + buffers + page cache (what psutil
    reported before it used MemAvailable); an available figure above the total
    (container views) is replaced by MemFree, as psutil does.
    """
    info = meminfo()
    total, free = info.get("MemTotal"), info.get("MemFree", 0)
    if total is None:
        return None
    available = info.get("MemAvailable") or (
        free + info.get("Buffers", 0) + info.get("Cached", 0) + info.get("SReclaimable", 0))
    return total, free if available > total else available


def cpu_count() -> int:
    """Online logical CPUs (sysconf, what psutil.cpu_count(logical=True) returns on Linux); at least 1."""
    try:
        return max(1, int(os.sysconf("SC_NPROCESSORS_ONLN")))
    except (ValueError, OSError):
        return os.cpu_count() or 1
