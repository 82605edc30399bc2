"""Storing one file on an endpoint: copytools in the queue's order, each retried, every step a child.

For each copytool the queue names (``destination.py``), the endpoint protocol it
writes is chosen and the copy runs as a child process: its own session, its
whole tree killed on a deadline scaled by the file's size (Pilot 3's rule) or
when a signal arrives, heartbeats sent while it runs. The storage element's
adler32 for the stored file must equal the file's, else the bad replica is
removed and the attempt fails with PUTADMISMATCH. The file's is taken once and
never in a pass of its own: XRootD's copies checksum the file as they send it
and compare the server's value themselves; for the others the pilot reads the
file in slices while the copy runs, then compares the value the copy printed or
a query step returns. The log tarball's is known already. Nothing is re-read.

A failure another attempt may cure (a timeout, a mismatch, a generic failure)
is retried with the same copytool up to ``attempts`` times; then the next
copytool is tried; in the end the first error is the job's, as in Pilot 3.
file:// endpoints are written by the pilot itself (``storage.local.put_file``).
"""

from __future__ import annotations

import re
import select
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from fsm_pilot.errors import PilotError, PilotFailure
from fsm_pilot.stagein.failures import classify
from fsm_pilot.stageout.destination import Destination
from fsm_pilot.stageout.tools import Upload, Uploader, uploader
from fsm_pilot.storage.adler import SlicedAdler32
from fsm_pilot.storage.local import StagedFile, check_source, put_file
from fsm_pilot.transfer.child import Child, shown, start_child

if TYPE_CHECKING:
    from structlog.typing import FilteringBoundLogger

#: Pilot 3's transfer timeout (pilot/copytool/common.py ``get_timeout``): 300 s + 1 s per MB, at most 3 h.
TIMEOUT_BASE = 300.0
_BYTES_PER_SECOND = 1_000_000
_TIMEOUT_MAX = 3 * 3600.0
#: SIGTERM-to-SIGKILL grace for a step past its deadline, and for one stopped by a signal.
_KILL_GRACE = 2.0
_SIGNAL_GRACE = 0.5
#: Longest single wait, so deadlines and heartbeats are looked at this often.
_WAIT_SLICE = 1.0
#: Failures another attempt may cure; the others (no protocol, no space, no permission) would recur.
_RETRYABLE = frozenset({PilotError.STAGEOUTTIMEOUT, PilotError.STAGEOUTFAILED, PilotError.PUTADMISMATCH})
#: A removal that found nothing: the copytool removed the bad replica itself (xrdcp --rm-bad-cksum).
_GONE = re.compile(r"no such file|not found|\[3011\]", re.IGNORECASE)
#: The copytools' output, in the job dir.
LOG_NAME = "stageout.log"


class Interrupted(Exception):
    """A signal arrived: the copy in flight was killed and nothing more is tried."""


