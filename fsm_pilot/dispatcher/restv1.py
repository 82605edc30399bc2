"""The REST v1 dialect, ``/api/v1/<module>/<function>`` (``latest`` is an alias of ``v1``).

Parameters are checked against each function's signature as panda-server 1.0.4 checks
them (v1params): the same messages, HTTP 200 with ``success: false``. Application
outcomes (no job, a job not found, an invalid job status) are the same envelopes too.
Only a body that is not JSON at all, or not a JSON object, is answered 400 with the
reason, where panda-server answers 500 with a traceback line.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fsm_pilot.dispatcher import jobstate
from fsm_pilot.dispatcher.encoding import BadRequest, envelope, params, v1_reply
from fsm_pilot.dispatcher.httpserver import Request, Response
from fsm_pilot.dispatcher.legacy import WORKER_STATES, job_reply
from fsm_pilot.dispatcher.service import Service, SubmitRefused
from fsm_pilot.dispatcher.store import Update
from fsm_pilot.dispatcher.v1params import ANY, BOOL, INT, INT_LIST, NUM, STR, Refused, Signature, signature, validate

SC_INVALID = 50

ACQUIRE = signature("POST", {"site_name": STR}, {
    "timeout": INT, "memory": INT, "disk_space": INT, "prod_source_label": STR, "node": STR,
    "computing_element": STR, "prod_user_id": STR, "get_proxy_key": STR, "task_id": INT, "n_jobs": INT,
    "background": BOOL, "resource_type": STR, "harvester_id": STR, "worker_id": INT, "scheduler_id": STR,
    "job_type": STR, "via_topic": BOOL, "remaining_time": ANY, "target_architecture": ANY},
    {"timeout": 60, "n_jobs": 1})
UPDATE = signature("POST", {"job_id": INT, "job_status": STR}, {
    "job_output_report": STR, "node": STR, "cpu_consumption_time": INT, "cpu_consumption_unit": STR,
    "scheduler_id": STR, "pilot_id": STR, "site_name": STR, "pilot_log": STR, "meta_data": STR,
    "cpu_conversion_factor": NUM, "trans_exit_code": INT, "pilot_error_code": INT, "pilot_error_diag": STR,
    "exe_error_code": INT, "exe_error_diag": STR, "pilot_timing": STR, "start_time": STR, "end_time": STR,
    "n_events": INT, "n_input_files": INT, "batch_id": STR, "attempt_nr": INT, "job_metrics": STR,
    "stdout": STR, "job_sub_status": STR, "core_count": INT,
    **{f"{kind}_{what}": NUM for kind in ("max", "avg") for what in ("rss", "vmem", "swap", "pss")},
    **{f"{kind}_{what}": NUM for kind in ("tot", "rate") for what in ("rchar", "wchar", "rbytes", "wbytes")},
    "corrupted_files": STR, "mean_core_count": INT, "cpu_architecture_level": STR, "grid": STR,
    "source_site": STR, "destination_site": STR, "timeout": INT},
    {"job_output_report": "", "pilot_log": "", "meta_data": "", "stdout": "", "timeout": 60})
STATUS = signature("GET", {"job_ids": INT_LIST}, {"timeout": INT}, {"timeout": 60})
WORKER = signature("POST", {"worker_id": ANY, "harvester_id": ANY, "status": ANY}, {"timeout": ANY, "node_id": ANY},
                   {"timeout": 60})
SUBMIT = signature("POST", {"jobs": STR}, {})
COMMAND = signature("POST", {"job_id": INT, "command": STR}, {})
ALIVE = signature("GET", {}, {})


def acquire_jobs(svc: Service, req: Request, p: dict[str, Any]) -> dict[str, Any]:
    jobs = svc.acquire(p["site_name"], p.get("computing_element"), p.get("n_jobs", 1), p.get("node") or "unknown", p)
    if not jobs:
        return envelope(False, "No jobs in PanDA")
    return envelope(True, "", {"StatusCode": 0, "jobs": [job_reply(job, len(jobs)) for job in jobs]})


def update_job(svc: Service, req: Request, p: dict[str, Any]) -> dict[str, Any]:
    update = Update(p["job_id"], p["job_status"], p.get("attempt_nr"), p.get("pilot_id"), p)
    decision = svc.store.update(update)
    if decision.outcome == "invalid_state":
        return envelope(False, f"Invalid job status: {p['job_status']}", {"StatusCode": SC_INVALID})
    return envelope(True, "", {"StatusCode": 0, "command": decision.command or jobstate.NO_COMMAND})


def get_job_status(svc: Service, req: Request, p: dict[str, Any]) -> dict[str, Any]:
    ids: list[int] = p["job_ids"]
    data = [{"job_id": s.panda_id, "status": s.status, "attempt_number": s.attempt} if s else
            {"job_id": asked, "status": "not found", "attempt_number": 0}
            for asked, s in zip(ids, svc.store.statuses(ids))]
    return envelope(True, "", data)


def update_worker_status(svc: Service, req: Request, p: dict[str, Any]) -> dict[str, Any]:
    if p["status"] not in WORKER_STATES:
        return envelope(False, f"Invalid worker state. The worker state has to be in {WORKER_STATES}")
    node = p.get("node_id")
    node_id = None if node is None else str(node)
    svc.store.worker_status(str(p["harvester_id"]), str(p["worker_id"]), p["status"], node_id)
    return envelope(True)


def submit(svc: Service, req: Request, p: dict[str, Any]) -> dict[str, Any]:
    """``jobs`` is the JSON text panda-server's dump_jobs_json writes; data: [[PandaID, jobDefinitionID, name]]."""
    try:
        rows, note = svc.submit(p["jobs"])
        return envelope(True, note, rows)
    except SubmitRefused as exc:
        return envelope(False, str(exc))


def set_command(svc: Service, req: Request, p: dict[str, Any]) -> dict[str, Any]:
    success, message = svc.store.set_command(p["job_id"], p["command"])
    return envelope(success, message)


def is_alive(svc: Service, req: Request, p: dict[str, Any]) -> dict[str, Any]:
    return envelope(True)


V1Function = Callable[[Service, Request, dict[str, Any]], dict[str, Any]]
FUNCTIONS: dict[tuple[str, str], tuple[Signature, V1Function]] = {
    ("pilot", "acquire_jobs"): (ACQUIRE, acquire_jobs),
    ("pilot", "update_job"): (UPDATE, update_job),
    ("pilot", "get_job_status"): (STATUS, get_job_status),
    ("pilot", "update_worker_status"): (WORKER, update_worker_status),
    ("job", "submit"): (SUBMIT, submit),
    ("job", "set_command"): (COMMAND, set_command),
    ("system", "is_alive"): (ALIVE, is_alive),
}


def call(svc: Service, req: Request, sig: Signature, func: V1Function) -> Response:
    """Check the method and the parameters, run the function, encode the envelope."""
    try:
        raw = params(req)
        bound = validate(sig, req.method, raw)
        return v1_reply(req, func(svc, req, {k: v for k, v in bound.items() if k in raw}))
    except Refused as exc:
        return v1_reply(req, envelope(False, str(exc)))
    except BadRequest as exc:
        return v1_reply(req, envelope(False, str(exc)), exc.status)
