"""Is the pilot that owns a pilot dir still alive? A lock file answers without guessing.

INIT writes ``pilot.lock`` in its pilot dir: the pilot's pid, its process
start time (clock ticks since boot, /proc/<pid>/stat field 22) and the boot
id. A pid alone is not enough, pids are reused; pid + start time + boot id
names one process for ever. The pilot also holds an exclusive ``flock`` on
the file for its whole life, so on this node a live owner is certain even if
the other facts were somehow ambiguous. A dir without a lock file is treated
as alive (we cannot prove it is dead), except that cleanup may judge it by
age.
"""

from __future__ import annotations

import fcntl
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import IO

LOCK_NAME = "pilot.lock"
BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


def boot_id() -> str:
    """This boot's id ("" where the kernel does not expose one)."""
    try:
        return BOOT_ID.read_text().strip()
    except OSError:
        return ""


def start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot, or None if it does not exist."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name may contain spaces and parentheses: fields start after the last ')'
    fields = stat[stat.rindex(")") + 2:].split()
    return int(fields[19])


@dataclass(frozen=True)
class Owner:
    """Who wrote a lock file."""

    pid: int
    start_ticks: int
    boot_id: str


def take_lock(pilot_dir: Path) -> IO[str]:
    """Write this pilot's lock file and hold an flock on it; keep the returned file open for life."""
    me = Owner(os.getpid(), start_ticks(os.getpid()) or 0, boot_id())
    handle = open(pilot_dir / LOCK_NAME, "w", encoding="utf-8")  # noqa: SIM115 -- held for the pilot's life
    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    handle.write(json.dumps({"pid": me.pid, "start_ticks": me.start_ticks, "boot_id": me.boot_id}))
    handle.flush()
    return handle


#: A lock file is a few dozen bytes; anything bigger is not one.
_LOCK_MAX_BYTES = 4096


def _open_regular(path: Path) -> int:
    """An fd on ``path`` if it is a regular file (not a FIFO that would block, nor a symlink), else OSError."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(f"{path} is not a regular file")
    return fd


def read_owner(pilot_dir: Path) -> Owner | None:
    """The owner recorded in a pilot dir's lock file, or None if there is none or it is unreadable."""
    try:
        fd = _open_regular(pilot_dir / LOCK_NAME)
        try:
            data = json.loads(os.read(fd, _LOCK_MAX_BYTES))
        finally:
            os.close(fd)
        return Owner(int(data["pid"]), int(data["start_ticks"]), str(data["boot_id"]))
    except (OSError, ValueError, KeyError, TypeError, OverflowError, RecursionError):  # any file, a hostile one too
        return None


def _locked(pilot_dir: Path) -> bool:
    """Someone holds the flock (only a live process can)."""
    try:
        fd = _open_regular(pilot_dir / LOCK_NAME)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def owner_alive(pilot_dir: Path) -> bool | None:
    """True: its pilot runs; False: it is dead; None: no lock file to tell (treat as alive)."""
    owner = read_owner(pilot_dir)
    if owner is None:
        return True if _locked(pilot_dir) else None
    if _locked(pilot_dir):
        return True
    same_boot = owner.boot_id == boot_id()
    return same_boot and start_ticks(owner.pid) == owner.start_ticks
