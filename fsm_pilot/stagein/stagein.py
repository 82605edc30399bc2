"""Stage-in: every input of a job into its work dir, verified, or the job's first error.

For each input the copytools the queue names for reading are tried in order
until one delivers a file with the job's size and checksum; if none does, the
first error is the one reported, as Pilot 3 does. Each copy runs under a
size-scaled deadline and stops at once when a signal arrives (the wakeup fd
becomes readable), its whole process tree killed. A copy lands in a private
scratch directory inside the job dir and is renamed to ``<job dir>/<lfn>`` only
once verified, so the payload never sees a partial input under its real name;
an input already in place and verified is not copied again.
"""

from __future__ import annotations

import os
import select
import shutil
import stat
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fsm_pilot.errors import PilotError, PilotFailure
from fsm_pilot.job import FileSpec
from fsm_pilot.stagein.copytools import Copytool, Transfer, get_copytool
from fsm_pilot.stagein.resolve import Replica, Source, resolve_inputs
from fsm_pilot.stagein.verify import expected_checksum, verify
from fsm_pilot.storage import Endpoint

if TYPE_CHECKING:
    from structlog.typing import FilteringBoundLogger

#: Pilot 3's transfer timeout (pilot/copytool/common.py ``get_timeout``): 300 s plus 1 s per MB, at most 3 h.
_TIMEOUT_BASE = 300
_TIMEOUT_BYTES_PER_SECOND = 1_000_000
_TIMEOUT_MAX = 3 * 3600
#: SIGTERM-to-SIGKILL grace for a copy past its deadline, and for one stopped by a signal.
_KILL_GRACE = 2.0
_SIGNAL_GRACE = 0.5
#: Longest single wait, so the (injectable) clock is read at least this often.
_WAIT_SLICE = 1.0
#: Failures no other copytool can cure: the server killed the job while it was staging in.
_FINAL = frozenset({PilotError.PANDAKILL})
#: The copytools' stdout and stderr, in the job dir (it goes into the job's log tarball).
LOG_NAME = "stagein.log"


class Interrupted(Exception):
    """A signal arrived during stage-in; any copy in flight was killed and nothing more is tried."""


@dataclass(frozen=True)
class StagedInput:
    """One input in the job dir; ``copytool`` is None when it was there already."""

    lfn: str
    source: str
    copytool: str | None
    size: int
    adler32: str
    seconds: float
    path: Path


@dataclass(frozen=True)
class StageInReport:
    """Every input staged in, and the totals for pilotTiming ("stagein") and the job metrics."""

    files: tuple[StagedInput, ...]
    seconds: float

    @property
    def total_bytes(self) -> int:
        """Bytes of input in the job dir."""
        return sum(item.size for item in self.files)

    @property
    def copied(self) -> int:
        """How many inputs were transferred (the others were already in place)."""
        return sum(item.copytool is not None for item in self.files)


