"""The driver in-process: a step that raises ends in a terminal state with 70, never a traceback.

A step cannot be made to raise on demand through the pilot's inputs (that
would be a bug we fix), so these tests replace one step with a raising one
via monkeypatch; everything else (files, machine, transition log) is real.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from fsm_pilot import config, driver, logsetup
from fsm_pilot.context import Context, Outcome, RunArgs
from fsm_pilot.replay import problems
from fsm_pilot.signals import SignalState
from fsm_pilot.translog import TransitionLog, read_records
from tests.pilotrun import job_def, make_launch


def _context(tmp_path: Path, jobs: list[dict[str, str]]) -> Context:
    launch = make_launch(tmp_path, jobs)
    args = RunArgs(queue="TEST_QUEUE", workdir=launch.dir, launch_dir=launch.dir, no_proxy_check=True,
                   settings={"min_free_disk": 1.0})
    return Context(args=args, env={"PATH": "/usr/bin:/bin"}, log=logsetup.configure(), translog=TransitionLog("t"),
                   signals=SignalState(), settings=config.resolve(args.settings, {}, {}), pilot_id="t")


def _boom(ctx: Context) -> Outcome:
    raise RuntimeError("boom")


def test_exception_before_a_job_ends_in_failed_with_70(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("fsm_pilot.states.checks.step", _boom)
    ctx = _context(tmp_path, [job_def(1, "-c true")])
    assert driver.run(ctx) == 70
    assert ctx.translog.path is not None
    records = read_records(ctx.translog.path)
    assert problems(records) == []
    assert (records[-1]["source"], records[-1]["dest"], records[-1]["reason"]["error"]) == ("CHECKS", "FAILED", 1301)


def test_exception_while_holding_a_job_reports_it_and_keeps_its_log(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("fsm_pilot.states.running.step", _boom)
    ctx = _context(tmp_path, [job_def(8, "-c true")])
    assert driver.run(ctx) == 70
    assert ctx.pilot_dir is not None
    records = read_records(ctx.pilot_dir / "transitions.jsonl")
    assert problems(records) == []
    assert [r["dest"] for r in records[-2:]] == ["ABORTING", "FAILED"]
    report = json.loads((ctx.pilot_dir / "final_update_8.json").read_text())
    assert (report["state"], report["pilotErrorCode"]) == ("failed", 1301)
    assert "RuntimeError('boom')" in report["pilotErrorDiag"]
    assert "job.8.log.tgz" in json.loads(report["xml"])


def test_signal_recorded_before_a_step_aborts_without_running_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("fsm_pilot.states.queuedata.step", _boom)
    ctx = _context(tmp_path, [job_def(1, "-c true")])
    real_init = __import__("fsm_pilot.states.init", fromlist=["step"]).step

    def init_then_signal(c: Context) -> Outcome:
        outcome: Outcome = real_init(c)
        c.signals.handler(signal.SIGTERM, None)  # as if SIGTERM arrived during INIT's step
        return outcome

    monkeypatch.setattr("fsm_pilot.states.init.step", init_then_signal)
    assert driver.run(ctx) == 143
    assert ctx.pilot_dir is not None
    records = read_records(ctx.pilot_dir / "transitions.jsonl")
    assert [(r["source"], r["event"], r["dest"]) for r in records] == [("INIT", "abort", "ABORTED")]
