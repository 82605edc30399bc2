"""The end of a pilot is logged at the level it deserves, a fatal one with what to do; waits are logged."""

from __future__ import annotations

import re
from pathlib import Path

from fsm_pilot.endings import ADVICE, advice, level
from fsm_pilot.exitcodes import EXIT_TABLE
from tests.pilotrun import make_launch
from tests.pilotserver import Dispatcher, free_port
from tests.test_pilot_server import _launch, finish, pilot


def test_levels_and_advice() -> None:
    assert (level(0), level(82), level(143), level(79), level(1)) == ("info", "info", "warning", "error", "error")
    assert advice(0) is None and advice(143) is None and advice(82) is None
    fatal = {code for code, _ in EXIT_TABLE.values()} - {82}
    assert fatal <= set(ADVICE), f"fatal exit codes without advice: {sorted(fatal - set(ADVICE))}"


def test_an_unreachable_server_ends_in_an_error_line_with_the_code_and_what_to_do(tmp_path: Path) -> None:
    launch = _launch(tmp_path / "p")
    local = make_launch(tmp_path / "files")  # queuedata from files: only getJob needs the server
    for name in ("queuedata.json", "storagedata.json"):
        (launch.dir / name).write_text((local.dir / name).read_text())
    code, err = finish(pilot(launch, f"http://127.0.0.1:{free_port()}", "--update-timeout", "1"))
    assert code == 79, err
    [line] = [x for x in err.splitlines() if "pilot finished" in x]
    assert re.search(r"\[error +\] pilot finished", line), line
    assert "exit_code=79" in line and "check --url" in line


def test_each_wait_for_a_job_is_logged_with_what_comes_next(tmp_path: Path, dispatcher: Dispatcher) -> None:
    code, err = finish(pilot(_launch(tmp_path / "p"), dispatcher.url, "-v", "2", "--getjob-wait", "0.05"))
    assert code == 82, err
    assert "no job from the server; asking again in 0.05 s (2/2)" in err
    assert "no job from the server; no more requests" in err
    [line] = [x for x in err.splitlines() if "pilot finished" in x]
    assert re.search(r"\[info +\] pilot finished", line), line


def test_queuedata_from_a_server_that_is_down_is_71_as_in_pilot_3(tmp_path: Path) -> None:
    """Pilot 3 downloads queuedata before any server call and exits 71 (QueuedataFailure) when it cannot;
    79 is for the PanDA server itself (getJob, updates), as the test above shows."""
    code, err = finish(pilot(_launch(tmp_path / "p"), f"http://127.0.0.1:{free_port()}", "--update-timeout", "1"))
    assert code == 71, err
    [line] = [x for x in err.splitlines() if "pilot finished" in x]
    assert re.search(r"\[error +\] pilot finished", line) and "queuedata could not be fetched" in line, line
