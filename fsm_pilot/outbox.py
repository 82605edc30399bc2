"""The outbox: final updates not delivered yet, retried with backoff while the pilot lives.

A final update that fails (server down, network error) is never dropped: the
job stays in ``ctx.outbox`` and in its ``jobstate.json`` (undone), and is
retried before each getJob, at each heartbeat of the next job, and once more
when the pilot ends. What is still undelivered when the pilot exits is on
disk for the next pilot's RECOVERY.
"""

from __future__ import annotations

import time

from fsm_pilot.context import Context, JobRun
from fsm_pilot.jobstate import persist
from fsm_pilot.report import write_final_report
from fsm_pilot.reporting import send_update

#: Seconds one outbox attempt may take (it must not hold up the job at hand).
ATTEMPT_SECONDS = 5.0
FIRST_BACKOFF = 2.0
MAX_BACKOFF = 300.0


def remove_workdir(ctx: Context, run: JobRun) -> None:
    """Remove the job dir once its log is stored and its outcome delivered, unless told to keep it.

    A job whose final update is still pending keeps its dir: it is what a later
    pilot's recovery works from. The server's ``nocleanup`` keeps it too.
    """
    import shutil

    if run.workdir is None or run.final_pending or run.keep_workdir:
        ctx.log.info("job dir kept", panda_id=run.panda_id, pending=run.final_pending, nocleanup=run.keep_workdir)
        return
    shutil.rmtree(run.workdir, ignore_errors=True)


def deliver(ctx: Context, run: JobRun, within: float | None) -> bool:
    """Send the job's final update; True once nothing is left to send, else it is queued.

    Settled means delivered, or answered in a way that sending it again cannot
    change (``alreadydone``: the server has a final report; a refusal for good,
    logged loudly and kept as ``run.refused``): the job is marked done and its
    dir released.
    """
    sent = send_update(ctx, run, run.state, final=True, within=within)
    if sent or run.stop_reporting:
        run.final_pending = False
        if ctx.pilot_dir is not None:
            write_final_report(ctx, run)
        # only for a dir that stays (then durably): one removed next needs no state; a "done" lost to a crash
        # before the removal only means the update is sent again, and answered alreadydone
        if run.keep_workdir:
            persist(ctx, run, machine_state="STAGEOUT", durable=True)
        remove_workdir(ctx, run)
        return True
    if run not in ctx.outbox:
        ctx.outbox.append(run)
        ctx.log.warning("final update queued in the outbox", panda_id=run.panda_id)
    run.next_retry = time.monotonic() + min(MAX_BACKOFF, FIRST_BACKOFF * 2 ** run.retries)
    run.retries += 1
    return False


def flush(ctx: Context, *, final: bool = False, within: float = ATTEMPT_SECONDS) -> None:
    """Retry the due outbox entries (all of them, once, when the pilot ends), ``within`` seconds each."""
    now = time.monotonic()
    for run in list(ctx.outbox):
        if (final or run.next_retry <= now) and deliver(ctx, run, within):
            ctx.outbox.remove(run)
            if run.refused is None:
                ctx.log.info("outbox: final update settled", panda_id=run.panda_id, attempts=run.retries + 1)
