"""``submit`` and ``status``: small clients of the v1 API, for people and scripts."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import requests

TIMEOUT = 30.0
#: get_job_status's status for an unknown PandaID (panda-server's words).
NOT_FOUND = "not found"


class ClientError(Exception):
    """What to tell the user: the server is unreachable, refused, or a job file is bad."""


def read_jobs(paths: Sequence[Path], queue: str | None) -> list[dict[str, Any]]:
    """Job definitions from files holding one object or a list of them."""
    jobs: list[dict[str, Any]] = []
    for path in paths:
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ClientError(f"cannot read job file {path}: {exc}") from exc
        items = doc if isinstance(doc, list) else [doc]
        if not items or not all(isinstance(item, dict) for item in items):
            raise ClientError(f"{path}: expected a job definition (JSON object) or a list of them")
        jobs.extend(items)
    if queue:
        for job in jobs:
            job["computingSite"] = queue
    return jobs


def _call(method: str, url: str, **kwargs: Any) -> Any:
    """One v1 call; the envelope's data, or a ClientError saying why not."""
    try:
        resp = requests.request(method, url, headers={"Accept": "application/json"}, timeout=TIMEOUT, **kwargs)
    except requests.RequestException as exc:
        raise ClientError(f"cannot reach the dispatcher at {url}: {exc}") from exc
    try:
        body = resp.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or "success" not in body:
        raise ClientError(f"{url} answered HTTP {resp.status_code}: {resp.text[:300]}")
    if not body["success"]:
        raise ClientError(f"the dispatcher refused (HTTP {resp.status_code}): {body.get('message')}")
    return body.get("data")


def submit(base: str, jobs: list[dict[str, Any]]) -> list[int]:
    data = _call("POST", f"{base.rstrip('/')}/api/v1/job/submit", json={"jobs": jobs})
    if not isinstance(data, list):
        raise ClientError(f"unexpected submit reply: {data!r}")
    return [int(i) for i in data]


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
