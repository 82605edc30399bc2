"""The PanDA client over real loopback HTTP: both dialects, every reply shape, the auto fallback.

The server is the purpose-built stub of ``test_panda_client_stub`` (a real
panda-server cannot be made to fail on demand); it answers in panda-server's
own shapes, captured from 1.0.4 and from what Pilot 3.7 exchanged with 0.8.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from fsm_pilot.errors import PilotError, PilotFailure
from fsm_pilot.panda import StatusCode
from tests.test_panda_client_stub import (
    Canned,
    RecLog,
    StubPanda,
    captured_requests,
    client_for,
    fixture_reply,
    forbidden,
    legacy_form,
    legacy_json,
    running_stub,
    v1,
    v1_repr,
)

ACQUIRE = "/api/v1/pilot/acquire_jobs"
UPDATE = "/api/v1/pilot/update_job"
STATUS = "/api/v1/pilot/get_job_status"
WORKER = "/api/v1/pilot/update_worker_status"
GETJOB = "/server/panda/getJob"
UPDATEJOB = "/server/panda/updateJob"
GETSTATUS = "/server/panda/getStatus"

GETJOB_REQUEST = captured_requests("getJob")[0]
JOB = {"StatusCode": 0, "PandaID": 4242, "jobName": "j", "transformation": "echo", "jobPars": "hi", "nSent": 0}


@pytest.fixture
def stub() -> Iterator[StubPanda]:
    with running_stub() as server:
        yield server


def finished_update() -> dict[str, object]:
    """Pilot 3's final update, with the Python types the pilot builds it from."""
    fields: dict[str, object] = dict(captured_requests("updateJob")[-1])
    fields.update(jobId=4242, attemptNr=0, coreCount=1, startTime=1795634546.0028293, endTime=1795634548.0870442,
                  pilotErrorCode=0, transExitCode=0, exeErrorCode=0)
    return fields


# --- getJob -------------------------------------------------------------------


def test_v1_acquire_jobs_fixture_reply_gives_the_fixture_job(stub: StubPanda) -> None:
    reply = fixture_reply()
    stub.on(ACQUIRE, Canned(body=json.dumps(reply)))
    result = client_for(stub, api="v1").get_job(GETJOB_REQUEST)
    assert result.kind == "job" and result.dialect == "v1"
    assert result.job == reply["data"]["jobs"][0]
    body = stub.requests_to(ACQUIRE)[0].json()
    assert body == {"site_name": "LOCAL_TEST", "computing_element": "LOCAL_TEST", "prod_source_label": "managed",
                    "disk_space": 10000, "memory": 24105, "node": "vm"}  # cpu, workingGroup, ...: no v1 argument


def test_legacy_getjob_sends_pilot3_form_and_reads_top_level_job(stub: StubPanda) -> None:
    stub.on(GETJOB, legacy_json(**JOB))
    result = client_for(stub, api="legacy").get_job(GETJOB_REQUEST)
    assert (result.kind, result.job) == ("job", JOB)
    seen = stub.requests_to(GETJOB)[0]
    assert seen.form() == GETJOB_REQUEST
    assert seen.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert seen.headers["Accept"] == "application/json"
    assert re.fullmatch(r"fsm-pilot/\S+ \(Python \d+\.\d+\.\d+; \w+ \w+\)", seen.headers["User-Agent"])


@pytest.mark.parametrize("reply", [
    legacy_json(StatusCode=0, jobs=[JOB]),
    legacy_form(StatusCode=0, jobs=json.dumps([JOB])),  # bulk reply without Accept: json
    v1_repr({"StatusCode": 0, "jobs": [JOB]}),
], ids=["json-jobs", "urlencoded-jobs", "v1-repr"])
def test_job_lists_in_every_encoding(stub: StubPanda, reply: Canned) -> None:
    stub.on(GETJOB, reply)
    stub.on(ACQUIRE, reply)
    dialect = "v1" if "success" in reply.body else "legacy"
    assert client_for(stub, api=dialect).get_job(GETJOB_REQUEST).job == JOB


def test_urlencoded_single_job_keeps_string_values(stub: StubPanda) -> None:
    stub.on(GETJOB, legacy_form(StatusCode=0, PandaID=7, jobPars="a b&c=d"))
    assert client_for(stub, api="legacy").get_job({}).job == {"StatusCode": "0", "PandaID": "7", "jobPars": "a b&c=d"}


