"""The batch clock: what each batch system says about the slot's end, and which clock wins.

Slurm is not installed on this machine, so ``squeue`` is a script on PATH printing what
squeue prints (a real subprocess, run the way the pilot runs it); the job ad is a real file.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from fsm_pilot.batchclock import Reading, parse_slurm_left, read, read_job_ad, resolve, run_command


@pytest.mark.parametrize(("text", "seconds"), [
    ("59:58", 3598.0), ("1:00:00", 3600.0), ("2-03:04:05", 183845.0), ("0:05", 5.0), (" 12:00 \n", 720.0),
    ("UNLIMITED", None), ("INVALID", None), ("NOT_SET", None), ("", None), ("1:2:3:4", None),
])
def test_squeue_time_left_is_parsed(text: str, seconds: float | None) -> None:
    assert parse_slurm_left(text) == seconds


def _squeue(tmp_path: Path, output: str, code: int = 0) -> dict[str, str]:
    """A ``squeue`` on PATH that prints ``output`` and records its arguments."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    script = bindir / "squeue"
    script.write_text(f"#!/bin/sh\necho \"$@\" > {tmp_path / 'args'}\nprintf '{output}'\nexit {code}\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return {"PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}", "SLURM_JOB_ID": "4242"}


def test_slurm_end_time_from_the_environment_needs_no_subprocess(tmp_path: Path) -> None:
    env = {**_squeue(tmp_path, "9:99:99"), "SLURM_JOB_END_TIME": "1800000000"}
    assert read(env, started=0.0, now=1.0) == Reading(1800000000.0, "slurm: SLURM_JOB_END_TIME")
    assert not (tmp_path / "args").exists()


def test_slurm_time_left_from_squeue(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = _squeue(tmp_path, "1:00:00\\n")
    monkeypatch.setenv("PATH", env["PATH"])  # run_command looks the command up on the process's PATH
    reading = read(env, started=0.0, now=1000.0)
    assert reading is not None and reading.end_wall == 4600.0
    assert reading.source == "slurm: squeue -j 4242 %L = 1:00:00"
    assert (tmp_path / "args").read_text().split() == ["-h", "-j", "4242", "-o", "%L"]


@pytest.mark.parametrize(("output", "code"), [("UNLIMITED\\n", 0), ("", 1), ("slurm_load_jobs error\\n", 1)])
def test_squeue_saying_nothing_useful_leaves_the_pilot_its_own_clock(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, output: str, code: int) -> None:
    env = _squeue(tmp_path, output, code)
    monkeypatch.setenv("PATH", env["PATH"])
    assert read(env, started=0.0, now=1000.0) is None


def test_no_squeue_at_all_is_no_clock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing there
    assert run_command(["squeue"], 1.0) == ""
    assert read({"SLURM_JOB_ID": "1"}, started=0.0, now=0.0) is None


@pytest.mark.parametrize(("lines", "end", "name"), [
    (["BatchRuntime = 7200", "JobCurrentStartDate = 1000", "MaxWallTimeMins = 1"], 8200.0, "BatchRuntime"),
    (["maxwalltimemins = 60", "JobStartDate = 500"], 4100.0, "MaxWallTimeMins"),
    (['maxWallTime = "30"'], 100.0 + 1800, "maxWallTime"),  # no start in the ad: the pilot's start
])
def test_htcondor_job_ad(tmp_path: Path, lines: list[str], end: float, name: str) -> None:
    ad = tmp_path / ".job.ad"
    ad.write_text("\n".join(["MyType = \"Job\"", *lines, "Owner = \"atlas\""]) + "\n")
    reading = read({"_CONDOR_JOB_AD": str(ad)}, started=100.0, now=200.0)
    assert reading is not None and reading.end_wall == end and name in reading.source


def test_htcondor_job_ad_without_a_limit_or_unreadable(tmp_path: Path) -> None:
    ad = tmp_path / ".job.ad"
    ad.write_text("MaxWallTimeMins = (RequestCpus * 60)\nJobStartDate = 5\n")
    assert read({"_CONDOR_JOB_AD": str(ad)}, started=0.0, now=0.0) is None
    assert read({"_CONDOR_JOB_AD": str(tmp_path / "missing")}, started=0.0, now=0.0) is None
    assert read_job_ad(tmp_path / "missing") == {}


def test_pbs_walltime_from_the_pilot_start() -> None:
    assert read({"PBS_WALLTIME": "3600"}, started=50.0, now=60.0) == Reading(3650.0, "pbs: PBS_WALLTIME = 3600")
    assert read({"PBS_WALLTIME": "junk"}, started=50.0, now=60.0) is None


def test_the_earlier_end_wins_and_the_default_lifetime_is_no_known_clock() -> None:
    batch = Reading(end_wall=1000.0 + 600, source="slurm: SLURM_JOB_END_TIME")
    # monotonic 10 at wall 1000: the batch system's end is 610 on the monotonic clock
    assert resolve(batch, 3600, "queuedata", 10.0, 1000.0).end_mono == 610.0
    assert resolve(batch, 300, "cli", 10.0, 1000.0).source == "lifetime 300 s (cli)"
    assert resolve(batch, 324000, "default", 10.0, 1000.0).source == "slurm: SLURM_JOB_END_TIME"
    own = resolve(None, 324000, "default", 10.0, 1000.0)
    assert (own.known, own.end_mono, own.left(now=20.0)) == (False, 324010.0, 323990.0)
    assert resolve(None, 3600, "queuedata", 10.0, 1000.0).known
