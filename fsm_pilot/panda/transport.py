"""One HTTP exchange with bounded retries: the only place that touches the network.

Connection errors, timeouts, 5xx replies and replies the caller cannot read
(a 200 with an empty, truncated or foreign body: the caller's ``check`` says
why) are retried with exponential backoff and full jitter (a random wait in
``[0, min(cap, base * 2**n)]``, the cap at most a quarter of the budget, so a
site's pilots do not hammer a recovering server in step). The time budget is
the bound: attempts go on until the policy's total time or the caller's
``deadline``, whichever comes first (an attempt cap applies only when the
policy sets one); a wait is cut short so that the last attempt still starts
inside the budget, no request starts past it, and each request's timeouts are
cut to the time left. The wait between attempts is the injected ``sleep``
(the pilot passes ``SignalState.sleep``): when it reports a signal,
``Interrupted`` is raised at once so the step can return ``abort``.
4xx replies are returned to the caller, never retried.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlencode, urlsplit

import requests

from fsm_pilot.errors import PilotError, PilotFailure
from fsm_pilot.panda.auth import Auth

Sleep = Callable[[float], bool]
#: Why a reply below 400 cannot be used (retry it), or None when it can.
Check = Callable[["Answer"], "str | None"]


class Log(Protocol):
    """The structlog-style logger the client writes to."""

    def info(self, event: str, **kw: Any) -> Any: ...

    def warning(self, event: str, **kw: Any) -> Any: ...


class Interrupted(Exception):
    """A signal arrived while waiting to retry: stop talking and let the step return ``abort``."""


@dataclass(frozen=True)
class RetryPolicy:
    """Retry bounds and per-request timeouts (seconds); ``attempts=None``: as many as the time allows."""

    attempts: int | None = None
    total: float = 300.0
    backoff: float = 2.0
    backoff_cap: float = 60.0
    connect_timeout: float = 10.0
    read_timeout: float = 60.0

    def __post_init__(self) -> None:
        no_attempt = self.attempts is not None and self.attempts < 1
        if no_attempt or self.total <= 0 or self.connect_timeout <= 0 or self.read_timeout <= 0:
            raise ValueError("a retry policy needs at least one attempt and positive times")

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Full-jitter wait after failed attempt number ``attempt`` (1-based).

        Never more than a quarter of the budget, so a short budget still gets
        several attempts.
        """
        cap = min(self.backoff_cap, self.total / 4)
        return rng.uniform(0.0, min(cap, self.backoff * 2.0 ** min(attempt - 1, 64)))

    @property
    def reserve(self) -> float:
        """The least time worth starting one more attempt with."""
        return min(1.0, self.total / 20)

    def more(self, attempt: int) -> bool:
        """Whether the attempt cap (if any) allows another attempt after ``attempt``."""
        return self.attempts is None or attempt < self.attempts


@dataclass(frozen=True)
class Call:
    """One logical request: which operation, in which dialect, to where, with what."""

    op: str
    dialect: str
    method: str
    url: str
    json: Mapping[str, object] | None = None
    form: Mapping[str, str] | None = None
    params: Sequence[tuple[str, str]] | None = None
    send_token: bool = True


@dataclass(frozen=True)
class Answer:
    """An HTTP reply below 500 (or the last 5xx is raised as a failure instead)."""

    status: int
    text: str
    attempts: int


_RETRYABLE = (requests.Timeout, requests.ConnectionError, requests.exceptions.ChunkedEncodingError,
              requests.exceptions.ContentDecodingError)


def _plain_sleep(seconds: float) -> bool:
    time.sleep(seconds)
    return False


