"""The pilot's PanDA server client: getJob, updateJob, getStatus, worker status, JSON documents.

One ``requests.Session`` for the pilot's lifetime, so every call after the
first reuses the TCP (and TLS) connection. Two dialects: REST v1
(``/api/v1/pilot/<function>``, JSON bodies with real types; panda-server >= 1.0)
and legacy (``/server/panda/<method>``, form-encoded strings; every server
before 1.0). ``api="auto"`` tries v1 first and falls back to legacy when the
server does not know the v1 method (403 "forbidden" or 404, or a 400 saying
the method is unknown), then keeps that choice. Callers always pass the legacy
field names Pilot 3 sends; translation to v1 happens here (``fields``).
"""

from __future__ import annotations

import json
import os
import platform
import random
import re
import time
from collections.abc import Callable, Mapping
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

import requests
import structlog

from fsm_pilot import __version__
from fsm_pilot.errors import PilotError, PilotFailure
from fsm_pilot.panda.auth import Auth
from fsm_pilot.panda.fields import V1Body, getjob_to_v1, to_legacy, update_to_v1, worker_id_v1
from fsm_pilot.panda.replies import Reply, StatusCode, UnreadableReply, parse_reply
from fsm_pilot.panda.results import GetJobResult, UpdateResult, job_result, status_map, update_result
from fsm_pilot.panda.transport import Answer, Call, Log, RetryPolicy, Sleep, Transport

Api = Literal["auto", "v1", "legacy"]
T = TypeVar("T")
#: What a decoded reply means for one call (may raise UnreadableReply: asked again).
Meaning = Callable[[Reply, Call, str], T]
_JSON_NAMES: dict[type, str] = {dict: "object", list: "array", str: "string"}

#: A 400 whose text says this is a method the server does not have.
_UNKNOWN_METHOD = re.compile(r"method\b.*\b(unknown|forbidden|undefined|not (found|allowed|supported))|"
                             r"(unknown|undefined|no such) (method|function|endpoint)", re.IGNORECASE)
#: A 403 with these words is about the credential, not the method: switching dialect cannot help.
_AUTH_REFUSAL = re.compile(r"authentication|banned|certificate|token", re.IGNORECASE)

_V1_PATHS = {"get_job": "pilot/acquire_jobs", "update_job": "pilot/update_job",
             "get_status": "pilot/get_job_status", "update_worker_status": "pilot/update_worker_status"}
_LEGACY_METHODS = {"get_job": "getJob", "update_job": "updateJob", "get_status": "getStatus",
                   "update_worker_status": "updateWorkerPilotStatus"}


def user_agent() -> str:
    """``fsm-pilot/<version> (Python x.y.z; Linux x86_64)``, the shape of Pilot 3's."""
    return f"fsm-pilot/{__version__} (Python {platform.python_version()}; {platform.system()} {platform.machine()})"


def _unreadable(call: Call, answer: Answer, meaning: Meaning[Any]) -> str | None:
    """Why the reply cannot be read (worth asking again), or None: usable, or a refusal to report."""
    try:
        meaning(parse_reply(answer.text), call, answer.text)
    except UnreadableReply as failure:
        return failure.diag
    except PilotFailure:
        return None
    return None


