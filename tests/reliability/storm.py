"""One signal-storm trial: a pilot held in a chosen state, signalled, then a next pilot in its dir.

The job comes as Harvester hands it over: the test claims it from the dispatcher
(acquire_jobs) and pre-places it as ``pandaJobData.out``; the pilot reports to the
dispatcher. A pilot is held in a state by a failpoint (it SIGSTOPs itself there; the
signal is sent, then SIGCONT), by a payload waiting on a gate (RUNNING), by a FIFO
as queuedata (QUEUEDATA), or not at all: a random moment after INIT, or during its start-up
(the interpreter and its imports, before the pilot installed any handler). The payload
leaves a tree that resists (a child ignoring SIGTERM, a setsid one, a background one).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from tests.pilotrun import wait_for
from tests.pilotserver import job_spec
from tests.reliability.cluster import BoxDispatcher, start_pilot
from tests.reliability.invariants import PILOT_INVARIANTS, check_exit, check_launch, pilot_dir, shell_code
from tests.reliability.ledger import Ledger
from tests.reliability.sandbox import Proc, Sandbox
from tests.test_pilot_stagein import _replica, _with_inputs

INVARIANTS = ("exit_code_is_signal", "payload_tree_gone", "one_final_state", "stopped_promptly", *PILOT_INVARIANTS)
#: With the server frozen, a pilot told to stop must not wait out its --update-timeout (STALL s) on it:
#: it leaves the final update on disk and exits. BOUND is far above the ~1 s that takes, far below STALL.
STALL, BOUND = 12.0, 6.0
TERMINAL = frozenset({"EXIT", "FAILED", "ABORTED"})
#: Where a trial holds the pilot, and the failpoint (FSM_PILOT_FAILPOINT) that holds it there.
FAILPOINTS = {"STAGEIN": ("stagein_file",), "STAGEOUT": ("stageout_start", "stageout_file:1", "final_update"),
              "ABORTING": ("aborting",)}
TARGETS = ("random moment", "QUEUEDATA", "STAGEIN", "RUNNING", "STAGEOUT", "ABORTING")
ACQUIRE = {"site_name": "TEST_QUEUE", "computing_element": "TEST_QUEUE", "prod_source_label": "managed",
           "node": "storm", "disk_space": 10000, "memory": 2000}


def payload(gate: Path) -> str:
    """A tree that resists, then waits for ``gate``, then writes its output."""
    return ("-c 'echo $$ > pids; sleep 120 & echo $! >> pids; (trap \"\" TERM; exec sleep 121) & echo $! >> pids; "
            "setsid sleep 122 & echo $! >> pids; touch started; "
            f"while [ ! -e {gate} ]; do sleep 0.05; done; echo ok > out.txt'")


@dataclass
class Trial:
    """What one trial does: where it holds the pilot and which signals it sends (name, delay before)."""

    number: int
    target: str
    signals: list[tuple[int, float]]
    failpoint: str | None = None
    hold: float = 0.0
    #: The server stops answering (SIGSTOP) just before the signal.
    freeze: bool = False
    facts: dict[str, Any] = field(default_factory=dict)


def plan(rng: random.Random, number: int, target: str, signals: Sequence[int], second: float = 0.0) -> Trial:
    """A trial at ``target``; ``second`` is the chance of a second signal shortly after the first."""
    sent = [(rng.choice(signals), 0.0)]
    if target == "ABORTING" or rng.random() < second:
        sent.append((rng.choice(signals), rng.uniform(0.0, 0.2)))
    failpoint = rng.choice(FAILPOINTS[target]) if target in FAILPOINTS else None
    hold = {"random moment": rng.uniform(0.0, 0.6), "start-up": rng.uniform(0.02, 0.15)}.get(
        target, rng.uniform(0.0, 0.3))
    return Trial(number, target, sent, failpoint, hold)


def _claim(server: BoxDispatcher, spec: dict[str, Any]) -> dict[str, Any]:
    """Submit one job and take it as Harvester would (the dispatcher marks it sent)."""
    [panda_id] = server.submit(spec)
    reply = requests.post(f"{server.url}/api/v1/pilot/acquire_jobs", json=ACQUIRE, timeout=30).json()
    [job] = reply["data"]["jobs"]
    assert int(job["PandaID"]) == panda_id, reply
    return dict(job)


def _records(directory: Path | None) -> list[dict[str, Any]]:
    log = directory / "transitions.jsonl" if directory else None
    if log is None or not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip().endswith("}")]


def _last_state(launch: Path, proc: Proc) -> str | None:
    records = _records(pilot_dir(launch, proc))
    return str(records[-1]["dest"]) if records else None


def _finals(server: BoxDispatcher, panda_id: int) -> list[str]:
    rows = server.query("SELECT state FROM job_history WHERE PandaID = ? AND event = 'update' "
                        "AND outcome = 'accepted' AND state IN ('finished', 'failed')", panda_id)
    return [str(r[0]) for r in rows]


class Storm:
    """The trials of one test: one sandbox, one dispatcher, one ledger."""

    def __init__(self, box: Sandbox, server: BoxDispatcher, root: Path, book: Ledger) -> None:
        self.box, self.server, self.root, self.book = box, server, root, book

    def run(self, trial: Trial) -> None:
        launch = self.root / f"t{trial.number}"
        launch.mkdir(parents=True)
        gate = self.root / f"gate{trial.number}"
        if trial.target != "RUNNING":
            gate.touch()
        job = self._job(trial, gate)
        (launch / "pandaJobData.out").write_text(json.dumps({str(job["PandaID"]): job}))
        fifo = self._fifo(launch) if trial.target == "QUEUEDATA" else None
        env = {"FSM_PILOT_FAILPOINT": trial.failpoint} if trial.failpoint else {}
        first = start_pilot(self.box, launch, self.server.url, "--timefloor", "0", "--update-timeout", str(STALL),
                            env=env, name=f"t{trial.number}a")
        sent = ", ".join(f"{signal.Signals(s).name} after {d:.2f} s" for s, d in trial.signals)
        label = f"trial {trial.number} ({trial.target}, {trial.failpoint or '-'}, {sent}" \
                f"{', server frozen' if trial.freeze else ''})"
        sent_at = self._signal(trial, first, launch, fifo)
        self._wait(trial, first, label)
        self.book.run()
        self._check_first(trial, first, launch, sent_at, label)
        self._next_pilot(trial, first, launch, int(job["PandaID"]), label)

    def _wait(self, trial: Trial, proc: Proc, label: str) -> None:
        """Wait for the signalled pilot; with the server frozen, it must not wait on it (then thaw it)."""
        assert self.server.boxed is not None
        try:
            if trial.freeze:
                try:
                    proc.wait(BOUND)
                except subprocess.TimeoutExpired:
                    self.book.check("stopped_promptly", False, f"{label}: still running {BOUND} s after the "
                                                               f"signal: it waits on the frozen server")
                else:
                    self.book.check("stopped_promptly", True)
        finally:
            self.server.boxed.send_signal(signal.SIGCONT)
        proc.wait(120)

    def _job(self, trial: Trial, gate: Path) -> dict[str, Any]:
        spec = job_spec(payload(gate), ("out.txt",))
        if trial.target == "STAGEIN":
            data = bytes([trial.number % 256]) * 100
            spec = _with_inputs(spec, {"in.dat": (len(data), _replica(self.server, "test", "in.dat", data))})
        return _claim(self.server, spec)

    def _fifo(self, launch: Path) -> Path:
        fifo = launch / "queuedata.json"
        os.mkfifo(fifo)
        return fifo

    def _hold(self, trial: Trial, proc: Proc, launch: Path) -> None:
        """Wait until the pilot is where the trial wants it (or has ended)."""
        if trial.target in ("RUNNING", "ABORTING"):
            wait_for(lambda: proc.poll() is not None or list(launch.glob("Panda_Pilot_*/PanDA_Pilot-*/started")),
                     timeout=60, what="the payload started")
            time.sleep(trial.hold)  # the random moment within RUNNING (the gate holds it there)
        elif trial.target == "QUEUEDATA":
            wait_for(lambda: proc.poll() is not None or _last_state(launch, proc) == "QUEUEDATA", timeout=60,
                     what="the pilot in QUEUEDATA")
        elif trial.failpoint:
            wait_for(lambda: proc.poll() is not None or proc.stopped(), timeout=60, what=f"failpoint {trial.failpoint}")
        elif trial.target == "random moment":  # from INIT on: the handlers are installed before it
            wait_for(lambda: proc.poll() is not None or pilot_dir(launch, proc), timeout=60, what="the pilot dir")
            time.sleep(trial.hold)  # the random moment is what this target tests
        else:
            time.sleep(trial.hold)  # start-up: the interpreter and the imports, before any handler

    def _signal(self, trial: Trial, proc: Proc, launch: Path, fifo: Path | None) -> float:
        """Hold, send the signals (continuing a frozen pilot), feed the FIFO; when the first went."""
        self._hold(trial, proc, launch)
        if trial.freeze:
            assert self.server.boxed is not None
            self.server.boxed.send_signal(signal.SIGSTOP)
        (first, _), *rest = trial.signals
        if trial.target == "ABORTING":  # the first signal takes it into ABORTING, where it freezes
            proc.send_signal(first)
            wait_for(lambda: proc.poll() is not None or proc.stopped(), timeout=60, what="frozen in ABORTING")
        sent_at = time.time()
        for signum, delay in trial.signals if trial.target != "ABORTING" else rest:
            time.sleep(delay)  # "shortly after": the gap is part of the trial's plan
            proc.send_signal(signum)
            proc.send_signal(signal.SIGCONT)
        if fifo is not None:
            threading.Thread(target=self._feed, args=(fifo,), daemon=True).start()
        return sent_at

    def _feed(self, fifo: Path) -> None:
        """Write the queuedata into the FIFO once the pilot has opened it (it blocks until then)."""
        data = requests.get(f"{self.server.url}/cache/schedconfig/TEST_QUEUE.all.json", timeout=30).content

        def opened() -> int | None:
            try:
                return os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:
                return None
        try:
            fd = wait_for(opened, timeout=60, what="the pilot reading the FIFO")
        except AssertionError:
            return
        os.set_blocking(fd, True)
        os.write(fd, data)
        os.close(fd)

    def _check_first(self, trial: Trial, proc: Proc, launch: Path, sent_at: float, label: str) -> None:
        code = check_exit(self.book, proc, f"{label}: first pilot")
        records = _records(pilot_dir(launch, proc))
        before = [r for r in records if r["time"] <= sent_at]
        done_before = bool(before) and before[-1]["dest"] in TERMINAL
        signum = trial.signals[0][0]
        if not done_before:
            self.book.check("exit_code_is_signal", code == 128 + signum,
                            f"{label}: exit {code}, expected {128 + signum}; last state "
                            f"{records[-1]['dest'] if records else None}; stderr: {proc.stderr()[-600:]}")
        own = pilot_dir(launch, proc)
        pids = [int(p) for f in (own.glob("PanDA_Pilot-*/pids") if own else []) for p in f.read_text().split()]
        try:  # the pids are the payload's own view ($$): inside the sandbox's namespace, not the host's
            wait_for(lambda: not self.box.alive_by_own_pid(pids), timeout=5, what="payload tree gone")
            gone = True
        except AssertionError:
            gone = False
        self.book.check("payload_tree_gone", gone, f"{label}: payload processes left after the pilot exited "
                                                   f"(exit {code}): {self.box.alive_by_own_pid(pids)}")
        trial.facts.update(code=code, last=records[-1]["dest"] if records else None, shell=shell_code(code))

    def _next_pilot(self, trial: Trial, first: Proc, launch: Path, panda_id: int, label: str) -> None:
        """A next pilot in the same launch dir: RECOVERY finishes what the first left; one final state."""
        held = any(r.get("job_id") == panda_id and r["dest"] == "VALIDATE" for r in _records(pilot_dir(launch, first)))
        if held:  # taken: the next pilot must finish it from the dead pilot's dir, not take it again
            (launch / "pandaJobData.out").unlink()
        (self.root / f"gate{trial.number}").touch()
        (launch / "queuedata.json").unlink(missing_ok=True)  # the FIFO: the next pilot asks the server
        second = start_pilot(self.box, launch, self.server.url, "--timefloor", "0", "-v", "1", "--getjob-wait", "0",
                             name=f"t{trial.number}b")
        second.wait(120)
        check_exit(self.book, second, f"{label}: next pilot")
        check_launch(self.book, launch, label)
        finals = _finals(self.server, panda_id)
        self.book.check("one_final_state", len(finals) == 1,
                        f"{label}: job {panda_id} has {len(finals)} accepted final states {finals} "
                        f"(held by the first pilot: {held})")
