"""STAGEIN: fetch the job's inputs into its work dir, verifying size and checksum.

Copytools come from queuedata ``acopytools["pr"]``, replicas from the storage
endpoints' ``read_lan`` (or ``read_wan``) protocols; ``--copy-timeout`` bounds
each copy. A failure fails the job with its PanDA code (MISSINGINPUTFILE,
GETADMISMATCH, STAGEINTIMEOUT, ...) and only its log is staged out; heartbeats go out
while a copy runs, and a kill command from the server ends it (PANDAKILL); a signal
stops the copy at once and aborts.
"""

from __future__ import annotations

import time

from fsm_pilot.command import download_transformation, is_url
from fsm_pilot.context import Context, JobRun, Outcome
from fsm_pilot.errors import PilotError, PilotFailure
from fsm_pilot.exitcodes import Reason
from fsm_pilot.failpoints import failpoint
from fsm_pilot.reporting import heartbeat_if_due, send_update


def _transformation(ctx: Context, run: JobRun) -> None:
    """Download a URL transformation (allowed base URLs were checked in VALIDATE); no credentials sent."""
    import requests

    assert run.job is not None and run.workdir is not None
    with requests.Session() as session:
        path = download_transformation(run.job.transformation, run.workdir, session)
    ctx.log.info("transformation downloaded", panda_id=run.panda_id, url=run.job.transformation, path=str(path))


def _tick(ctx: Context, run: JobRun) -> None:
    """While a copy runs: a heartbeat when due; the server's kill command ends the copy and the job."""
    heartbeat_if_due(ctx, run)
    if run.kill_requested:
        raise PilotFailure(PilotError.PANDAKILL, "killed by the server during stage-in (tobekilled)")


def step(ctx: Context) -> Outcome:
    """Stage in every input, or fail the job with the first error."""
    run = ctx.job
    assert run is not None and run.job is not None and run.workdir is not None
    try:
        if is_url(run.job.transformation):
            _transformation(ctx, run)
    except PilotFailure as exc:
        run.fail(exc.error, exc.diag)
        return "stagein_failed", Reason(f"transformation download failed: {exc.diag}", exc.error)
    if not run.job.inputs:
        ctx.log.info("no inputs to stage in", panda_id=run.panda_id)
        return "staged_in", Reason("no inputs")
    from fsm_pilot.stagein import Interrupted, stage_in, stagein_timeout

    base = ctx.setting("copy_timeout")
    started = time.monotonic()
    send_update(ctx, run, "running")  # PanDA shows stage-in as running; it is also a heartbeat
    try:
        for spec in run.job.inputs:  # one at a time, so heartbeats go out between files and during each
            _tick(ctx, run)
            stage_in(run.workdir, [spec], ctx.queuedata, ctx.storagedata, wakeup_fd=ctx.signals.wakeup_fd,
                     log=ctx.log, copy_timeout=lambda size: stagein_timeout(size, base),
                     tick=lambda: _tick(ctx, run))
            failpoint("stagein_file")
    except Interrupted:
        return "abort", Reason("signal received during stage-in")
    except PilotFailure as exc:
        run.fail(exc.error, exc.diag)
        ctx.log.warning("stage-in failed", panda_id=run.panda_id, error=exc.error.name, diag=exc.diag)
        return "stagein_failed", Reason(f"stage-in failed: {exc.diag}", exc.error)
    finally:
        run.timings["stagein"] = time.monotonic() - started
    ctx.log.info("inputs staged in", panda_id=run.panda_id, files=len(run.job.inputs),
                 seconds=round(run.timings["stagein"], 3))
    return "staged_in", Reason(f"{len(run.job.inputs)} input(s) staged in")