class Transport:
    """A requests Session (one TCP connection reused across calls) plus the retry loop."""

    def __init__(self, session: requests.Session, auth: Auth, policy: RetryPolicy, log: Log, *,
                 sleep: Sleep | None = None, clock: Callable[[], float] = time.monotonic,
                 rng: random.Random | None = None) -> None:
        self.session = session
        self.auth = auth
        #: how to verify the server (the auth's; PandaClient resolves the environment's CA bundle into it)
        self.verify: bool | str = auth.verify
        self.policy = policy
        self.log = log
        self.sleep = sleep or _plain_sleep
        self.clock = clock
        self.rng = rng or random.Random()

    def send(self, call: Call, deadline: float | None, check: Check | None = None) -> Answer:
        """Send ``call`` until it gets a usable reply below 500; PilotFailure(COMMUNICATIONFAILURE) otherwise.

        ``check`` judges a reply below 400: a reason means it cannot be read
        (garbage), which is retried like a 5xx.
        """
        bound = self.clock() + self.policy.total
        if deadline is not None:
            bound = min(bound, deadline)
        last = "the deadline had passed before the first attempt"
        attempt = 0
        while self.clock() < bound:
            attempt += 1
            outcome = self._attempt(call, attempt, bound - self.clock())
            if isinstance(outcome, Answer):
                outcome = self._judge(call, outcome, check)
                if isinstance(outcome, Answer):
                    return outcome
            last = outcome
            if not self.policy.more(attempt) or not self._wait(call, attempt, bound):
                break
        raise PilotFailure(PilotError.COMMUNICATIONFAILURE, self.auth.redact(
            f"{call.op} ({call.dialect}) to {_where(call.url)} failed after {attempt} attempt(s): {last}"))

    def _judge(self, call: Call, answer: Answer, check: Check | None) -> Answer | str:
        """The answer if it is usable, else why not (a 5xx, or a body ``check`` cannot read)."""
        if answer.status >= 500:
            return f"HTTP {answer.status}: {' '.join(answer.text.split())[:160]}"
        problem = check(answer) if check is not None and answer.status < 400 else None
        if problem is None:
            return answer
        problem = self.auth.redact(problem)[:300]
        self.log.warning("panda.unreadable", method=call.op, dialect=call.dialect, attempt=answer.attempts,
                         status=answer.status, problem=problem)
        return problem

    def _wait(self, call: Call, attempt: int, bound: float) -> bool:
        """Back off before the next attempt, cut so that it starts in time; False when no time is left."""
        room = bound - self.clock() - self.policy.reserve
        if room <= 0:
            self.log.warning("panda.give_up", method=call.op, dialect=call.dialect, attempt=attempt,
                             reason="no time left for another attempt")
            return False
        delay = min(self.policy.delay(attempt, self.rng), room)
        self.log.info("panda.backoff", method=call.op, dialect=call.dialect, attempt=attempt,
                      delay=round(delay, 3))
        if self.sleep(delay):
            raise Interrupted(f"{call.op}: interrupted by a signal while waiting to retry")
        return True

    def _attempt(self, call: Call, attempt: int, left: float) -> Answer | str:
        """One request; an Answer, or the reason it failed in a way worth retrying."""
        left = max(left, 0.001)  # the bound may have passed since the caller looked: still a valid timeout
        timeout = (min(self.policy.connect_timeout, left), min(self.policy.read_timeout, left))
        headers = self.auth.headers() if call.send_token else {}
        started = self.clock()
        common = {"method": call.op, "dialect": call.dialect, "attempt": attempt, "path": _where(call.url)}
        try:
            body = _body(call, headers)  # inside: a NaN in the body is a ValueError, failed below as requests would
            response = self.session.request(
                call.method, call.url, data=body, params=call.params, headers=headers,
                timeout=timeout, verify=self.verify, cert=self.auth.cert)
            text = response.content.decode("utf-8", errors="replace")
        except requests.exceptions.SSLError as err:
            raise self._fatal(call, f"TLS failure: {err}") from None
        except _RETRYABLE as err:
            reason = f"{type(err).__name__}: {self.auth.redact(str(err))[:200]}"
            self.log.warning("panda.request", **common, status=None, error=reason,
                             elapsed=round(self.clock() - started, 4))
            return reason
        except (requests.RequestException, OSError, ValueError, TypeError) as err:
            raise self._fatal(call, f"{type(err).__name__}: {err}") from None
        emit = self.log.warning if response.status_code >= 500 else self.log.info
        emit("panda.request", **common, status=response.status_code, elapsed=round(self.clock() - started, 4))
        return Answer(response.status_code, text, attempt)

    def _fatal(self, call: Call, reason: str) -> PilotFailure:
        """A failure no retry can fix (bad URL, missing certificate file, TLS verification)."""
        reason = self.auth.redact(reason)[:300]
        self.log.warning("panda.request", method=call.op, dialect=call.dialect, status=None, error=reason)
        return PilotFailure(PilotError.COMMUNICATIONFAILURE, f"{call.op} ({call.dialect}): {reason}")


def _body(call: Call, headers: dict[str, str]) -> bytes | None:
    """The request body as requests would encode it from ``json=`` or ``data=``, and its Content-Type.

    Encoded here because requests' own path costs ~0.1 ms more a call (runtime Protocol checks); the
    bytes are the same: JSON without NaN, or a form without None values, UTF-8, ``+`` for spaces.
    """
    if call.json is not None:
        headers["Content-Type"] = "application/json"
        return json.dumps(call.json, allow_nan=False).encode("utf-8")
    if call.form:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        return urlencode([(k, v) for k, v in call.form.items() if v is not None]).encode("ascii")
    return None


def _where(url: str) -> str:
    """Scheme, host and path: enough to know where a call went, never a query string."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"