def _json_problem(text: str, kind: type) -> str | None:
    """Why ``text`` is not a JSON ``kind`` (quoting a short snippet), or None."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return f"did not return JSON: {' '.join(text.split())[:160]!r}"
    if not isinstance(value, kind):
        return f"returned a JSON {type(value).__name__}, not a JSON {_JSON_NAMES.get(kind, kind.__name__)}"
    return None


def _unknown_method(answer: Answer) -> bool:
    """The server lacks the v1 method (an older server): try the legacy dialect."""
    if answer.status == 404:
        return True
    if answer.status == 403:
        return _AUTH_REFUSAL.search(answer.text) is None
    return answer.status == 400 and _UNKNOWN_METHOD.search(answer.text) is not None


class PandaClient:
    """Talks to one PanDA server; every method takes ``deadline`` (``time.monotonic()`` based) or None."""

    def __init__(self, url: str, *, api: Api = "auto", auth: Auth | None = None,
                 policy: RetryPolicy | None = None, sleep: Sleep | None = None, log: Log | None = None,
                 clock: Callable[[], float] = time.monotonic, rng: random.Random | None = None) -> None:
        if api not in ("auto", "v1", "legacy"):
            raise ValueError(f"api must be auto, v1 or legacy, not {api!r}")
        self.base = url.rstrip("/")
        self.api: Api = api
        self._dialect: str | None = None if api == "auto" else api
        self.auth = auth or Auth()
        self.log: Log = log if log is not None else structlog.get_logger("fsm_pilot.panda")
        self.session = requests.Session()
        self.session.headers.update({"User-Agent": user_agent(), "Accept": "application/json"})
        self.transport = Transport(self.session, self.auth, policy or RetryPolicy(), self.log,
                                   sleep=sleep, clock=clock, rng=rng)
        self._read_environment_once()

    def _read_environment_once(self) -> None:
        """Read once what requests would read from the environment at every call (0.15 ms a call, measured).

        The pilot's environment does not change while it runs: the proxies for this server (HTTP_PROXY,
        HTTPS_PROXY, ALL_PROXY, honouring NO_PROXY) and, where nothing else says how to verify it, the CA
        bundle of REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE. A ~/.netrc is not read (PanDA authenticates by
        certificate or token).
        """
        self.session.proxies.update(requests.utils.get_environ_proxies(self.base))
        if self.transport.verify is True:
            self.transport.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        self.session.trust_env = False

    def __repr__(self) -> str:
        return f"PandaClient({self.base!r}, api={self.api!r}, dialect={self._dialect!r}, auth={self.auth!r})"

    def __enter__(self) -> PandaClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the pooled connection(s)."""
        self.session.close()

    @property
    def dialect(self) -> str | None:
        """The dialect in use: fixed by ``api``, or what ``auto`` settled on (None until then)."""
        return self._dialect

    # --- the calls ----------------------------------------------------------

    def get_job(self, request: Mapping[str, object], *, deadline: float | None = None) -> GetJobResult:
        """Ask for a job with Pilot 3's getJob fields; ``job``, ``no_jobs`` or ``refused``.

        A server that cannot be reached or understood raises
        PilotFailure(COMMUNICATIONFAILURE): that is never "no jobs".
        """
        result, call = self._request(
            lambda: self._v1("get_job", getjob_to_v1(request)),
            lambda: self._legacy("get_job", to_legacy(request)), deadline,
            lambda reply, call, text: job_result(reply, call.dialect, text))
        self.log.info("panda.get_job", dialect=call.dialect, kind=result.kind, status=result.status,
                      jobs=len(result.jobs), panda_id=result.job.get("PandaID") if result.job else None)
        return result

    def update_job(self, fields: Mapping[str, object], *, deadline: float | None = None) -> UpdateResult:
        """Report a job's state with Pilot 3's updateJob fields; the server's commands come back split."""
        result, call = self._request(
            lambda: self._v1("update_job", update_to_v1(fields)),
            lambda: self._legacy("update_job", to_legacy(fields)), deadline,
            lambda reply, call, text: update_result(reply, call.dialect))
        # the reply as sent; whether the report was taken is the caller's call (a final one answered
        # tobekilled was not), so this line says reply_ok, never ok
        self.log.info("panda.update_job", dialect=call.dialect, job_id=fields.get("jobId"), state=fields.get("state"),
                      reply_ok=result.ok, status=result.status, commands=list(result.commands))
        return result

    def get_status(self, ids: list[int], *, deadline: float | None = None) -> dict[int, str]:
        """Server-side state of each job (``notfound`` / ``not found`` for unknown ids)."""
        if not ids:
            return {}
        statuses, _ = self._request(
            lambda: Call("get_status", "v1", "GET", self._v1_url("get_status"),
                         params=[("job_ids", str(int(job_id))) for job_id in ids]),
            lambda: self._legacy("get_status", {"ids": " ".join(str(int(job_id)) for job_id in ids)}), deadline,
            lambda reply, call, text: status_map(reply, ids, text))
        return statuses

    def update_worker_status(self, worker_id: str | int, harvester_id: str, status: str, site: str,
                             node_id: str | None = None, *, deadline: float | None = None) -> bool:
        """Tell Harvester's worker table the pilot ``started`` / ``finished``; True when accepted.

        v1 has no ``site`` argument (the server knows the worker), so it is
        sent in the legacy dialect only.
        """
        v1_body: dict[str, object] = {"worker_id": worker_id_v1(worker_id), "harvester_id": harvester_id,
                                      "status": status}
        form = {"workerID": str(worker_id), "harvesterID": harvester_id, "status": status, "site": site}
        if node_id is not None:
            v1_body["node_id"] = form["node_id"] = node_id
        answer, call = self._exchange(  # unreadable replies are not retried: legacy refuses in bare prose
            lambda: self._v1("update_worker_status", V1Body(v1_body, ())),
            lambda: self._legacy("update_worker_status", form), deadline, None)
        try:
            reply = self._interpret(call, answer, lambda reply, call, text: reply)
        except PilotFailure as failure:  # legacy answers refusals as bare prose
            self.log.warning("panda.update_worker_status", dialect=call.dialect, ok=False, diag=failure.diag)
            return False
        ok = reply.success and reply.status in (None, StatusCode.SUCCESS)
        self.log.info("panda.update_worker_status", dialect=call.dialect, ok=ok, status=reply.status)
        return ok

    def get_json(self, url: str, *, deadline: float | None = None, kind: type = object) -> Any:
        """A JSON document of type ``kind`` over http(s) (queuedata, storage endpoints), with the same retries.

        A body that is not JSON, or not a ``kind``, is retried like a 5xx. The
        bearer token goes only to the PanDA server's own scheme, host and port.
        """
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise PilotFailure(PilotError.COMMUNICATIONFAILURE, f"get_json: not an http(s) URL: {url!r}")
        call = Call("get_json", "plain", "GET", url, send_token=self._same_origin(url))
        answer = self._checked(call, self.transport.send(call, deadline, lambda got: _json_problem(got.text, kind)))
        return json.loads(answer.text)  # the check passed: it is JSON, and a ``kind``

    # --- dialects -----------------------------------------------------------

    def _request(self, v1: Callable[[], Call], legacy: Callable[[], Call], deadline: float | None,
                 meaning: Meaning[T]) -> tuple[T, Call]:
        """Exchange (replies ``meaning`` cannot read are retried), then interpret the reply."""
        answer, call = self._exchange(v1, legacy, deadline, meaning)
        return self._interpret(call, answer, meaning), call

    def _exchange(self, v1: Callable[[], Call], legacy: Callable[[], Call], deadline: float | None,
                  meaning: Meaning[Any] | None) -> tuple[Answer, Call]:
        """Send in the settled dialect, or (auto, first call) v1 then legacy if v1 is unknown."""
        if self._dialect is None:
            call = v1()
            answer = self._send(call, deadline, meaning)
            if _unknown_method(answer):
                self.log.info("panda.fallback", method=call.op, status=answer.status, to="legacy")
                call = legacy()
                answer = self._send(call, deadline, meaning)
            answer = self._checked(call, answer)
            self._dialect = call.dialect
            self.log.info("panda.dialect", dialect=call.dialect)
            return answer, call
        call = v1() if self._dialect == "v1" else legacy()
        return self._checked(call, self._send(call, deadline, meaning)), call

    def _send(self, call: Call, deadline: float | None, meaning: Meaning[Any] | None) -> Answer:
        """One logical request; with a ``meaning``, a reply it cannot read is retried."""
        if meaning is None:
            return self.transport.send(call, deadline)
        return self.transport.send(call, deadline, lambda answer: _unreadable(call, answer, meaning))

    def _checked(self, call: Call, answer: Answer) -> Answer:
        """4xx is a failure with the server's words (redacted); retrying would not change it."""
        if answer.status < 400:
            return answer
        snippet = " ".join(answer.text.split())[:160]
        raise PilotFailure(PilotError.COMMUNICATIONFAILURE, self.auth.redact(
            f"{call.op} ({call.dialect}): HTTP {answer.status}: {snippet!r}"))

    def _interpret(self, call: Call, answer: Answer, meaning: Meaning[T]) -> T:
        """Decode and interpret; a failure's diag names the call and never quotes the token."""
        try:
            return meaning(parse_reply(answer.text), call, answer.text)
        except PilotFailure as failure:
            raise PilotFailure(failure.error, self.auth.redact(f"{call.op} ({call.dialect}): {failure.diag}")) from None

    def _v1(self, op: str, translated: V1Body) -> Call:
        if translated.dropped:
            self.log.warning("panda.fields_dropped", method=op, fields=list(translated.dropped))
        return Call(op, "v1", "POST", self._v1_url(op), json=translated.body)

    def _legacy(self, op: str, form: Mapping[str, str]) -> Call:
        return Call(op, "legacy", "POST", f"{self.base}/server/panda/{_LEGACY_METHODS[op]}", form=form)

    def _v1_url(self, op: str) -> str:
        return f"{self.base}/api/v1/{_V1_PATHS[op]}"

    def _same_origin(self, url: str) -> bool:
        mine, theirs = urlsplit(self.base), urlsplit(url)
        return (mine.scheme, mine.netloc) == (theirs.scheme, theirs.netloc)
