"""RUNNING: run the payload in the job's work dir, in its own session, and watch it.

The watch (fsm_pilot.watch) waits for the payload's exit, a signal, the next
heartbeat or the next due check, so the pilot uses no CPU while nothing is
due. A signal kills the whole payload tree (SIGTERM, a short grace, SIGKILL)
and returns ``abort``; ``tobekilled`` from the server or a crossed limit
(memory, looping, disk, work dir, stdout, walltime, lifetime) kills it with
the normal grace and fails the job with that PanDA error code.
"""

from __future__ import annotations

import os
import resource
import signal
import time

from fsm_pilot.command import build_argv
from fsm_pilot.context import Context, JobRun, Outcome
from fsm_pilot.errors import PilotError, PilotFailure
from fsm_pilot.exitcodes import Reason
from fsm_pilot.jobstate import mark_maxed_out, persist
from fsm_pilot.liveness import boot_id
from fsm_pilot.payload import Payload, kill_tree, start_payload
from fsm_pilot.payload.environment import payload_environment
from fsm_pilot.watch import Ending, Watch, start_watch, watch_payload


def payload_env(ctx: Context, run: JobRun) -> dict[str, str]:
    """The pilot's environment without its secrets, plus what a payload needs to know about its job.

    The job's variables carry Pilot 3's names; what is withheld, and why, is in
    fsm_pilot.payload.environment (only the names are logged).
    """
    assert run.job is not None and run.workdir is not None
    env, withheld = payload_environment(ctx.env)
    if withheld:
        ctx.log.info("credentials withheld from the payload", panda_id=run.panda_id, names=withheld)
    cores = str(run.job.core_count)
    extra = {
        "PandaID": str(run.panda_id),
        "PanDA_AttemptNr": str(run.job.attempt_nr),
        "PILOT_HOME": str(ctx.pilot_dir),
        "PILOT_JOB_DIR": str(run.workdir),
        "ATHENA_PROC_NUMBER": cores,
        "ATHENA_CORE_NUMBER": cores,
    }
    if run.job.task_id is not None:
        extra["PanDA_TaskID"] = str(run.job.task_id)
    if run.job.jobset_id is not None:
        extra["PanDA_JobsetID"] = str(run.job.jobset_id)
    return {**env, **extra}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _exit_code(returncode: int) -> int:
    """The shell's view: 128 + N for a payload killed by signal N."""
    return returncode if returncode >= 0 else 128 - returncode


def _record_exit(run: JobRun, returncode: int) -> None:
    """A zero exit finishes the job; anything else fails it with the payload's code."""
    run.trans_exit_code = _exit_code(returncode)
    if returncode == 0:
        run.state = "finished"
        return
    how = f"killed by {signal.Signals(-returncode).name}" if returncode < 0 else f"exited with {returncode}"
    run.fail(PilotError.PAYLOADEXECUTIONFAILURE, f"payload {how}")


def _stop(ctx: Context, run: JobRun, payload: Payload, ending: Ending) -> int:
    """Kill what is left of the tree (everything, unless it exited by itself) and reap the payload."""
    grace = ctx.setting("signal_grace" if ending == "signal" else "kill_grace")
    report = kill_tree(payload, grace)
    if report.terminated or report.killed:
        ctx.log.warning("payload tree killed", panda_id=run.panda_id, why=ending,
                        sigterm=list(report.terminated), sigkill=list(report.killed))
    returncode = payload.popen.wait()
    payload.close()
    return returncode


def step(ctx: Context) -> Outcome:
    """Start the payload and wait for it, a signal, or the server's kill command."""
    run = ctx.job
    assert run is not None and run.workdir is not None
    started, cpu_before = time.monotonic(), _children_cpu()
    try:
        assert run.job is not None
        run.argv = build_argv(run.job.transformation, run.job.job_pars, run.workdir, ctx.env.get("PATH", os.defpath))
        payload = start_payload(run.argv, run.workdir, run.workdir / "payload.stdout",
                                run.workdir / "payload.stderr", payload_env(ctx, run), rlimit_as=ctx.rlimit_as)
    except PilotFailure as exc:
        run.fail(exc.error, exc.diag)
        return "payload_done", Reason(f"payload did not start: {exc.diag}", exc.error)
    run.state = "running"
    run.payload_identity = {"pid": payload.pid, "start_ticks": payload.start_ticks, "sid": payload.sid,
                            "mark": payload.mark, "boot_id": boot_id()}
    persist(ctx)  # no fsync: the identity serves to kill an orphaned payload, which a crash of the node kills
    ctx.log.info("payload started", panda_id=run.panda_id, pid=payload.pid)
    watch = start_watch(ctx, run, payload)
    run.usage = watch.usage  # heartbeats report what it measured so far
    ending = watch_payload(ctx, run, payload, watch)
    returncode = _stop(ctx, run, payload, ending)
    run.payload_identity = None
    run.timings["payload"] = time.monotonic() - started
    run.cpu_seconds = _children_cpu() - cpu_before
    watch.usage.note_cpu(run.cpu_seconds)
    return _outcome(ctx, run, ending, returncode, watch)


def _outcome(ctx: Context, run: JobRun, ending: Ending, returncode: int, watch: Watch) -> Outcome:
    """The trigger for how the payload ended; the job's state and error are set here."""
    if ending == "exited":
        _record_exit(run, returncode)
        ctx.log.info("payload ended", panda_id=run.panda_id, returncode=returncode, state=run.state)
        if run.state == "failed" and run.workdir is not None:  # into pilot.log, and so into pilotLog
            from fsm_pilot.logtail import stderr_tail  # failed payloads only: not in memory while one runs

            ctx.log.warning("payload stderr", panda_id=run.panda_id,
                            tail=stderr_tail(run.workdir / "payload.stderr"))
        return "payload_done", Reason(f"payload ended with {returncode}", run.error)
    run.trans_exit_code = _exit_code(returncode)
    if ending == "signal":
        return "abort", Reason("signal received while the payload ran")
    if ending == "server_kill":
        run.fail(PilotError.PANDAKILL, "killed by the server (tobekilled)")
        return "payload_done", Reason("payload killed on the server's command", PilotError.PANDAKILL)
    violation = watch.violation
    assert violation is not None
    run.fail(violation.error, violation.diag)
    mark_maxed_out(run)
    ctx.log.warning("payload killed: a limit was crossed", panda_id=run.panda_id, check=violation.check,
                    error=violation.error.name, diag=violation.diag)
    return "payload_done", Reason(f"{violation.check}: {violation.diag}", violation.error)
