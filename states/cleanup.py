"""CLEANUP: remove old work dirs (not built yet); measure the facts the first job's guards read."""

from __future__ import annotations

from fsm_pilot.context import Context, Outcome
from fsm_pilot.exitcodes import Reason
from fsm_pilot.facts import measure


def step(ctx: Context) -> Outcome:
    """Say that nothing is cleaned, then measure disk, credential and clocks for the guards."""
    ctx.log.info("nothing to clean up: removal of old work dirs is not implemented yet")
    ctx.facts = measure(ctx)
    return "next", Reason("ready for the first job")
