"""The job's durable state: ``jobstate.json`` in its work dir, replaced atomically at each step.

It holds everything a later pilot needs to finish the job if this one dies
(SIGKILL, a reboot): the definition, where the machine was, the outcome so
far, which outputs are stored and where, the payload's identity, and the
final update while it is undelivered (the outbox). Writes go to a temp file
and are renamed into place, so a reader sees the old state or the new one;
the saves that matter after a reboot (payload started, an output stored, the
outcome decided, the update delivered) are fsynced first.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from fsm_pilot.context import Context, JobRun
from fsm_pilot.errors import PilotError

STATE_FILE = "jobstate.json"
VERSION = 1
#: A job dir whose job hit a limit is marked, so cleanup can remove it sooner.
MAXED_OUT = "MAXEDOUT"


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
        json.dump(data, f, separators=(",", ":"), default=str)
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
    """A job dir's state, or None if there is none or it is unreadable (never raises)."""
    try:
        data = json.loads((job_dir / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("version") == VERSION else None


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
