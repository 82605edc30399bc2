"""CLEANUP: remove what old pilots left in the launch dir (fsm_pilot.cleanup), then measure for the guards.

Runs after RECOVERY, so a dead pilot's job is finished before its dir is
judged. Never a live pilot's dir, never outside the launch dir, never through
a symlink; thresholds from --cleanup-age and --cleanup-stuck-age.
"""

from __future__ import annotations

from fsm_pilot.cleanup import CleanupRules, cleanup
from fsm_pilot.context import Context, Outcome
from fsm_pilot.exitcodes import Reason
from fsm_pilot.facts import measure


def step(ctx: Context) -> Outcome:
    """Apply the cleanup rules, then measure disk, credential and clocks for the first job's guards."""
    age = ctx.setting("cleanup_age")
    rules = CleanupRules(empty_dir_age=age, job_dir_age=age, maxed_out_age=age, pilot_dir_age=age,
                         stuck_job_age=ctx.setting("cleanup_stuck_age"))
    report = cleanup(ctx.args.workdir, ctx.pilot_dir, rules, log=ctx.log)
    ctx.facts = measure(ctx)
    text = f"removed {len(report.removed)}, kept {len(report.kept)}, errors {len(report.errors)}"
    return "next", Reason(f"cleanup: {text}")
