"""Where jobs come from: a pre-placed file (Harvester PUSH, ``--job-file``) or the server (PULL).

Both return the next job's raw record, or why there is none. "Cannot reach
the server" and "the server has no jobs" stay different all the way to the
exit code (79 and 82).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fsm_pilot.context import Context
from fsm_pilot.credentials import CREDENTIAL_ERRORS
from fsm_pilot.errors import PilotError, PilotFailure
from fsm_pilot.job import job_identity
from fsm_pilot.server import deadline, getjob_request, reports

if TYPE_CHECKING:
    from fsm_pilot.panda import GetJobResult


@dataclass(frozen=True)
class Found:
    """The source's answer: a record, or ``why`` there is none (with an error when it is one)."""

    record: dict[str, Any] | None
    why: str
    error: PilotError | None = None
    interrupted: bool = False


def job_files(ctx: Context) -> list[Path]:
    """Where a pre-placed job may be, in order (Pilot 3's places).

    --job-file alone when given; else ``pandaJobData.out`` in --harvester-datadir, or
    else in the Harvester workdir or the launch dir; then ``HPCJobs.json`` (Harvester's
    default job file name) in the Harvester workdir.
    """
    if ctx.args.job_file is not None:
        return [ctx.args.job_file]
    args = ctx.args
    paths = [(args.harvester_datadir or args.harvester_workdir or args.launch_dir) / "pandaJobData.out"]
    if args.harvester_workdir is not None:
        paths.append(args.harvester_workdir / "HPCJobs.json")
    return paths


def job_file(ctx: Context) -> Path:
    """The first of :func:`job_files` that exists, else the first of them."""
    paths = job_files(ctx)
    return next((p for p in paths if os.path.lexists(p)), paths[0])


def uses_file(ctx: Context) -> bool:
    """PUSH mode, an explicit job file, or a pre-placed file next to the pilot (as Pilot 3)."""
    return ctx.args.push or ctx.args.job_file is not None or job_file(ctx).exists()


def from_file(ctx: Context) -> Found:
    """The first job in the file this pilot has not taken (the file is re-read: Harvester may replace it)."""
    from fsm_pilot.jobfile import read_job_records  # pre-placed jobs only: not in a server pilot's memory

    path = job_file(ctx)
    try:
        records = read_job_records(path)
        identities = [(job_identity(r).panda_id, r) for r in records]
    except FileNotFoundError:
        return Found(None, f"{path} does not exist")
    for panda_id, record in identities:
        if panda_id not in ctx.taken:
            return Found(record, f"job {panda_id} taken from {path.name}")
    return Found(None, f"every job in {path} was taken")


def next_job(ctx: Context) -> Found:
    """The next job: Harvester's (asked for through files) in Harvester mode, else a pre-placed one or the server's."""
    from fsm_pilot.harvester import mode

    if mode.active(ctx):
        from fsm_pilot.harvester import jobrequest  # Harvester mode only: not in other pilots' memory

        return jobrequest.from_harvester(ctx)
    return from_file(ctx) if uses_file(ctx) else from_server(ctx)


def _ask(ctx: Context) -> Found | GetJobResult:
    """One getJob: the client's result, or a Found saying why there is none."""
    from fsm_pilot.panda import Interrupted

    try:
        result: GetJobResult = ctx.client.get_job(getjob_request(ctx), deadline=deadline(ctx))
    except PilotFailure as exc:  # a credential the pilot cannot use keeps its own code (exit 68)
        error = exc.error if exc.error in CREDENTIAL_ERRORS else PilotError.COMMUNICATIONFAILURE
        return Found(None, f"getJob failed: {exc.diag}", error)
    except Interrupted:
        return Found(None, "interrupted by a signal", interrupted=True)
    return result


def from_server(ctx: Context) -> Found:
    """Ask the server, up to ``getjob_requests`` times while it answers 'no jobs'."""
    if not reports(ctx):
        return Found(None, "no job source: no pre-placed job, and no --url (or -z)")
    tries = max(1, int(ctx.setting("getjob_requests")))
    refused = ""
    for attempt in range(1, tries + 1):
        result = _ask(ctx)
        if isinstance(result, Found):
            return result
        if result.kind == "job" and result.job is not None:
            return Found(dict(result.job), f"job {result.job.get('PandaID')} from the server")
        wait = ctx.setting("getjob_wait")
        then = f"asking again in {wait:g} s ({attempt + 1}/{tries})" if attempt < tries else "no more requests"
        ctx.log.info(f"no job from the server; {then}", attempt=attempt, of=tries, kind=result.kind,
                     status=result.status, message=result.message)
        refused = f"StatusCode {result.status} {result.message}" if result.kind == "refused" else ""
        if attempt < tries and ctx.signals.sleep(wait, warnings=True):
            return Found(None, "interrupted by a signal", interrupted=True)
    if refused:
        return Found(None, f"getJob refused: {refused}", PilotError.COMMUNICATIONFAILURE)
    return Found(None, f"no jobs in PanDA after {tries} request(s)", PilotError.NOJOBSINPANDA)
