"""What a state update does to a job, and what the pilot is told: a pure function.

The answers follow panda-server (pandaserver/taskbuffer/db_proxy_mods/job_complex_module.py,
updateJobStatus, and pandaserver/api/v1/pilot_api.py, update_job):

- a job the server does not hold for a pilot (unknown PandaID, or its attemptNr differs:
  panda-server selects ``WHERE PandaID=:id AND attemptNr=:nr`` and finds nothing) gets
  StatusCode 0 with command ``tobekilled``: stop and fail whatever you run for it.
  Older servers answered an attemptNr mismatch with ``badattemptnr`` ("you report an
  attempt that is not the current one"); Pilot 3 ignores that word, so a stale payload
  would keep running, and 1.0 folded it into ``tobekilled``. A job never handed out
  (still ``activated``) is not held by any pilot either, so it gets the same answer here.
  A job re-queued after its getJob reply was lost (``expiry``) has the next attemptNr, so
  the old attempt's late reports take this path too, whatever the job's state now.
- an update after the final report gets ``alreadydone`` (panda-server: an update of a
  ``failed`` job, or a second final report of a ``holding`` one): the report was taken,
  stop reporting this job. Nothing changes.
- an update that would move a job backwards (``starting`` after ``running``, ``running``
  after ``holding``) is recorded but leaves the status where it is, as panda-server does.
- an unknown state is refused: legacy answers bare StatusCode 0 (panda-server's
  ``invalid state`` branch), v1 answers ``success: false`` with StatusCode 50.

panda-server parks a final report as ``holding`` until its adder has registered the
outputs; this dispatcher has no adder, so the final state is stored at once.
"""

from __future__ import annotations

from dataclasses import dataclass

#: States a pilot may report (panda-server's list).
PILOT_STATES = frozenset({"starting", "running", "holding", "transferring", "finished", "failed"})
FINAL = frozenset({"finished", "failed"})
FAILED = "failed"
#: Waiting to be handed out, and handed out but not yet reported on.
ACTIVATED = "activated"
#: Waiting for input data (panda-server's setupper): never handed out here.
ASSIGNED = "assigned"
SENT = "sent"
_RANK = {SENT: 0, "starting": 1, "running": 2, "holding": 3, "transferring": 3, "finished": 4, "failed": 4}
NO_COMMAND = "NULL"
KILL = "tobekilled"
ALREADY_DONE = "alreadydone"


@dataclass(frozen=True)
class Held:
    """The part of a stored job an update is checked against."""

    status: str
    attempt: int
    command: str | None
    debug: bool = False


@dataclass(frozen=True)
class Decision:
    """The outcome: the status to store (None: unchanged), the command, and why."""

    status: str | None
    command: str | None
    outcome: str

    @property
    def accepted(self) -> bool:
        return self.outcome in ("accepted", "stale")


#: The command each refusal answers with (None: no command at all).
REFUSALS: dict[str, str | None] = {
    "invalid_state": None, "unknown_job": KILL, "not_dispatched": KILL, "bad_attempt": KILL,
    "already_final": ALREADY_DONE,
}


def _refusal(held: Held | None, state: str, attempt: int | None) -> str | None:
    """Why this update cannot apply, or None when it can."""
    if state not in PILOT_STATES:
        return "invalid_state"
    if held is None:
        return "unknown_job"
    if attempt is not None and attempt != held.attempt:
        return "bad_attempt"
    if held.status in (ACTIVATED, ASSIGNED):
        return "not_dispatched"
    return "already_final" if held.status in FINAL else None


def answer(held: Held) -> str:
    """The command an accepted update gets: ``debug`` for a job in debug mode, then the pending one.

    panda-server's updateJobStatus answers ``debug,<command>`` for a job whose specialHandling
    asks for debug mode, whatever command was set for it; ``NULL`` when there is nothing.
    """
    parts = (["debug"] if held.debug else []) + ([held.command] if held.command else [])
    return ",".join(parts) or NO_COMMAND


def decide(held: Held | None, state: str, attempt: int | None) -> Decision:
    """Check one update against the stored job."""
    refused = _refusal(held, state, attempt)
    if refused is not None or held is None:
        outcome = refused or "unknown_job"
        return Decision(None, REFUSALS[outcome], outcome)
    pending = answer(held)
    if _RANK[state] < _RANK.get(held.status, 0):
        return Decision(None, pending, "stale")
    return Decision(state, pending, "accepted")

