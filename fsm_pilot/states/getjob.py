"""GETJOB: take the next job, from a pre-placed file (PUSH), the server (PULL) or Harvester, each job once."""

from __future__ import annotations

import time

from fsm_pilot.context import Context, JobRun, Outcome
from fsm_pilot.errors import PilotError, PilotFailure
from fsm_pilot.exitcodes import Reason
from fsm_pilot.job import job_identity
from fsm_pilot.jobids import record_job_id
from fsm_pilot.joblogs import mark_job_start
from fsm_pilot.jobsource import next_job
from fsm_pilot.outbox import flush


def _no_job(ctx: Context, why: str, error: PilotError | None) -> Outcome:
    """No job: an error ends the pilot with its code; 'none left' after some jobs is a clean end."""
    if error is PilotError.NOJOBSINPANDA and ctx.jobs_run:
        error = None
    if error is None and not ctx.jobs_run:
        error = PilotError.NOJOBSINPANDA
    return "no_job", Reason(f"no job: {why}", error)


def step(ctx: Context) -> Outcome:
    """Take one job and hold it as ``ctx.job``."""
    flush(ctx)  # undelivered final updates of earlier jobs go first
    started = time.monotonic()
    try:
        found = next_job(ctx)
        identity = job_identity(found.record) if found.record is not None else None
    except PilotFailure as exc:
        return "fail", Reason(f"job definition unusable: {exc.diag}", exc.error)
    if found.interrupted:
        return "abort", Reason(found.why)
    if identity is None or found.record is None:
        return _no_job(ctx, found.why, found.error)
    ctx.taken.add(identity.panda_id)
    record_job_id(ctx, identity.panda_id)  # at once: the wrapper reads it even after a kill
    ctx.job = JobRun(identity=identity, record=found.record)
    mark_job_start(ctx, ctx.job)
    ctx.job.timings["getjob"] = time.monotonic() - started
    if not ctx.jobs_run:
        ctx.job.timings["initial_setup"] = started - ctx.start_mono
    ctx.log.info("job taken", panda_id=identity.panda_id, source=found.why)
    if identity.attempt_problem is not None:
        why = f"{identity.attempt_problem}: its reports go without attemptNr"
        ctx.log.warning("job's attemptNr cannot be reported", panda_id=identity.panda_id, problem=why)
        return "got_job", Reason(f"{found.why}; {why}")
    return "got_job", Reason(found.why)
