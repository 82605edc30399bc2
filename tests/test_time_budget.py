"""The pilot's clock from the batch system, and the time budget spent by state (issue 13, item 4).

Slurm is not installed here: ``squeue`` is a script on PATH answering as squeue does
and counting its calls (a real subprocess, run by the real pilot as it would run squeue).
Budgets are made exact without timing: a clock far shorter than what a step needs.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
from pathlib import Path

from fsm_pilot.replay import problems
from tests.pilotrun import Launch, job_def, make_launch, pilot_cmd, started, wait_for
from tests.test_drain import GATED, _logged, _payload_pid


def _slurm_env(tmp_path: Path, left: str) -> dict[str, str]:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    script = bindir / "squeue"
    script.write_text(f"#!/bin/sh\necho \"$@\" >> {tmp_path / 'squeue.calls'}\necho '{left}'\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("FSM_PILOT_", "SLURM_"))}
    return {**clean, "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}", "SLURM_JOB_ID": "777"}


def _run(launch: Launch, env: dict[str, str], *extra: str) -> subprocess.Popen[str]:
    return started(subprocess.Popen(pilot_cmd(launch, *extra), cwd=launch.dir, env=env, text=True,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE))


def test_slurm_time_left_decides_whether_a_job_is_taken(tmp_path: Path) -> None:
    """squeue says 5 s are left: less than the 180 s margin, so the first job is never taken."""
    launch = make_launch(tmp_path, [job_def(1, "-c 'true'")])
    env = _slurm_env(tmp_path, "0:05")
    proc = _run(launch, env)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    records = launch.records()
    assert problems(records) == []
    queuedata = next(r for r in records if r["source"] == "QUEUEDATA")
    assert "clock: slurm: squeue -j 777 %L = 0:05" in queuedata["reason"]["text"]
    assert "SIGUSR1 is a warning" in queuedata["reason"]["text"]
    [refused] = [g for g in records[-1]["guards"] if not g["allowed"]]
    assert refused["guard"] == "pilot_lifetime" and refused["inputs"]["lifetime_left"] <= 5
    assert (records[-1]["source"], records[-1]["dest"]) == ("CLEANUP", "EXIT") and launch.reports() == {}
    assert (tmp_path / "squeue.calls").read_text().split() == ["-h", "-j", "777", "-o", "%L"]  # asked once


def _next_beat(beat: Path) -> None:
    seen = beat.stat().st_mtime_ns
    wait_for(lambda: beat.stat().st_mtime_ns != seen, what="the next heartbeat")


def test_squeue_is_asked_again_on_sigusr1_and_never_per_tick(tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    launch = make_launch(tmp_path, [job_def(1, GATED.format(gate=gate), ("out.txt",))])
    proc = _run(launch, _slurm_env(tmp_path, "1:00:00"), "--check-interval", "0.2", "--heartbeat-interval", "0.2")
    _payload_pid(launch)
    beat = wait_for(lambda: next(iter(launch.dir.glob("Panda_Pilot_*/heartbeat.json")), None), what="a heartbeat")
    for _ in range(3):  # three more heartbeats (the watch ticked): still one squeue
        _next_beat(beat)
    assert len((tmp_path / "squeue.calls").read_text().splitlines()) == 1
    proc.send_signal(signal.SIGUSR1)
    wait_for(lambda: _logged(launch, "warning signal: no more jobs"), what="the warning acted on")
    gate.touch()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert len((tmp_path / "squeue.calls").read_text().splitlines()) == 2
    assert launch.reports()[1]["state"] == "finished"


def test_stageout_reports_what_is_stored_when_the_next_copy_cannot_finish(tmp_path: Path) -> None:
    """-l 600 and 1 byte/s: a 10-byte output fits (21 s), a 1000-byte one (1011 s) does not."""
    body = "-c 'head -c 10 /dev/zero > one.dat; head -c 1000 /dev/zero > two.dat'"
    launch = make_launch(tmp_path, [job_def(1, body, ("one.dat", "two.dat"))])
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("FSM_PILOT_", "SLURM_"))}
    proc = _run(launch, clean, "-l", "600", "--lifetime-margin", "5", "--stageout-rate", "1")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    report = launch.reports()[1]
    assert (report["state"], report["pilotErrorCode"]) == ("failed", 1213), report
    assert report["pilotErrorDiag"].startswith("stage-out stopped before two.dat: 1 of 2 outputs stored")
    assert "one.dat" in report["xml"] and "two.dat" not in report["xml"]
    assert (launch.storage / "test").exists()


def test_running_reserve_grows_with_the_outputs_written(tmp_path: Path) -> None:
    """-l 1200, margin 5, 100 bytes/s: 1 MB written leaves ~10500 s to reserve, so the payload is stopped
    at the next outputs check (it would otherwise wait for its gate until 1195 s after the start)."""
    gate = tmp_path / "gate"
    body = f"-c 'head -c 1048576 /dev/zero > big.dat; while [ ! -e {gate} ]; do sleep 0.05; done'"
    launch = make_launch(tmp_path, [job_def(1, body, ("big.dat",))])
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("FSM_PILOT_", "SLURM_"))}
    proc = _run(launch, clean, "-l", "1200", "--lifetime-margin", "5", "--stageout-rate", "100",
                "--check-interval", "0.2", "--kill-grace", "0.5")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    report = launch.reports()[1]
    assert (report["state"], report["pilotErrorCode"]) == ("failed", 1213), report
    assert _logged(launch, "payload deadline")
