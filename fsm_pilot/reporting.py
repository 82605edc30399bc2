"""Reporting job states to the server (with -z: to Harvester's files or heartbeat.json), acting on replies.

PanDA expects ``starting``, then ``running`` with a heartbeat every
``heartbeat_interval`` seconds, then the final ``finished``/``failed`` with the
full report. The reply may carry commands: ``tobekilled`` (kill, fail with
PANDAKILL), ``debug``/``debugoff`` (heartbeat every 60 s, or back),
``alreadydone``/``badattemptnr`` (stop reporting this job), ``nocleanup`` (keep
the job dir); others are logged. The final update's reply is judged apart
(``finalreply``): a refusal there is never logged as sent.
"""

from __future__ import annotations

import time

from fsm_pilot.context import Context, JobRun
from fsm_pilot.errors import PilotFailure
from fsm_pilot.finalreply import NOT_APPLIED, judge
from fsm_pilot.report import cpu_time, final_update, usage_fields, write_json_atomic
from fsm_pilot.server import deadline, reports

DEBUG_HEARTBEAT = 60.0
STOP_REPORTING = frozenset({"alreadydone", "badattemptnr"})
#: The fields every update carries; the final one carries the whole report.
BRIEF_FIELDS = ("jobId", "state", "timestamp", "siteName", "node", "attemptNr", "schedulerID", "pilotID",
                "batchID", "startTime", "coreCount", "cpuConsumptionUnit")

#: Once the pilot was told to stop, any update may take this long (then it waits on disk for later).
#: Measured against panda-server 1.0.4 over TLS with a fresh handshake (docs/final-update-latency.md): the
#: call costs ~3 RTT + 30-50 ms, so 1 s reaches a server 250 ms away, well inside any batch system's kill
#: grace (Slurm: 30 s by default), while a pilot next to its server is still gone in ~0.1 s.
STOPPING_UPDATE_SECONDS = 1.0


def update_fields(ctx: Context, run: JobRun, state: str, final: bool) -> dict[str, object]:
    """The updateJob fields for ``state``: everything for the final one; for starting/running the brief
    ones plus what the monitor measured so far (memory, I/O, jobMetrics, CPU time), as Pilot 3 sends."""
    fields = final_update(ctx, run)
    fields["state"] = state
    if final:
        return fields
    brief = {key: fields[key] for key in BRIEF_FIELDS if key in fields}
    brief.update(usage_fields(run))
    cpu = max(run.cpu_seconds, run.usage.cpu_seconds if run.usage is not None else 0.0)
    if cpu > 0:
        brief.update(cpuConsumptionTime=cpu_time(cpu), cpuConversionFactor=fields["cpuConversionFactor"])
    return brief


def heartbeat_interval(ctx: Context) -> float:
    """Seconds between heartbeats now (the debug command shortens it)."""
    return ctx.heartbeat_interval or ctx.setting("heartbeat_interval")


def heartbeat_if_due(ctx: Context, run: JobRun) -> None:
    """A ``running`` update if the last one is older than the interval (stage-in and stage-out call this).

    None once the pilot was told to stop: its final update follows at once, within its short budget,
    and a heartbeat to a slow server must not hold the pilot past a batch system's kill grace.
    """
    if ctx.signals.first is None and time.monotonic() - run.last_update >= heartbeat_interval(ctx):
        send_update(ctx, run, "running")


def act_on(ctx: Context, run: JobRun, commands: tuple[str, ...]) -> None:
    """Apply the server's commands to the pilot and the job (the caller acts on kill_requested)."""
    for command in commands:
        if command == "tobekilled":
            run.kill_requested = True
        elif command == "debug":
            ctx.heartbeat_interval = min(DEBUG_HEARTBEAT, ctx.setting("heartbeat_interval"))
        elif command == "debugoff":
            ctx.heartbeat_interval = None
        elif command in STOP_REPORTING:
            run.stop_reporting = True
        elif command == "nocleanup":
            run.keep_workdir = True
        if command != "tobekilled":
            ctx.log.info("server command", panda_id=run.panda_id, command=command)
    if run.kill_requested:
        ctx.log.warning("server command: kill the job", panda_id=run.panda_id, command="tobekilled")


def _to_file(ctx: Context, run: JobRun, state: str, fields: dict[str, object], final: bool) -> bool:
    """Without a server: ``worker_attributes.json`` for Harvester, else ``heartbeat.json`` in the pilot dir."""
    from fsm_pilot.harvester import mode

    if mode.files_mode(ctx):
        from fsm_pilot.harvester.workreport import publish

        return publish(ctx, run, state, fields, final)
    if ctx.pilot_dir is not None:
        write_json_atomic(ctx.pilot_dir / "heartbeat.json", fields)
    return True


def send_update(ctx: Context, run: JobRun, state: str, *, final: bool = False,
                within: float | None = None) -> bool:
    """Report ``state``; True when the server (or heartbeat.json) took it. Never raises."""
    from fsm_pilot.harvester import mode
    from fsm_pilot.panda import Interrupted

    fields = update_fields(ctx, run, state, final)
    run.last_update = time.monotonic()
    if mode.active(ctx):
        from fsm_pilot.harvester.workreport import beat

        beat(ctx)
    if not reports(ctx):  # -z, or no server at all: Harvester's files, else Pilot 3's heartbeat.json
        return _to_file(ctx, run, state, fields, final)
    if run.stop_reporting:
        return False
    if ctx.signals.first is not None:  # told to stop: be gone in a second; what is not sent waits on disk
        within = STOPPING_UPDATE_SECONDS if within is None else min(within, STOPPING_UPDATE_SECONDS)
    started = time.monotonic()
    try:
        result = ctx.client.update_job(fields, deadline=deadline(ctx, within))
    except (PilotFailure, Interrupted) as exc:
        ctx.log.warning("update not delivered", panda_id=run.panda_id, state=state, final=final, error=repr(exc))
        return False
    seconds = round(time.monotonic() - started, 4)
    if final:
        taken = judge(ctx, run, result, within, seconds)
        if taken:
            act_on(ctx, run, tuple(c for c in result.commands if c not in NOT_APPLIED))
        return taken
    if result.ok:
        ctx.log.info("update sent", panda_id=run.panda_id, state=state, ok=True, status=result.status,
                     seconds=seconds)
    else:
        ctx.log.warning("update refused", panda_id=run.panda_id, state=state, ok=False, status=result.status,
                        message=result.message, seconds=seconds)
    act_on(ctx, run, result.commands)
    return bool(result.ok)
