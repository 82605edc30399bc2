"""One HTTP exchange with bounded retries: the only place that touches the network.

Connection errors, timeouts and 5xx replies are retried with exponential
backoff and full jitter (a random wait in ``[0, min(cap, base * 2**n)]``, so a
site's pilots do not hammer a recovering server in step). Retrying stops at the
attempt limit, at the policy's total time and at the caller's ``deadline``,
whichever comes first; no request starts past that bound, and each request's
timeouts are cut to the time left. The wait between attempts is the injected
``sleep`` (the pilot passes ``SignalState.sleep``): when it reports a signal,
``Interrupted`` is raised at once so the step can return ``abort``.
4xx replies are returned to the caller, never retried.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

import requests

from fsm_pilot.errors import PilotError, PilotFailure
from fsm_pilot.panda.auth import Auth

Sleep = Callable[[float], bool]


class Log(Protocol):
    """The structlog-style logger the client writes to."""

    def info(self, event: str, **kw: Any) -> Any: ...

    def warning(self, event: str, **kw: Any) -> Any: ...


class Interrupted(Exception):
    """A signal arrived while waiting to retry: stop talking and let the step return ``abort``."""


@dataclass(frozen=True)
class RetryPolicy:
    """Retry bounds and per-request timeouts (seconds)."""

    attempts: int = 5
    total: float = 300.0
    backoff: float = 2.0
    backoff_cap: float = 60.0
    connect_timeout: float = 10.0
    read_timeout: float = 60.0

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.total <= 0 or self.connect_timeout <= 0 or self.read_timeout <= 0:
            raise ValueError("a retry policy needs at least one attempt and positive times")

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Full-jitter wait after failed attempt number ``attempt`` (1-based)."""
        return rng.uniform(0.0, min(self.backoff_cap, self.backoff * 2.0 ** (attempt - 1)))


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
        self.policy = policy
        self.log = log
        self.sleep = sleep or _plain_sleep
        self.clock = clock
        self.rng = rng or random.Random()

    def send(self, call: Call, deadline: float | None) -> Answer:
        """Send ``call`` until it gets a reply below 500; PilotFailure(COMMUNICATIONFAILURE) otherwise."""
        bound = self.clock() + self.policy.total
        if deadline is not None:
            bound = min(bound, deadline)
        last = "the deadline had passed before the first attempt"
        attempt = 0
        while attempt < self.policy.attempts and self.clock() < bound:
            attempt += 1
            outcome = self._attempt(call, attempt, bound - self.clock())
            if isinstance(outcome, Answer):
                if outcome.status < 500:
                    return outcome
                outcome = f"HTTP {outcome.status}: {' '.join(outcome.text.split())[:160]}"
            last = outcome
            if attempt == self.policy.attempts or not self._wait(call, attempt, bound):
                break
        raise PilotFailure(PilotError.COMMUNICATIONFAILURE, self.auth.redact(
            f"{call.op} ({call.dialect}) to {_where(call.url)} failed after {attempt} attempt(s): {last}"))

    def _wait(self, call: Call, attempt: int, bound: float) -> bool:
        """Back off before the next attempt; False (no wait) when the next one could not start in time."""
        delay = self.policy.delay(attempt, self.rng)
        if self.clock() + delay >= bound:
            self.log.warning("panda.give_up", method=call.op, dialect=call.dialect, attempt=attempt,
                             reason="no time left for another attempt")
            return False
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
            response = self.session.request(
                call.method, call.url, json=call.json, data=call.form, params=call.params, headers=headers,
                timeout=timeout, verify=self.auth.verify, cert=self.auth.cert)
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


def _where(url: str) -> str:
    """Scheme, host and path: enough to know where a call went, never a query string."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"
