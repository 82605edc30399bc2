"""RUNNING: run the payload in the job's work dir, in its own session, and watch it.

One wait covers the payload's exit and the signal pipe, so the pilot uses no
CPU while the payload runs and reacts to a signal at once: it kills the whole
payload tree (SIGTERM, a short grace, SIGKILL) and returns ``abort``.
"""

from __future__ import annotations

import resource
import signal
import time

from fsm_pilot.context import Context, JobRun, Outcome
from fsm_pilot.errors import PilotError, PilotFailure
from fsm_pilot.exitcodes import Reason
from fsm_pilot.payload import Payload, kill_tree, start_payload, wait_payload


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


def _record_exit(run: JobRun, returncode: int) -> None:
    """A zero exit finishes the job; anything else fails it with the payload's code."""
    run.trans_exit_code = returncode if returncode >= 0 else 128 - returncode
    if returncode == 0:
        run.state = "finished"
        return
    how = (f"killed by {signal.Signals(-returncode).name}" if returncode < 0
           else f"exited with {returncode}")
    run.fail(PilotError.PAYLOADEXECUTIONFAILURE, f"payload {how}")


def _watch(ctx: Context, payload: Payload) -> bool:
    """Wait for the payload's exit; False if a signal arrived first."""
    while True:
        if ctx.signals.has_new():
            return False
        if wait_payload(payload, ctx.signals.wakeup_fd, None) == "exited":
            return True
        ctx.signals.drain()


def step(ctx: Context) -> Outcome:
    """Start the payload and wait for it, or for a signal."""
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
    exited = _watch(ctx, payload)
    # after a normal exit this removes what the payload left running (double-forked daemons)
    report = kill_tree(payload, ctx.setting("kill_grace" if exited else "signal_grace"))
    if report.terminated or report.killed:
        ctx.log.warning("payload tree killed", panda_id=run.panda_id, pilot_told_to_stop=not exited,
                        sigterm=list(report.terminated), sigkill=list(report.killed))
    returncode = payload.popen.wait()
    payload.close()
    run.timings["payload"] = time.monotonic() - started
    run.cpu_seconds = _children_cpu() - cpu_before
    if not exited:
        run.trans_exit_code = returncode if returncode >= 0 else 128 - returncode
        return "abort", Reason("signal received while the payload ran")
    _record_exit(run, returncode)
    ctx.log.info("payload ended", panda_id=run.panda_id, returncode=returncode, state=run.state)
    return "payload_done", Reason(f"payload ended with {returncode}", run.error)
