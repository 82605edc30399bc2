"""Remove what dead pilots left in the launch dir, by Pilot 3's age rules, without ever guessing.

Only dirs named like pilot dirs (``Panda_Pilot_<pid>_<epoch>``, Pilot 3's
``PanDA_Pilot3_<pid>_<epoch>``) directly under the launch dir are judged, and
only when they are not this pilot's own and their owner is not alive
(fsm_pilot.liveness: a live lock means hands off; a dir without a lock file,
like Pilot 3's, is judged by age alone). Inside such a dir:

- an empty child dir untouched for ``empty_dir_age`` goes;
- a job dir (``PanDA_Pilot-<PandaID>``) marked ``MAXEDOUT`` goes once untouched for ``maxed_out_age``;
- a lingering job dir (no ``jobstate.json``, or its outcome delivered) goes once untouched for ``job_dir_age``;
- the pilot dir itself goes once untouched for ``pilot_dir_age`` if every job in it is settled: delivered,
  maxed out, without a state file (nothing to recover), or starting/running/holding, or in an unreadable
  state, for ``stuck_job_age`` by its state file. A decided but undelivered job (transferring, finished,
  failed) keeps it: recovery may still deliver that outcome.

"Untouched for N" means the newest mtime of the dir and of everything below it (lstat) is older than N;
one walk stats at most ``max_walk_entries`` entries, a bigger dir is kept (too big to judge cheaply).

Symlinks are never followed. A symlink is never a candidate, even one named like a pilot or job dir: it
is left in place. One inside a dir being removed goes with it, as a link: its target is untouched
(``shutil.rmtree`` on Linux walks by dir fds and never enters a link, even one swapped in meanwhile).
Before a removal the path is resolved: it must be a real dir strictly inside the launch dir, reached
through no symlink. Races (a dir vanishing, permission denied) are recorded in the report, never raised.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import stat
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from fsm_pilot.jobstate import MAXED_OUT, STATE_FILE
from fsm_pilot.liveness import owner_alive

PILOT_DIR = re.compile(r"(Panda_Pilot|PanDA_Pilot3)_\d+_\d+")
JOB_DIR = re.compile(r"PanDA_Pilot-\d+")
ACTIVE = frozenset({"starting", "running", "holding"})
OUTCOMES = frozenset({"finished", "failed"})
KNOWN_STATES = ACTIVE | OUTCOMES | {"transferring"}
#: a state file larger than this is not read (it is then unreadable: judged as unknown)
MAX_STATE_BYTES = 64 * 1024 * 1024
#: read once: a platform whose rmtree could follow a symlink swapped in mid-removal removes nothing
_SAFE_RMTREE = shutil.rmtree.avoids_symlink_attacks


@dataclass(frozen=True)
class CleanupRules:
    """Ages in seconds (Pilot 3's), and how many entries one age walk may stat."""

    empty_dir_age: float = 12 * 3600
    job_dir_age: float = 12 * 3600
    maxed_out_age: float = 12 * 3600
    pilot_dir_age: float = 12 * 3600
    stuck_job_age: float = 7 * 24 * 3600
    max_walk_entries: int = 100_000


@dataclass(frozen=True)
class Decision:
    """One path and why it was removed, kept, or could not be handled."""

    path: Path
    reason: str


@dataclass
class CleanupReport:
    """What cleanup did: operators read it in the log, tests check it."""

    removed: list[Decision] = field(default_factory=list)
    kept: list[Decision] = field(default_factory=list)
    errors: list[Decision] = field(default_factory=list)


class CleanupLog(Protocol):
    """The part of a structlog logger cleanup uses."""

    def debug(self, event: str, **kw: Any) -> Any: ...
    def info(self, event: str, **kw: Any) -> Any: ...
    def warning(self, event: str, **kw: Any) -> Any: ...


class _NullLog:
    def debug(self, event: str, **kw: Any) -> None:
        """Drop it."""

    def info(self, event: str, **kw: Any) -> None:
        """Drop it."""

    def warning(self, event: str, **kw: Any) -> None:
        """Drop it."""


class _CannotTell(Exception):
    """An age walk could not decide; the dir is kept."""


@dataclass(frozen=True)
class _JobState:
    """What cleanup needs from a jobstate.json."""

    state: str | None  # None: unreadable, or a state cleanup does not know
    done: bool  # finished/failed and delivered
    time: float  # the newer of the file's mtime and the time it records


@dataclass
class _Run:
    """One cleanup pass: where, by which rules, at what time, and what it did so far."""

    root: Path
    own: Path | None
    rules: CleanupRules
    now: float
    log: CleanupLog
    report: CleanupReport = field(default_factory=CleanupReport)

    def keep(self, path: Path, reason: str) -> None:
        self.report.kept.append(Decision(path, reason))
        self.log.debug("cleanup kept", path=str(path), reason=reason)

    def fail(self, path: Path, reason: str) -> None:
        self.report.errors.append(Decision(path, reason))
        self.log.warning("cleanup error", path=str(path), reason=reason)

    def untouched(self, path: Path, age: float) -> bool:
        return _untouched(path, self.now - age, self.rules.max_walk_entries)

    def remove(self, path: Path, reason: str) -> None:
        """Remove a tree once its resolved path is proven safe; record the outcome."""
        try:
            refusal = _refusal(path, self.root)
        except FileNotFoundError:
            self.keep(path, "vanished before removal (removed by someone else)")
            return
        if refusal is not None:
            self.fail(path, f"not removed: {refusal}")
            return
        failures = _rmtree(path)
        if failures:
            self.fail(path, f"removal incomplete ({reason}): {'; '.join(failures[:3])}")
            return
        self.report.removed.append(Decision(path, reason))
        self.log.info("cleanup removed", path=str(path), reason=reason)


def cleanup(launch_dir: Path, own_pilot_dir: Path | None, rules: CleanupRules, now: float | None = None,
            log: CleanupLog | None = None) -> CleanupReport:
    """Remove dead pilots' leftovers under ``launch_dir`` (never the dir itself); never raises for races."""
    root = Path(os.path.realpath(launch_dir))
    own = Path(os.path.realpath(own_pilot_dir)) if own_pilot_dir is not None else None
    run = _Run(root, own, rules, time.time() if now is None else now, log or _NullLog())
    try:
        names = sorted(entry.name for entry in _listdir(root))
    except OSError as exc:
        run.fail(root, f"cannot list the launch dir: {exc}")
        names = []
    for name in names:
        if PILOT_DIR.fullmatch(name):
            _guarded(run, root / name, _judge_pilot_dir)
    report = run.report
    run.log.info("cleanup done", removed=len(report.removed), kept=len(report.kept), errors=len(report.errors))
    return report


def _guarded(run: _Run, path: Path, judge: Callable[[_Run, Path], None]) -> None:
    """One judgement; a race or an unreadable entry is recorded and the rest goes on."""
    try:
        judge(run, path)
    except _CannotTell as exc:
        run.keep(path, str(exc))
    except FileNotFoundError:
        run.keep(path, "vanished while being judged (removed by someone else)")
    except OSError as exc:
        run.fail(path, f"left as is: {exc}")


def _judge_pilot_dir(run: _Run, pilot_dir: Path) -> None:
    """Skip own and live pilots' dirs; remove a settled old one whole, else judge its children."""
    if pilot_dir == run.own:
        run.keep(pilot_dir, "this pilot's own dir")
        return
    if not stat.S_ISDIR(os.lstat(pilot_dir).st_mode):
        run.keep(pilot_dir, "not a directory (a symlink is never followed)")
        return
    if owner_alive(pilot_dir):
        run.keep(pilot_dir, "its pilot is alive")
        return
    blocker = _pilot_blocker(run, pilot_dir)
    if blocker is None:
        run.remove(pilot_dir, f"untouched for {_hours(run.rules.pilot_dir_age)}, every job settled")
        return
    run.keep(pilot_dir, blocker)
    for child in _subdirs(pilot_dir):
        _guarded(run, child, _judge_child)


def _pilot_blocker(run: _Run, pilot_dir: Path) -> str | None:
    """Why a dead pilot's dir must stay as a whole (None: it can go)."""
    try:
        if not run.untouched(pilot_dir, run.rules.pilot_dir_age):
            return f"touched within {_hours(run.rules.pilot_dir_age)}"
    except _CannotTell as exc:
        return str(exc)
    except PermissionError as exc:
        run.fail(pilot_dir, f"cannot judge its age: {exc}")
        return "its age cannot be judged"
    for job_dir in _subdirs(pilot_dir):
        if JOB_DIR.fullmatch(job_dir.name) and not _settled(run, job_dir):
            return f"untouched, but job dir {job_dir.name} is not settled"
    return None


def _settled(run: _Run, job_dir: Path) -> bool:
    """Nothing left to deliver for this job, or it has been stuck for ``stuck_job_age``."""
    if os.path.lexists(job_dir / MAXED_OUT):
        return True
    state = _read_state(job_dir)
    if state is None or state.done:
        return True  # no state file: nothing a pilot could recover
    if state.state is None or state.state in ACTIVE:
        return run.now - state.time > run.rules.stuck_job_age
    return False  # decided but undelivered: recovery's to finish


def _judge_child(run: _Run, child: Path) -> None:
    """A dir inside a dead pilot's dir: an old empty one goes, a job dir is judged by its rules."""
    if _is_empty(child):
        age = run.rules.empty_dir_age
        if run.untouched(child, age):
            run.remove(child, f"empty dir untouched for {_hours(age)}")
        else:
            run.keep(child, f"empty dir touched within {_hours(age)}")
    elif JOB_DIR.fullmatch(child.name):
        _judge_job_dir(run, child)


def _judge_job_dir(run: _Run, job_dir: Path) -> None:
    """A maxed-out or lingering job dir goes once untouched long enough; an undelivered job stays."""
    if os.path.lexists(job_dir / MAXED_OUT):
        rule, age = "maxed out", run.rules.maxed_out_age
    else:
        state = _read_state(job_dir)
        if state is not None and not state.done:
            run.keep(job_dir, f"job {state.state or 'in an unreadable state'}, outcome not delivered")
            return
        rule = "lingering, no job state" if state is None else "lingering, outcome delivered"
        age = run.rules.job_dir_age
    if run.untouched(job_dir, age):
        run.remove(job_dir, f"{rule}, untouched for {_hours(age)}")
    else:
        run.keep(job_dir, f"{rule}, touched within {_hours(age)}")


def _read_state(job_dir: Path) -> _JobState | None:
    """The job dir's state file (None: there is none); unreadable or odd is a state of None."""
    path = job_dir / STATE_FILE
    try:  # never through a symlink; O_NONBLOCK: a FIFO planted there must not hang the pilot
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    except OSError:
        return _JobState(None, False, os.lstat(path).st_mtime)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return _JobState(None, False, info.st_mtime)
        with open(fd, "rb", closefd=False) as handle:
            raw = handle.read(MAX_STATE_BYTES + 1)
    finally:
        os.close(fd)
    return _parse_state(raw, info.st_mtime)


def _parse_state(raw: bytes, mtime: float) -> _JobState:
    """Plain JSON: only "state", "done" and a recorded time ("updated" or "time") are read."""
    try:
        data = json.loads(raw) if len(raw) <= MAX_STATE_BYTES else None
    except (ValueError, RecursionError):
        data = None
    if not isinstance(data, dict):
        return _JobState(None, False, mtime)
    name = data.get("state")
    state = name if isinstance(name, str) and name in KNOWN_STATES else None
    recorded = [value for value in (data.get("updated"), data.get("time"))
                if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)]
    return _JobState(state, state in OUTCOMES and data.get("done") is True, max([mtime, *recorded]))


