"""A signal during stage-out (issue 9, item 9): what is reported is what was stored.

Policy (fsm_pilot/finish.py, README "Signals"): after a signal no new output
copy starts. If every output was already stored the job is reported
``finished`` (its work is done and in storage); otherwise it fails with the
signal's code and the diag says how many outputs were stored. The log is
stored either way, the pilot exits 128 + N, and its transition log ends with
STAGEOUT -abort-> ABORTING -abort-> ABORTED. The pilot is frozen at a
failpoint in stage-out, signalled, then let go, so each case is exact.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from fsm_pilot.replay import problems
from tests.pilotrun import wait_for
from tests.pilotserver import Dispatcher, job_spec
from tests.test_pilot_server import _launch, pilot
from tests.test_recovery import _check_outputs, _finals, _job, _stopped


@pytest.mark.parametrize(("failpoint", "expected"), [
    ("stageout_start", ("failed", 1201, "stage-out stopped by SIGTERM: 0 of 2 outputs stored")),
    ("stageout_file:1", ("failed", 1201, "stage-out stopped by SIGTERM: 1 of 2 outputs stored")),
    ("stageout_file:2", ("finished", 0, "")),
])
def test_signal_during_stageout(tmp_path: Path, dispatcher: Dispatcher, failpoint: str,
                                expected: tuple[str, int, str]) -> None:
    state, code, diag = expected
    panda_id = _job(dispatcher)
    launch = _launch(tmp_path / "p")
    proc = pilot(launch, dispatcher.url, "--timefloor", "0", env={"FSM_PILOT_FAILPOINT": failpoint})
    wait_for(lambda: _stopped(proc) or proc.poll() is not None, what=f"the pilot frozen at {failpoint}")
    proc.send_signal(signal.SIGTERM)
    proc.send_signal(signal.SIGCONT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err
    finals = _finals(dispatcher, panda_id)
    assert [f["pilot_error_code"] for f in finals] == [code]
    assert dispatcher.status(panda_id)[panda_id] == state
    assert str(finals[0].get("pilot_error_diag") or "") == diag, finals[0]
    if state == "finished":
        _check_outputs(dispatcher, finals[0])
    records = launch.records()
    assert problems(records) == []
    assert [(r["source"], r["event"], r["dest"]) for r in records[-2:]] == [
        ("STAGEOUT", "abort", "ABORTING"), ("ABORTING", "abort", "ABORTED")]


def test_a_second_signal_before_aborting_runs_does_not_skip_the_report(tmp_path: Path, dispatcher: Dispatcher) -> None:
    """A batch system's group SIGTERM and the wrapper's forwarded one: the held job is still reported."""
    [panda_id] = dispatcher.submit(job_spec("-c 'sleep 300'"))
    launch = _launch(tmp_path / "p")
    proc = pilot(launch, dispatcher.url, env={"FSM_PILOT_FAILPOINT": "entered_ABORTING"})
    wait_for(lambda: dispatcher.status(panda_id)[panda_id] == "running", what="job running")
    proc.send_signal(signal.SIGTERM)
    wait_for(lambda: _stopped(proc) or proc.poll() is not None, what="the pilot frozen on entering ABORTING")
    proc.send_signal(signal.SIGTERM)  # pending while frozen: delivered before the ABORTING step runs
    proc.send_signal(signal.SIGCONT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err
    assert [f["pilot_error_code"] for f in _finals(dispatcher, panda_id)] == [1201], err
    assert dispatcher.status(panda_id)[panda_id] == "failed"
