"""Start-up checks and guards seen from outside: a real pilot, real certificates, real queuedata."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fsm_pilot.replay import problems
from tests.pilotrun import Launch, job_def, make_launch


def _run(launch: Launch, *extra: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("X509", "PANDA_AUTH", "OIDC", "FSM_PILOT"))}
    cmd = [sys.executable, "-m", "fsm_pilot", "run", "-q", "TEST_QUEUE", "-a", str(launch.dir),
           "--min-free-disk", "1", *extra]
    return subprocess.run(cmd, cwd=launch.dir, env={**base, **(env or {})}, capture_output=True, text=True,
                          timeout=60, check=False)


def _certificate(path: Path, days: int) -> Path:
    """A real X509 certificate made by openssl (a proxy's lifetime is its certificate's)."""
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", str(days),
                    "-subj", "/CN=fsm-pilot test", "-keyout", str(path.with_suffix(".key")), "-out", str(path)],
                   check=True, capture_output=True)
    return path


def test_cvmfs_queue_without_cvmfs_exits_64_unless_b(tmp_path: Path) -> None:
    if Path("/cvmfs/atlas.cern.ch/repo/sw").exists():
        pytest.skip("this machine has CVMFS")
    launch = make_launch(tmp_path / "a", [job_def(1, "-c true")], is_cvmfs=True)
    result = _run(launch, "-t")
    assert result.returncode == 64, result.stderr
    assert launch.records()[-1]["reason"]["error"] == 1377
    skipped = make_launch(tmp_path / "b", [job_def(1, "-c true")], is_cvmfs=True)
    assert _run(skipped, "-t", "-b").returncode == 0


def test_missing_proxy_file_fails_the_checks_with_68(tmp_path: Path) -> None:
    launch = make_launch(tmp_path, [job_def(1, "-c true")])
    missing = tmp_path / "missing"
    result = _run(launch, env={"X509_USER_PROXY": str(missing)})
    assert result.returncode == 68, result.stderr
    last = launch.records()[-1]
    assert (last["source"], last["dest"], last["reason"]["error"]) == ("CHECKS", "FAILED", 1163)
    assert str(missing) in last["reason"]["text"] and "X509_USER_PROXY" in last["reason"]["text"]


def test_short_proxy_exits_80_and_a_long_one_runs_the_job(tmp_path: Path) -> None:
    short = make_launch(tmp_path / "short", [job_def(1, "-c true")])
    result = _run(short, env={"X509_USER_PROXY": str(_certificate(tmp_path / "short.pem", 1))})
    assert result.returncode == 80, result.stderr
    guard = next(g for g in short.records()[-1]["guards"] if g["guard"] == "proxy_lifetime")
    assert guard["allowed"] is False and 0 < guard["inputs"]["seconds_left"] <= 86400
    long = make_launch(tmp_path / "long", [job_def(1, "-c true")])
    result = _run(long, env={"X509_USER_PROXY": str(_certificate(tmp_path / "long.pem", 30))})
    assert result.returncode == 0, result.stderr
    assert long.reports()[1]["state"] == "finished"
    assert problems(long.records()) == []
