"""Recovery: finish the jobs of pilots that died on this node (deferred stage-out, Pilot 3's seed).

A job is recovered when its pilot dir's owner is provably dead (fsm_pilot.
liveness) and its ``jobstate.json`` is not done. Its payload, if still alive,
is the dead pilot's own process tree: it is identified by the recorded pid,
start time, session and mark, and killed (nothing else is ever signalled). Then the
outcome is settled: a job that died before its outcome was decided fails with
the code of how it died (the recorded signal, else KILLSIGNAL); a finished
job's remaining outputs are stored and verified; the log is stored; the final
update is sent (``alreadydone`` ends it). All within a time budget.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fsm_pilot.context import Context, JobRun
from fsm_pilot.errors import PilotError, PilotFailure
from fsm_pilot.job import job_identity, parse_job
from fsm_pilot.jobstate import error_of, load, persist
from fsm_pilot.liveness import boot_id, owner_alive
from fsm_pilot.payload.ownership import members
from fsm_pilot.payload.subreaper import DEAD_STATES, read_stat, scan_procs, send_signal
from fsm_pilot.reporting import update_fields

PILOT_DIR_PREFIXES = ("Panda_Pilot_", "PanDA_Pilot3_")
#: How long RECOVERY keeps hunting a dead pilot's payload processes (fork loops) before it goes on.
KILL_SECONDS = 2.0


@dataclass(frozen=True)
class Recovered:
    """What recovery did with one job."""

    panda_id: int
    outcome: str  # "delivered", "pending", "refused" (by the server, for good), or why it was left alone
    state: str = ""
    error: int | None = None


def orphaned_jobs(workdir: Path, own: Path | None) -> list[tuple[Path, dict[str, Any]]]:
    """Job dirs with an undone state in pilot dirs whose owner is dead (no symlink is followed)."""
    found = []
    for pilot_dir in sorted(_dirs(workdir)):
        if not pilot_dir.name.startswith(PILOT_DIR_PREFIXES) or pilot_dir == own:
            continue
        if owner_alive(pilot_dir) is not False:
            continue  # alive, or no lock file to prove it dead: never touched
        for job_dir in sorted(_dirs(pilot_dir)):
            state = load(job_dir) if job_dir.name.startswith("PanDA_Pilot-") else None
            if state is not None and not state.get("done"):
                found.append((job_dir, state))
    return found


def _dirs(parent: Path) -> list[Path]:
    try:
        return [Path(e.path) for e in os.scandir(parent) if e.is_dir(follow_symlinks=False)]
    except OSError:
        return []


def kill_orphaned_payload(identity: Mapping[str, Any] | None) -> list[int]:
    """SIGKILL everything a dead pilot's payload left behind, and nothing else.

    Members are proven as in fsm_pilot.payload.ownership: the recorded
    payload and its descendants, its session (only while the session id can
    still be the payload's: the leader alive with its recorded start time, or
    its pid unused), and every process carrying the payload's mark in its
    environment, e.g. a child that called ``setsid`` and was reparented away.
    Rounds of scan-and-kill repeat until none is left (a fork loop), bounded.
    """
    if not identity or identity.get("boot_id", boot_id()) != boot_id():
        return []  # another boot: nothing of that payload can be alive
    try:
        root = (int(identity["pid"]), int(identity["start_ticks"]))
    except (KeyError, TypeError, ValueError):
        return []
    leader = read_stat(root[0])
    sid = identity.get("sid") if leader is None or leader.key == root else None
    mark = identity.get("mark")
    killed: set[int] = set()
    deadline = time.monotonic() + KILL_SECONDS
    while time.monotonic() < deadline:
        me = os.getpid()
        table = [s for s in scan_procs() if s.start_ticks >= root[1] and s.pid != me]
        found = members(table, root, sid if isinstance(sid, int) else None, mark if isinstance(mark, str) else None)
        live = [key for key, stat in found.items() if stat.state not in DEAD_STATES]
        if not live:
            break
        killed.update(key[0] for key in live if send_signal(key, signal.SIGKILL))
        time.sleep(0.005)  # let the kills land before the next scan looks for late forks
    return sorted(killed)


def restore(job_dir: Path, state: dict[str, Any]) -> JobRun:
    """The JobRun a dead pilot held, rebuilt from its state file."""
    record = dict(state.get("record") or {})
    run = JobRun(identity=job_identity(record), record=record, workdir=job_dir)
    try:
        run.job = parse_job(record)
    except PilotFailure:
        run.job = None  # it was rejected: only its log goes out
    run.state, run.diag = str(state.get("state") or "starting"), str(state.get("diag") or "")
    run.error, run.trans_exit_code = error_of(state), state.get("trans_exit_code")
    run.start_time = float(state.get("start_time") or time.time())
    run.end_time = state.get("end_time")
    run.timings = dict(state.get("timings") or {})
    run.xml = dict(state.get("xml") or {})
    run.stop_reporting, run.keep_workdir = bool(state.get("stop_reporting")), bool(state.get("keep_workdir"))
    return run


def settle(ctx: Context, run: JobRun, state: dict[str, Any], deadline: float) -> Recovered:
    """Decide, store and report the outcome of one dead pilot's job."""
    from fsm_pilot.finish import stage_log, stage_outputs  # stage-out: loaded only when a job is recovered
    from fsm_pilot.outbox import deliver
    from fsm_pilot.report import write_final_report

    killed = kill_orphaned_payload(state.get("payload"))
    where = str(state.get("machine_state"))
    if run.state in ("starting", "running"):
        run.fail(run.error or PilotError.KILLSIGNAL, f"the pilot died in {where}; recovered by {ctx.pilot_id}")
    persist(ctx, run, machine_state="RECOVERY", durable=True)
    if run.state == "finished" and run.job is not None:
        stage_outputs(ctx, run)
    stage_log(ctx, run, origin=run.workdir.parent if run.workdir else None)
    run.end_time = run.end_time or time.time()
    run.final_pending = True
    write_final_report(ctx, run)
    run.final_fields = update_fields(ctx, run, run.state, final=True)
    delivered = deliver(ctx, run, max(1.0, deadline - time.monotonic())) and run.refused is None
    outcome = "delivered" if delivered else ("refused" if run.refused is not None else "pending")
    ctx.log.info("job recovered", panda_id=run.panda_id, was_in=where, state=run.state, killed_payload=killed,
                 error=run.error.name if run.error else None, outcome=outcome, refused=run.refused)
    return Recovered(run.panda_id, outcome, run.state,
                     int(run.error) if run.error else None)


def recover(ctx: Context, budget: float) -> list[Recovered]:
    """Recover every orphaned job this pilot can within ``budget`` seconds."""
    deadline = time.monotonic() + budget
    done: list[Recovered] = []
    for job_dir, state in orphaned_jobs(ctx.args.workdir, ctx.pilot_dir):
        panda_id = int(state.get("panda_id") or 0)
        if time.monotonic() >= deadline:
            done.append(Recovered(panda_id, "left for later: the recovery time budget is spent"))
            continue
        try:
            done.append(settle(ctx, restore(job_dir, state), state, deadline))
        except (PilotFailure, OSError) as exc:
            ctx.log.warning("job not recoverable now", panda_id=panda_id, job_dir=str(job_dir), error=repr(exc))
            done.append(Recovered(panda_id, f"not recoverable now: {exc}"[:200]))
    return done
