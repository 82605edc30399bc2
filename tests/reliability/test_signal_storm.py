"""Signal storm: random stop signals at random moments in every state a pilot can be held in.

After each signalled pilot: its exit code is 128 + the first signal (unless it had already
ended), its payload tree is gone, its transition log is complete and replays clean, and
after a next pilot in the same launch dir (RECOVERY) the dispatcher holds exactly one
final state for the job. Four families, so a known defect marks only its own test.
"""

from __future__ import annotations

import random
import signal
from collections.abc import Sequence
from pathlib import Path

from tests.reliability.cluster import start_dispatcher
from tests.reliability.conftest import MakeLedger
from tests.reliability.sandbox import Sandbox
from tests.reliability.scale import size
from tests.reliability.storm import INVARIANTS, TARGETS, Storm, Trial, plan

#: The signals the pilot documents as "stop" (HUP is being added). SIGUSR1 is a warning once the pilot knows its
#: clock (the storm's queue has maxtime): it drains instead of stopping (tests/test_drain.py).
STOP = [signal.SIGTERM, signal.SIGINT, signal.SIGQUIT]
TRIALS = size(4, 80)
#: Fewer at the small size: on the unfixed pilot each frozen-server trial costs its --update-timeout.
STAGEOUT_TRIALS = size(2, 40)
STARTUP_TRIALS = size(3, 40)


def _storm(tmp_path: Path, sandbox: Sandbox, ledger: MakeLedger, klass: str, trials: list[Trial]) -> None:
    book = ledger(klass, INVARIANTS)
    server = start_dispatcher(sandbox, tmp_path / "dispatcher")
    storm = Storm(sandbox, server, tmp_path / "trials", book)
    for trial in trials:
        storm.run(trial)
    book.facts.update(trials=len(trials), signals=sum(len(t.signals) for t in trials),
                      targets=sorted({t.target for t in trials}))
    server.stop()
    book.finish()


def _cycle(rng: random.Random, targets: tuple[str, ...], signals: Sequence[int], second: float = 0.0,
           trials: int = TRIALS) -> list[Trial]:
    """``trials`` trials going round ``targets`` (each is covered even at the small size)."""
    return [plan(rng, n, targets[n % len(targets)], signals, second) for n in range(trials)]


def test_one_stop_signal_in_setup_and_running_states(tmp_path: Path, sandbox: Sandbox, seed: int,
                                                     ledger: MakeLedger) -> None:
    targets = ("random moment", "QUEUEDATA", "STAGEIN", "RUNNING")
    _storm(tmp_path, sandbox, ledger, "signal storm: one signal",
           _cycle(random.Random(seed), targets, STOP))


def test_one_stop_signal_during_stageout(tmp_path: Path, sandbox: Sandbox, seed: int, ledger: MakeLedger) -> None:
    trials = _cycle(random.Random(seed), ("STAGEOUT",), STOP, trials=STAGEOUT_TRIALS)
    for trial in trials[::2]:  # every other one meets a server that stopped answering
        trial.freeze = True
    _storm(tmp_path, sandbox, ledger, "signal storm: stage-out", trials)


def test_one_stop_signal_during_start_up(tmp_path: Path, sandbox: Sandbox, seed: int, ledger: MakeLedger) -> None:
    _storm(tmp_path, sandbox, ledger, "signal storm: start-up",
           _cycle(random.Random(seed), ("start-up",), [signal.SIGINT, *STOP], trials=STARTUP_TRIALS))


def test_sighup_in_every_state(tmp_path: Path, sandbox: Sandbox, seed: int, ledger: MakeLedger) -> None:
    _storm(tmp_path, sandbox, ledger, "signal storm: SIGHUP",
           _cycle(random.Random(seed), TARGETS, [signal.SIGHUP]))


def test_second_signal_shortly_after_the_first(tmp_path: Path, sandbox: Sandbox, seed: int,
                                               ledger: MakeLedger) -> None:
    _storm(tmp_path, sandbox, ledger, "signal storm: two signals",
           _cycle(random.Random(seed), ("RUNNING", "ABORTING", "random moment"), STOP, 1.0))