@pytest.mark.parametrize("code", [10, 30, 50, 60, 70, 80, 90])
@pytest.mark.parametrize("encode", [legacy_json, legacy_form])
def test_legacy_status_codes_are_refusals_with_code_and_message(stub: StubPanda, code: int, encode: Any) -> None:
    stub.on(GETJOB, encode(StatusCode=code, errorDialog="why not"))
    result = client_for(stub, api="legacy").get_job(GETJOB_REQUEST)
    assert (result.kind, result.status, result.message, result.job) == ("refused", code, "why not", None)


@pytest.mark.parametrize("reply", [legacy_json(StatusCode=20, errorDialog="no jobs in PanDA"),
                                   legacy_form(StatusCode=20)])
def test_legacy_status_20_is_no_jobs(stub: StubPanda, reply: Canned) -> None:
    stub.on(GETJOB, reply)
    result = client_for(stub, api="legacy").get_job(GETJOB_REQUEST)
    assert (result.kind, result.status) == ("no_jobs", StatusCode.NO_JOBS)


@pytest.mark.parametrize("reply", [v1(None, False, "No jobs in PanDA"), v1_repr(None, False, "No jobs in PanDA")])
def test_v1_no_jobs_message_is_no_jobs(stub: StubPanda, reply: Canned) -> None:
    stub.on(ACQUIRE, reply)
    assert client_for(stub, api="v1").get_job(GETJOB_REQUEST).kind == "no_jobs"


@pytest.mark.parametrize(("message", "code"), [
    ("Timed out", 10), ("no production/pilot role in VOMS FQANs or non pilot owner", 60),
    ("Argument error: got an unexpected keyword argument 'cpu'", 50), ("something new", None)])
def test_v1_refusals_carry_the_message_and_its_code(stub: StubPanda, message: str, code: int | None) -> None:
    stub.on(ACQUIRE, v1(None, False, message))
    result = client_for(stub, api="v1").get_job(GETJOB_REQUEST)
    assert (result.kind, result.status, result.message) == ("refused", code, message)


@pytest.mark.parametrize("body", ["<html>502 Bad Gateway</html>", "", "ERROR : internal", '{"jobs": []}',
                                  "{'success': True, 'data': datetime.datetime(2026, 1, 1)}", "[1, 2]"])
def test_garbage_with_200_is_a_communication_failure_not_no_jobs(stub: StubPanda, body: str) -> None:
    stub.on(GETJOB, Canned(body=body, content_type="text/html"))
    with pytest.raises(PilotFailure) as info:
        client_for(stub, api="legacy").get_job(GETJOB_REQUEST)
    assert info.value.error == PilotError.COMMUNICATIONFAILURE
    assert info.value.diag.startswith("get_job (legacy) to ") and "after 5 attempt(s)" in info.value.diag


def test_success_without_a_job_is_a_communication_failure(stub: StubPanda) -> None:
    stub.on(ACQUIRE, v1({"StatusCode": 0}))
    with pytest.raises(PilotFailure, match="no jobs"):
        client_for(stub, api="v1").get_job(GETJOB_REQUEST)


# --- dialect choice -------------------------------------------------------------


@pytest.mark.parametrize("refusal", [forbidden("acquire_jobs"), Canned(404, "not found", "text/plain"),
                                     Canned(400, "method acquire_jobs is unknown", "text/plain")])
def test_auto_falls_back_to_legacy_and_remembers(stub: StubPanda, refusal: Canned) -> None:
    stub.on(ACQUIRE, refusal)
    stub.on(UPDATE, refusal)
    stub.on(GETJOB, legacy_json(**JOB))
    stub.on(UPDATEJOB, legacy_json(StatusCode=0, command="NULL"))
    log = RecLog()
    client = client_for(stub, log)
    assert client.get_job(GETJOB_REQUEST).job == JOB
    assert client.dialect == "legacy"
    assert client.get_job(GETJOB_REQUEST).kind == "job"
    assert client.update_job(finished_update()).ok
    assert (stub.count(ACQUIRE), stub.count(GETJOB), stub.count(UPDATE), stub.count(UPDATEJOB)) == (1, 2, 0, 1)
    assert len(log.events("panda.fallback")) == 1


