"""RUNNING: run the payload in the job's work dir, in its own session, and watch it.

One wait covers the payload's exit, the signal pipe and the next heartbeat,
so the pilot uses no CPU while the payload runs and reacts to a signal at
once: it kills the whole payload tree (SIGTERM, a short grace, SIGKILL) and
returns ``abort``. A ``tobekilled`` from the server kills the tree with the
normal grace and fails the job with PANDAKILL.
"""

from __future__ import annotations

import resource
import signal
import time
from typing import Literal

from fsm_pilot.context import Context, JobRun, Outcome
from fsm_pilot.errors import PilotError, PilotFailure
from fsm_pilot.exitcodes import Reason
from fsm_pilot.payload import Payload, kill_tree, start_payload, wait_payload
from fsm_pilot.reporting import heartbeat_interval, send_update

Ending = Literal["exited", "signal", "server_kill"]


def payload_env(ctx: Context, run: JobRun) -> dict[str, str]:
    """The pilot's environment plus what a payload needs to know about its job."""
    assert run.job is not None and run.workdir is not None
    env = dict(ctx.env)
    cores = str(run.job.core_count)
    env.update({
        "PandaID": str(run.panda_id),
        "PILOT_JOB_DIR": str(run.workdir),
        "ATHENA_PROC_NUMBER": cores,
        "ATHENA_CORE_NUMBER": cores,
    })
    if run.job.task_id is not None:
        env["TaskID"] = str(run.job.task_id)
    return env


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


def _watch(ctx: Context, run: JobRun, payload: Payload) -> Ending:
    """Wait for the payload's exit, a signal or a kill command, sending heartbeats on time."""
    send_update(ctx, run, "running")
    next_beat = time.monotonic() + heartbeat_interval(ctx)
    while True:
        if ctx.signals.has_new():
            return "signal"
        if run.kill_requested:
            return "server_kill"
        timeout = max(0.0, next_beat - time.monotonic())
        result = wait_payload(payload, ctx.signals.wakeup_fd, timeout)
        if result == "exited":
            return "exited"
        if result == "woken":
            ctx.signals.drain()
            continue
        send_update(ctx, run, "running")
        next_beat = time.monotonic() + heartbeat_interval(ctx)


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
        payload = start_payload(run.argv, run.workdir, run.workdir / "payload.stdout",
                                run.workdir / "payload.stderr", payload_env(ctx, run), rlimit_as=ctx.rlimit_as)
    except PilotFailure as exc:
        run.fail(exc.error, exc.diag)
        return "payload_done", Reason(f"payload did not start: {exc.diag}", exc.error)
    run.state = "running"
    ctx.log.info("payload started", panda_id=run.panda_id, pid=payload.pid)
    ending = _watch(ctx, run, payload)
    returncode = _stop(ctx, run, payload, ending)
    run.timings["payload"] = time.monotonic() - started
    run.cpu_seconds = _children_cpu() - cpu_before
    if ending == "signal":
        run.trans_exit_code = _exit_code(returncode)
        return "abort", Reason("signal received while the payload ran")
    if ending == "server_kill":
        run.trans_exit_code = _exit_code(returncode)
        run.fail(PilotError.PANDAKILL, "killed by the server (tobekilled)")
        return "payload_done", Reason("payload killed on the server's command", PilotError.PANDAKILL)
    _record_exit(run, returncode)
    ctx.log.info("payload ended", panda_id=run.panda_id, returncode=returncode, state=run.state)
    return "payload_done", Reason(f"payload ended with {returncode}", run.error)
