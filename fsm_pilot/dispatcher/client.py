"""``submit`` and ``status``: small clients of the v1 API, for people and scripts.

Both speak panda-server 1.0.4's API exactly, so the same command works against the
embedded dispatcher and a real panda-server: ``submit`` posts ``{"jobs": "<JSON text>"}``
encoded as panda-server's own ``JobUtils.dump_jobs_json`` encodes JobSpecs (jobwire) and
reads the reply's ``[[PandaID, jobDefinitionID, jobName], ...]``; ``status`` asks
``get_job_status`` with one ``job_ids`` query parameter per job.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from fsm_pilot.dispatcher.jobwire import WireJob, encode
from fsm_pilot.dispatcher.submitspec import SpecError, to_wire
from fsm_pilot.panda.auth import auth_from_env

TIMEOUT = 30.0
#: Most jobs panda-server stores from one submission.
MAX_JOBS = 5000
#: get_job_status's status for an unknown PandaID (panda-server's words).
NOT_FOUND = "not found"


class ClientError(Exception):
    """What to tell the user: the server is unreachable, refused, or a job file is bad."""


def read_jobs(paths: Sequence[Path], queue: str | None) -> list[WireJob]:
    """JobSpecs from job files holding one job or a list of them (submitspec says what a job may name)."""
    jobs: list[WireJob] = []
    for path in paths:
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ClientError(f"cannot read job file {path}: {exc}") from exc
        items = doc if isinstance(doc, list) else [doc]
        if not items or not all(isinstance(item, dict) for item in items):
            raise ClientError(f"{path}: expected a job definition (JSON object) or a list of them")
        for index, item in enumerate(items):
            try:
                jobs.append(to_wire(item, queue))
            except SpecError as exc:
                raise ClientError(f"{path} job #{index}: {exc}") from exc
    return jobs


def _call(method: str, url: str, **kwargs: Any) -> Any:
    """One v1 call; the envelope's data, or a ClientError saying why not."""
    return _envelope(method, url, **kwargs)[0]


def _envelope(method: str, url: str, **kwargs: Any) -> tuple[Any, str]:
    """One v1 call; the envelope's data and message, or a ClientError saying why not.

    Credentials as the pilot finds them (fsm_pilot.panda.auth): the X509 proxy as client
    certificate, CAs from X509_CERT_DIR, a token from PANDA_AUTH_TOKEN with
    PANDA_AUTH_ORIGIN; panda-server takes submissions only from an authenticated caller.
    """
    auth = auth_from_env()
    headers = {"Accept": "application/json", **auth.headers()}
    try:
        resp = requests.request(method, url, headers=headers, timeout=TIMEOUT, cert=auth.cert, verify=auth.verify,
                                **kwargs)
    except requests.RequestException as exc:
        raise ClientError(auth.redact(f"cannot reach the server at {url}: {exc}")) from exc
    try:
        body = resp.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or "success" not in body:
        raise ClientError(auth.redact(f"{url} answered HTTP {resp.status_code}: {resp.text[:300]}"))
    if not body["success"]:
        raise ClientError(auth.redact(f"the server refused (HTTP {resp.status_code}): {body.get('message')}"))
    return body.get("data"), str(body.get("message") or "")


@dataclass(frozen=True)
class Submitted:
    """What the server answered: per job (PandaID or None when not stored, jobDefinitionID, name), and its note."""

    jobs: list[tuple[int | None, Any, Any]]
    message: str


def submit(base: str, jobs: Sequence[WireJob]) -> Submitted:
    """Submit; a job the server did not store (PandaID ``"NULL"`` in its reply) has PandaID None."""
    if len(jobs) > MAX_JOBS:
        raise ClientError(f"at most {MAX_JOBS} jobs per submission (panda-server drops the rest), got {len(jobs)}")
    data, message = _envelope("POST", f"{base.rstrip('/')}/api/v1/job/submit", json={"jobs": encode(jobs)})
    if not isinstance(data, list) or len(data) != len(jobs):
        raise ClientError(f"unexpected submit reply for {len(jobs)} job(s): {data!r}")
    out: list[tuple[int | None, Any, Any]] = []
    for item in data:
        if not isinstance(item, list) or len(item) != 3:
            raise ClientError(f"unexpected submit reply: {data!r}")
        stored = isinstance(item[0], int) and not isinstance(item[0], bool)
        out.append((item[0] if stored else None, item[1], item[2]))
    return Submitted(out, message)


def status(base: str, ids: Sequence[int]) -> list[tuple[int, str, int | None]]:
    """(PandaID, status, attemptNr) per job; attemptNr None for a job the server does not know."""
    data = _call("GET", f"{base.rstrip('/')}/api/v1/pilot/get_job_status", params={"job_ids": list(ids)})
    if not isinstance(data, list):
        raise ClientError(f"unexpected status reply: {data!r}")
    try:
        return [(int(item["job_id"]), str(item["status"]),
                 None if item["status"] == NOT_FOUND else int(item["attempt_number"])) for item in data]
    except (KeyError, TypeError, ValueError) as exc:
        raise ClientError(f"unexpected status reply: {data!r}") from exc
