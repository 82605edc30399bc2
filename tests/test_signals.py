"""Signals sent to a real pilot process in each state it can be observed in.

RUNNING is observable through a payload that waits, and QUEUEDATA through a
queuedata source that is a FIFO, which keeps the pilot's read blocked until
the test writes into it (as a slow file system would). GETJOB refuses a job
file that is not a regular file, so it cannot be held that way.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from fsm_pilot.replay import problems
from tests.pilotrun import Launch, all_gone, job_def, make_launch, start_pilot, stop, wait_for

#: A payload tree that resists: a child ignoring SIGTERM, one in its own session, one double-forked.
STUBBORN = ("-c 'echo $$ > pids; sleep 300 & echo $! >> pids; "
            "(trap \"\" TERM; exec sleep 301) & echo $! >> pids; "
            "setsid sleep 302 & echo $! >> pids; "
            "( sleep 303 & echo $! >> pids ) ; touch started; wait'")


def _job_file(launch: Launch, name: str) -> Path | None:
    pilot_dir = launch.pilot_dir()
    found = sorted(pilot_dir.glob(f"PanDA_Pilot-*/{name}")) if pilot_dir else []
    return found[-1] if found else None


def _payload_pids(launch: Launch) -> list[int]:
    pids_file = wait_for(lambda: _job_file(launch, "started") and _job_file(launch, "pids"), what="payload")
    pids = [int(x) for x in pids_file.read_text().split()]
    assert len(pids) == 5
    return pids



@pytest.mark.parametrize(("signum", "exit_code", "job_error"), [
    (signal.SIGTERM, 143, 1201),
    (signal.SIGINT, 130, 1208),
    (signal.SIGQUIT, 131, 1202),
])  # SIGUSR1 is a warning when the clock is known (this queue's maxtime): tests/test_drain.py
def test_signal_while_running_kills_the_tree_and_reports_the_job(
        tmp_path: Path, signum: int, exit_code: int, job_error: int) -> None:
    launch = make_launch(tmp_path, [job_def(31, STUBBORN, ("never.txt",))])
    proc = start_pilot(launch)
    pids = _payload_pids(launch)
    code, err = stop(proc, signum)
    assert code == exit_code, err
    assert "Traceback" not in err
    wait_for(lambda: all_gone(pids), timeout=5, what="payload tree gone")
    records = launch.records()
    assert problems(records) == []
    assert [(r["source"], r["event"], r["dest"]) for r in records[-2:]] == [
        ("RUNNING", "abort", "ABORTING"), ("ABORTING", "abort", "ABORTED")]
    report = launch.reports()[31]
    assert (report["state"], report["pilotErrorCode"]) == ("failed", job_error)
    assert "job.31.log.tgz" in json.loads(report["xml"])


def test_signal_during_second_job_keeps_the_first_jobs_outcome(tmp_path: Path) -> None:
    jobs = [job_def(1, "-c 'echo one > a.txt'", ("a.txt",)), job_def(2, STUBBORN)]
    launch = make_launch(tmp_path, jobs, timefloor=10)
    proc = start_pilot(launch)
    pids = _payload_pids(launch)
    code, err = stop(proc)
    assert code == 143, err
    wait_for(lambda: all_gone(pids), timeout=5, what="payload tree gone")
    reports = launch.reports()
    assert (reports[1]["state"], reports[2]["state"], reports[2]["pilotErrorCode"]) == ("finished", "failed", 1201)
    assert problems(launch.records()) == []


def _feed_fifo(fifo: Path, data: bytes) -> None:
    """Write into the FIFO once the pilot has opened it for reading."""
    def try_open() -> int | None:
        try:
            return os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:
            return None
    fd = wait_for(try_open, what="the pilot to open the FIFO")
    os.set_blocking(fd, True)
    os.write(fd, data)
    os.close(fd)


def test_sigterm_in_a_blocked_queuedata_read_aborts_at_the_next_safe_point(tmp_path: Path) -> None:
    state = "QUEUEDATA"
    launch = make_launch(tmp_path, [job_def(5, "-c true")])
    source = launch.dir / "queuedata.json"
    content = source.read_bytes()
    source.unlink()
    os.mkfifo(source)
    proc = start_pilot(launch)
    wait_for(lambda: launch.in_state(state), what=f"pilot in {state}")
    time.sleep(0.05)  # not a race: the FIFO keeps the pilot in the state until it is fed
    proc.send_signal(signal.SIGTERM)
    _feed_fifo(source, content)
    code, err = stop(proc)
    assert code == 143, err
    records = launch.records()
    assert problems(records) == []
    assert (records[-1]["source"], records[-1]["event"], records[-1]["dest"]) == (state, "abort", "ABORTED")
    assert launch.reports() == {}
