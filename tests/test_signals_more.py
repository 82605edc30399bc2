"""SIGHUP and a second signal close behind the first (issue 9, item 2).

A pilot stopped by SIGHUP (a closed terminal, some batch systems) must abort
like it does for SIGTERM: the payload tree killed, the job reported failed
with KILLSIGNAL (1200: Pilot 3 has no code of its own for HUP), exit 129. A
second signal of any kind arriving right after the first must never cut the
abort short: the first signal decides the job's code and the exit code, and
the transition log ends in ABORTED.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from fsm_pilot.replay import problems
from tests.pilotrun import all_gone, job_def, make_launch, start_pilot, stop, wait_for
from tests.test_signals import STUBBORN, _payload_pids


def _ends_aborted(records: list[dict[str, object]]) -> bool:
    return [(r["source"], r["event"], r["dest"]) for r in records[-2:]] == [
        ("RUNNING", "abort", "ABORTING"), ("ABORTING", "abort", "ABORTED")]


def test_sighup_aborts_like_sigterm(tmp_path: Path) -> None:
    launch = make_launch(tmp_path, [job_def(41, STUBBORN)])
    proc = start_pilot(launch)
    pids = _payload_pids(launch)
    code, err = stop(proc, signal.SIGHUP)
    assert code == 129, err
    assert "Traceback" not in err
    wait_for(lambda: all_gone(pids), timeout=5, what="payload tree gone")
    records = launch.records()
    assert problems(records) == [] and _ends_aborted(records)
    report = launch.reports()[41]
    assert (report["state"], report["pilotErrorCode"]) == ("failed", 1200)


@pytest.mark.parametrize(("first", "second", "exit_code", "job_error"), [
    (signal.SIGTERM, signal.SIGTERM, 143, 1201),
    (signal.SIGTERM, signal.SIGHUP, 143, 1201),
    (signal.SIGQUIT, signal.SIGINT, 131, 1202),
    (signal.SIGINT, signal.SIGTERM, 130, 1208),
])
def test_second_signal_never_cuts_the_abort_short(tmp_path: Path, first: int, second: int, exit_code: int,
                                                  job_error: int) -> None:
    launch = make_launch(tmp_path, [job_def(42, STUBBORN)])
    proc = start_pilot(launch)
    pids = _payload_pids(launch)
    proc.send_signal(first)
    # the second arrives while the first is being acted on: the tree is being killed (sent back to back,
    # two pending signals would be delivered in signal-number order, so "first" would be ambiguous)
    wait_for(lambda: any(all_gone([p]) for p in pids), timeout=5, what="the abort under way")
    proc.send_signal(second)
    _, err = proc.communicate(timeout=20)
    code = proc.returncode
    assert code == exit_code, err
    assert "Traceback" not in err
    wait_for(lambda: all_gone(pids), timeout=5, what="payload tree gone")
    records = launch.records()
    assert problems(records) == [] and _ends_aborted(records)
    report = launch.reports()[42]
    assert (report["state"], report["pilotErrorCode"]) == ("failed", job_error)


def test_sigint_in_the_first_moments_never_ends_in_a_pilot_traceback(tmp_path: Path) -> None:
    """SIGINT swept over a pilot's first 60 ms: recorded and acted on, or Python's own start-up ended.

    The pilot installs its handlers before it imports anything heavy (it used to
    import for ~200 ms first). Before the first line of pilot code runs, CPython
    ends on SIGINT the way it ends any program (at most a traceback of its own
    start-up frames, nothing created); under the production wrapper SIGINT is
    ignored at start, so not even that. The queuedata is a FIFO nobody writes,
    so the pilot cannot end on its own.
    """
    for step in range(21):
        launch = make_launch(tmp_path / str(step), [job_def(7, "-c true")])
        source = launch.dir / "queuedata.json"
        source.unlink()
        os.mkfifo(source)
        proc = start_pilot(launch)
        time.sleep(step * 0.003)  # a sweep of moments, not a wait for a condition: every moment must pass
        code, err = stop(proc, signal.SIGINT)
        frames = [line for line in err.splitlines() if line.strip().startswith('File "')]
        if code == 130:
            assert "Traceback" not in err, (step, err)
        else:  # CPython itself was still starting: killed by SIGINT, or a traceback of its own frames only
            assert not any("fsm_pilot" in f for f in frames), (step, code, err)
            assert code == -signal.SIGINT or err.rstrip().endswith("KeyboardInterrupt"), (step, code, err)