def stagein_timeout(fsize: int | None, base: float = _TIMEOUT_BASE) -> float:
    """Seconds one copy may take: Pilot 3's ``min(300 + size / 1 MB/s, 3 h)``; ``base`` when the size is unknown."""
    return float(min(base + (fsize or 0) // _TIMEOUT_BYTES_PER_SECOND, _TIMEOUT_MAX))


@dataclass(frozen=True)
class _Run:
    job_dir: Path
    copytools: tuple[str, ...]
    wakeup_fd: int | None
    log: FilteringBoundLogger
    clock: Callable[[], float]
    timeout: Callable[[int | None], float]
    tick: Callable[[], None]

    @property
    def log_path(self) -> Path:
        return self.job_dir / LOG_NAME


def _check_signal(run: _Run) -> None:
    """Stop before starting anything new once a signal has arrived (the fd is never read here)."""
    if run.wakeup_fd is not None and select.select([run.wakeup_fd], [], [], 0)[0]:
        raise Interrupted("signal received during stage-in")


def _await(run: _Run, transfer: Transfer, timeout: float, what: str) -> None:
    """Wait for the copy; past the deadline kill it (STAGEINTIMEOUT), on a signal kill it (Interrupted)."""
    deadline = run.clock() + timeout
    while True:
        remaining = deadline - run.clock()
        if remaining <= 0.0:
            transfer.stop(_KILL_GRACE, run.wakeup_fd)
            raise PilotFailure(PilotError.STAGEINTIMEOUT, f"{what}: not done within {timeout:g} s, copy killed")
        outcome = transfer.wait(run.wakeup_fd, min(remaining, _WAIT_SLICE))
        if outcome == "exited":
            transfer.result()
            return
        if outcome == "woken":
            transfer.stop(_SIGNAL_GRACE)
            raise Interrupted(f"signal received during stage-in: {what} killed")
        run.tick()  # heartbeats during a long copy; it raises to end the copy (a kill command)


def _copy(run: _Run, tool: Copytool, replica: Replica, landing: Path) -> None:
    """One copy from start to end; whatever happens, nothing of it is left running."""
    timeout = run.timeout(replica.spec.fsize)
    transfer = tool.start(replica, landing, log_path=run.log_path, timeout=timeout)
    try:
        _await(run, transfer, timeout, f"{tool.name} of {replica.url}")
    finally:
        transfer.stop(_KILL_GRACE, run.wakeup_fd)


def _scratch(job_dir: Path) -> Path:
    try:
        return Path(tempfile.mkdtemp(prefix=".stagein-", dir=job_dir))
    except OSError as exc:
        raise PilotFailure(PilotError.STAGEINFAILED, f"cannot create a scratch dir in {job_dir}: {exc}") from exc


def _place(landing: Path, dest: Path) -> None:
    try:
        os.replace(landing, dest)
    except OSError as exc:
        raise PilotFailure(PilotError.STAGEINFAILED, f"cannot move {landing} to {dest}: {exc}") from exc


def _attempt(run: _Run, name: str, source: Source, dest: Path) -> StagedInput:
    """Copy with one copytool, over the first protocol it reads, into scratch; verify, rename into place."""
    tool = get_copytool(name)
    replica = source.replica(tool.name, tool.schemes)
    started = run.clock()
    scratch = _scratch(run.job_dir)
    try:
        landing = scratch / replica.lfn
        _copy(run, tool, replica, landing)
        size, adler32 = verify(landing, replica.spec)
        _place(landing, dest)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    seconds = run.clock() - started
    run.log.info("input staged in", lfn=replica.lfn, source=replica.url, copytool=name, size=size,
                 seconds=round(seconds, 3))
    return StagedInput(replica.lfn, replica.url, name, size, adler32, seconds, dest)


def _inside(real: Path, protocol: Endpoint) -> bool:
    try:
        return real.is_relative_to(protocol.local_root().resolve(strict=True))
    except (OSError, RuntimeError, PilotFailure):  # not a file:// endpoint, or its root is gone
        return False


def _trusted(dest: Path, source: Source) -> bool:
    """A regular file, or a link to a regular file inside a file:// protocol's root (left by symlink / mv)."""
    try:
        if stat.S_ISREG(dest.lstat().st_mode):
            return True
        real = dest.resolve(strict=True)
    except (OSError, RuntimeError):
        return False
    return dest.is_symlink() and real.is_file() and any(_inside(real, p) for p in source.protocols)


def _discard(dest: Path, why: str, run: _Run) -> None:
    run.log.warning("input in the job dir not usable, staging it in again", path=str(dest), reason=why)
    try:
        dest.unlink()
    except OSError as exc:
        raise PilotFailure(PilotError.STAGEINFAILED, f"cannot replace {dest}: {exc}") from exc


def _present(run: _Run, source: Source, dest: Path) -> StagedInput | None:
    """The input if it is in place and verified already; a wrong one is removed."""
    if not os.path.lexists(dest):
        return None
    if not _trusted(dest, source):
        _discard(dest, "not a regular file nor a link into the endpoint", run)
        return None
    try:
        size, adler32 = verify(dest, source.spec)
    except PilotFailure as exc:
        _discard(dest, exc.diag, run)
        return None
    run.log.info("input already in place and verified", lfn=source.lfn, size=size)
    return StagedInput(source.lfn, source.protocols[0].surl(source.scope, source.lfn), None, size, adler32, 0.0, dest)


def _stage_one(run: _Run, source: Source) -> StagedInput:
    """The copytools in order until one succeeds; else the first error."""
    expected_checksum(source.spec)  # unverifiable: fail before copying anything
    dest = run.job_dir / source.lfn
    _check_signal(run)
    present = _present(run, source, dest)
    if present is not None:
        return present
    errors: list[PilotFailure] = []
    for name in run.copytools:
        _check_signal(run)
        try:
            return _attempt(run, name, source, dest)
        except PilotFailure as exc:
            if exc.error in _FINAL:
                raise
            run.log.warning("stage-in attempt failed", lfn=source.lfn, copytool=name, error=exc.error.name,
                            diag=exc.diag)
            errors.append(exc)
    raise errors[0] if errors else PilotFailure(PilotError.STAGEINFAILED, f"no copytool for {source.lfn}")


def stage_in(
    job_dir: Path,
    files: Sequence[FileSpec],
    queuedata: Mapping[str, Any],
    ddmendpoints: Mapping[str, Any],
    *,
    wakeup_fd: int | None,
    log: FilteringBoundLogger,
    clock: Callable[[], float] = time.monotonic,
    copy_timeout: Callable[[int | None], float] = stagein_timeout,
    tick: Callable[[], None] = lambda: None,
) -> StageInReport:
    """Fetch every input into ``job_dir`` (named by its lfn) and verify it.

    Raises PilotFailure with the job's error code, or Interrupted when a byte
    arrives on ``wakeup_fd`` (which is never read: its owner drains it).
    ``copy_timeout`` maps a file size to the seconds one copy may take.
    ``tick`` is called at least once a second while a copy runs (heartbeats);
    a PilotFailure it raises kills the copy and ends the stage-in with it.
    """
    started = clock()
    copytools, sources = resolve_inputs(files, queuedata, ddmendpoints)
    run = _Run(job_dir, copytools, wakeup_fd, log, clock, copy_timeout, tick)
    staged = tuple(_stage_one(run, source) for source in sources)
    report = StageInReport(staged, clock() - started)
    log.info("stage-in done", files=len(staged), copied=report.copied, bytes=report.total_bytes,
             seconds=round(report.seconds, 3))
    return report
