"""The job's final report: the fields of updateJob's final call, kept as a JSON file.

The same dict goes to the server (next issue) and to
``<pilot dir>/final_update_<PandaID>.json``, written atomically, so the
outcome of a job survives the pilot.
"""

from __future__ import annotations

import json
import math
import os
import socket
import time
from pathlib import Path

from fsm_pilot import __version__
from fsm_pilot.context import Context, JobRun
from fsm_pilot.redact import redact

#: The pilot's own log in the pilot dir (fsm_pilot.states.init).
LOG_NAME = "pilot.log"

#: The server parses start/end times in this format (epoch floats are dropped).
SERVER_TIME = "%Y-%m-%d %H:%M:%S"
TIMING_KEYS = ("getjob", "stagein", "payload", "stageout", "initial_setup", "setup")


def _utc(epoch: float, fmt: str = SERVER_TIME) -> str:
    return time.strftime(fmt, time.gmtime(epoch))


def pilot_id(ctx: Context) -> str:
    """``<GTAG or unknown>|<version tag>|<pilot version>``, Pilot 3's layout."""
    return f"{ctx.env.get('GTAG', 'unknown')}|{ctx.args.version_tag}|fsm-pilot-{__version__}"


def _cpu_unit(ctx: Context) -> str:
    model = getattr(ctx.node, "cpu_model", "") if ctx.node is not None else ""
    return f"s+{model}" if model else "s"


def cpu_time(seconds: float) -> int:
    """CPU seconds as panda-server keeps them: a whole number (its column is numeric(20), update_job's
    argument an int, which refuses a float), rounded up so that a short job that used CPU does not
    read as one that used none."""
    return max(0, math.ceil(seconds))


def final_update(ctx: Context, run: JobRun) -> dict[str, object]:
    """The final updateJob fields for ``run`` (legacy names, as Pilot 3 sends them)."""
    end = run.end_time or time.time()
    failed = run.state == "failed"
    exe_code = run.trans_exit_code or 0
    fields: dict[str, object] = {
        "jobId": str(run.panda_id),
        "state": run.state,
        "timestamp": _utc(end, "%Y-%m-%dT%H:%M:%S+00:00"),
        "siteName": ctx.queuedata.get("panda_resource") or ctx.args.queue,
        "node": socket.gethostname(),
        "attemptNr": run.identity.attempt_nr,
        "schedulerID": ctx.env.get("PANDA_JSID", "unknown"),
        "pilotID": pilot_id(ctx),
        "batchID": ctx.env.get("SLURM_JOB_ID") or ctx.env.get("PBS_JOBID") or "",
        "startTime": _utc(run.start_time),
        "endTime": _utc(end),
        "coreCount": run.job.core_count if run.job is not None else 1,
        "cpuConsumptionTime": cpu_time(run.cpu_seconds),
        "cpuConsumptionUnit": _cpu_unit(ctx),
        "cpuConversionFactor": 1.0,
        "transExitCode": exe_code,
        "pilotErrorCode": int(run.error) if run.error is not None else 0,
        "pilotErrorDiag": run.diag[:500],
        "exeErrorCode": exe_code,
        "exeErrorDiag": f"payload exit code {exe_code}" if exe_code else "",
        "xml": json.dumps(run.xml, sort_keys=True) if run.xml else "",
        "pilotTiming": "|".join(str(round(run.timings.get(k, 0.0))) for k in TIMING_KEYS),
        "pilotLog": _flight_record(ctx) if failed or ctx.signals.first is not None else "",
    }
    if run.identity.attempt_nr is None:  # not an integer: let the server apply the report to its attempt
        del fields["attemptNr"]
    fields.update(usage_fields(run))
    # the payload's stderr and tools' output are quoted: no token goes to PanDA, heartbeat.json or the report file
    return {key: redact(value) if isinstance(value, str) else value for key, value in fields.items()}


def _flight_record(ctx: Context) -> str:
    """A failed or interrupted job's pilotLog: the last transitions and the tail of pilot.log."""
    from fsm_pilot.flightrecord import flight_record  # failures only: not in memory while a payload runs

    return flight_record(ctx.translog.recent, ctx.pilot_dir / LOG_NAME if ctx.pilot_dir else None)


def usage_fields(run: JobRun) -> dict[str, object]:
    """maxRSS ... rateWBYTES and jobMetrics, from what the monitor measured so far (nothing before it ran).

    Every update carries them, heartbeats too, as Pilot 3 adds its memory monitor's
    figures to each one: the monitoring pages show them while the job runs.
    """
    if run.usage is None:
        return {}
    from fsm_pilot.monitor import job_metrics

    fields: dict[str, object] = dict(run.usage.update_fields())
    input_bytes = sum(f.fsize or 0 for f in run.job.inputs) if run.job is not None else 0
    metrics = job_metrics(run.usage, state=run.state, input_bytes=input_bytes or None)
    if metrics:
        fields["jobMetrics"] = metrics
    return fields


def write_json_atomic(path: Path, data: object, *, durable: bool = True) -> None:
    """Write, fsync (if ``durable``), rename: a reader sees the old file or the new one, never half of one."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1, sort_keys=True)
        if durable:
            f.flush()
            os.fsync(f.fileno())
    os.replace(tmp, path)


def write_final_report(ctx: Context, run: JobRun) -> Path:
    """Write the final report next to the job dir and return its path.

    Not fsynced: it is for people and wrappers; what survives a crash of the node is the job's
    state file, saved durably with the same fields before the update is sent (fsm_pilot.jobstate).
    """
    assert ctx.pilot_dir is not None
    path = ctx.pilot_dir / f"final_update_{run.panda_id}.json"
    write_json_atomic(path, {**final_update(ctx, run), "fsm_pilot_pending": run.final_pending,
                             "fsm_pilot_refused": run.refused}, durable=False)
    run.reported = True
    return path
