"""What Harvester reads about the job: ``worker_attributes.json``, ``worker_heartbeat.json``, ``jobReport.json``.

With ``-z`` under Harvester, each job update (starting, running, the final one)
is written to ``worker_attributes.json`` instead of a server: the update's
fields with their updateJob names (the names Harvester forwards to PanDA),
``jobStatus`` set to the state, ``timestamp`` renewed, and without ``xml``
(Harvester reports the files it stages out itself). The final update first
declares the outputs (:mod:`.stageout`) and copies the payload's
``jobReport.json`` with each executor's ``logfileReport`` emptied, as Pilot 3
does, so a reader that sees the final status also finds them.
``worker_heartbeat.json``, whose age Harvester may check, is renewed with every update.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from fsm_pilot.context import Context, JobRun
from fsm_pilot.harvester.files import JOB_REPORT, WORKER_ATTRIBUTES, WORKER_HEARTBEAT, directory, write_json
from fsm_pilot.harvester.stageout import publish_outputs

#: Keys Pilot 3 leaves out of worker_attributes.json.
DROPPED = ("xml", "inputfiles", "outputfiles")
#: A payload's jobReport.json larger than this is not copied.
MAX_JOB_REPORT_BYTES = 64 * 1024 * 1024


def time_stamp() -> str:
    """Pilot 3's ISO-8601 time stamp with a numeric zone, in UTC."""
    return time.strftime("%Y-%m-%dT%H:%M:%S+0000", time.gmtime())


def beat(ctx: Context) -> None:
    """Renew ``worker_heartbeat.json`` (Harvester only looks at its age); a failure is logged."""
    path = directory(ctx) / WORKER_HEARTBEAT
    try:
        write_json(path, {"timestamp": time_stamp(), "pid": os.getpid()})
    except OSError as exc:
        ctx.log.warning("worker heartbeat not written", path=str(path), error=repr(exc))


def publish(ctx: Context, run: JobRun, state: str, fields: dict[str, object], final: bool) -> bool:
    """Write the update for Harvester; True when it is on disk (False keeps a final one for a retry)."""
    attributes = {key: value for key, value in fields.items() if key not in DROPPED}
    attributes.update(jobStatus=state, timestamp=time_stamp())
    path = directory(ctx) / WORKER_ATTRIBUTES
    try:
        if final:
            publish_outputs(ctx, run)
            copy_job_report(ctx, run)
        write_json(path, attributes)
    except OSError as exc:
        ctx.log.warning("update for Harvester not written", panda_id=run.panda_id, state=state, path=str(path),
                        error=repr(exc))
        return False
    ctx.log.info("update written for Harvester", panda_id=run.panda_id, state=state, final=final, path=str(path))
    return True


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not a valid JSON number")


def _read_report(ctx: Context, run: JobRun, src: Path) -> dict[str, object] | None:
    """The payload's report if it is a JSON object in a regular file inside the job dir, else None (logged)."""
    assert run.workdir is not None
    try:
        real = src.resolve()
        if not real.is_relative_to(run.workdir.resolve()) or not real.is_file():
            raise ValueError("not a regular file inside the job directory")
        if real.stat().st_size > MAX_JOB_REPORT_BYTES:
            raise ValueError(f"larger than {MAX_JOB_REPORT_BYTES} bytes")
        report = json.loads(real.read_text(encoding="utf-8"), parse_constant=_reject_constant)
        if not isinstance(report, dict):
            raise ValueError(f"a JSON {type(report).__name__}, not an object")
    except FileNotFoundError:
        return None
    except (OSError, ValueError, RecursionError, RuntimeError) as exc:
        ctx.log.warning("payload's jobReport.json not copied for Harvester", panda_id=run.panda_id, error=str(exc))
        return None
    return report


def copy_job_report(ctx: Context, run: JobRun) -> None:
    """Copy the payload's ``jobReport.json`` to the access point, each ``logfileReport`` emptied."""
    if run.workdir is None:
        return
    report = _read_report(ctx, run, run.workdir / JOB_REPORT)
    if report is None:
        return
    executors = report.get("executor")
    for executor in executors if isinstance(executors, list) else ():
        if isinstance(executor, dict) and "logfileReport" in executor:
            executor["logfileReport"] = {}
    write_json(directory(ctx) / JOB_REPORT, report)
