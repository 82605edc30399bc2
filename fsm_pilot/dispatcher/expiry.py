"""A job handed out but never reported on: back to the queue with the next attempt, or failed.

When a getJob reply is lost after the server committed the handout, no pilot holds the
job and none ever will report it: without a timeout it stays ``sent`` forever.
panda-server's Watcher fails a job still ``sent`` 30 minutes after its last change
("Sent job didn't receive reply from pilot within 30 min"), and its retry machinery then
makes a new attempt while the task's maxAttempt allows. This dispatcher does both in one
step, keeping the PandaID: the job goes back to ``activated`` with attemptNr + 1, so a
late report from the old attempt no longer matches and is answered ``tobekilled``
(see ``jobstate``), exactly like any report for an attempt the server does not hold.

Attempts count the way panda-server's attemptNr does, from the submitted value (0 by
default): a job is re-queued only while the next attemptNr stays below ``max_attempts``;
otherwise it fails. Only ``sent`` jobs expire: one that reported anything is held by a
pilot and left alone. The check is a pure function of the stored times and the clock, so
it gives the same answer whether a getJob, an update, a status call or the server loop
runs it first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from fsm_pilot.dispatcher import jobstate

#: panda-server's Watcher: 30 minutes in ``sent`` without a reply.
DEFAULT_SENT_TIMEOUT = 1800.0
#: Attempts a job gets here (panda-server takes it from the task): attemptNr 0, 1, 2.
DEFAULT_MAX_ATTEMPTS = 3
REQUEUED = "requeued"
FAILED = "failed"


@dataclass(frozen=True)
class Policy:
    """How long a job may stay ``sent``, and how many attempts it gets."""

    sent_timeout: float = DEFAULT_SENT_TIMEOUT
    max_attempts: int = DEFAULT_MAX_ATTEMPTS

    def problems(self) -> list[str]:
        """What makes this policy unusable (the option name first), for a start-up message."""
        found = []
        if not (math.isfinite(self.sent_timeout) and self.sent_timeout > 0):
            found.append(f"--sent-timeout must be a positive number of seconds, got {self.sent_timeout}")
        if self.max_attempts < 1:
            found.append(f"--max-attempts must be at least 1, got {self.max_attempts}")
        return found

    @property
    def check_interval(self) -> float:
        """How often the server loop looks for expired jobs: often enough for a short timeout."""
        return min(5.0, max(0.05, self.sent_timeout / 4))


@dataclass(frozen=True)
class Verdict:
    """What becomes of one expired job: the next attempt (None: failed) and why."""

    attempt: int | None
    reason: str

    @property
    def outcome(self) -> str:
        return FAILED if self.attempt is None else REQUEUED

    @property
    def status(self) -> str:
        """The job's status from now on."""
        return jobstate.FAILED if self.attempt is None else jobstate.ACTIVATED


def verdict(policy: Policy, attempt: int) -> Verdict:
    """Re-queue as attempt + 1 while that stays below the limit, else fail."""
    lost = f"no report from the pilot within {policy.sent_timeout:g} s of handing out attemptNr {attempt}"
    following = attempt + 1
    if following < policy.max_attempts:
        return Verdict(following, f"{lost}: re-queued as attemptNr {following}")
    return Verdict(None, f"{lost}: failed, attemptNr {following} would reach the limit of "
                         f"{policy.max_attempts} attempts")


def record(policy: Policy, attempt: int, dispatched: float, pilot: str | None, why: Verdict) -> dict[str, Any]:
    """The history row's fields: enough to tell later what happened and under which settings."""
    return {"reason": why.reason, "attemptNr": attempt, "newAttemptNr": why.attempt, "dispatched": dispatched,
            "pilot": pilot, "sentTimeout": policy.sent_timeout, "maxAttempts": policy.max_attempts}
