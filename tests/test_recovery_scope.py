"""RECOVERY kills everything a SIGKILLed pilot's payload started, and nothing else (issue 9, item 2).

The dead pilot's payload has a child that called ``setsid`` and double-forked,
so it is in no recorded session and no longer below the payload; its
environment still carries the payload's mark. Bystanders of the same user,
started after the payload (one in its own session, one a plain orphan), must
survive the next pilot's RECOVERY.
"""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import psutil

from tests.pilotrun import wait_for
from tests.pilotserver import Dispatcher, job_spec
from tests.test_payload import gone
from tests.test_pilot_server import _launch, finish, pilot
from tests.test_recovery import _finals, _payload_pid


def _bystander(tmp_path: Path, setsid: bool) -> psutil.Process:
    """A same-uid sleep the pilot never started, double-forked (and in its own session if asked)."""
    prefix = "setsid " if setsid else ""
    out = subprocess.run(["sh", "-c", f"{prefix}sleep 60 >/dev/null 2>&1 & echo $!"], capture_output=True,
                         text=True, check=True, timeout=10, cwd=tmp_path)
    return psutil.Process(int(out.stdout))


def test_setsid_child_of_a_dead_pilots_payload_dies_in_recovery(tmp_path: Path, dispatcher: Dispatcher,
                                                                cleanup: list[psutil.Process]) -> None:
    esc = tmp_path / "escaped.pid"
    body = (f'( setsid sh -c "echo \\$\\$ > {esc}.tmp; mv {esc}.tmp {esc}; exec sleep 60" & ); '
            f"while true; do sleep 0.05; done")
    [panda_id] = dispatcher.submit(job_spec(f"-c '{body}'"))
    launch = _launch(tmp_path / "p")
    dying = pilot(launch, dispatcher.url, "--timefloor", "0")
    payload = wait_for(lambda: _payload_pid(launch, dying.pid, panda_id), what="the payload running")
    wait_for(esc.exists, what="the payload's setsid child")
    escaped = psutil.Process(int(esc.read_text()))
    cleanup.extend([psutil.Process(payload), escaped])
    bystanders = [_bystander(tmp_path, setsid=True), _bystander(tmp_path, setsid=False)]
    cleanup.extend(bystanders)
    dying.send_signal(signal.SIGKILL)
    dying.communicate(timeout=20)
    assert escaped.is_running() and escaped.ppid() != payload  # escaped: neither in the session nor below it
    code, err = finish(pilot(launch, dispatcher.url, "--timefloor", "0"))
    assert code == 82, err
    assert [f["pilot_error_code"] for f in _finals(dispatcher, panda_id)] == [1200]
    wait_for(lambda: gone(escaped) and gone(cleanup[0]), what="the dead pilot's payload and its escapee killed")
    assert not any(gone(b) for b in bystanders), "RECOVERY killed a process the payload did not start"
