"""Ending a job: outputs and the log to storage, then the final report.

Shared by STAGEOUT (the normal end, and rejected jobs) and ABORTING (a signal
or a crash): whatever happened to the payload, the job's log is kept.

A signal during stage-out: the output copy in flight is killed (its whole
process tree) and no new one starts. A job whose outputs were all stored by
then is reported ``finished`` (its work is done and in storage); otherwise it
fails with the signal's code and says how many of its outputs were stored.
Either way the log is stored, its copy given at most STOPPING_COPY_SECONDS, and
the final update at most FINAL_UPDATE_SECONDS; then the pilot aborts.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from fsm_pilot.context import Context, JobRun
from fsm_pilot.errors import SIGNAL_ERRORS, PilotError, PilotFailure
from fsm_pilot.failpoints import failpoint
from fsm_pilot.harvester.mode import files_mode as harvester_files
from fsm_pilot.job import FileSpec
from fsm_pilot.joblogs import job_log_files
from fsm_pilot.jobstate import persist
from fsm_pilot.outbox import deliver
from fsm_pilot.report import write_final_report
from fsm_pilot.reporting import STOPPING_UPDATE_SECONDS, heartbeat_if_due, update_fields
from fsm_pilot.signals import name_of
from fsm_pilot.stageout import Copying, Interrupted, destination, put
from fsm_pilot.storage import StagedFile, put_file
from fsm_pilot.storage.logtar import make_log_tarball_summed

#: The pilot was told to stop: the final update may take this long, then it is left pending.
FINAL_UPDATE_SECONDS = STOPPING_UPDATE_SECONDS
#: The pilot was told to stop: the log's copy may still take this long, then it is killed.
STOPPING_COPY_SECONDS = 10.0


def _copying(ctx: Context, run: JobRun, activity: str, cwd: Path) -> Copying:
    """Outputs' copies stop at a signal; the log's ("pl") must finish, within STOPPING_COPY_SECONDS.

    The copies run in ``cwd`` and append their output to its ``stageout.log``: the job dir for
    outputs (so it goes into the log tarball), the pilot dir for the log tarball itself.
    """
    # the slot's end bounds each copy, less what must follow it; after a signal the stopping rule does
    reserve = FINAL_UPDATE_SECONDS if activity == "pl" else STOPPING_COPY_SECONDS + FINAL_UPDATE_SECONDS
    stopping = ctx.signals.first is not None
    return Copying(cwd=cwd, wakeup_fd=ctx.signals.wakeup_fd, tick=lambda: heartbeat_if_due(ctx, run),
                   timeout_base=ctx.setting("stageout_timeout"), attempts=max(1, int(ctx.setting("stageout_attempts"))),
                   must_finish=activity == "pl", signalled=stopping,
                   stopping=STOPPING_COPY_SECONDS, log=ctx.log.bind(panda_id=run.panda_id),
                   end_by=ctx.clock.end_mono - reserve if ctx.clock is not None and not stopping else None)


def _store(ctx: Context, run: JobRun, spec: FileSpec, src: Path, activity: str, *, guid: str,
           within: Path | None, expected: tuple[int, str] | None) -> StagedFile:
    """To the queue's storage endpoint; under Harvester with -z, to the access point for Harvester to store."""
    if harvester_files(ctx):
        from fsm_pilot.harvester.stageout import put as put_for_harvester

        return put_for_harvester(ctx, src, spec.lfn, guid, ddm_endpoint=spec.ddm_endpoint or "", within=within)
    if not spec.scope:
        raise PilotFailure(PilotError.STAGEOUTFAILED, f"no scope for {spec.lfn}: cannot build its path")
    dest = destination(ctx.queuedata, ctx.storagedata, activity, spec.ddm_endpoint)
    if dest.local:  # a directory on this host: written and re-read in-process, as always
        return put_file(src, dest.protocols[0], spec.scope, spec.lfn, guid, within=within, expected=expected)
    copying = _copying(ctx, run, activity, src.parent)
    return put(copying, dest, src, scope=spec.scope, lfn=spec.lfn, guid=guid, within=within, expected=expected)


