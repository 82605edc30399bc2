"""The legacy dialect, ``POST /server/panda/<method>``: what every Pilot 3 release speaks.

Answers follow panda-server's JobDispatcher (StatusCode 0 success, 20 no job; an unknown
``state`` is answered with a bare StatusCode 0; ``getStatus`` always replies urlencoded,
as panda-server's does). Where panda-server crashes with a 500 on a malformed request
(a missing siteName, a jobId that is not a number) this dispatcher answers 400 with the
reason instead.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from fsm_pilot.dispatcher import jobstate
from fsm_pilot.dispatcher.encoding import BadRequest, accepts_json, legacy_params, legacy_reply
from fsm_pilot.dispatcher.httpserver import Request, Response
from fsm_pilot.dispatcher.service import Service
from fsm_pilot.dispatcher.store import Update

SC_SUCCESS = 0
SC_NO_JOBS = 20
WORKER_STATES = ("started", "finished")


def _require(fields: Mapping[str, str], *names: str) -> list[str]:
    missing = [name for name in names if name not in fields]
    if missing:
        raise BadRequest(f"missing required field(s): {', '.join(missing)}")
    return [fields[name] for name in names]


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def job_reply(job: Mapping[str, Any], n_sent: int) -> dict[str, Any]:
    """A served job: StatusCode first, the job's fields, nSent last (panda-server's order)."""
    return {"StatusCode": SC_SUCCESS, **job, "nSent": n_sent}


def get_job(svc: Service, req: Request) -> Response:
    fields = legacy_params(req)
    (site,) = _require(fields, "siteName")
    n_jobs = fields.get("nJobs")
    count = _int_or_none(n_jobs) or 1
    pilot = fields.get("node") or "unknown"
    jobs = svc.acquire(site, fields.get("computingElement"), count, pilot, fields)
    if not jobs:
        data: dict[str, Any] = {"StatusCode": SC_NO_JOBS}
        if accepts_json(req):
            data["errorDialog"] = "no jobs in PanDA"
        return legacy_reply(req, data)
    replies = [job_reply(job, len(jobs)) for job in jobs]
    if n_jobs is None:
        return legacy_reply(req, replies[0])
    # urlencoded, panda-server sends the list as one JSON string field
    listed: Any = replies if accepts_json(req) else json.dumps(replies)
    return legacy_reply(req, {"StatusCode": SC_SUCCESS, "jobs": listed})


def update_job(svc: Service, req: Request) -> Response:
    fields = legacy_params(req)
    job_id, state = _require(fields, "jobId", "state")
    if job_id == "NULL":  # panda-server: an aborting pilot's update without a job
        return legacy_reply(req, {"StatusCode": SC_SUCCESS})
    panda_id = _int_or_none(job_id)
    if panda_id is None:
        raise BadRequest(f"jobId must be an integer, got {job_id!r}")
    update = Update(panda_id, state, _int_or_none(fields.get("attemptNr")), fields.get("pilotID") or None, fields)
    decision = svc.store.update(update)
    if decision.outcome == "invalid_state":
        return legacy_reply(req, {"StatusCode": SC_SUCCESS})
    return legacy_reply(req, {"StatusCode": SC_SUCCESS, "command": decision.command or jobstate.NO_COMMAND})


def get_status(svc: Service, req: Request) -> Response:
    fields = legacy_params(req)
    (ids,) = _require(fields, "ids")
    asked = [_int_or_none(raw) for raw in ids.split()]
    known = iter(svc.store.statuses([panda_id for panda_id in asked if panda_id is not None]))
    statuses, attempts = [], []
    for panda_id in asked:
        found = next(known) if panda_id is not None else None
        statuses.append(found.status if found else "notfound")
        attempts.append(str(found.attempt) if found else "0")
    data = {"StatusCode": SC_SUCCESS, "status": "+".join(statuses), "attemptNr": "+".join(attempts)}
    return legacy_reply(req, data, force_urlencoded=True)


def update_worker_pilot_status(svc: Service, req: Request) -> Response:
    fields = legacy_params(req)
    _site, worker, harvester, status = _require(fields, "site", "workerID", "harvesterID", "status")
    if status not in WORKER_STATES:
        text = f"Invalid worker state. The worker state has to be in {WORKER_STATES}"
        return Response(200, text.encode(), "text/plain")
    svc.store.worker_status(harvester, worker, status, fields.get("node_id"))
    return legacy_reply(req, {"StatusCode": SC_SUCCESS})


METHODS: dict[str, Callable[[Service, Request], Response]] = {
    "getJob": get_job,
    "updateJob": update_job,
    "getStatus": get_status,
    "updateWorkerPilotStatus": update_worker_pilot_status,
}