def stageout_timeout(size: int, base: float = TIMEOUT_BASE) -> float:
    """Seconds one step on a file of ``size`` bytes may take: ``min(base + size / 1 MB/s, 3 h)``."""
    return float(min(base + size // _BYTES_PER_SECOND, _TIMEOUT_MAX))


@dataclass
class Copying:
    """How the copies of one stage-out run: where, how long, and what a signal does to them.

    ``must_finish`` (the log): a signal does not kill the copy, it only cuts the
    time left to ``stopping`` seconds; so does a signal that came before.
    ``env``: the children's environment (default: the pilot's), less its secrets.
    """

    cwd: Path
    wakeup_fd: int | None = None
    tick: Callable[[], None] = lambda: None
    timeout_base: float = TIMEOUT_BASE
    attempts: int = 2
    must_finish: bool = False
    signalled: bool = False
    stopping: float = 10.0
    bindings: bool = True
    env: Mapping[str, str] | None = None
    log: FilteringBoundLogger | None = None
    clock: Callable[[], float] = time.monotonic
    #: monotonic time no step may run past (the job slot's end less the final update's reserve)
    end_by: float | None = None
    _stop_at: float | None = field(default=None, init=False)

    @property
    def log_path(self) -> Path:
        return self.cwd / LOG_NAME

    @property
    def watched_fd(self) -> int | None:
        """The wakeup fd, until a signal has been taken into account."""
        return None if self.signalled else self.wakeup_fd

    def deadline(self, timeout: float) -> float:
        """When a step started now must end: after a signal, never later than ``stopping`` after it."""
        end = self.clock() + timeout
        if self.end_by is not None:
            end = min(end, self.end_by)
        if self.signalled:
            if self._stop_at is None:
                self._stop_at = self.clock() + self.stopping
            end = min(end, self._stop_at)
        return end

    def out_of_time(self) -> bool:
        """A signal's ``stopping`` seconds are over: nothing more is started."""
        return self._stop_at is not None and self.clock() >= self._stop_at

    def check_signal(self) -> None:
        """Before anything new starts: a copy that may be interrupted is not started after a signal."""
        fd = self.watched_fd
        if fd is not None and select.select([fd], [], [], 0)[0]:
            if not self.must_finish:
                raise Interrupted("signal received during stage-out")
            self.signalled = True

    def note(self, event: str, **fields: object) -> None:
        if self.log is not None:
            self.log.info(event, **fields)


def _on_signal(run: Copying, child: Child, what: str, deadline: float) -> float:
    """Kill the step (Interrupted), or for a copy that must finish, shorten its deadline."""
    if not run.must_finish:
        child.stop(_SIGNAL_GRACE)
        raise Interrupted(f"signal received during stage-out: {what} killed")
    run.signalled = True
    return min(deadline, run.deadline(run.stopping))


def _wait(run: Copying, child: Child, timeout: float, what: str, local: SlicedAdler32 | None) -> None:
    """Until the step exits; meanwhile checksum the file in slices and send heartbeats."""
    started = run.clock()
    deadline = run.deadline(timeout)
    while True:
        remaining = deadline - run.clock()
        if remaining <= 0.0:
            child.stop(_KILL_GRACE)
            budget = round(deadline - started, 1)
            raise PilotFailure(PilotError.STAGEOUTTIMEOUT, f"{what}: not done within {budget:g} s, killed")
        busy = local is not None and not local.step()
        outcome = child.wait(run.watched_fd, 0.0 if busy else min(remaining, _WAIT_SLICE))
        if outcome == "exited":
            return
        if outcome == "woken":
            deadline = _on_signal(run, child, what, deadline)
        run.tick()


def _step(run: Copying, tool: Uploader, argv: list[str], timeout: float, *, what: str,
          local: SlicedAdler32 | None = None) -> str:
    """One child from start to end; its output, or the failure its exit status and output stand for."""
    child = start_child(f"{tool.name} ({tool.label})", argv, run.cwd, run.log_path,
                        error=PilotError.STAGEOUTFAILED, env=run.env)
    try:
        _wait(run, child, timeout, what, local)
    finally:
        child.stop(_KILL_GRACE)
    output, code = child.output(), child.returncode
    if code != 0:
        status = f"was killed by signal {-code}" if code is not None and code < 0 else f"exited with code {code}"
        text = shown(output)
        error = classify(tool.name, code, output, "out")
        raise PilotFailure(error, f"{what}: {tool.label} {status}" + (f": {text}" if text else ""))
    return output


def _local(run: Copying, local: SlicedAdler32) -> tuple[int, str]:
    """The file's (size, adler32): what is left of the pass, still minding signals."""
    while not local.step():
        run.check_signal()
    return local.result()


def _stored_checksum(run: Copying, tool: Uploader, up: Upload, output: str, local: SlicedAdler32) -> str:
    """The adler32 the storage element reports: printed by the copy, else asked for."""
    stored = tool.reported(output, tool.reports)
    if stored is not None:
        return stored
    if tool.query is None:
        raise PilotFailure(PilotError.STAGEOUTFAILED, f"{tool.label} reported no adler32 for {up.url}")
    timeout = stageout_timeout(up.size, run.timeout_base)
    answer = _step(run, tool, tool.query(up, timeout), timeout, what=f"checksum query of {up.url}", local=local)
    stored = tool.reported(answer, tool.answers)
    if stored is None:
        raise PilotFailure(PilotError.STAGEOUTFAILED, f"{tool.label}: no adler32 for {up.url} in: {shown(answer)}")
    return stored


def _remove(run: Copying, tool: Uploader, up: Upload) -> str:
    """Delete a bad replica (even when the copytool says it did); returns how that went, for the diag."""
    if tool.remove is None:
        return "it could not be removed by this copytool"
    try:
        _step(run, tool, tool.remove(up, run.timeout_base), run.timeout_base, what=f"removal of {up.url}")
    except PilotFailure as exc:
        if _GONE.search(exc.diag):
            return "the copytool had removed the replica"
        return f"removing it failed: {exc.diag}"
    return "the replica was removed"


def _checked_by_the_copy(run: Copying, tool: Uploader, up: Upload, local: SlicedAdler32) -> tuple[int, str]:
    """A copy that checksums the file as it sends it (or is given the value) and compares the server's."""
    assert tool.put is not None
    timeout = stageout_timeout(up.size, run.timeout_base)
    what = f"{tool.label} of {up.lfn} to {up.url}"
    try:
        output = _step(run, tool, tool.put(up, timeout), timeout, what=what)
    except PilotFailure as exc:
        if exc.error is not PilotError.PUTADMISMATCH:
            raise
        raise PilotFailure(exc.error, f"{exc.diag}; {_remove(run, tool, up)}") from exc
    value = tool.reported(output, tool.reports) or up.adler32
    if value is None:
        raise PilotFailure(PilotError.STAGEOUTFAILED, f"{what}: {tool.label} reported no adler32")
    if up.adler32 is not None and value != up.adler32:
        raise PilotFailure(PilotError.PUTADMISMATCH, f"{what}: the copy reports adler32 {value}, the file has "
                                                     f"{up.adler32}; {_remove(run, tool, up)}")
    if not local.done:
        local.adopt(up.size, value)
    return local.result()


def _attempt(run: Copying, tool: Uploader, up: Upload, local: SlicedAdler32) -> tuple[int, str]:
    """Copy, compare the storage element's adler32 with the file's; a bad replica is removed."""
    assert tool.put is not None
    if tool.reports_source:
        return _checked_by_the_copy(run, tool, replace(up, adler32=local.value), local)
    timeout = stageout_timeout(up.size, run.timeout_base)
    output = _step(run, tool, tool.put(up, timeout), timeout, what=f"{tool.label} of {up.lfn} to {up.url}",
                   local=local)
    stored = "" if tool.verifies_itself else _stored_checksum(run, tool, up, output, local)
    size, mine = _local(run, local)
    if stored and stored != mine:
        how = _remove(run, tool, up)
        raise PilotFailure(PilotError.PUTADMISMATCH,
                           f"{up.url}: the storage element reports adler32 {stored}, the file has {mine}; {how}")
    return size, mine


def _local_copy(dest: Destination, name: str, spec: Upload, local: SlicedAdler32) -> StagedFile:
    """A file:// protocol: the pilot copies and re-reads the replica itself, in-process."""
    protocol = dest.protocol_for(name, ("file",))
    return put_file(spec.src, protocol, spec.scope, spec.lfn, spec.guid,
                    expected=local.result() if local.done else None)


def _with_copytool(run: Copying, name: str, dest: Destination, spec: Upload, *, local: SlicedAdler32,
                   errors: list[PilotFailure]) -> StagedFile | None:
    """Up to ``attempts`` copies with one copytool; None (errors recorded) when it did not store the file."""
    try:
        tool = uploader(name, bindings=run.bindings)
        if tool.local:
            return _local_copy(dest, name, spec, local)
        protocol = dest.protocol_for(name, dest.schemes.get(name) or tool.schemes)
    except PilotFailure as exc:
        errors.append(exc)
        return None
    up = Upload(spec.src, protocol.surl(spec.scope, spec.lfn), dest.endpoint, spec.scope, spec.lfn, spec.guid,
                spec.size)
    for attempt in range(1, run.attempts + 1):
        run.check_signal()
        if run.out_of_time():
            return None
        started = run.clock()
        try:
            size, adler32 = _attempt(run, tool, up, local)
        except PilotFailure as exc:
            errors.append(exc)
            run.note("stage-out attempt failed", lfn=up.lfn, copytool=tool.label, attempt=attempt,
                     error=exc.error.name, diag=exc.diag)
            if exc.error not in _RETRYABLE:
                return None
            continue
        run.note("stage-out copy verified", lfn=up.lfn, copytool=tool.label, attempt=attempt, url=up.url,
                 seconds=round(run.clock() - started, 3))
        return StagedFile(up.lfn, up.scope, up.guid, up.url, up.src, size, adler32, dest.endpoint)
    return None


def put(run: Copying, dest: Destination, src: Path, *, scope: str, lfn: str, guid: str,
        within: Path | None = None, expected: tuple[int, str] | None = None) -> StagedFile:
    """Store ``src`` at its deterministic place on ``dest``, verified, or raise the first error.

    ``within``: the directory the source must really be in (the job dir);
    ``expected``: its (size, adler32) when known already, so it is not read for them.
    Raises Interrupted when a signal stops a copy that need not finish.
    """
    source = check_source(src, within)
    try:
        size = expected[0] if expected else source.stat().st_size
    except OSError as exc:
        raise PilotFailure(PilotError.MISSINGOUTPUTFILE, f"cannot access output {src}: {exc}") from exc
    local = SlicedAdler32.known(source, *expected) if expected else SlicedAdler32(source)
    spec = Upload(source, "", dest.endpoint, scope, lfn, guid, size)
    errors: list[PilotFailure] = []
    try:
        for name in dest.copytools:
            stored = _with_copytool(run, name, dest, spec, local=local, errors=errors)
            if stored is not None:
                return stored
    finally:
        local.close()
    raise errors[0] if errors else PilotFailure(PilotError.STAGEOUTFAILED, f"no copytool stored {lfn}")