def _put(ctx: Context, run: JobRun, spec: FileSpec, src: Path, activity: str, *, payload_file: bool,
         expected: tuple[int, str] | None = None) -> None:
    """Store one file and add it to the job's xml report; failures fail the job, not the pilot."""
    # a file the job names no GUID for gets a lower-case uuid4, as panda-server makes its GUIDs (the log's,
    # in its setupper), so one job's files share one case in its filestable4; Pilot 3 upper-cases its own
    guid = spec.guid or str(uuid.uuid4())
    # a payload's file must stay inside the job dir (no symlink out); the log tarball is the pilot's own
    staged = _store(ctx, run, spec, src, activity, guid=guid, within=run.workdir if payload_file else None,
                    expected=expected)
    run.xml[spec.lfn] = {"guid": guid, "fsize": staged.fsize, "adler32": staged.adler32,
                         "surl": staged.surl, "endpoint": staged.endpoint}
    # an output's entry is saved durably at once (a crash must not store it twice); the log's goes with the
    # durable save before the final update, which follows it directly (a crash in between stores it again)
    if payload_file:
        persist(ctx, run, durable=True)
    ctx.log.info("file staged out", panda_id=run.panda_id, lfn=spec.lfn, surl=staged.surl,
                 fsize=staged.fsize, adler32=staged.adler32)
    failpoint("stageout_file")


def stage_outputs(ctx: Context, run: JobRun) -> None:
    """Store every output of a finished payload; the first failure fails the job."""
    assert run.job is not None and run.workdir is not None
    for spec in run.job.outputs:
        if spec.lfn in run.xml:
            continue  # stored before (a recovered job)
        if ctx.signals.first is not None:
            _stopped_by_signal(ctx, run, ctx.signals.first)
            return
        if _out_of_time(ctx, run, spec):
            return
        heartbeat_if_due(ctx, run)
        try:
            _put(ctx, run, spec, run.workdir / spec.lfn, "pw", payload_file=True)
        except Interrupted:
            _stopped_by_signal(ctx, run, ctx.signals.first)
            return
        except PilotFailure as exc:
            ctx.log.warning("stage-out failed", panda_id=run.panda_id, lfn=spec.lfn, error=exc.error.name,
                            diag=exc.diag)
            run.fail(exc.error, exc.diag)


def _out_of_time(ctx: Context, run: JobRun, spec: FileSpec) -> bool:
    """Too little time left to store this output, then the log and the final update: report what is stored.

    Needed: the file's size at --stageout-rate, plus STOPPING_COPY_SECONDS for the log and
    FINAL_UPDATE_SECONDS for the report. Short of it the job fails REACHEDMAXTIME before the
    batch system's kill, saying how many outputs were stored.
    """
    assert run.job is not None and run.workdir is not None
    if ctx.clock is None:
        return False
    try:
        size = (run.workdir / spec.lfn).stat().st_size
    except OSError:
        size = 0
    need = size / max(1.0, ctx.setting("stageout_rate")) + STOPPING_COPY_SECONDS + FINAL_UPDATE_SECONDS
    left = ctx.clock.left()
    if left >= need:
        return False
    stored = sum(1 for s in run.job.outputs if s.lfn in run.xml)
    run.fail(PilotError.REACHEDMAXTIME, f"stage-out stopped before {spec.lfn}: {stored} of {len(run.job.outputs)} "
             f"outputs stored, {left:.0f} s left of the slot, {need:.0f} s needed")
    ctx.log.warning("stage-out out of time", panda_id=run.panda_id, lfn=spec.lfn, seconds_left=round(left, 1),
                    needed=round(need, 1), stored=stored, clock=ctx.clock.source)
    return True


def _stopped_by_signal(ctx: Context, run: JobRun, signum: int | None) -> None:
    """Fail a job whose stage-out a signal cut short, saying how far it got."""
    assert run.job is not None
    name = name_of(signum) if signum is not None else "a signal"
    stored = sum(1 for spec in run.job.outputs if spec.lfn in run.xml)
    run.fail(SIGNAL_ERRORS.get(name, PilotError.KILLSIGNAL),
             f"stage-out stopped by {name}: {stored} of {len(run.job.outputs)} outputs stored")
    ctx.log.warning("stage-out stopped by a signal", panda_id=run.panda_id, signal=name, stored=stored,
                    outputs=len(run.job.outputs))


