"""The PanDA client's retries, time bounds, signal interruption, connection reuse and secrets.

Against the purpose-built loopback stub of ``test_panda_client_stub`` (a real
panda-server cannot be made to fail, stall or refuse on demand). Attempts are
counted at the server and through the injected sleep rather than timed; the
only clock asserts are generous "returned well before the deadline + slack".
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from fsm_pilot.errors import PilotError, PilotFailure
from fsm_pilot.panda import Auth, Interrupted, PandaClient, RetryPolicy
from tests.test_panda_client_stub import (
    FAST,
    Canned,
    RecLog,
    Sleeps,
    StubPanda,
    client_for,
    closed_port,
    legacy_json,
    running_stub,
    server_error,
    v1,
)

GETJOB = "/server/panda/getJob"
ACQUIRE = "/api/v1/pilot/acquire_jobs"
JOB = {"StatusCode": 0, "PandaID": 1, "jobName": "j"}
TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjQxMDI0NDQ4MDB9.c2VjcmV0LXNpZ25hdHVyZQ"


@pytest.fixture
def stub() -> Iterator[StubPanda]:
    with running_stub() as server:
        yield server


class MaxRandom(random.Random):
    """Full jitter at its upper bound, so waits are known in advance."""

    def uniform(self, a: float, b: float) -> float:
        return b


class FakeClock:
    """Monotonic time that only the injected sleep moves: deadline arithmetic without waiting."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.waits: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> bool:
        self.waits.append(seconds)
        self.now += seconds
        return False


# --- retries --------------------------------------------------------------------


def test_500_then_success_is_retried(stub: StubPanda) -> None:
    stub.on(GETJOB, server_error(), legacy_json(**JOB))
    sleeps = Sleeps()
    result = client_for(stub, api="legacy", sleep=sleeps).get_job({"siteName": "Q"})
    assert result.job == JOB
    assert stub.count(GETJOB) == 2 and len(sleeps.waits) == 1


def test_500_forever_is_bounded_and_a_communication_failure(stub: StubPanda) -> None:
    stub.on(GETJOB, server_error("boom"))
    sleeps = Sleeps()
    with pytest.raises(PilotFailure) as info:
        client_for(stub, api="legacy", sleep=sleeps).get_job({"siteName": "Q"})
    assert info.value.error == PilotError.COMMUNICATIONFAILURE
    assert "after 5 attempt(s): HTTP 500: boom" in info.value.diag
    assert stub.count(GETJOB) == FAST.attempts == 5 and len(sleeps.waits) == 4


def test_auto_v1_500s_are_retried_not_taken_for_an_unknown_method(stub: StubPanda) -> None:
    stub.on(ACQUIRE, server_error(), v1(None, False, "No jobs in PanDA"))
    client = client_for(stub)
    assert client.get_job({"siteName": "Q"}).kind == "no_jobs"
    assert client.dialect == "v1" and stub.count(GETJOB) == 0


def test_connection_refused_is_retried_then_a_failure_never_no_jobs() -> None:
    sleeps = Sleeps()
    client = PandaClient(f"http://127.0.0.1:{closed_port()}", api="legacy", policy=FAST, sleep=sleeps, log=RecLog())
    with pytest.raises(PilotFailure) as info:
        client.get_job({"siteName": "Q"})
    assert info.value.error == PilotError.COMMUNICATIONFAILURE
    assert "ConnectionError" in info.value.diag and len(sleeps.waits) == 4


def test_slow_reply_beyond_the_read_timeout(stub: StubPanda) -> None:
    stub.on(GETJOB, Canned(body='{"StatusCode": 20}', delay=30.0))
    policy = RetryPolicy(attempts=2, backoff=0.001, read_timeout=0.2)
    started = time.monotonic()
    with pytest.raises(PilotFailure, match="ReadTimeout"):
        client_for(stub, api="legacy", policy=policy).get_job({"siteName": "Q"})
    assert time.monotonic() - started < 10.0  # well before the 30 s reply
    assert stub.count(GETJOB) == 2


def test_request_timeouts_are_cut_to_the_deadline(stub: StubPanda) -> None:
    stub.on(GETJOB, Canned(body='{"StatusCode": 20}', delay=30.0))
    started = time.monotonic()
    with pytest.raises(PilotFailure) as info:  # default 60 s read timeout, but only 0.3 s left
        client_for(stub, api="legacy", policy=RetryPolicy()).get_job({"siteName": "Q"}, deadline=started + 0.3)
    assert time.monotonic() - started < 10.0
    assert info.value.error == PilotError.COMMUNICATIONFAILURE and stub.count(GETJOB) == 1


def test_no_attempt_starts_after_the_deadline(stub: StubPanda) -> None:
    stub.on(GETJOB, server_error())
    clock = FakeClock()
    policy = RetryPolicy(attempts=10, backoff=10.0, backoff_cap=10.0)
    client = client_for(stub, api="legacy", policy=policy, sleep=clock.sleep, clock=clock, rng=MaxRandom())
    with pytest.raises(PilotFailure, match="after 4 attempt"):
        client.get_job({"siteName": "Q"}, deadline=clock.now + 25.0)
    # attempts at +0, +10, +20, and +24: the last wait is cut to leave the policy's 1 s reserve
    assert clock.waits == [10.0, 10.0, 4.0]
    assert stub.count(GETJOB) == 4


def test_a_passed_deadline_sends_nothing(stub: StubPanda) -> None:
    stub.on(GETJOB, legacy_json(**JOB))
    with pytest.raises(PilotFailure, match="deadline had passed"):
        client_for(stub, api="legacy").get_job({"siteName": "Q"}, deadline=time.monotonic() - 1.0)
    assert stub.count(GETJOB) == 0