def _untouched(top: Path, cutoff: float, limit: int) -> bool:
    """Nothing in ``top``, itself included, was modified after ``cutoff`` (lstat: no link is followed)."""
    info = os.lstat(top)
    if not stat.S_ISDIR(info.st_mode):
        raise _CannotTell("not a directory any more")
    if info.st_mtime > cutoff:
        return False
    pending, seen = [str(top)], 0
    while pending:
        for path, entry in _lstats(pending.pop()):
            seen += 1
            if seen > limit:
                raise _CannotTell(f"more than {limit} entries: too big to judge its age")
            if entry.st_mtime > cutoff:
                return False
            if stat.S_ISDIR(entry.st_mode):
                pending.append(path)
    return True


def _lstats(directory: str) -> Iterator[tuple[str, os.stat_result]]:
    """(path, lstat) of each entry; nothing for what vanished meanwhile (its parent's mtime moved)."""
    try:
        listing = os.scandir(directory)
    except FileNotFoundError:
        return
    with listing:
        for entry in listing:
            try:
                yield entry.path, entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue


def _listdir(directory: Path) -> list[os.DirEntry[str]]:
    with os.scandir(directory) as listing:
        return list(listing)


def _subdirs(directory: Path) -> list[Path]:
    """Real subdirs (never a symlink to one), by name."""
    return sorted(Path(e.path) for e in _listdir(directory) if e.is_dir(follow_symlinks=False))


def _is_empty(directory: Path) -> bool:
    with os.scandir(directory) as listing:
        return next(listing, None) is None


def _refusal(path: Path, root: Path) -> str | None:
    """Why ``path`` must not be removed; None for a real dir strictly inside ``root``, reached through no link."""
    if not _SAFE_RMTREE:
        return "this platform's rmtree could follow symlinks"
    if not stat.S_ISDIR(os.lstat(path).st_mode):
        return "not a directory (a symlink is never followed)"
    real = Path(os.path.realpath(path))
    if real != path:
        return f"reached through a symlink (it resolves to {real})"
    if root not in real.parents:
        return "not inside the launch dir"
    return None


def _rmtree(path: Path) -> list[str]:
    """Remove a tree, unlinking links without following them; what could not go (gone already is fine)."""
    failures: list[str] = []

    def failed(_func: object, where: object, exc: BaseException) -> None:
        if not isinstance(exc, FileNotFoundError):
            failures.append(f"{where}: {exc}")

    if sys.version_info >= (3, 12):
        shutil.rmtree(path, onexc=failed)
    else:
        shutil.rmtree(path, onerror=lambda func, where, info: failed(func, where, info[1]))
    return failures


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:g} h"
