"""The exit code is a pure function of the terminal state and its reason: row by row."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from fsm_pilot.errors import PilotError
from fsm_pilot.exitcodes import ABORTED, EXIT, FAILED, Reason, exit_code, exit_code_markdown

#: Pilot 3's table (PILOT3_FACTS.md), written out independently of the code under test.
PILOT3_ROWS = [
    (PilotError.CVMFSISNOTALIVE, 64), (PilotError.GENERALERROR, 65), (PilotError.MKDIR, 66),
    (PilotError.NOSUCHFILE, 67), (PilotError.NOPROXY, 68), (PilotError.NOVOMSPROXY, 68),
    (PilotError.CERTIFICATEHASEXPIRED, 68), (PilotError.NOLOCALSPACE, 69),
    (PilotError.UNKNOWNEXCEPTION, 70), (PilotError.QUEUEDATA, 71), (PilotError.QUEUEDATANOTOK, 72),
    (PilotError.NOSOFTWAREDIR, 73), (PilotError.JSONRETRIEVALTIMEOUT, 74), (PilotError.BLACKHOLE, 75),
    (PilotError.MIDDLEWAREIMPORTFAILURE, 76), (PilotError.MISSINGINPUTFILE, 77),
    (PilotError.PANDAQUEUENOTACTIVE, 78), (PilotError.COMMUNICATIONFAILURE, 79),
    (PilotError.PROXYTOOSHORT, 80), (PilotError.REACHEDMAXTIME, 81), (PilotError.NOJOBSINPANDA, 82),
    (PilotError.PANDAQUEUENOTONLINE, 83),
]


@pytest.mark.parametrize(("error", "code"), PILOT3_ROWS)
@pytest.mark.parametrize("state", [EXIT, FAILED])
def test_error_rows(state: str, error: PilotError, code: int) -> None:
    assert exit_code(state, Reason("x", error)) == code


@pytest.mark.parametrize(("signum", "code"), [(2, 130), (3, 131), (7, 135), (9, 137), (10, 138),
                                              (11, 139), (15, 143), (24, 152)])
def test_signal_rows(signum: int, code: int) -> None:
    assert exit_code(ABORTED, Reason("stopped", signal=signum)) == code


def test_clean_exit_is_zero_and_unmapped_failure_is_one() -> None:
    assert exit_code(EXIT, Reason("no more jobs")) == 0
    assert exit_code(FAILED, Reason("?")) == 1
    assert exit_code(FAILED, Reason("bad job file", PilotError.CONVERSIONFAILURE)) == 1
    assert exit_code(EXIT, Reason("a job error is not a pilot error", PilotError.PAYLOADEXECUTIONFAILURE)) == 1


def test_aborted_without_signal_is_a_kill() -> None:
    assert exit_code(ABORTED, Reason("?")) == 137


def test_non_terminal_state_has_no_exit_code() -> None:
    with pytest.raises(ValueError, match="not a terminal state"):
        exit_code("RUNNING", Reason("x"))


def test_cli_prints_the_table_and_the_readme_includes_it() -> None:
    out = subprocess.run([sys.executable, "-m", "fsm_pilot", "exit-codes"], capture_output=True, text=True,
                         check=True).stdout
    assert out == exit_code_markdown()
    assert re.search(r"^\| 143 \| stopped by SIGTERM", out, re.M)
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    assert out in readme, "README's exit-code table differs from `fsm-pilot exit-codes`: paste the new one"
