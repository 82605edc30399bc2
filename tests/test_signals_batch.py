"""A batch system signals every process of the job: the payload may die of it before the pilot handles its own.

Slurm sends SIGCONT+SIGTERM to the pilot and its payload alike. Under a real Slurm (tests/slurm) the pilot
sometimes saw its payload die of the SIGTERM first and reported the job as a payload failure (1305)
instead of the signal (1201). Here the same order is made exact: the payload kills itself with SIGTERM,
the pilot is frozen at the failpoint right after, then signalled and let go.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.pilotrun import wait_for
from tests.pilotserver import Dispatcher, job_spec
from tests.test_pilot_server import _launch, pilot
from tests.test_recovery import _finals, _stopped


@pytest.mark.parametrize(("pilot_signalled", "expected"), [
    (True, (143, 1201, "pilot received SIGTERM")),
    (False, (0, 1305, "payload killed by SIGTERM")),  # the payload alone: its own failure, as before
])
def test_a_payload_dead_of_sigterm_with_its_pilot_reports_the_pilots_signal(
        tmp_path: Path, dispatcher: Dispatcher, pilot_signalled: bool, expected: tuple[int, int, str]) -> None:
    [panda_id] = dispatcher.submit(job_spec("-c 'kill -TERM $$'"))
    launch = _launch(tmp_path / "p")
    proc = pilot(launch, dispatcher.url, env={"FSM_PILOT_FAILPOINT": "entered_STAGEOUT"})
    wait_for(lambda: _stopped(proc) or proc.poll() is not None, what="the pilot frozen after the payload died")
    if pilot_signalled:
        proc.send_signal(signal.SIGTERM)
    proc.send_signal(signal.SIGCONT)
    _, err = proc.communicate(timeout=30)
    finals = _finals(dispatcher, panda_id)
    assert [(proc.returncode, f["pilot_error_code"], f["pilot_error_diag"]) for f in finals] == [expected], err