def test_auto_keeps_v1_when_the_server_has_it(stub: StubPanda) -> None:
    stub.on(ACQUIRE, v1(None, False, "No jobs in PanDA"))
    stub.on(UPDATE, v1({"StatusCode": 0, "command": None}))
    client = client_for(stub)
    assert client.get_job(GETJOB_REQUEST).kind == "no_jobs"
    assert client.update_job(finished_update()).ok
    assert client.dialect == "v1"
    assert stub.count(GETJOB) == stub.count(UPDATEJOB) == 0


def test_auth_403_does_not_switch_dialect(stub: StubPanda) -> None:
    stub.on(ACQUIRE, Canned(403, "ERROR : Token authentication failed. invalid", "text/plain"))
    client = client_for(stub)
    with pytest.raises(PilotFailure, match="HTTP 403") as info:
        client.get_job(GETJOB_REQUEST)
    assert info.value.error == PilotError.COMMUNICATIONFAILURE
    assert stub.count(GETJOB) == 0 and client.dialect is None


def test_fixed_dialect_never_falls_back(stub: StubPanda) -> None:
    stub.on(ACQUIRE, forbidden("acquire_jobs"))
    with pytest.raises(PilotFailure, match="forbidden"):
        client_for(stub, api="v1").get_job(GETJOB_REQUEST)
    assert stub.count(GETJOB) == 0 and stub.count(ACQUIRE) == 1  # 4xx: not retried


# --- updateJob ------------------------------------------------------------------


def test_legacy_update_form_has_pilot3_names_and_string_values(stub: StubPanda) -> None:
    stub.on(UPDATEJOB, legacy_json(StatusCode=0, command="NULL"))
    result = client_for(stub, api="legacy").update_job(finished_update())
    assert (result.ok, result.status, result.commands) == (True, 0, ())
    assert stub.requests_to(UPDATEJOB)[0].form() == captured_requests("updateJob")[-1]


def test_v1_update_body_is_snake_case_with_json_types(stub: StubPanda) -> None:
    stub.on(UPDATE, v1({"StatusCode": 0, "command": "debug,tobekilled"}))
    result = client_for(stub, api="v1").update_job(finished_update())
    assert result.commands == ("debug", "tobekilled")
    seen = stub.requests_to(UPDATE)[0]
    assert seen.headers["Content-Type"] == "application/json"
    body = seen.json()
    assert body["job_id"] == 4242 and body["attempt_nr"] == 0 and body["core_count"] == 1
    assert body["job_status"] == "finished" and body["pilot_id"] == "unknown|PR|3.7.0.36"
    assert body["start_time"] == "2026-11-25 19:22:26"  # epoch -> the server's format, or it is dropped
    assert json.loads(body["job_output_report"])["local_test_4242.job.log.tgz"]["fsize"] == 7719
    assert "timestamp" not in body and "jobId" not in body  # no such update_job argument


@pytest.mark.parametrize(("reply", "ok", "status"), [
    (legacy_form(StatusCode=0, command="tobekilled"), True, 0),
    (legacy_json(StatusCode=30), False, 30),
    (legacy_json(StatusCode=60, errorDialog="no production/pilot role"), False, 60),
], ids=["form", "failed", "role"])
def test_legacy_update_replies(stub: StubPanda, reply: Canned, ok: bool, status: int) -> None:
    stub.on(UPDATEJOB, reply)
    result = client_for(stub, api="legacy").update_job(finished_update())
    assert (result.ok, result.status) == (ok, status)
    assert result.commands == (("tobekilled",) if ok else ())


@pytest.mark.parametrize(("reply", "ok", "status"), [
    (v1({"StatusCode": 50}, False, "Invalid job status: done"), False, 50),
    (v1({"StatusCode": 30, "ErrorDiag": "Failed to add meta_data"}, True, "Failed to add meta_data"), False, 30),
    (v1(None, False, "production or pilot role required"), False, 60),
    (v1_repr({"StatusCode": 0, "command": "NULL"}), True, 0),
])
def test_v1_update_replies(stub: StubPanda, reply: Canned, ok: bool, status: int) -> None:
    stub.on(UPDATE, reply)
    result = client_for(stub, api="v1").update_job(finished_update())
    assert (result.ok, result.status, result.commands) == (ok, status, ())


# --- other calls ------------------------------------------------------------------


