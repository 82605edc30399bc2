"""Drain by file and by SIGUSR1, on real pilots with real signals and files (issue 13, items 3 and 5).

The fixture queue has ``maxtime`` 3600, so the pilot knows its clock and SIGUSR1 is a
warning; with ``maxtime`` 0 and no -l it does not, and SIGUSR1 stops it as before.
Payloads wait on a gate file the test creates, so each case is exact without timing.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from fsm_pilot.replay import problems
from tests.pilotrun import Launch, all_gone, job_def, make_launch, pilot_cmd, started, wait_for
from tests.pilotserver import Dispatcher
from tests.test_pilot_server import _launch, pilot

GATED = "-c 'echo $$ > pid; while [ ! -e {gate} ]; do sleep 0.05; done; echo done > out.txt'"


def _start(launch: Launch, *extra: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FSM_PILOT_")}
    return started(subprocess.Popen(pilot_cmd(launch, *extra), cwd=launch.dir, env={**clean, **(env or {})},
                                    text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE))


def _two_jobs(tmp_path: Path, **queue: Any) -> tuple[Launch, Path]:
    gate = tmp_path / "gate"
    jobs = [job_def(1, GATED.format(gate=gate), ("out.txt",)), job_def(2, "-c 'echo two > out.txt'", ("out.txt",))]
    return make_launch(tmp_path, jobs, timefloor=600, **queue), gate  # timefloor: it would take job 2


def _payload_pid(launch: Launch) -> int:
    pilot_dir = wait_for(launch.pilot_dir, what="pilot dir")
    pid_file = wait_for(lambda: next(iter(pilot_dir.glob("PanDA_Pilot-1/pid")), None), what="payload started")
    return int(wait_for(lambda: pid_file.read_text().strip(), what="payload pid"))


def _logged(launch: Launch, event: str) -> bool:
    pilot_dir = launch.pilot_dir()
    log = pilot_dir / "pilot.log" if pilot_dir else None
    return log is not None and log.exists() and event in log.read_text()


def _drained(launch: Launch, why: str) -> dict[str, Any]:
    records = launch.records()
    assert problems(records) == []
    last = records[-1]
    assert (last["event"], last["dest"], last["reason"]["text"]) == ("drain", "EXIT", f"drained: {why}"), last
    return last


def test_sigusr1_while_running_lets_the_job_finish_then_the_pilot_drains(tmp_path: Path) -> None:
    launch, gate = _two_jobs(tmp_path)
    proc = _start(launch)
    payload = _payload_pid(launch)
    proc.send_signal(signal.SIGUSR1)
    wait_for(lambda: _logged(launch, "warning signal: no more jobs"), what="the warning acted on")
    assert proc.poll() is None and not all_gone([payload])  # neither the pilot nor its payload stopped
    gate.touch()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    reports = launch.reports()
    assert sorted(reports) == [1] and reports[1]["state"] == "finished"  # job 2 was never taken
    last = _drained(launch, "SIGUSR1")
    assert last["source"] == "STAGEOUT"


def test_sigusr1_with_too_little_time_stops_the_payload_before_the_slot_ends(tmp_path: Path) -> None:
    """-l 20, margin 10: the payload may run until 10 s after the start, then its job fails REACHEDMAXTIME."""
    launch, _ = _two_jobs(tmp_path)
    proc = _start(launch, "-l", "20", "--lifetime-margin", "10", "--kill-grace", "0.5")
    payload = _payload_pid(launch)
    proc.send_signal(signal.SIGUSR1)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    wait_for(lambda: all_gone([payload]), timeout=5, what="payload gone")
    report = launch.reports()[1]
    assert (report["state"], report["pilotErrorCode"]) == ("failed", 1213), report
    assert "RUNNING -payload_done-> STAGEOUT" in report["pilotLog"]  # the flight record rides along
    _drained(launch, "SIGUSR1")


def test_sigusr1_without_a_known_clock_stops_the_pilot_as_before(tmp_path: Path) -> None:
    launch, _ = _two_jobs(tmp_path, maxtime=0)  # no batch system, no maxtime, no -l: the default lifetime
    proc = _start(launch)
    payload = _payload_pid(launch)
    proc.send_signal(signal.SIGUSR1)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 138, err
    wait_for(lambda: all_gone([payload]), timeout=5, what="payload gone")
    assert launch.reports()[1]["pilotErrorCode"] == 1207
    assert [(r["source"], r["event"], r["dest"]) for r in launch.records()[-2:]] == [
        ("RUNNING", "abort", "ABORTING"), ("ABORTING", "abort", "ABORTED")]


def test_sigusr1_outside_a_job_ends_the_pilot_at_once(tmp_path: Path, dispatcher: Dispatcher) -> None:
    launch = _launch(tmp_path / "p")
    proc = pilot(launch, dispatcher.url, "--getjob-wait", "300", "-v", "5")  # no job: it would wait 20 min
    wait_for(lambda: launch.in_state("GETJOB") and _logged(launch, "no job from the server"),
             what="waiting to ask for a job again")
    proc.send_signal(signal.SIGUSR1)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert _drained(launch, "SIGUSR1")["source"] == "GETJOB"


@pytest.mark.parametrize("where", ["launch dir", "--drain-file", "FSM_PILOT_DRAIN_FILE"])
def test_drain_file_lets_the_job_finish_and_takes_no_more(tmp_path: Path, where: str) -> None:
    launch, gate = _two_jobs(tmp_path)
    drain = launch.dir / "stop_agent" if where == "launch dir" else tmp_path / "site" / "drain-now"
    extra = ("--drain-file", str(drain)) if where == "--drain-file" else ()
    env = {"FSM_PILOT_DRAIN_FILE": str(drain)} if where == "FSM_PILOT_DRAIN_FILE" else {}
    proc = _start(launch, *extra, env=env)
    _payload_pid(launch)
    drain.parent.mkdir(exist_ok=True)
    drain.touch()
    gate.touch()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    reports = launch.reports()
    assert sorted(reports) == [1] and reports[1]["state"] == "finished"
    assert reports[1]["pilotLog"] == ""  # a job that ended well carries no flight record
    assert _drained(launch, f"drain file {drain}")["source"] == "STAGEOUT"


def test_drain_file_present_at_start_takes_no_job(tmp_path: Path) -> None:
    launch, _ = _two_jobs(tmp_path)
    (launch.dir / "stop_agent").touch()
    proc = _start(launch)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert launch.reports() == {}
    assert _drained(launch, f"drain file {launch.dir / 'stop_agent'}")["source"] == "GETJOB"
