"""INIT: record the start time and create the pilot dir under -a (``Panda_Pilot_<pid>_<epoch>``)."""

from __future__ import annotations

import os

from fsm_pilot import __version__, logsetup
from fsm_pilot.context import Context, Outcome
from fsm_pilot.errors import PilotError
from fsm_pilot.exitcodes import Reason
from fsm_pilot.liveness import take_lock
from fsm_pilot.server import make_client, worker_status


def step(ctx: Context) -> Outcome:
    """Create the pilot dir; from here on the transition log and pilot.log live in it."""
    name = f"Panda_Pilot_{os.getpid()}_{int(ctx.start_wall)}"
    pilot_dir = ctx.args.workdir / name
    try:
        ctx.args.workdir.mkdir(parents=True, exist_ok=True)
        pilot_dir.mkdir(mode=0o770)
    except OSError as exc:
        return "fail", Reason(f"cannot create pilot dir {pilot_dir}: {exc.strerror}", PilotError.MKDIR)
    ctx.pilot_dir = pilot_dir
    ctx.lock = take_lock(pilot_dir)
    ctx.translog.attach(pilot_dir)
    logsetup.add_file(pilot_dir / "pilot.log")
    ctx.log.info("pilot started", version=__version__, pid=os.getpid(), pilot_dir=str(pilot_dir),
                 queue=ctx.args.queue, start_time=ctx.start_wall)
    for option, value in sorted(ctx.args.ignored.items()):
        ctx.log.info("option accepted and ignored (not used by this pilot yet)", option=option, value=value)
    ctx.client = make_client(ctx)
    worker_status(ctx, "started")
    return "next", Reason("pilot dir created")
