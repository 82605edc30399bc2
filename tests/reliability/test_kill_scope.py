"""Kill scope: when the pilot kills its payload tree, nothing it did not start is ever signalled.

Bystanders record every signal they get (``bystander.py``) and must still be alive once
the pilot has killed its payload (SIGTERM to the pilot, ``tobekilled``, looping) and
exited: (a) a process the test started before the pilot, (c) another same-uid process
started while the payload runs, and (b) the wrapper pattern
``sh -c '( ...; helper & ) & exec fsm-pilot run ...'``, whose helper's child becomes an
orphan of the pilot (the pilot is a child subreaper, so orphans below it come to it).
These run only in a private PID namespace: a kill-scope bug must not reach the host.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.reliability.cluster import BoxDispatcher, clean_env, pilot_argv, start_dispatcher, start_pilot
from tests.reliability.conftest import MakeLedger
from tests.reliability.invariants import PILOT_INVARIANTS, check_pilot
from tests.reliability.ledger import Ledger
from tests.reliability.probes import (
    BYSTANDER,
    PILOT_ARGS,
    TRIGGERS,
    Bystander,
    adopt,
    check_trigger,
    probe_job,
    start_bystander,
    trigger,
    wait_payload,
)
from tests.reliability.sandbox import Proc, Sandbox
from tests.reliability.scale import size

INVARIANTS = ("bystander_untouched", "trigger_worked", *PILOT_INVARIANTS)
REPEATS = size(1, 10)
pytestmark = pytest.mark.needs_pidns


def _bystanders(box: Sandbox, server: BoxDispatcher, root: Path, book: Ledger, how: str) -> None:
    """One run: bystanders (a) before the pilot and (c) during its payload; the pilot kills the payload."""
    root.mkdir()
    job, gate = probe_job(root)
    [panda_id] = server.submit(job)
    before = start_bystander(box, root, "started-before-the-pilot")
    launch = root / "launch"
    launch.mkdir()
    pilot = start_pilot(box, launch, server.url, *PILOT_ARGS, name=f"{root.name}-pilot")
    wait_payload(launch, pilot)
    during = start_bystander(box, root, "started-during-the-payload")
    trigger(how, server, pilot, panda_id, gate)
    pilot.wait(60)
    book.run()
    label = f"{how}, run {root.name}: pilot exit {pilot.returncode}"
    for by in (before, during):
        by.check(book, label)
    check_trigger(book, server, panda_id, how, label)
    check_pilot(book, pilot, launch, label)


@pytest.mark.parametrize("how", sorted(TRIGGERS))
def test_bystanders_started_before_and_during_the_payload_are_never_signalled(
        tmp_path: Path, sandbox: Sandbox, ledger: MakeLedger, how: str) -> None:
    book = ledger("kill scope: bystanders", INVARIANTS)
    server = start_dispatcher(sandbox, tmp_path / "dispatcher")
    for run in range(REPEATS):
        _bystanders(sandbox, server, tmp_path / f"run{run}", book, how)
    server.stop()
    book.finish()


def _wrapped_pilot(box: Sandbox, launch: Path, url: str, orphan: Bystander, helper_gate: Path) -> Proc:
    """The wrapper shell: a background helper whose child outlives it, then ``exec`` the pilot."""
    helper = (f"( while [ ! -e {helper_gate} ]; do sleep 0.05; done; "
              f"{sys.executable} {BYSTANDER} {orphan.record} & ) & exec \"$@\"")
    argv = ["sh", "-c", helper, "wrapper", *pilot_argv(launch, url, *PILOT_ARGS)]
    return box.spawn(argv, cwd=launch, env=clean_env(), name=f"{launch.parent.name}-wrapped-pilot")


def _wrapper_orphan(box: Sandbox, server: BoxDispatcher, root: Path, book: Ledger, how: str) -> None:
    """One run: (b) the wrapper's helper leaves an orphan to the pilot; the pilot kills its payload."""
    root.mkdir()
    job, gate = probe_job(root)
    [panda_id] = server.submit(job)
    launch = root / "launch"
    launch.mkdir()
    orphan, helper_gate = Bystander(root / "wrapper-orphan.signals"), root / "helper-gate"
    pilot = _wrapped_pilot(box, launch, server.url, orphan, helper_gate)
    wait_payload(launch, pilot)
    helper_gate.touch()  # the helper starts its child only now: after the payload, as in the campaign
    adopt(box, orphan, pilot)
    trigger(how, server, pilot, panda_id, gate)
    pilot.wait(60)
    book.run()
    label = f"{how}, run {root.name}: pilot exit {pilot.returncode}"
    orphan.check(book, label)
    check_trigger(book, server, panda_id, how, label)
    check_pilot(book, pilot, launch, label)


@pytest.mark.parametrize("how", sorted(TRIGGERS))
def test_an_orphan_of_the_wrapper_is_never_signalled(tmp_path: Path, sandbox: Sandbox, ledger: MakeLedger,
                                                     how: str) -> None:
    book = ledger("kill scope: wrapper's orphan", INVARIANTS)
    server = start_dispatcher(sandbox, tmp_path / "dispatcher")
    for run in range(REPEATS):
        _wrapper_orphan(sandbox, server, tmp_path / f"run{run}", book, how)
    server.stop()
    book.finish()
