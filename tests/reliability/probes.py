"""Shared parts of the kill-scope and payload-escape probes: a job, a trigger, bystanders.

The probe job's payload keeps touching a file until the test opens a gate, then stops
(so the looping check fires exactly when the test wants it). Three triggers make the
pilot kill its payload tree: SIGTERM to the pilot, the server's ``tobekilled``, and
the looping check. Each is checked to have worked (the job failed with its code), so
a probe cannot pass because nothing was killed.
"""

from __future__ import annotations

import contextlib
import json
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

import psutil

from tests.pilotrun import wait_for
from tests.pilotserver import job_spec
from tests.reliability.cluster import BoxDispatcher
from tests.reliability.ledger import Ledger
from tests.reliability.sandbox import Proc, Sandbox

BYSTANDER = Path(__file__).with_name("bystander.py")
#: Trigger -> the job's pilotErrorCode once the pilot killed the payload for it.
TRIGGERS = {"SIGTERM": 1201, "tobekilled": 1144, "looping": 1150}
PILOT_ARGS = ("--timefloor", "0", "-v", "1", "--getjob-wait", "0", "--looping-limit", "1", "--check-interval", "0.1")


def probe_job(root: Path, before: str = "") -> tuple[dict[str, object], Path]:
    """The job (``before`` runs first in the payload) and its looping gate."""
    gate = root / "loop-gate"
    body = f"{before} touch started; while [ ! -e {gate} ]; do touch alive; sleep 0.1; done; sleep 300"
    return job_spec(f"-c '{body}'"), gate


def wait_payload(launch: Path, proc: Proc) -> None:
    wait_for(lambda: proc.poll() is not None or list(launch.glob("Panda_Pilot_*/PanDA_Pilot-*/started")),
             timeout=60, what="the payload started")
    assert proc.poll() is None, f"the pilot ended before its payload ran: {proc.stderr()[-2000:]}"


def trigger(name: str, server: BoxDispatcher, pilot: Proc, panda_id: int, gate: Path) -> None:
    """Make the pilot kill its payload tree."""
    if name == "SIGTERM":
        pilot.send_signal(signal.SIGTERM)
    elif name == "tobekilled":
        server.v1("job/set_command", {"job_id": panda_id, "command": "tobekilled"})
    else:
        gate.touch()


def check_trigger(book: Ledger, server: BoxDispatcher, panda_id: int, name: str, label: str) -> None:
    """The job failed with the trigger's code: the payload was really killed for it."""
    rows = server.query("SELECT fields FROM job_history WHERE PandaID = ? AND event = 'update' "
                        "AND outcome = 'accepted' AND state = 'failed'", panda_id)
    codes = [json.loads(r[0]).get("pilot_error_code") for r in rows]
    book.check("trigger_worked", codes == [TRIGGERS[name]],
               f"{label}: job {panda_id} failed with {codes}, expected [{TRIGGERS[name]}]")


@dataclass
class Bystander:
    """A process the pilot did not start, recording the signals it gets (see bystander.py)."""

    record: Path
    pid: int = 0

    def argv(self) -> list[str]:
        return [sys.executable, str(BYSTANDER), str(self.record)]

    def ready(self) -> bool:
        return self.record.exists() and self.record.read_text().startswith("ready")

    def signals(self) -> list[str]:
        return self.record.read_text().splitlines()[1:] if self.record.exists() else []

    def alive(self) -> bool:
        try:
            return bool(psutil.Process(self.pid).status() != psutil.STATUS_ZOMBIE)
        except psutil.NoSuchProcess:
            return False

    def check(self, book: Ledger, label: str) -> None:
        got = self.signals()
        book.check("bystander_untouched", self.alive() and not got,
                   f"{label}: bystander {self.record.stem} (pid {self.pid}) alive={self.alive()} got signals {got}")


def start_bystander(box: Sandbox, root: Path, name: str) -> Bystander:
    """A bystander started by the test (in the sandbox, not under the pilot)."""
    by = Bystander(root / f"{name}.signals")
    proc = box.spawn(by.argv(), cwd=root, env={"PATH": "/usr/bin:/bin"}, name=name)
    by.pid = proc.pid
    wait_for(by.ready, what=f"bystander {name} ready")
    return by


def _bystander_pid(box: Sandbox, by: Bystander) -> int:
    """The bystander itself, not the shell that started it (whose command line names the record too)."""
    for pid in box.find(str(by.record)):
        with contextlib.suppress(psutil.Error):
            if str(BYSTANDER) in psutil.Process(pid).cmdline():
                return pid
    return 0


def adopt(box: Sandbox, by: Bystander, pilot: Proc) -> None:
    """Find a bystander someone else started, and wait until it is an orphan of the pilot."""
    by.pid = wait_for(lambda: _bystander_pid(box, by), what=f"bystander {by.record.stem} started")
    wait_for(lambda: psutil.Process(by.pid).ppid() == pilot.pid, what=f"{by.record.stem} reparented to the pilot")
