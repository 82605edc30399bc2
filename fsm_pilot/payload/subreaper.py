"""Child-subreaper control and the /proc process-table primitives the kill relies on.

A payload may double-fork and even ``setsid`` to escape its session. If the pilot
is a child subreaper, such orphans are reparented to the pilot instead of init, so
they can be reaped; whether one is the payload's is proven separately (see
fsm_pilot.payload.ownership), since a wrapper's orphans are adopted the same way.
Processes are identified by ``(pid, start_ticks)`` so a reused pid is never hit.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import glob
import os
import signal
import sys
from collections.abc import Collection, Iterable
from typing import NamedTuple

PR_SET_CHILD_SUBREAPER = 36
PR_GET_CHILD_SUBREAPER = 37

#: /proc states of a process that has exited (zombie or being torn down).
DEAD_STATES = frozenset({"Z", "X", "x"})
#: States in which a process cannot fork any more (stopped, traced, dead).
FROZEN_STATES = frozenset({"T", "t", *DEAD_STATES})

Key = tuple[int, int]  # (pid, start_ticks)


class ProcStat(NamedTuple):
    """The /proc/<pid>/stat fields needed to walk a process tree.

    ``start_ticks`` (clock ticks since boot) never changes for a process and,
    unlike psutil's wall-clock ``create_time``, is immune to clock and btime
    adjustments, so ``(pid, start_ticks)`` identifies a process across scans.
    """

    pid: int
    ppid: int
    state: str
    pgrp: int
    sid: int
    start_ticks: int

    @property
    def key(self) -> Key:
        return (self.pid, self.start_ticks)


@functools.lru_cache(maxsize=1)
def libc() -> ctypes.CDLL | None:
    """The already-loaded C library (CDLL(None): no find_library, which spawns ldconfig)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


def _prctl(option: int, arg: int | ctypes.c_int) -> bool:
    """Call prctl(2) via ctypes; False when libc or the call is unavailable."""
    lib = libc()
    if lib is None:
        return False
    try:
        value = ctypes.byref(arg) if isinstance(arg, ctypes.c_int) else ctypes.c_ulong(arg)
        zero = ctypes.c_ulong(0)
        return int(lib.prctl(ctypes.c_int(option), value, zero, zero, zero)) == 0
    except (OSError, AttributeError):
        return False


def become_subreaper() -> bool:
    """Make this process a child subreaper so payload orphans are reparented to it.

    Returns False (never raises) where prctl or the option is unavailable.
    """
    return _prctl(PR_SET_CHILD_SUBREAPER, 1)


def is_subreaper() -> bool:
    """Whether this process is a child subreaper (orphans come back to us)."""
    flag = ctypes.c_int(0)
    return _prctl(PR_GET_CHILD_SUBREAPER, flag) and flag.value != 0


def read_stat(pid: int) -> ProcStat | None:
    """Parse /proc/<pid>/stat; None if the process is gone or unreadable."""
    try:
        fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY)  # no file object: a scan reads every process's
        try:
            data = os.read(fd, 4096)
        finally:
            os.close(fd)
        # comm (field 2) may contain spaces and parentheses: split after the last ')'.
        fields = data[data.rindex(b")") + 2 :].split()
        return ProcStat(pid, int(fields[1]), fields[0].decode(), int(fields[2]), int(fields[3]), int(fields[19]))
    except (OSError, ValueError, IndexError):
        return None


def _stats(pids: Iterable[int]) -> list[ProcStat]:
    return [stat for stat in map(read_stat, pids) if stat is not None]


def scan_procs() -> list[ProcStat]:
    """One pass over /proc: a single small read per process, no psutil objects."""
    with os.scandir("/proc") as entries:
        return _stats(int(entry.name) for entry in entries if entry.name.isdigit())


def child_stats() -> list[ProcStat]:
    """This process's direct children, cheaply via /proc/self/task/*/children.

    Falls back to a full /proc scan on kernels without CONFIG_PROC_CHILDREN.
    """
    files = glob.glob("/proc/self/task/*/children")
    if not files:
        me = os.getpid()
        return [stat for stat in scan_procs() if stat.ppid == me]
    pids: set[int] = set()
    for name in files:
        with contextlib.suppress(OSError), open(name) as handle:
            pids.update(int(pid) for pid in handle.read().split())
    return _stats(sorted(pids))


def is_alive(key: Key) -> bool:
    """The process with this identity exists and has not exited (zombies are dead)."""
    stat = read_stat(key[0])
    return stat is not None and stat.start_ticks == key[1] and stat.state not in DEAD_STATES


def send_signal(key: Key, sig: int) -> bool:
    """Signal exactly the process ``key``, never a process that reused its pid.

    A pidfd is opened, the identity checked, then the signal goes through the
    pidfd, so a pid recycled in between cannot be hit. Vanished processes are
    normal: False is returned.
    """
    try:
        pidfd = os.pidfd_open(key[0])
    except ProcessLookupError:
        return False
    except (AttributeError, OSError):  # no pidfd support: check, then kill by pid
        return _kill_checked(key, sig)
    try:
        stat = read_stat(key[0])
        if stat is None or stat.start_ticks != key[1]:
            return False
        signal.pidfd_send_signal(pidfd, sig)
        return True
    except ProcessLookupError:
        return False
    finally:
        os.close(pidfd)


def _kill_checked(key: Key, sig: int) -> bool:
    stat = read_stat(key[0])
    if stat is None or stat.start_ticks != key[1]:
        return False
    try:
        os.kill(key[0], sig)
        return True
    except ProcessLookupError:
        return False


def signal_own_groups(leaders: Iterable[Key], sig: int) -> None:
    """killpg each group led by one of ``leaders`` that is our own (unreaped) child.

    While our child is unreaped its pid, hence its pgid, cannot be reused, so the
    group is certainly the scanned one; killpg then also reaches members forked
    after the scan, which closes the race with fork loops that called setsid.
    """
    me = os.getpid()
    for key in leaders:
        stat = read_stat(key[0])
        if stat is not None and stat.key == key and stat.ppid == me and stat.pgrp == stat.pid:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(stat.pid, sig)


def reap_zombies(keep: Collection[int]) -> list[int]:
    """Reap zombie children of this process except ``keep``; never blocks.

    ``keep`` must list the Popen-owned pids: reaping those here would steal their
    exit status from ``Popen.poll``. Everything else that is a zombie child of a
    subreaper pilot is a payload orphan nobody else will ever wait for.
    """
    reaped: list[int] = []
    for stat in child_stats():
        if stat.state not in DEAD_STATES or stat.pid in keep:
            continue
        with contextlib.suppress(ChildProcessError):
            pid, _status = os.waitpid(stat.pid, os.WNOHANG)
            if pid == stat.pid:
                reaped.append(pid)
    return reaped
