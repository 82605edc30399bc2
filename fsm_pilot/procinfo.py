"""What the pilot measures about processes and the node: psutil where it loads, /proc where it does not.

psutil ships as compiled wheels in the pilot tarball. On a node where its
extension cannot load (no wheel for the platform or libc, a ``noexec``
scratch mount that cannot map the .so executable, a damaged copy), the pilot
must still run jobs, so the same figures come from fsm_pilot.procfs. This is
the only module that imports psutil; ``UNAVAILABLE`` says why it did not load.
"""

from __future__ import annotations

from fsm_pilot import procfs
from fsm_pilot.procfs import CpuTimes, ProcSample

try:
    import psutil
# Exception, deliberately, at this one boundary. Known cases: ImportError (the
# dynamic loader refusing the .so: "invalid ELF header", "failed to map segment
# from shared object" on noexec, unresolved symbols on musl; psutil's own
# C/Python version check), OSError (psutil reads /proc/stat and sysconf at
# import), and whatever a damaged copy of its Python files raises (SyntaxError,
# AttributeError...). Any of them means "psutil cannot load here", for which
# the pilot has a complete replacement; KeyboardInterrupt and SystemExit pass.
except Exception as exc:
    UNAVAILABLE: str | None = f"{type(exc).__name__}: {exc}"
else:
    UNAVAILABLE = None

#: Where the figures come from in this process: "psutil" or "/proc".
SOURCE = "psutil" if UNAVAILABLE is None else "/proc"


def _psutil_pss(proc: psutil.Process) -> int | None:
    """PSS in bytes; None when denied (another user's process) or not reported."""
    try:
        pss = getattr(proc.memory_full_info(), "pss", None)
    except psutil.AccessDenied:
        return None
    return None if pss is None else int(pss)


def _psutil_sample(pid: int, with_pss: bool) -> ProcSample | None:
    try:
        proc = psutil.Process(pid)
        with proc.oneshot():
            zombie = proc.status() == psutil.STATUS_ZOMBIE
            mem = proc.memory_info()
            times = proc.cpu_times()
        pss = _psutil_pss(proc) if with_pss and not zombie else None
    # gone (NoSuchProcess, ZombieProcess) or denied (AccessDenied); psutil lets parse errors of odd /proc
    # files through unwrapped: no figures either way, as from fsm_pilot.procfs
    except (psutil.Error, OSError, ValueError, IndexError):
        return None
    cpu = CpuTimes(times.user, times.system, times.children_user, times.children_system)
    return ProcSample(mem.rss, mem.vms, pss, cpu, zombie)


def sample(pid: int, *, with_pss: bool = True) -> ProcSample | None:
    """RSS, VMS, PSS (bytes), CPU times and zombie state of ``pid``; None if it is gone or unreadable."""
    if UNAVAILABLE is None:
        return _psutil_sample(pid, with_pss)
    return procfs.sample(pid, with_pss=with_pss)


def vms(pid: int) -> int | None:
    """Virtual memory size of ``pid`` in bytes; None if it is gone or unreadable."""
    if UNAVAILABLE is None:
        try:
            return int(psutil.Process(pid).memory_info().vms)
        except (psutil.Error, OSError, ValueError, IndexError):
            return None
    mem = procfs.memory(pid)
    return None if mem is None else mem[1]


def virtual_memory() -> tuple[int, int]:
    """The node's (total, available) memory in bytes; (0, 0) when /proc/meminfo is unreadable."""
    if UNAVAILABLE is None:
        try:
            memory = psutil.virtual_memory()
            return int(memory.total), int(memory.available)
        except (OSError, ValueError, KeyError):  # psutil parses /proc/meminfo; a restricted /proc breaks it
            pass
    return procfs.virtual_memory() or (0, 0)


def cpu_count() -> int:
    """Logical CPUs of the node, at least 1."""
    if UNAVAILABLE is None:
        count = psutil.cpu_count(logical=True)
        if count:
            return int(count)
    return procfs.cpu_count()


def cpu_mhz() -> float | None:
    """psutil's current CPU frequency (sysfs cpufreq); None without psutil or where it has none."""
    if UNAVAILABLE is not None:
        return None
    try:
        freq = psutil.cpu_freq()
    except (OSError, NotImplementedError, AttributeError, ValueError):  # absent or unreadable on some kernels
        return None
    return float(freq.current) if freq is not None and freq.current > 0 else None
