"""What a decoded reply means for each call: a job, no job, a refusal, commands.

Kept apart from the HTTP code so every reply shape can be tested as data. The
rule that matters most: "no jobs" is only ever StatusCode 20 or v1's
"No jobs in PanDA"; a server we cannot reach or understand is a
PilotFailure(COMMUNICATIONFAILURE), never an empty queue.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from fsm_pilot.errors import PilotError, PilotFailure
from fsm_pilot.panda.replies import Reply, StatusCode, communication_failure

JobKind = Literal["job", "no_jobs", "refused"]
Record = dict[str, Any]


@dataclass(frozen=True)
class GetJobResult:
    """getJob's outcome; ``jobs`` holds the raw records (PanDA field names, values as sent)."""

    kind: JobKind
    jobs: tuple[Record, ...] = ()
    status: int | None = None
    message: str = ""
    dialect: str = ""

    @property
    def job(self) -> Record | None:
        """The first (usually only) job record, or None."""
        return self.jobs[0] if self.jobs else None


@dataclass(frozen=True)
class UpdateResult:
    """updateJob's outcome: accepted or not, and the commands the server sent back."""

    ok: bool
    status: int | None
    message: str = ""
    commands: tuple[str, ...] = field(default_factory=tuple)
    dialect: str = ""


def split_commands(value: object) -> tuple[str, ...]:
    """``"debug,tobekilled"`` -> ``("debug", "tobekilled")``; "NULL", "" and None mean none."""
    if value is None:
        return ()
    parts = (part.strip() for part in str(value).split(","))
    return tuple(part for part in parts if part and part.upper() != "NULL")


def job_result(reply: Reply, dialect: str, text: str) -> GetJobResult:
    """Interpret a getJob / acquire_jobs reply."""
    if reply.status == StatusCode.NO_JOBS:
        return GetJobResult("no_jobs", status=int(StatusCode.NO_JOBS), message=reply.message, dialect=dialect)
    if not reply.success or reply.status not in (None, StatusCode.SUCCESS):
        return GetJobResult("refused", status=reply.status, message=reply.message, dialect=dialect)
    jobs = _job_records(reply, text)
    if not jobs:
        return GetJobResult("no_jobs", status=int(StatusCode.NO_JOBS), message="empty job list", dialect=dialect)
    return GetJobResult("job", jobs, status=int(StatusCode.SUCCESS), message=reply.message, dialect=dialect)


def _job_records(reply: Reply, text: str) -> tuple[Record, ...]:
    """The ``jobs`` list (a JSON string inside a urlencoded reply), else the top-level job."""
    fields = reply.fields
    if "jobs" in fields:
        jobs = fields["jobs"]
        if isinstance(jobs, str):
            try:
                jobs = json.loads(jobs)
            except ValueError:
                raise communication_failure("getJob reply has an unreadable jobs list", text) from None
        if not isinstance(jobs, list) or not all(isinstance(job, dict) for job in jobs):
            raise communication_failure("getJob reply has a jobs value that is not a list of objects", text)
        return tuple(jobs)
    if "PandaID" in fields:
        return (dict(fields),)
    if reply.encoding.startswith("v1"):
        raise communication_failure("acquire_jobs reply has success but no jobs", text)
    raise communication_failure("getJob reply has StatusCode 0 but no job", text)


def update_result(reply: Reply, dialect: str) -> UpdateResult:
    """Interpret an updateJob / update_job reply."""
    ok = reply.success and reply.status in (None, StatusCode.SUCCESS)
    commands = split_commands(reply.fields.get("command")) if ok else ()
    return UpdateResult(ok, reply.status, reply.message, commands, dialect)


def status_map(reply: Reply, ids: Sequence[int], text: str) -> dict[int, str]:
    """getStatus: v1 ``data`` list of ``{job_id, status}``; legacy ``status`` joined by '+' in request order."""
    if not reply.success or reply.status not in (None, StatusCode.SUCCESS):
        code = "no code" if reply.status is None else f"StatusCode {reply.status}"
        raise PilotFailure(PilotError.COMMUNICATIONFAILURE, f"getStatus refused ({code}): {reply.message}")
    if reply.encoding.startswith("v1"):
        return _v1_statuses(reply.data, text)
    states = str(reply.fields.get("status", "")).split("+")
    if len(states) != len(ids):
        raise communication_failure(f"getStatus reply has {len(states)} states for {len(ids)} ids", text)
    return {int(job_id): state for job_id, state in zip(ids, states)}


def _v1_statuses(data: object, text: str) -> dict[int, str]:
    """``[{"job_id": 1, "status": "running", "attempt_number": 0}, ...]`` -> ``{1: "running"}``."""
    if not isinstance(data, list):
        raise communication_failure("get_job_status reply data is not a list", text)
    statuses: dict[int, str] = {}
    for entry in data:
        if not isinstance(entry, dict) or "job_id" not in entry or "status" not in entry:
            raise communication_failure("get_job_status reply has an entry without job_id/status", text)
        try:
            statuses[int(entry["job_id"])] = str(entry["status"])
        except (TypeError, ValueError):
            raise communication_failure("get_job_status reply has a non-numeric job_id", text) from None
    return statuses
