"""The command line: Pilot 3's options accepted, bad values refused with exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from fsm_pilot.cli import parser
from fsm_pilot.options import run_args

#: Harvester's pilots_starter.py command line (PILOT3_FACTS.md), minus the wrapper.
HARVESTER = ["-q", "PQ", "-r", "PQ", "-s", "SITE", "-a", "/tmp/wd", "--resource-type", "SCORE", "-j", "managed",
             "-i", "PR", "--job-type", "managed", "-t", "-w", "generic", "--pilot-user=ATLAS",
             "--url=https://pandaserver.invalid", "-d", "--harvester-submit-mode=PULL",
             "--allow-same-user=False"]


def test_harvester_command_line_is_accepted_and_unused_options_are_listed() -> None:
    ns = parser().parse_args(["run", *HARVESTER])
    args = run_args(ns, cwd=Path("/tmp"))
    assert (args.queue, args.job_label, args.workdir, args.no_proxy_check, args.debug) == (
        "PQ", "managed", Path("/tmp/wd"), True, True)
    assert (args.url, args.resource_type, args.job_type, args.push) == (
        "https://pandaserver.invalid:25443", "SCORE", "managed", False)
    assert {"resource", "site", "pilot_user", "allow_same_user"} <= set(args.ignored)


def test_pilot3_style_invocation_without_subcommand_means_run(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "fsm_pilot", "-q", "NOQUEUE", "-t", "-a", str(tmp_path)],
                            capture_output=True, text=True, check=False, cwd=tmp_path, timeout=60)
    assert result.returncode == 71, result.stderr  # no queuedata anywhere: QUEUEDATA
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("argv", [
    ["run"],  # -q is required
    ["run", "-q", "Q", "-l", "forever"],
    ["run", "-q", "Q", "--kill-grace", "-1"],
    ["run", "-q", "Q", "--resource-type", "HUGE"],
    ["run", "-q", "Q", "-w", "nonsense"],
    ["frobnicate"],
])
def test_bad_option_values_exit_2_with_a_message(argv: list[str]) -> None:
    result = subprocess.run([sys.executable, "-m", "fsm_pilot", *argv], capture_output=True, text=True, check=False,
                            timeout=60)
    assert result.returncode == 2
    assert "error:" in result.stderr and "Traceback" not in result.stderr


def test_bad_environment_value_exits_2(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "FSM_PILOT_KILL_GRACE": "soon"}
    result = subprocess.run([sys.executable, "-m", "fsm_pilot", "run", "-q", "Q", "-a", str(tmp_path)],
                            capture_output=True, text=True, check=False, env=env, timeout=60)
    assert result.returncode == 2
    assert "FSM_PILOT_KILL_GRACE" in result.stderr
