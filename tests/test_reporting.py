"""Server commands change what the pilot does next (the reply handling, in-process)."""

from __future__ import annotations

from pathlib import Path

from fsm_pilot import config, logsetup
from fsm_pilot.context import Context, JobRun, RunArgs
from fsm_pilot.job import job_identity
from fsm_pilot.reporting import act_on, heartbeat_interval
from fsm_pilot.signals import SignalState
from fsm_pilot.translog import TransitionLog


def _ctx(tmp_path: Path) -> tuple[Context, JobRun]:
    args = RunArgs(queue="Q", workdir=tmp_path, launch_dir=tmp_path)
    ctx = Context(args=args, env={}, log=logsetup.configure(), translog=TransitionLog("t"), signals=SignalState(),
                  settings=config.resolve({"heartbeat_interval": 300.0}, {}, {}), pilot_id="t")
    record: dict[str, object] = {"PandaID": "5", "logFile": "x.log.tgz"}
    return ctx, JobRun(identity=job_identity(record), record=record)


def test_debug_and_debugoff_change_the_heartbeat(tmp_path: Path) -> None:
    ctx, run = _ctx(tmp_path)
    assert heartbeat_interval(ctx) == 300
    act_on(ctx, run, ("debug",))
    assert heartbeat_interval(ctx) == 60
    act_on(ctx, run, ("debugoff",))
    assert heartbeat_interval(ctx) == 300


def test_kill_stop_reporting_and_nocleanup_commands(tmp_path: Path) -> None:
    ctx, run = _ctx(tmp_path)
    act_on(ctx, run, ("softkill", "nocleanup"))
    assert (run.kill_requested, run.stop_reporting, run.keep_workdir) == (False, False, True)
    act_on(ctx, run, ("debug", "tobekilled"))
    assert run.kill_requested and heartbeat_interval(ctx) == 60
    act_on(ctx, run, ("alreadydone",))
    assert run.stop_reporting
