"""The end of a Harvester worker: ``kill_worker`` tells Harvester the pilot is done.

Written at every end of a pilot in Harvester mode, as Pilot 3's ``wrap_up``
does (an empty file, Pilot 3's name; Harvester's template default is
``kill_worker.json``, so a site sets ``killWorkerFile = kill_worker`` to act
on it). A job request still pending is withdrawn first: a job Harvester placed
now would wait for a pilot that is gone.
"""

from __future__ import annotations

from fsm_pilot.context import Context
from fsm_pilot.harvester.files import KILL_WORKER, directory, write_atomic
from fsm_pilot.harvester.jobrequest import withdraw
from fsm_pilot.harvester.mode import active


def finished(ctx: Context) -> None:
    """In Harvester mode: withdraw a pending request, then write ``kill_worker`` (failures are logged)."""
    if not active(ctx):
        return
    withdraw(ctx)
    path = directory(ctx) / KILL_WORKER
    try:
        write_atomic(path, b"")
    except OSError as exc:
        ctx.log.warning("kill_worker not written", path=str(path), error=repr(exc))
        return
    ctx.log.info("kill_worker written: the worker is done", path=str(path))
