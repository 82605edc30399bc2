"""The job's durable state: ``jobstate.json`` in its work dir, replaced atomically at each step.

It holds everything a later pilot needs to finish the job if this one dies
(SIGKILL, a reboot): the definition, where the machine was, the outcome so
far, which outputs are stored and where, the payload's identity, and the
final update while it is undelivered (the outbox). Writes go to a temp file
and are renamed into place, so a reader sees the old state or the new one;
the saves that matter after a crash of the node (an output stored, the outcome
decided before its update is sent, the update delivered for a dir that is kept)
are fsynced first. The others need no fsync: a pilot killed any way but with its
node leaves them in the page cache, and the next durable save carries them. The
payload's identity is one of those: it serves to kill an orphaned payload, and
a crash of the node has killed it already.
"""

from __future__ import annotations

import json
import math
import os
import stat
import time
from pathlib import Path
from typing import Any

from fsm_pilot.context import Context, JobRun
from fsm_pilot.errors import PilotError

STATE_FILE = "jobstate.json"
VERSION = 1
#: A job dir whose job hit a limit is marked, so cleanup can remove it sooner.
MAXED_OUT = "MAXEDOUT"
#: A state file larger than this is not one a pilot wrote (they are a few kB) and is not read.
MAX_STATE_BYTES = 16 * 1024 * 1024

_NUMBER = (int, float)
#: The type of each field ``snapshot`` writes (null is allowed for all: readers default it).
_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "pilot_id": (str,), "updated": _NUMBER, "panda_id": (int,), "attempt_nr": (int,), "machine_state": (str,),
    "state": (str,), "error": (int,), "diag": (str,), "trans_exit_code": (int,), "start_time": _NUMBER,
    "end_time": _NUMBER, "timings": (dict,), "xml": (dict,), "payload": (dict,), "final": (dict,),
    "done": (bool,), "stop_reporting": (bool,), "keep_workdir": (bool,), "record": (dict,),
}


def snapshot(run: JobRun, machine_state: str, pilot_id: str) -> dict[str, Any]:
    """The job as a JSON-ready dict."""
    return {
        "version": VERSION, "pilot_id": pilot_id, "updated": time.time(), "panda_id": run.panda_id,
        "attempt_nr": run.identity.attempt_nr, "machine_state": machine_state, "state": run.state,
        "error": int(run.error) if run.error is not None else None, "diag": run.diag,
        "trans_exit_code": run.trans_exit_code, "start_time": run.start_time, "end_time": run.end_time,
        "timings": run.timings, "xml": run.xml, "payload": run.payload_identity, "final": run.final_fields,
        "done": run.reported and not run.final_pending, "stop_reporting": run.stop_reporting,
        "refused": run.refused,
        "keep_workdir": run.keep_workdir, "record": run.record,
    }


def write_atomic(path: Path, data: object, durable: bool) -> None:
    """Temp file, optional fsync, rename, optional fsync of the dir: all or nothing."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(json.dumps(data, separators=(",", ":"), default=str))  # dumps: C encoder; dump: pure Python
        if durable:
            f.flush()
            os.fsync(f.fileno())
    os.replace(tmp, path)
    if durable:
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def save(run: JobRun, machine_state: str, pilot_id: str, *, durable: bool = False) -> None:
    """Persist ``run`` in its work dir (nothing to do before the dir exists)."""
    if run.workdir is None or not run.workdir.is_dir():
        return
    write_atomic(run.workdir / STATE_FILE, snapshot(run, machine_state, pilot_id), durable)


def load(job_dir: Path) -> dict[str, Any] | None:
    """A job dir's state, or None if there is none, it is unreadable or it makes no sense (never raises).

    The file may be a dead pilot's, cut short or tampered with: recovery acts on what it says, so
    every field must have the type ``snapshot`` gives it.
    """
    raw = _read_regular(job_dir / STATE_FILE, MAX_STATE_BYTES)
    try:
        data = json.loads(raw.decode("utf-8"), parse_constant=_reject) if raw is not None else None
    except (ValueError, RecursionError):  # also bad UTF-8; nesting deeper than the parser's stack
        return None
    return data if isinstance(data, dict) and data.get("version") == VERSION and _well_formed(data) else None


def _read_regular(path: Path, limit: int) -> bytes | None:
    """At most ``limit`` bytes of a regular file (a FIFO must not block us), None if larger or unreadable."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        try:
            raw = handle.read(limit + 1) if stat.S_ISREG(os.fstat(fd).st_mode) else b""
        except OSError:
            return None
    return raw if 0 < len(raw) <= limit else None


def _reject(name: str) -> object:
    raise ValueError(f"{name} is not a number a pilot writes")


def _finite(value: object) -> bool:
    """A JSON number a float can hold (1e400 parses as inf, a huge int overflows float())."""
    try:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(float(value))
    except OverflowError:
        return False


def _well_formed(data: dict[str, Any]) -> bool:
    """Every field ``snapshot`` writes has its type when present and not null."""
    for key, kinds in _FIELD_TYPES.items():
        value = data.get(key)
        if value is not None and (not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds)):
            return False
    numbers = [data.get(key) for key in ("updated", "start_time", "end_time")]
    numbers += list((data.get("timings") or {}).values())
    return all(_finite(n) for n in numbers if n is not None) and _payload_well_formed(data.get("payload") or {})


#: The payload identity's fields (see fsm_pilot/states/running.py): integers, and two strings.
_PAYLOAD_STRINGS = frozenset({"mark", "boot_id"})


def _payload_well_formed(payload: dict[str, Any]) -> bool:
    """pid, start_ticks, sid are integers; mark and boot_id strings; any may be missing."""
    for key, value in payload.items():
        if value is None:
            continue
        if key in _PAYLOAD_STRINGS:
            if not isinstance(value, str):
                return False
        elif not isinstance(value, int) or isinstance(value, bool):
            return False
    return True


def error_of(state: dict[str, Any]) -> PilotError | None:
    """The recorded error code as a PilotError (None if none or unknown)."""
    try:
        return PilotError(int(state["error"])) if state.get("error") is not None else None
    except (ValueError, TypeError):
        return None


def mark_maxed_out(run: JobRun) -> None:
    """Leave the marker cleanup looks for in the dir of a job that hit a limit."""
    if run.workdir is not None and run.workdir.is_dir():
        (run.workdir / MAXED_OUT).touch()


def persist(ctx: Context, run: JobRun | None = None, *, machine_state: str | None = None,
            durable: bool = False) -> None:
    """Save ``run`` (default: the held job) with the machine's current state (or ``machine_state``)."""
    run = run or ctx.job
    if run is not None:
        save(run, machine_state or ctx.state, ctx.pilot_id, durable=durable)