def test_get_status_in_both_dialects(stub: StubPanda) -> None:
    stub.on(STATUS, v1([{"job_id": 1, "status": "running", "attempt_number": 0},
                        {"job_id": 2, "status": "not found", "attempt_number": 0}]))
    stub.on(GETSTATUS, legacy_form(StatusCode=0, status="running+notfound", attemptNr="0+0"))
    assert client_for(stub, api="v1").get_status([1, 2]) == {1: "running", 2: "not found"}
    assert client_for(stub, api="legacy").get_status([1, 2]) == {1: "running", 2: "notfound"}
    assert stub.requests_to(STATUS)[0].query == {"job_ids": ["1", "2"]}
    assert stub.requests_to(GETSTATUS)[0].form() == {"ids": "1 2"}


def test_get_status_refusal_is_a_failure(stub: StubPanda) -> None:
    stub.on(GETSTATUS, legacy_form(StatusCode=30))
    with pytest.raises(PilotFailure, match="StatusCode 30"):
        client_for(stub, api="legacy").get_status([1])


def test_update_worker_status_in_both_dialects(stub: StubPanda) -> None:
    stub.on(WORKER, v1(None))
    stub.on("/server/panda/updateWorkerPilotStatus", legacy_json(StatusCode=0),
            Canned(body="production or pilot role is required", content_type="text/plain"))
    assert client_for(stub, api="v1").update_worker_status(11, "h1", "started", "SITE", "node1")
    legacy = client_for(stub, api="legacy")
    assert legacy.update_worker_status(11, "h1", "started", "SITE", "node1")
    assert not legacy.update_worker_status(11, "h1", "finished", "SITE")  # prose refusal
    assert stub.requests_to(WORKER)[0].json() == {"worker_id": 11, "harvester_id": "h1", "status": "started",
                                                  "node_id": "node1"}
    assert stub.requests_to("/server/panda/updateWorkerPilotStatus")[0].form() == {
        "workerID": "11", "harvesterID": "h1", "status": "started", "site": "SITE", "node_id": "node1"}


def test_the_worker_id_is_an_int_in_update_worker_status_as_in_acquire_jobs(stub: StubPanda) -> None:
    """HARVESTER_WORKER_ID is text in the environment; panda-server keys workers by a bigint."""
    stub.on(WORKER, v1(None), v1(None))
    client = client_for(stub, api="v1")
    assert client.update_worker_status("4711", "h1", "started", "SITE")
    assert client.update_worker_status("w-7", "h1", "started", "SITE")  # no integer: sent as it is
    assert [r.json()["worker_id"] for r in stub.requests_to(WORKER)] == [4711, "w-7"]


def test_get_json_documents(stub: StubPanda) -> None:
    stub.on("/cache/schedconfig/Q.all.json", Canned(body='{"nickname": "Q", "maxtime": 0}'))
    stub.on("/bad.json", Canned(body="<html>oops</html>", content_type="text/html"))
    client = client_for(stub)
    assert client.get_json(f"{stub.url}/cache/schedconfig/Q.all.json") == {"nickname": "Q", "maxtime": 0}
    for url, match in [(f"{stub.url}/bad.json", "did not return JSON"), (f"{stub.url}/missing", "HTTP 404"),
                       ("file:///etc/passwd", "not an http")]:
        with pytest.raises(PilotFailure, match=match):
            client.get_json(url)


@pytest.mark.parametrize("bypass", [False, True], ids=["through-proxy", "no_proxy"])
def test_proxy_from_the_environment_read_once_is_honoured(stub: StubPanda, monkeypatch: pytest.MonkeyPatch,
                                                          bypass: bool) -> None:
    # the client reads the proxies once (not at every call): HTTP_PROXY is still used, NO_PROXY still bypasses it
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "HTTPS_PROXY", "https_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    reply = v1([{"job_id": 1, "status": "running", "attempt_number": 0}])
    with running_stub() as proxy:
        proxy.on(STATUS, reply)
        stub.on(STATUS, reply)
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        if bypass:
            monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        client = client_for(stub, api="v1")
        monkeypatch.delenv("HTTP_PROXY")  # read at creation: later changes do not matter
        assert client.get_status([1]) == {1: "running"}
    assert (proxy.count(STATUS), stub.count(STATUS)) == ((0, 1) if bypass else (1, 0))
