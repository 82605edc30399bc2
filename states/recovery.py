"""RECOVERY: finish what an earlier pilot on this node left behind (not built yet)."""

from __future__ import annotations

from fsm_pilot.context import Context, Outcome
from fsm_pilot.exitcodes import Reason


def step(ctx: Context) -> Outcome:
    """Say plainly that nothing is recovered: deferred stage-out of dead pilots' jobs comes later."""
    ctx.log.info("nothing to recover: job recovery is not implemented yet", launch_dir=str(ctx.args.workdir))
    return "next", Reason("nothing to recover")
