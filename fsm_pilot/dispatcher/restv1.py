"""The REST v1 dialect, ``/api/v1/<module>/<function>`` (``latest`` is an alias of ``v1``).

Parameters are checked against each function's signature the way panda-server's
``request_validation`` does (same messages: ``Type error: 'job_id' must be of type int,
got str.``), but a refused request gets HTTP 400 with the envelope rather than 200, and
a missing or unexpected parameter is a 400 too (panda-server raises a TypeError: 500).
Application outcomes (no job, a job not found, an invalid job status) stay HTTP 200
with ``success: false``, as in panda-server.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fsm_pilot.dispatcher import jobspec, jobstate
from fsm_pilot.dispatcher.encoding import BadRequest, envelope, params, v1_reply
from fsm_pilot.dispatcher.httpserver import Request, Response
from fsm_pilot.dispatcher.legacy import WORKER_STATES, job_reply
from fsm_pilot.dispatcher.service import Service
from fsm_pilot.dispatcher.store import Update

SC_INVALID = 50
INT: tuple[type, ...] = (int,)
STR: tuple[type, ...] = (str,)
NUM: tuple[type, ...] = (int, float)
BOOL: tuple[type, ...] = (bool,)
ANY: tuple[type, ...] = ()


@dataclass(frozen=True)
class Signature:
    """A v1 function's HTTP method and parameters (name -> accepted JSON types; () = any)."""

    method: str
    required: Mapping[str, tuple[type, ...]]
    optional: Mapping[str, tuple[type, ...]]


def _type_name(types: tuple[type, ...]) -> str:
    return " or ".join(t.__name__ for t in types)


def _cast_query(name: str, value: Any, types: tuple[type, ...]) -> Any:
    """GET parameters arrive as strings: cast to the declared type, as panda-server does."""
    if types != INT or not isinstance(value, str):
        return value
    try:
        return int(value)
    except ValueError as exc:
        raise BadRequest(f"Type error: '{name}' could not be casted to type int.") from exc


def _check(name: str, value: Any, types: tuple[type, ...]) -> None:
    wrong_bool = isinstance(value, bool) and bool not in types
    if types and (wrong_bool or not isinstance(value, types)):
        raise BadRequest(f"Type error: '{name}' must be of type {_type_name(types)}, got {type(value).__name__}.")


def validate(sig: Signature, raw: Mapping[str, Any], is_get: bool) -> dict[str, Any]:
    """The parameters, type-checked; None for an optional one means "not given"."""
    missing = [name for name in sig.required if raw.get(name) is None]
    if missing:
        raise BadRequest(f"missing required parameter(s): {', '.join(missing)}")
    out: dict[str, Any] = {}
    for name, given in raw.items():
        types = sig.required.get(name, sig.optional.get(name))
        if types is None:
            raise BadRequest(f"unexpected parameter '{name}'")
        if given is None:
            continue
        value = _cast_query(name, given, types) if is_get else given
        _check(name, value, types)
        out[name] = value
    return out


ACQUIRE = Signature("POST", {"site_name": STR}, {
    "timeout": INT, "memory": INT, "disk_space": INT, "prod_source_label": STR, "node": STR,
    "computing_element": STR, "prod_user_id": STR, "get_proxy_key": ANY, "task_id": INT, "n_jobs": INT,
    "background": ANY, "resource_type": STR, "harvester_id": STR, "worker_id": INT, "scheduler_id": STR,
    "job_type": STR, "via_topic": ANY, "remaining_time": ANY, "target_architecture": ANY})
UPDATE = Signature("POST", {"job_id": INT, "job_status": STR}, {
    "job_output_report": STR, "node": STR, "cpu_consumption_time": INT, "cpu_consumption_unit": STR,
    "scheduler_id": STR, "pilot_id": STR, "site_name": STR, "pilot_log": STR, "meta_data": STR,
    "cpu_conversion_factor": NUM, "trans_exit_code": INT, "pilot_error_code": INT, "pilot_error_diag": STR,
    "exe_error_code": INT, "exe_error_diag": STR, "pilot_timing": STR, "start_time": STR, "end_time": STR,
    "n_events": INT, "n_input_files": INT, "batch_id": STR, "attempt_nr": INT, "job_metrics": STR,
    "stdout": STR, "job_sub_status": STR, "core_count": INT, "corrupted_files": STR, "mean_core_count": INT,
    "cpu_architecture_level": STR, "grid": STR, "source_site": STR, "destination_site": STR, "timeout": INT,
    **{f"{kind}_{what}": NUM for kind in ("max", "avg") for what in ("rss", "vmem", "swap", "pss")},
    **{f"{kind}_{what}": NUM for kind in ("tot", "rate") for what in ("rchar", "wchar", "rbytes", "wbytes")}})
STATUS = Signature("GET", {"job_ids": ANY}, {"timeout": INT})
WORKER = Signature("POST", {"worker_id": ANY, "harvester_id": ANY, "status": ANY}, {"timeout": INT, "node_id": ANY})
SUBMIT = Signature("POST", {"jobs": ANY}, {})
COMMAND = Signature("POST", {"job_id": INT, "command": STR}, {})
ALIVE = Signature("GET", {}, {})


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
    raw = p["job_ids"] if isinstance(p["job_ids"], list) else [p["job_ids"]]
    ids = [_cast_query("job_ids", value, INT) for value in raw]
    for value in ids:
        _check("job_ids", value, INT)
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
    jobs = p["jobs"]
    if isinstance(jobs, str):  # panda-server takes the list as a JSON string
        jobs = _loads(jobs)
    try:
        ids = svc.submit(jobs)
    except jobspec.SpecError as exc:
        raise BadRequest(str(exc)) from exc
    return envelope(True, f"{len(ids)} job(s) submitted", ids)


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise BadRequest(f"jobs is not valid JSON: {exc}") from exc


def set_command(svc: Service, req: Request, p: dict[str, Any]) -> dict[str, Any]:
    command = p["command"].strip()
    if not command or len(command) > 250 or any(c in command for c in ";\n\r\x00"):
        raise BadRequest("command must be 1-250 characters without ';' or line breaks")
    success, message = svc.store.set_command(p["job_id"], command)
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
    if req.method != sig.method and not (sig.method == "GET" and req.method == "HEAD"):
        body = envelope(False, f"expecting {sig.method}, received {req.method}")
        resp = v1_reply(req, body, 405)
        resp.headers.append(("Allow", sig.method))
        return resp
    try:
        checked = validate(sig, params(req), sig.method == "GET")
        return v1_reply(req, func(svc, req, checked))
    except BadRequest as exc:
        return v1_reply(req, envelope(False, str(exc)), exc.status)
