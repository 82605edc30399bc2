"""The flight record (issue 13, item 6): every abnormal end carries its last transitions to the server.

Each case runs a real pilot against the real dispatcher and reads the final update the
server accepted (what it stores) from its database: a SIGTERM while the payload runs,
a SIGTERM in stage-out (the pilot frozen at a failpoint, so the moment is exact), a
failed payload, and a crash (a failpoint that raises inside the STAGEOUT step).
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from fsm_pilot.flightrecord import SERVER_LIMIT, flight_record, transition_lines
from tests.pilotrun import wait_for
from tests.pilotserver import Dispatcher, job_spec
from tests.test_pilot_server import _launch, pilot
from tests.test_recovery import _finals, _stopped


def _pilot_log(dispatcher: Dispatcher, panda_id: int) -> str:
    [final] = _finals(dispatcher, panda_id)
    text = str(final["pilot_log"])
    assert len(text.encode("utf-8")) <= SERVER_LIMIT
    assert text.startswith("- Last ") and "\n- Log from pilot.log -\n" in text, text
    return text


def test_sigterm_while_running(tmp_path: Path, dispatcher: Dispatcher) -> None:
    [panda_id] = dispatcher.submit(job_spec("-c 'sleep 300'"))
    proc = pilot(_launch(tmp_path / "p"), dispatcher.url)
    wait_for(lambda: dispatcher.status(panda_id)[panda_id] == "running", what="job running")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err
    text = _pilot_log(dispatcher, panda_id)
    assert "GETJOB -got_job-> VALIDATE" in text and "RUNNING -abort-> ABORTING" in text
    assert "received SIGTERM" in text


@pytest.mark.parametrize(("failpoint", "crash", "line"), [
    # the final update goes from STAGEOUT's own step (it stops its copies): the log's tail says why
    ("stageout_start", False, "in STAGEOUT for"),
    ("stageout_start", True, "STAGEOUT -fail-> ABORTING"),
])
def test_sigterm_or_crash_in_stageout(tmp_path: Path, dispatcher: Dispatcher, failpoint: str, crash: bool,
                                      line: str) -> None:
    [panda_id] = dispatcher.submit(job_spec("-c 'echo x > out.dat'", ("out.dat",)))
    env = {"FSM_PILOT_FAILPOINT": failpoint, **({"FSM_PILOT_FAILPOINT_ACTION": "raise"} if crash else {})}
    proc = pilot(_launch(tmp_path / "p"), dispatcher.url, "--timefloor", "0", env=env)
    if not crash:
        wait_for(lambda: _stopped(proc) or proc.poll() is not None, what=f"the pilot frozen at {failpoint}")
        proc.send_signal(signal.SIGTERM)
        proc.send_signal(signal.SIGCONT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == (70 if crash else 143), err
    text = _pilot_log(dispatcher, panda_id)
    assert "RUNNING -payload_done-> STAGEOUT" in text and line in text, text
    if crash:
        assert "UNKNOWNEXCEPTION 1301" in text and "failpoint stageout_start" in text
    else:
        assert "stage-out stopped by a signal" in text


def test_failed_payload(tmp_path: Path, dispatcher: Dispatcher) -> None:
    [panda_id] = dispatcher.submit(job_spec("-c 'echo broken >&2; exit 3'"))
    proc = pilot(_launch(tmp_path / "p"), dispatcher.url, "--timefloor", "0")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    text = _pilot_log(dispatcher, panda_id)
    assert "RUNNING -payload_done-> STAGEOUT" in text and "PAYLOADEXECUTIONFAILURE 1305" in text
    assert "broken" in text  # the payload's stderr, from the log's tail


def test_record_fits_what_the_server_keeps(tmp_path: Path) -> None:
    """Long reasons and a long log: transitions take at most half, the whole at most 4000 bytes."""
    records = [{"time": 0, "mono": float(i), "source": "A", "event": "next", "dest": "B",
                "reason": {"text": "é" * 500, "error": None}} for i in range(30)]
    log = tmp_path / "pilot.log"
    log.write_text("".join(f'{{"level": "info", "event": "line {i} {"ü" * 300}"}}\n' for i in range(40)))
    text = flight_record(records, log)
    assert len(text.encode("utf-8")) <= SERVER_LIMIT
    head = text.split("\n- Log from pilot.log -\n")[0]
    assert len(head) <= SERVER_LIMIT // 2 and head.isascii()
    assert "line 39" in text  # the newest log line is kept
    assert len(transition_lines(records)) == 12 + 1  # and where the pilot is now