def stage_log(ctx: Context, run: JobRun, origin: Path | None = None) -> None:
    """Tar the job dir (without inputs and outputs) with the job's part of pilot.log and its transitions; store it.

    ``origin`` is the pilot dir whose pilot.log and transition log go in: this
    pilot's, or a dead pilot's when its job is recovered.
    """
    assert ctx.pilot_dir is not None
    origin = origin or ctx.pilot_dir
    log = run.job.log if run.job is not None else run.identity.log
    if log.lfn in run.xml:
        return  # stored before (a recovered job)
    workdir = run.workdir or ctx.pilot_dir / f"PanDA_Pilot-{run.panda_id}"
    workdir.mkdir(exist_ok=True)
    # as Pilot 3: neither inputs nor outputs go into the log (outputs are stored on their own)
    files = [*run.job.inputs, *run.job.outputs] if run.job is not None else []
    excluded = {f.lfn for f in files}
    extra = job_log_files(ctx, run, origin)
    heartbeat_if_due(ctx, run)
    tarball = ctx.pilot_dir / log.lfn
    try:
        _, summed = make_log_tarball_summed(workdir, tarball, excluded, extra)
        _put(ctx, run, log, tarball, "pl", payload_file=False, expected=summed)
    except PilotFailure as exc:
        ctx.log.warning("log stage-out failed", panda_id=run.panda_id, error=exc.error.name, diag=exc.diag)
        run.fail(exc.error, exc.diag)
    finally:
        tarball.unlink(missing_ok=True)
        for path, _name in extra:
            path.unlink(missing_ok=True)


def write_output_list(ctx: Context, run: JobRun) -> None:
    """ARC/NorduGrid's ``output.list``: ``<lfn> <surl>:checksumtype=adler32:checksumvalue=<v>`` per file."""
    if ctx.args.output_dir is None or not run.xml:
        return
    ctx.args.output_dir.mkdir(parents=True, exist_ok=True)
    lines = [f"{lfn} {entry['surl']}:checksumtype=adler32:checksumvalue={entry['adler32']}\n"
             for lfn, entry in sorted(run.xml.items())]
    with open(ctx.args.output_dir / "output.list", "a", encoding="utf-8") as f:
        f.writelines(lines)


def _fast_failures(ctx: Context, run: JobRun) -> int:
    """Count jobs in a row that failed within the black-hole window; a success resets it."""
    ran_for = (run.end_time or time.time()) - run.start_time
    limit = ctx.thresholds.blackhole_seconds if ctx.thresholds else 60.0
    return ctx.fast_failures + 1 if run.state == "failed" and ran_for < limit else 0


def finish_job(ctx: Context, run: JobRun, with_outputs: bool, within: float | None = None) -> Path:
    """Stage out, write the final report, send it (within ``within`` s), release the job.

    The report is on disk before it is sent, so a pilot killed during the
    send still leaves the outcome behind; an undelivered one is marked pending.
    """
    started = time.monotonic()
    if with_outputs and run.state != "failed":
        stage_outputs(ctx, run)
    stage_log(ctx, run)
    write_output_list(ctx, run)
    run.timings["stageout"] = time.monotonic() - started
    run.end_time = time.time()
    run.final_pending = True
    report = write_final_report(ctx, run)
    run.final_fields = update_fields(ctx, run, run.state, final=True)
    persist(ctx, run, durable=True)  # the outcome and its undelivered update: recoverable from here on
    failpoint("final_update")
    deliver(ctx, run, within)
    ctx.log.info("job ended", panda_id=run.panda_id, state=run.state,
                 error=run.error.name if run.error else None, diag=run.diag, report=str(report))
    ctx.jobs_run.append(run.panda_id)
    ctx.fast_failures = _fast_failures(ctx, run)
    ctx.job = None
    return report
