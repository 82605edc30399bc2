"""VALIDATE: parse the job definition into a typed Job, make its work dir, build its command.

A definition that is unsafe or inconsistent is rejected with its PanDA error
code: the job is reported failed and only its log is staged out (``reject``).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from fsm_pilot.command import check_transformation, split_job_pars
from fsm_pilot.context import Context, JobRun, Outcome
from fsm_pilot.errors import PilotError, PilotFailure
from fsm_pilot.exitcodes import Reason
from fsm_pilot.job import parse_job
from fsm_pilot.reporting import send_update


def make_workdir(ctx: Context, run: JobRun) -> Path:
    """``<pilot dir>/PanDA_Pilot-<PandaID>``, mode 0770 whatever the umask."""
    assert ctx.pilot_dir is not None
    workdir = ctx.pilot_dir / f"PanDA_Pilot-{run.panda_id}"
    try:
        workdir.mkdir()
        workdir.chmod(0o770)
    except OSError as exc:
        raise PilotFailure(PilotError.MKDIR, f"cannot create job dir {workdir}: {exc.strerror}") from None
    run.workdir = workdir
    return workdir


def check_cores(ctx: Context, cores: int) -> None:
    """A job asking for more cores than the node has cannot run here; more than the queue's is logged."""
    node_cores = getattr(ctx.node, "cpu_count", None)
    if node_cores and cores > node_cores:
        raise PilotFailure(PilotError.RESOURCEUNAVAILABLE,
                           f"job wants {cores} cores, this node has {node_cores}")
    try:
        queue_cores = int(float(ctx.queuedata.get("corecount") or 0))
    except (TypeError, ValueError):
        queue_cores = 0
    if queue_cores and cores > queue_cores:
        ctx.log.warning("job wants more cores than the queue declares", cores=cores, queue_corecount=queue_cores)


def step(ctx: Context) -> Outcome:
    """Accept a well-formed job, reject anything else with the matching error code."""
    run = ctx.job
    assert run is not None
    started = time.monotonic()
    try:
        workdir = make_workdir(ctx, run)
        run.job = job = parse_job(run.record)
        split_job_pars(job.job_pars)
        check_transformation(job.transformation, {f.lfn for f in job.inputs}, ctx.args.base_urls,
                             ctx.env.get("PATH", os.defpath))
        check_cores(ctx, job.core_count)
    except PilotFailure as exc:
        run.fail(exc.error, exc.diag)
        run.rejected = True
        ctx.log.warning("job rejected", panda_id=run.panda_id, error=exc.error.name, diag=exc.diag)
        return "reject", Reason(f"job rejected: {exc.diag}", exc.error)
    finally:
        run.timings["setup"] = time.monotonic() - started
    ctx.log.info("job accepted", panda_id=run.panda_id, transformation=job.transformation,
                 job_pars=job.job_pars, workdir=str(workdir))
    send_update(ctx, run, "starting")
    if run.kill_requested or run.stop_reporting:
        return _refused_by_server(ctx, run)
    return "accept", Reason("job definition valid")


def _refused_by_server(ctx: Context, run: JobRun) -> Outcome:
    """The server answered 'starting' with tobekilled (or alreadydone): do not run the payload."""
    run.fail(PilotError.PANDAKILL, "killed by the server before the payload started")
    ctx.log.warning("job not run: the server refused it", panda_id=run.panda_id,
                    stop_reporting=run.stop_reporting)
    return "reject", Reason("the server refused the job", run.error)
