"""A fleet of real pilots draining the dispatcher's jobs, wave after wave, and the job invariants.

Pilot n of every wave runs in launch dir n (a worker node), so a final update a pilot
could not deliver waits on disk for the next pilot there (RECOVERY). Waves go on
while something can still progress: a job waiting to be handed out, an undelivered
update on disk, or a dispatcher that requeues a job whose getJob reply was lost
(``--sent-timeout``). Each payload leaves a marker ``<PandaID>.<attemptNr>.<pid>``
in a shared dir, so a job run twice is counted whatever pilots and dispatcher believe.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.pilotrun import wait_for
from tests.pilotserver import job_spec
from tests.reliability.cluster import FINAL, BoxDispatcher, can_requeue, start_pilot, wait_all
from tests.reliability.invariants import check_pilot
from tests.reliability.ledger import Ledger
from tests.reliability.sandbox import Proc, Sandbox

JOB_INVARIANTS = ("ran_at_most_once", "reached_final_state", "delivered_means_accepted")


def marker_job(markers: Path, then: str = "") -> dict[str, Any]:
    """A job that records each run of it, writes an output, then does ``then``."""
    body = f"touch {markers}/$PandaID.$PanDA_AttemptNr.$$; echo $PandaID > out.txt; {then}"
    return job_spec(f"-c '{body}'", ("out.txt",))


def _pending(launches: list[Path]) -> set[int]:
    """The jobs whose final update waits on disk: a pilot could not deliver it yet."""
    found: set[int] = set()
    for path in (p for launch in launches for p in launch.glob("Panda_Pilot_*/final_update_*.json")):
        try:
            if json.loads(path.read_text()).get("fsm_pilot_pending"):
                found.add(int(path.stem.rsplit("_", 1)[1]))
        except (OSError, ValueError):
            continue
    return found


class Fleet:
    """``size`` pilots per wave, talking to ``url`` (the dispatcher, or a proxy in front of it)."""

    def __init__(self, box: Sandbox, server: BoxDispatcher, root: Path, book: Ledger, *, size: int, url: str,
                 args: tuple[str, ...], sent_timeout: float) -> None:
        self.box, self.server, self.book, self.url, self.args = box, server, book, url, args
        self.sent_timeout = sent_timeout
        self.launches = [root / f"node{n}" for n in range(size)]
        for launch in self.launches:
            launch.mkdir(parents=True)
        self.waves = 0

    def _all_final(self) -> bool:
        return all(s in FINAL for s in self.server.statuses().values())

    def can_progress(self) -> bool:
        """Another wave could move a job: one is waiting, an update is pending, or a lost one comes back."""
        statuses = self.server.statuses()
        if all(s in FINAL for s in statuses.values()):
            return False
        open_jobs = {job for job, status in statuses.items() if status not in FINAL}
        if "activated" in statuses.values() or _pending(self.launches) & open_jobs:
            return True  # (an update pending for a job that ended in another attempt cannot move it)
        if not can_requeue():
            return False
        try:  # the dispatcher requeues a job whose getJob reply was lost, after --sent-timeout
            wait_for(lambda: "activated" in self.server.statuses().values() or self._all_final(),
                     timeout=self.sent_timeout * 3 + 5, what="a lost job requeued")
        except AssertionError:
            return False
        return True

    def drain(self, deadline: float, during: Callable[[list[Proc]], None] | None = None) -> int:
        """Run waves until nothing can progress or ``deadline`` (monotonic); ``during`` runs beside each."""
        while time.monotonic() < deadline and self.can_progress():
            self.waves += 1
            procs = [start_pilot(self.box, launch, self.url, *self.args, name=f"w{self.waves}-{launch.name}")
                     for launch in self.launches]
            if during is not None:
                during(procs)
            wait_all(procs, timeout=max(30.0, deadline - time.monotonic()))
            for proc, launch in zip(procs, self.launches):
                self.book.run()
                check_pilot(self.book, proc, launch, f"wave {self.waves} {launch.name} (pid {proc.pid})")
        return self.waves

    def check_jobs(self, ids: list[int], markers: Path) -> None:
        """No job ran twice (same PandaID and attempt); every job ended in a final state."""
        runs = Counter(".".join(p.name.split(".")[:2]) for p in markers.iterdir())
        for run, count in sorted(runs.items()):
            panda_id, attempt = run.split(".")
            self.book.check("ran_at_most_once", count == 1, f"job {panda_id} attempt {attempt} ran {count} times")
        statuses = self.server.statuses()
        for job in ids:
            status = statuses.get(job)
            self.book.check("reached_final_state", status in FINAL, f"job {job} ended the campaign {status!r}")
        self._check_delivered()

    def _check_delivered(self) -> None:
        """A final update a pilot marked delivered was accepted by the dispatcher (not refused)."""
        accepted = {int(r[0]) for r in self.server.query(
            "SELECT DISTINCT PandaID FROM job_history WHERE event = 'update' AND outcome = 'accepted' "
            "AND state IN ('finished', 'failed')")}
        for path in (p for launch in self.launches for p in launch.glob("Panda_Pilot_*/final_update_*.json")):
            fields = json.loads(path.read_text())
            if fields.get("fsm_pilot_pending") is False:
                panda_id = int(path.stem.rsplit("_", 1)[1])
                self.book.check("delivered_means_accepted", panda_id in accepted,
                                f"{path.parent.parent.name}/{path.parent.name}: job {panda_id}'s final update is "
                                f"marked delivered, but the dispatcher accepted no final state for it")
