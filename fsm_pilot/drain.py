"""Drain: "finish what you are doing and take no more", by file or by the batch system's warning signal.

* The drain file: ``stop_agent`` in the launch dir (the name DIRAC's agents, its
  pilot's JobAgent included, stop on), or the path of ``--drain-file`` /
  ``FSM_PILOT_DRAIN_FILE`` (e.g. one on a shared file system for a whole site).
  One ``stat`` before each getJob and when a job ends; never while a payload runs.
* SIGUSR1 (what Slurm's ``--signal=B:USR1@N`` sends the batch shell) is a warning
  once the pilot knows when its slot ends (:mod:`fsm_pilot.batchclock`): no new job;
  the running payload goes on until the time left reaches the reserve, then it is
  stopped and its job failed with REACHEDMAXTIME before the batch system's kill;
  outside a job the pilot exits at once. Without a known clock (no batch system
  says, no queuedata maxtime, no -l) it stops the pilot as before (job error 1207,
  exit 138), as Pilot 3 does.

A drained pilot exits 0; its last transition is ``drain`` with ``drained: <why>``.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from fsm_pilot import batchclock
from fsm_pilot.context import Context
from fsm_pilot.signals import name_of

DRAIN_FILE = "stop_agent"
#: The signals that are warnings when the clock is known.
WARNINGS = frozenset({signal.SIGUSR1})


def drain_paths(ctx: Context) -> list[Path]:
    """Where a drain file is looked for."""
    paths = [ctx.args.launch_dir / DRAIN_FILE]
    if ctx.args.drain_file is not None:
        paths.append(ctx.args.drain_file)
    return paths


def check_file(ctx: Context) -> str | None:
    """Set and return the drain reason if a drain file exists (one stat per path)."""
    if ctx.drain is None:
        found = next((p for p in drain_paths(ctx) if os.path.lexists(p)), None)
        if found is not None:
            ctx.drain = f"drain file {found}"
            ctx.log.warning("drain file found: this pilot takes no more jobs", path=str(found))
    return ctx.drain


def set_clock(ctx: Context) -> str:
    """Read the batch system's clock (once: a subprocess under Slurm), resolve the pilot's; say which."""
    reading = batchclock.read(ctx.env, ctx.start_wall)
    resolved = ctx.settings["lifetime"]
    ctx.clock = batchclock.resolve(reading, resolved.value, resolved.source, ctx.start_mono, ctx.start_wall)
    ctx.signals.warning_signals = WARNINGS if ctx.clock.known else frozenset()
    left = round(ctx.clock.left(), 1)
    policy = "a warning (drain)" if ctx.clock.known else "a stop (no known clock)"
    ctx.log.info("clock", source=ctx.clock.source, seconds_left=left, batch=reading.source if reading else None,
                 sigusr1=policy)
    return f"clock: {ctx.clock.source}, {left:g} s left; SIGUSR1 is {policy}"


def on_warning(ctx: Context) -> bool:
    """Act on a new warning signal: take no more jobs, read the clock again. True if there was one."""
    signum = ctx.signals.take_warning()
    if signum is None:
        return False
    ctx.drain = ctx.drain or name_of(signum)
    text = set_clock(ctx) if ctx.settings else "clock not known yet"
    ctx.log.warning("warning signal: no more jobs; the job in hand goes on while its time allows",
                    signal=name_of(signum), clock=text)
    return True


def running_reserve(ctx: Context, output_bytes: int) -> float:
    """Seconds a job needs after its payload is stopped: the margin plus storing what it wrote.

    ``--lifetime-margin`` (180 s, Pilot 3's grace) covers the kill grace, the log
    and the final update; the outputs present add their size at ``--stageout-rate``.
    """
    return ctx.setting("lifetime_margin") + output_bytes / max(1.0, ctx.setting("stageout_rate"))
