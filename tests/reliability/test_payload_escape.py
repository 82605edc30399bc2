"""Payload escape: a payload child that double-forks and calls setsid is gone once the pilot is done.

The escapee (``( setsid sleep <unique> & )``) leaves the payload's session and process
group and is orphaned; the pilot, a child subreaper, gets it and must kill it with the
rest of the tree whatever ends the job. A pilot SIGKILLed while its payload runs cannot;
then the next pilot's RECOVERY in the same launch dir must. Only in a private PID
namespace: the escapee is found by its command line among the sandbox's processes.
"""

from __future__ import annotations

import random
import signal
from pathlib import Path

import pytest

from tests.pilotrun import wait_for
from tests.reliability.cluster import BoxDispatcher, start_dispatcher, start_pilot
from tests.reliability.conftest import MakeLedger
from tests.reliability.invariants import PILOT_INVARIANTS, check_exit, check_launch, check_pilot, pilot_dir
from tests.reliability.ledger import Ledger
from tests.reliability.probes import PILOT_ARGS, TRIGGERS, check_trigger, probe_job, trigger, wait_payload
from tests.reliability.sandbox import Sandbox
from tests.reliability.scale import size

INVARIANTS = ("escapee_gone", "trigger_worked", *PILOT_INVARIANTS)
REPEATS = size(1, 10)
pytestmark = pytest.mark.needs_pidns


def _escape(seed: int, run: int) -> tuple[str, str]:
    """The payload's escaping command and the unique argument that finds the escapee."""
    marker = f"300.{random.Random(seed * 1000 + run).randrange(10**6):06d}"
    return f"( setsid sleep {marker} & ) ;", marker


def _check_gone(book: Ledger, box: Sandbox, marker: str, label: str) -> None:
    try:
        wait_for(lambda: not box.find(marker), timeout=5, what="the escapee gone")
        gone = True
    except AssertionError:
        gone = False
    book.check("escapee_gone", gone, f"{label}: the setsid'd grandchild of the payload (sleep {marker}) "
                                     f"is still running: pids {box.find(marker)}")


def _ends(box: Sandbox, server: BoxDispatcher, root: Path, book: Ledger, how: str) -> None:
    """One run: the payload leaves an escapee, the job ends ``how``, the pilot exits."""
    root.mkdir()
    escape, marker = _escape(book.seed, int(root.name.removeprefix("run")))
    job, gate = probe_job(root, escape)
    if how == "payload ends":
        job["jobPars"] = f"-c '{escape} touch started'"
    [panda_id] = server.submit(job)
    launch = root / "launch"
    launch.mkdir()
    pilot = start_pilot(box, launch, server.url, *PILOT_ARGS, name=f"{root.name}-pilot")
    if how != "payload ends":
        wait_payload(launch, pilot)
        wait_for(lambda: box.find(marker), what="the escapee running")
        trigger(how, server, pilot, panda_id, gate)
    pilot.wait(60)
    book.run()
    label = f"{how}, run {root.name}: pilot exit {pilot.returncode}"
    _check_gone(book, box, marker, label)
    if how != "payload ends":
        check_trigger(book, server, panda_id, how, label)
    check_pilot(book, pilot, launch, label)


@pytest.mark.parametrize("how", ["payload ends", *sorted(TRIGGERS)])
def test_an_escaped_payload_child_is_gone_when_the_pilot_exits(tmp_path: Path, sandbox: Sandbox,
                                                               ledger: MakeLedger, how: str) -> None:
    book = ledger("payload escape: pilot exits", INVARIANTS)
    server = start_dispatcher(sandbox, tmp_path / "dispatcher")
    for run in range(REPEATS):
        _ends(sandbox, server, tmp_path / f"run{run}", book, how)
    server.stop()
    book.finish()


def _recovered(box: Sandbox, server: BoxDispatcher, root: Path, book: Ledger) -> None:
    """One run: the pilot is SIGKILLed while its payload (and escapee) runs; a next pilot recovers."""
    root.mkdir()
    escape, marker = _escape(book.seed, int(root.name.removeprefix("run")))
    job, _ = probe_job(root, escape)
    [panda_id] = server.submit(job)
    launch = root / "launch"
    launch.mkdir()
    dying = start_pilot(box, launch, server.url, *PILOT_ARGS, name=f"{root.name}-dying")
    wait_payload(launch, dying)
    wait_for(lambda: box.find(marker), what="the escapee running")
    dying.send_signal(signal.SIGKILL)
    dying.wait(30)
    rescuer = start_pilot(box, launch, server.url, *PILOT_ARGS, name=f"{root.name}-rescuer")
    rescuer.wait(120)
    book.run()
    label = f"run {root.name}, SIGKILLed pilot, then RECOVERY: exit {rescuer.returncode}"
    _check_gone(book, box, marker, label)
    failed = server.query("SELECT COUNT(*) FROM job_history WHERE PandaID = ? AND event = 'update' "
                          "AND outcome = 'accepted' AND state = 'failed'", panda_id)
    book.check("trigger_worked", failed == [(1,)], f"{label}: job {panda_id} has {failed} accepted failures")
    check_exit(book, rescuer, label)
    killed = pilot_dir(launch, dying)
    check_launch(book, launch, label, killed=[killed] if killed else [])


def test_an_escaped_payload_child_of_a_killed_pilot_is_gone_after_recovery(
        tmp_path: Path, sandbox: Sandbox, ledger: MakeLedger) -> None:
    book = ledger("payload escape: after RECOVERY", INVARIANTS)
    server = start_dispatcher(sandbox, tmp_path / "dispatcher")
    for run in range(REPEATS):
        _recovered(sandbox, server, tmp_path / f"run{run}", book)
    server.stop()
    book.finish()
