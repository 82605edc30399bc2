"""GETJOB: take a job definition, each job once.

The source is the pre-placed ``pandaJobData.out`` (Harvester PUSH mode, or
``--job-file``). It is re-read each time so a file replaced by Harvester is
seen; jobs already taken by this pilot are skipped by PandaID.
"""

from __future__ import annotations

import time
from pathlib import Path

from fsm_pilot.context import Context, JobRun, Outcome
from fsm_pilot.errors import PilotError, PilotFailure
from fsm_pilot.exitcodes import Reason
from fsm_pilot.job import job_identity
from fsm_pilot.jobfile import read_job_records


def job_file(ctx: Context) -> Path:
    """--job-file, else ``pandaJobData.out`` in the Harvester workdir or the launch dir."""
    if ctx.args.job_file is not None:
        return ctx.args.job_file
    return (ctx.args.harvester_workdir or ctx.args.launch_dir) / "pandaJobData.out"


def _no_job(ctx: Context, why: str) -> Outcome:
    if ctx.jobs_run:
        return "no_job", Reason(f"no more jobs: {why}")
    return "no_job", Reason(f"no job: {why}", PilotError.NOJOBSINPANDA)


def _record_id(ctx: Context, panda_id: int) -> None:
    """Append to ``pandaIDs.out`` in the launch dir at once: the wrapper reads it even after a kill."""
    with open(ctx.args.launch_dir / "pandaIDs.out", "a", encoding="utf-8") as f:
        f.write(f"{panda_id}\n")


def step(ctx: Context) -> Outcome:
    """Take the first job of the file that this pilot has not taken yet."""
    started = time.monotonic()
    path = job_file(ctx)
    try:
        records = read_job_records(path)
        identities = [(job_identity(r), r) for r in records]
    except FileNotFoundError:
        return _no_job(ctx, f"{path} does not exist")
    except PilotFailure as exc:
        return "fail", Reason(f"job definition unusable: {exc.diag}", exc.error)
    for identity, record in identities:
        if identity.panda_id not in ctx.taken:
            ctx.taken.add(identity.panda_id)
            _record_id(ctx, identity.panda_id)
            ctx.job = JobRun(identity=identity, record=dict(record))
            ctx.job.timings["getjob"] = time.monotonic() - started
            ctx.log.info("job taken", panda_id=identity.panda_id, source=str(path))
            return "got_job", Reason(f"job {identity.panda_id} taken from {path.name}")
    return _no_job(ctx, f"every job in {path} was taken")
