"""Cheap measurements of a running job, taken only for the checks that are due.

Nothing here decides; the checks compare these facts with the limits. Walks
of the job dir never follow symlinks (a link to a big tree elsewhere must
neither count against the job nor keep a looping job alive) and stop as soon
as the answer is known, so a huge job dir costs at most one pass per interval.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from fsm_pilot.job import Job
from fsm_pilot.monitor.limits import Limits
from fsm_pilot.monitor.usage import Sample, sample_tree
from fsm_pilot.node import free_disk_bytes
from fsm_pilot.payload.process import Payload

MEMORY, LOOPING, WORKDIR, STDOUT, OUTPUTS, DISK = "memory", "looping", "workdir", "stdout", "output_sizes", "disk"
WALLTIME, LIFETIME = "walltime", "lifetime"

#: Path substrings the looping check ignores (pilot/user/generic/loopingjob_definitions.py).
LOOPING_IGNORE: tuple[str, ...] = ("prmon", "pilotlog", ".lib.tgz", ".py", "pandaJob")


@dataclass(frozen=True)
class Activity:
    """When the job dir last changed, as the looping check sees it."""

    idle_seconds: float  #: since the newest change (or the payload start, if later)
    newest_mtime: float | None  #: epoch seconds; None when nothing counted was found
    newest_path: str | None
    complete: bool  #: False when the walk stopped early at a recent enough change


@dataclass(frozen=True)
class DirSize:
    """Bytes of regular files under a dir (hard links once, symlinks never)."""

    size_bytes: int
    files: int
    complete: bool  #: False when the walk stopped because the size passed the limit


@dataclass(frozen=True)
class Target:
    """What to measure for one job."""

    payload: Payload
    job_dir: Path
    logs: tuple[Path, ...]  #: payload stdout/stderr (Pilot 3 adds ``log.*`` in the job dir)
    outputs: tuple[str, ...]  #: output LFNs, files in the job dir
    ignore: tuple[str, ...] = LOOPING_IGNORE


@dataclass(frozen=True)
class Measurements:
    """The facts of one tick; a field is None when its check was not due (or unmeasurable)."""

    sample: Sample | None = None
    activity: Activity | None = None
    workdir: DirSize | None = None
    logs: Mapping[str, int] | None = None  #: path -> bytes
    outputs: Mapping[str, int] | None = None  #: lfn -> bytes, existing files only
    free_bytes: int | None = None
    errors: Mapping[str, str] = field(default_factory=dict)  #: check -> why it could not be measured


def target_for(payload: Payload, job_dir: Path, job: Job) -> Target:
    """The usual target: the payload's own stdout/stderr and the job's outputs."""
    return Target(payload, job_dir, (payload.stdout_path, payload.stderr_path),
                  tuple(spec.lfn for spec in job.outputs))


def _entries(directory: str) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(directory) as it:
            return list(it)
    except OSError:  # removed or unreadable meanwhile: nothing to count there
        return []


def walk(root: Path) -> Iterator[tuple[os.DirEntry[str], os.stat_result]]:
    """Every entry below ``root`` with its lstat, depth first; symlinks are listed, never entered."""
    pending = [str(root)]
    while pending:
        for entry in _entries(pending.pop()):
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISDIR(info.st_mode):
                pending.append(entry.path)
            yield entry, info


def newest_change(root: Path, ignore: Collection[str], recent_after: float) -> tuple[float | None, str | None, bool]:
    """Newest mtime of files and dirs under ``root`` (not ``root`` itself), symlinks skipped.

    Paths containing an ``ignore`` substring (relative to ``root``) do not
    count. Stops at the first change newer than ``recent_after``: that alone
    proves the job is not looping. Returns (mtime, path, walked everything).
    """
    newest: tuple[float | None, str | None] = (None, None)
    skip = len(str(root)) + 1
    for entry, info in walk(root):
        if not (stat.S_ISDIR(info.st_mode) or stat.S_ISREG(info.st_mode)):
            continue
        if any(part in entry.path[skip:] for part in ignore):  # below root only: parents may be named anything
            continue
        if newest[0] is None or info.st_mtime > newest[0]:
            newest = (info.st_mtime, entry.path)
        if info.st_mtime > recent_after:
            return newest[0], newest[1], False
    return newest[0], newest[1], True


def activity(root: Path, ignore: Collection[str], *, now_wall: float, started_wall: float,
             limit: float) -> Activity:
    """Seconds since the job dir last changed, counting from the payload start at the latest.

    A payload that never writes anything is looping after ``limit`` seconds
    too; Pilot 3 would wait for a first write forever (loopingjob.py).
    """
    mtime, path, complete = newest_change(root, ignore, now_wall - limit)
    reference = started_wall if mtime is None else max(mtime, started_wall)
    return Activity(max(0.0, now_wall - reference), mtime, path, complete)


def dir_size(root: Path, stop_above: int | None = None) -> DirSize:
    """Apparent size of the regular files under ``root`` (Pilot 3's get_disk_usage), bounded.

    Symlinks are neither followed nor counted; a file with several hard links
    counts once. The walk stops once the total exceeds ``stop_above``.
    """
    total, files, seen = 0, 0, set()
    for _, info in walk(root):
        if not stat.S_ISREG(info.st_mode) or (info.st_nlink > 1 and (info.st_dev, info.st_ino) in seen):
            continue
        if info.st_nlink > 1:
            seen.add((info.st_dev, info.st_ino))
        total, files = total + info.st_size, files + 1
        if stop_above is not None and total > stop_above:
            return DirSize(total, files, complete=False)
    return DirSize(total, files, complete=True)


def _size(path: Path, *, follow: bool) -> int | None:
    try:
        info = path.stat() if follow else path.lstat()
    except OSError:
        return None
    return info.st_size if stat.S_ISREG(info.st_mode) else None


def log_sizes(job_dir: Path, logs: Collection[Path]) -> dict[str, int]:
    """Sizes of the payload's logs: ``logs`` plus ``log.*`` in the job dir (monitoring.py check_payload_stdout).

    The job's log tarball (``*job.log.tgz``) is not a payload log.
    """
    names = {str(path) for path in logs}
    names.update(entry.path for entry in _entries(str(job_dir))
                 if entry.name.startswith("log.") and "job.log.tgz" not in entry.name)
    sizes = {name: _size(Path(name), follow=False) for name in sorted(names)}
    return {name: size for name, size in sizes.items() if size is not None}


def output_sizes(job_dir: Path, lfns: Collection[str]) -> dict[str, int]:
    """Sizes of the outputs that exist so far (followed: stage-out copies the target)."""
    sizes = {lfn: _size(job_dir / lfn, follow=True) for lfn in lfns}
    return {lfn: size for lfn, size in sizes.items() if size is not None}


def _free(job_dir: Path) -> int | str:
    try:
        return free_disk_bytes(job_dir)
    except OSError as exc:
        return f"statvfs failed: {exc.strerror or exc}"


def measure(due: Collection[str], target: Target, limits: Limits, *, now: float, now_wall: float) -> Measurements:
    """Take exactly the measurements the ``due`` checks need (``now`` monotonic, ``now_wall`` epoch)."""
    looping = LOOPING in due and limits.looping_limit is not None
    free = _free(target.job_dir) if DISK in due else None
    return Measurements(
        sample=sample_tree(target.payload, now) if MEMORY in due else None,
        activity=activity(target.job_dir, target.ignore, now_wall=now_wall, started_wall=target.payload.start_wall,
                          limit=limits.looping_limit or 0.0) if looping else None,
        workdir=dir_size(target.job_dir, stop_above=limits.workdir_bytes) if WORKDIR in due else None,
        logs=log_sizes(target.job_dir, target.logs) if STDOUT in due else None,
        outputs=output_sizes(target.job_dir, target.outputs) if OUTPUTS in due else None,
        free_bytes=free if isinstance(free, int) else None,
        errors={DISK: free} if isinstance(free, str) else {},
    )
