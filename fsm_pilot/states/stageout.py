"""STAGEOUT: store outputs (if the payload finished) and the log, report the job's final state.

Then measure the facts the guards read to decide on another job.
"""

from __future__ import annotations

from fsm_pilot.context import Context, Outcome
from fsm_pilot.exitcodes import Reason
from fsm_pilot.facts import measure
from fsm_pilot.failpoints import failpoint


def step(ctx: Context) -> Outcome:
    """End the held job, then hand the another-job decision to the guards."""
    from fsm_pilot.finish import finish_job  # stage-out and its storage code: not in memory while a payload runs

    run = ctx.job
    assert run is not None
    failpoint("stageout_start")
    finish_job(ctx, run, with_outputs=not run.rejected)
    ctx.facts = measure(ctx)
    return "job_done", Reason(f"job {run.panda_id} {run.state}", run.error)
