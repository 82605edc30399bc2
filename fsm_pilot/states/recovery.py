"""RECOVERY: finish the jobs that dead pilots on this node left behind (fsm_pilot.recovery).

Runs after QUEUEDATA (recovered outputs need the storage endpoints) and
within ``--recovery-budget`` seconds, so it cannot eat the pilot's lifetime.
What it did is the reason of the transition it returns, in the transition log.
"""

from __future__ import annotations

from fsm_pilot.context import Context, Outcome
from fsm_pilot.exitcodes import Reason
from fsm_pilot.recovery import recover


def step(ctx: Context) -> Outcome:
    """Recover every orphaned job within the budget; say what happened to each."""
    recovered = recover(ctx, ctx.setting("recovery_budget"))
    if not recovered:
        ctx.log.info("nothing to recover", launch_dir=str(ctx.args.workdir))
        return "next", Reason("nothing to recover")
    summary = ", ".join(f"{r.panda_id}: {r.state or '?'} {r.error or ''} {r.outcome}".replace("  ", " ")
                        for r in recovered)
    ctx.log.info("recovery done", jobs=len(recovered), summary=summary)
    return "next", Reason(f"recovered {len(recovered)} job(s): {summary}"[:1000])
