"""ABORTING: the pilot is stopping early; record the held job as failed and keep its log.

Reached by ``abort`` (a signal) or ``fail`` (a crash) while a job is held.
The job gets the signal's error code (SIGTERM 1201, ...) or the crash's, its
log is staged out, its final report written, and the step returns the same
trigger that brought the pilot here, to ABORTED or FAILED.
"""

from __future__ import annotations

from fsm_pilot.context import Context, JobRun, Outcome
from fsm_pilot.errors import SIGNAL_ERRORS, PilotError
from fsm_pilot.exitcodes import Reason
from fsm_pilot.failpoints import failpoint
from fsm_pilot.jobstate import persist
from fsm_pilot.signals import name_of


def _job_error(ctx: Context, reason: Reason) -> tuple[PilotError, str]:
    signum = ctx.signals.first
    if signum is not None:
        name = name_of(signum)
        return SIGNAL_ERRORS.get(name, PilotError.KILLSIGNAL), f"pilot received {name}"
    return reason.error or PilotError.UNKNOWNEXCEPTION, reason.text


def _died_of_the_same_stop(ctx: Context, run: JobRun) -> bool:
    """The payload died of a signal and the pilot was signalled too: one stop, the pilot's signal is its cause.

    A batch system signals every process of the job at once (Slurm: SIGCONT+SIGTERM to all), so the payload
    may die, and be seen dying, before the pilot's own handler runs. PanDA must then read "pilot received
    SIGTERM" (1201), not "payload killed by SIGTERM" (1305), whichever process got there first.
    """
    return (ctx.signals.first is not None and run.error is PilotError.PAYLOADEXECUTIONFAILURE
            and (run.trans_exit_code or 0) > 128)


def step(ctx: Context) -> Outcome:
    """Fail and finish the held job, then end the pilot the way it was asked to end."""
    trigger, reason = ctx.arrived_by or ("fail", Reason("unknown", PilotError.INTERNALPILOTPROBLEM))
    run = ctx.job
    if run is not None and not run.reported:
        if _died_of_the_same_stop(ctx, run):
            run.error = None  # fail() keeps the first error; this one was only the first to be seen
        error, diag = _job_error(ctx, reason)
        run.fail(error, diag)
        persist(ctx, durable=True)  # first: a SIGKILL soon after still leaves the outcome on disk
        failpoint("aborting")
        from fsm_pilot.finish import FINAL_UPDATE_SECONDS, finish_job  # ~15 ms, on this path only

        finish_job(ctx, run, with_outputs=False, within=FINAL_UPDATE_SECONDS)
    if ctx.signals.first is not None:
        signum = ctx.signals.first
        return "abort", Reason(f"stopped by {name_of(signum)}", signal=signum)
    return trigger, reason
