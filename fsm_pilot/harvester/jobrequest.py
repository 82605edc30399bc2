"""Asking Harvester for a job through files: ``worker_requestjob.json`` out, ``pandaJobData.out`` back.

A job already placed is taken at once. Otherwise the pilot writes
``{"nJobs": 1}`` and looks for the job file every POLL_SECONDS for up to
``harvester_job_wait`` seconds (Pilot 3: 120), asking again up to
``getjob_failures`` times (Pilot 3's ``-x``: 5, or 12 in PUSH mode when left at 5).
Harvester answers by writing the job file and removing the request; the pilot
removes the request too once it holds a job (as Pilot 3 does). The wait sleeps
on the signal pipe, so a signal ends it at once.

The job file is Harvester's, and Harvester writes it in place, not atomically:
one that does not parse is read again at the next poll, and only a file that
stayed the same and still does not parse fails the pilot, with the reader's
error (CONVERSIONFAILURE or FILEHANDLINGFAILURE) and what was wrong.
"""

from __future__ import annotations

import os
import time

from fsm_pilot.context import Context
from fsm_pilot.errors import PilotError, PilotFailure
from fsm_pilot.harvester.files import JOB_REQUEST, directory, write_json
from fsm_pilot.jobsource import Found, from_file, job_file

#: Seconds between looks for Harvester's job file (Pilot 3: 2).
POLL_SECONDS = 1.0
#: Pilot 3's request count in PUSH mode when -x is left at its default of 5.
PUSH_FAILURES = 12

#: What identifies one version of a file: a rewrite changes one of these.
Signature = tuple[int, int, int]


def from_harvester(ctx: Context) -> Found:
    """A job Harvester placed; without one, ask Harvester and wait for its answer.

    A pre-placed job file that cannot be read fails at once (PilotFailure), as
    outside Harvester mode: Harvester placed it before the pilot started.
    """
    found = from_file(ctx)
    if found.record is not None:
        withdraw(ctx)
        return found
    return _ask(ctx)


def request_attempts(ctx: Context) -> int:
    """How many requests the pilot makes before it gives up (Pilot 3's rule for PUSH)."""
    attempts = max(1, int(ctx.setting("getjob_failures")))
    return PUSH_FAILURES if ctx.args.push and attempts == 5 else attempts


def request(ctx: Context) -> None:
    """Write ``{"nJobs": 1}`` to ``worker_requestjob.json``; a failure is FILEHANDLINGFAILURE."""
    path = directory(ctx) / JOB_REQUEST
    try:
        write_json(path, {"nJobs": 1})
    except OSError as exc:
        raise PilotFailure(PilotError.FILEHANDLINGFAILURE, f"cannot write the job request {path}: {exc}") from exc


def withdraw(ctx: Context) -> None:
    """Remove a job request that is no longer wanted (a job is held, or the pilot ends)."""
    path = directory(ctx) / JOB_REQUEST
    try:
        path.unlink()
    except FileNotFoundError:
        return
    except OSError as exc:
        ctx.log.warning("job request not removed", path=str(path), error=repr(exc))
        return
    ctx.log.info("job request removed", path=str(path))


def _lifetime_left(ctx: Context) -> float:
    """Seconds the pilot may still wait before its lifetime margin."""
    return ctx.lifetime() - ctx.setting("lifetime_margin") - ctx.elapsed()


def _ask(ctx: Context) -> Found:
    """Request, wait, request again: a job, an interruption, or 'no job' after the last request."""
    from fsm_pilot.harvester.workreport import beat

    wait, attempts = ctx.setting("harvester_job_wait"), request_attempts(ctx)
    asked = 0
    for attempt in range(1, attempts + 1):
        asked = attempt
        request(ctx)
        beat(ctx)
        ctx.log.info("job requested from Harvester", request=str(directory(ctx) / JOB_REQUEST),
                     attempt=attempt, of=attempts, wait=wait)
        found = await_job(ctx, time.monotonic() + max(0.0, min(wait, _lifetime_left(ctx))))
        if found is not None:
            return found
        if _lifetime_left(ctx) <= 0:
            break
    return Found(None, f"Harvester placed no job in {job_file(ctx)} after {asked} request(s) of {wait:g} s",
                 PilotError.NOJOBSINPANDA)


def _signature(ctx: Context) -> Signature | None:
    try:
        info = os.stat(job_file(ctx))
    except OSError:
        return None
    return info.st_ino, info.st_size, info.st_mtime_ns


def await_job(ctx: Context, until: float) -> Found | None:
    """Look for the job until ``until``: the job, an interruption, or None at the deadline."""
    bad: tuple[Signature | None, PilotFailure] | None = None
    while True:
        try:
            found = from_file(ctx)
        except PilotFailure as exc:
            signature = _signature(ctx)
            if bad is not None and bad[0] == signature:
                raise  # the same file, still unreadable: Harvester is not writing it any more
            if bad is None:
                ctx.log.info("job file unreadable, read again at the next look", diag=exc.diag)
            bad, found = (signature, exc), Found(None, exc.diag)
        else:
            bad = None
        if found.record is not None:
            withdraw(ctx)
            return found
        left = until - time.monotonic()
        if left <= 0:
            if bad is not None:
                raise bad[1]
            return None
        if ctx.signals.sleep(min(POLL_SECONDS, left), warnings=True):
            return Found(None, "interrupted by a signal while waiting for Harvester's job", interrupted=True)
