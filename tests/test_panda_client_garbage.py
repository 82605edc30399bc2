"""A 200 reply the client cannot read is a transient failure: retried within the budget, then a failure.

Against the loopback stub of ``test_panda_client_stub``, in both dialects:
garbage N times then a good reply succeeds; garbage forever ends in
COMMUNICATIONFAILURE once the budget is spent. The time budget, not an
attempt count, bounds the retrying: a server that always answers 503 is
asked until the budget is used up (checked as "at least most of it was
used", never as an upper timing bound).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from fsm_pilot.errors import PilotError, PilotFailure
from fsm_pilot.panda import RetryPolicy
from tests.test_panda_client_retry import MaxRandom
from tests.test_panda_client_stub import (
    Canned,
    RecLog,
    StubPanda,
    client_for,
    legacy_json,
    running_stub,
    v1,
)

GETJOB = "/server/panda/getJob"
ACQUIRE = "/api/v1/pilot/acquire_jobs"
UPDATEJOB = "/server/panda/updateJob"
UPDATE = "/api/v1/pilot/update_job"
JOB = {"StatusCode": 0, "PandaID": 7, "jobName": "j"}
#: What a chaos proxy, a crashed worker or a captive portal answers with a 200.
GARBAGE = ["", "<html>oops", '{"StatusCode": 0, "PandaID": 7, "jobN', "[1, 2]", '{"jobs": {}}', "{}",
           "{'success': True, 'data': datetime.datetime(2026, 1, 1)}"]
GOOD_JOB = {"legacy": legacy_json(**JOB), "v1": v1({"StatusCode": 0, "jobs": [JOB]})}
GETJOB_PATH = {"legacy": GETJOB, "v1": ACQUIRE}


@pytest.fixture
def stub() -> Iterator[StubPanda]:
    with running_stub() as server:
        yield server


def garbage(body: str) -> Canned:
    return Canned(body=body, content_type="text/html")


@pytest.mark.parametrize("api", ["legacy", "v1"])
@pytest.mark.parametrize("body", GARBAGE)
def test_garbage_then_a_job_is_retried_and_succeeds(stub: StubPanda, api: str, body: str) -> None:
    stub.on(GETJOB_PATH[api], garbage(body), garbage(body), garbage(body), GOOD_JOB[api])
    log = RecLog()
    result = client_for(stub, log, api=api).get_job({"siteName": "Q"})
    assert result.kind == "job" and result.job is not None and result.job["PandaID"] == 7
    assert stub.count(GETJOB_PATH[api]) == 4
    unreadable = log.events("panda.unreadable")
    assert [event["attempt"] for event in unreadable] == [1, 2, 3]


@pytest.mark.parametrize("api", ["legacy", "v1"])
def test_garbage_forever_is_a_communication_failure_after_the_budget(stub: StubPanda, api: str) -> None:
    stub.on(GETJOB_PATH[api], garbage("<html>oops</html>"))
    with pytest.raises(PilotFailure) as info:
        client_for(stub, api=api).get_job({"siteName": "Q"})
    assert info.value.error == PilotError.COMMUNICATIONFAILURE
    assert "after 5 attempt(s)" in info.value.diag and "oops" in info.value.diag
    assert stub.count(GETJOB_PATH[api]) == 5


def test_auto_dialect_retries_garbage_from_v1_and_settles_on_v1(stub: StubPanda) -> None:
    stub.on(ACQUIRE, garbage(""), GOOD_JOB["v1"])
    client = client_for(stub)
    assert client.get_job({"siteName": "Q"}).kind == "job"
    assert client.dialect == "v1" and stub.count(GETJOB) == 0


@pytest.mark.parametrize(("api", "path", "good"), [
    ("legacy", UPDATEJOB, legacy_json(StatusCode=0, command="NULL")),
    ("v1", UPDATE, v1({"StatusCode": 0, "command": "NULL"}))])
def test_garbage_to_an_update_is_retried(stub: StubPanda, api: str, path: str, good: Canned) -> None:
    stub.on(path, garbage("<html>oops"), garbage(""), good)
    result = client_for(stub, api=api).update_job({"jobId": 7, "state": "running"})
    assert result.ok and stub.count(path) == 3


def test_a_refusal_is_an_answer_not_garbage(stub: StubPanda) -> None:
    stub.on(ACQUIRE, v1(None, False, "no production/pilot role in VOMS FQANs"))
    assert client_for(stub, api="v1").get_job({"siteName": "Q"}).kind == "refused"
    assert stub.count(ACQUIRE) == 1


@pytest.mark.parametrize("body", ["", "<html>oops", '{"nickname": "Q", "max', "[1, 2]", "null"])
def test_a_json_document_that_is_garbage_or_not_an_object_is_retried(stub: StubPanda, body: str) -> None:
    stub.on("/qd.json", garbage(body), garbage(body), Canned(body='{"nickname": "Q"}'))
    assert client_for(stub).get_json(f"{stub.url}/qd.json", kind=dict) == {"nickname": "Q"}
    assert stub.count("/qd.json") == 3


def test_a_json_document_of_another_kind_forever_gives_up(stub: StubPanda) -> None:
    stub.on("/qd.json", Canned(body="[1, 2]"))
    with pytest.raises(PilotFailure, match=r"after 5 attempt.*not a JSON object"):
        client_for(stub).get_json(f"{stub.url}/qd.json", kind=dict)


# --- the time budget is the bound ------------------------------------------------


def test_the_time_budget_not_an_attempt_count_bounds_retrying(stub: StubPanda) -> None:
    """503 forever, 2 s budget: the client keeps asking until (most of) the budget is used up."""
    budget = 2.0
    stub.on(GETJOB, Canned(503, "busy", "text/plain"))
    policy = RetryPolicy(total=budget, connect_timeout=5.0, read_timeout=5.0)
    started = time.monotonic()
    with pytest.raises(PilotFailure, match="HTTP 503"):
        client_for(stub, api="legacy", policy=policy, sleep=None).get_job({"siteName": "Q"})
    elapsed = time.monotonic() - started
    assert elapsed >= 0.8 * budget
    assert stub.count(GETJOB) > 5  # more than the old fixed cap of five attempts


def test_an_attempt_cap_still_applies_when_given(stub: StubPanda) -> None:
    stub.on(GETJOB, Canned(503, "busy", "text/plain"))
    policy = RetryPolicy(attempts=3, total=60.0, backoff=0.001, backoff_cap=0.002)
    with pytest.raises(PilotFailure, match="after 3 attempt"):
        client_for(stub, api="legacy", policy=policy, sleep=None).get_job({"siteName": "Q"})
    assert stub.count(GETJOB) == 3


def test_backoff_never_exceeds_a_quarter_of_the_budget() -> None:
    policy = RetryPolicy(total=2.0)
    assert max(policy.delay(n, MaxRandom()) for n in range(1, 20)) == 0.5
    assert RetryPolicy(total=3600.0).delay(30, MaxRandom()) == 60.0