def test_total_time_bounds_retries_without_a_deadline(stub: StubPanda) -> None:
    stub.on(GETJOB, server_error())
    clock = FakeClock()
    policy = RetryPolicy(attempts=10, total=35.0, backoff=10.0, backoff_cap=10.0)
    client = client_for(stub, api="legacy", policy=policy, sleep=clock.sleep, clock=clock, rng=MaxRandom())
    with pytest.raises(PilotFailure, match="after 5 attempt"):
        client.get_job({"siteName": "Q"})
    assert clock.waits == [8.75, 8.75, 8.75, 7.75]  # backoff capped at a quarter of 35 s; the last one cut
    assert stub.count(GETJOB) == 5


def test_backoff_grows_exponentially_with_full_jitter() -> None:
    policy = RetryPolicy(backoff=2.0, backoff_cap=60.0)
    assert [policy.delay(n, MaxRandom()) for n in range(1, 7)] == [2.0, 4.0, 8.0, 16.0, 32.0, 60.0]
    rng = random.Random(7)
    assert all(0.0 <= policy.delay(3, rng) <= 8.0 for _ in range(100))


def test_a_signal_during_backoff_stops_retrying_at_once(stub: StubPanda) -> None:
    stub.on(GETJOB, server_error())
    sleeps = Sleeps(signal=True)
    with pytest.raises(Interrupted):
        client_for(stub, api="legacy", sleep=sleeps).get_job({"siteName": "Q"})
    assert stub.count(GETJOB) == 1 and len(sleeps.waits) == 1


# --- the connection ---------------------------------------------------------------


def test_one_tcp_connection_serves_every_call(stub: StubPanda) -> None:
    stub.on(GETJOB, legacy_json(**JOB))
    stub.on("/server/panda/updateJob", legacy_json(StatusCode=0, command="NULL"))
    stub.on("/server/panda/getStatus", legacy_json(StatusCode=0, status="running", attemptNr="0"))
    stub.on("/queuedata.json", Canned(body="{}"))
    client = client_for(stub, api="legacy")
    for _ in range(3):
        client.get_job({"siteName": "Q"})
        client.update_job({"jobId": 1, "state": "running"})
        client.get_status([1])
        client.get_json(f"{stub.url}/queuedata.json")
    assert len(stub.seen) == 12 and stub.connections == 1


def test_every_attempt_is_logged_without_bodies(stub: StubPanda) -> None:
    stub.on(GETJOB, server_error(), legacy_json(**JOB))
    log = RecLog()
    client_for(stub, log, api="legacy").get_job({"siteName": "Q"})
    attempts = log.events("panda.request")
    assert [(a["method"], a["dialect"], a["attempt"], a["status"]) for a in attempts] == [
        ("get_job", "legacy", 1, 500), ("get_job", "legacy", 2, 200)]
    assert all(isinstance(a["elapsed"], float) for a in attempts)
    assert "jobName" not in log.text()  # the job definition is never logged


# --- secrets ------------------------------------------------------------------------


def test_bearer_token_and_origin_are_sent_but_never_logged(stub: StubPanda, tmp_path: Path) -> None:
    (tmp_path / "token").write_text(TOKEN + "\n")
    auth = Auth(token=tmp_path / "token", origin="atlas.pilot")
    stub.on(GETJOB, server_error(f"bad token {TOKEN}"), legacy_json(**JOB))
    stub.on("/server/panda/updateJob", Canned(403, f"ERROR : Token authentication failed. {TOKEN}", "text/plain"))
    log = RecLog()
    client = client_for(stub, log, api="legacy", auth=auth)
    assert client.get_job({"siteName": "Q"}).kind == "job"
    with pytest.raises(PilotFailure) as info:
        client.update_job({"jobId": 1, "state": "running"})
    seen = stub.requests_to(GETJOB)[-1]
    assert seen.headers["Authorization"] == f"Bearer {TOKEN}" and seen.headers["Origin"] == "atlas.pilot"
    assert "HTTP 403" in str(info.value)
    for text in (log.text(), str(info.value), repr(info.value), repr(auth), str(auth), repr(client)):
        assert TOKEN not in text


def test_the_default_structlog_logger_never_sees_the_token(stub: StubPanda, tmp_path: Path) -> None:
    (tmp_path / "token").write_text(TOKEN)
    stub.on(GETJOB, server_error(), legacy_json(**JOB))
    client = PandaClient(stub.url, api="legacy", auth=Auth(token=tmp_path / "token"), policy=FAST, sleep=Sleeps())
    with structlog.testing.capture_logs() as captured:
        client.get_job({"siteName": "Q"})
    assert [entry["event"] for entry in captured].count("panda.request") == 2
    assert TOKEN not in repr(captured)


def test_token_goes_only_to_the_panda_server(stub: StubPanda, tmp_path: Path) -> None:
    (tmp_path / "token").write_text(TOKEN)
    with running_stub() as other:
        other.on("/ddm.json", Canned(body="{}"))
        stub.on("/ddm.json", Canned(body="{}"))
        client = client_for(stub, auth=Auth(token=tmp_path / "token"))
        client.get_json(f"{other.url}/ddm.json")
        client.get_json(f"{stub.url}/ddm.json")
    assert "Authorization" not in other.seen[0].headers
    assert stub.seen[0].headers["Authorization"] == f"Bearer {TOKEN}"


def test_a_renewed_token_file_is_picked_up(stub: StubPanda, tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("first")
    stub.on(GETJOB, legacy_json(StatusCode=20))
    client = client_for(stub, api="legacy", auth=Auth(token=token))
    client.get_job({})
    token.write_text("second-token")
    client.get_job({})
    assert [seen.headers["Authorization"] for seen in stub.seen] == ["Bearer first", "Bearer second-token"]
