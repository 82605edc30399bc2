"""The REST v1 dialect (/api/v1/<module>/<function>) over real loopback HTTP."""

from __future__ import annotations

import ast
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from fsm_pilot.dispatcher.client import submit
from fsm_pilot.dispatcher.jobwire import JOB_COLUMNS
from fsm_pilot.dispatcher.submitspec import to_wire
from tests.dispatcher_helpers import TEST_QUEUE, Dispatcher, history, job, queue_args, running, status_of, wire

ACQUIRE = {"site_name": TEST_QUEUE, "computing_element": TEST_QUEUE, "prod_source_label": "managed", "node": "n1",
           "disk_space": 10000, "memory": 2000}


@pytest.fixture
def disp(tmp_path: Path) -> Iterator[Dispatcher]:
    with running(tmp_path, *queue_args()) as d:
        yield d


def acquire(disp: Dispatcher, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = disp.v1("pilot/acquire_jobs", {**ACQUIRE, **extra}).json()
    return body


def update(disp: Dispatcher, panda_id: Any, status: str, **extra: Any) -> requests.Response:
    return disp.v1("pilot/update_job", {"job_id": panda_id, "job_status": status, **extra})


def test_acquire_jobs_envelope(disp: Dispatcher) -> None:
    (panda_id,) = disp.submit([job(1)])
    body = acquire(disp)
    assert body["success"] is True and body["message"] == ""
    (got,) = body["data"]["jobs"]
    assert body["data"]["StatusCode"] == 0 and got["PandaID"] == panda_id and got["nSent"] == 1
    assert status_of(disp.db, panda_id) == "sent"


def test_acquire_jobs_without_jobs(disp: Dispatcher) -> None:
    resp = disp.v1("pilot/acquire_jobs", ACQUIRE)
    assert resp.status_code == 200
    assert resp.json() == {"success": False, "message": "No jobs in PanDA", "data": None}


def test_acquire_several_jobs(disp: Dispatcher) -> None:
    ids = disp.submit([job(i) for i in range(3)])
    assert [j["PandaID"] for j in acquire(disp, n_jobs=2)["data"]["jobs"]] == ids[:2]
    assert [j["PandaID"] for j in acquire(disp, n_jobs=2)["data"]["jobs"]] == ids[2:]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"node": "n1"}, "Argument error: missing a required argument: 'site_name'"),
        ({"site_name": 5}, "Type error: 'site_name' must be of type str, got int."),
        ({"site_name": TEST_QUEUE, "n_jobs": "2"}, "Type error: 'n_jobs' must be of type int, got str."),
        ({"site_name": TEST_QUEUE, "favourite": 1}, "Argument error: got an unexpected keyword argument 'favourite'"),
    ],
)
def test_acquire_bad_requests(disp: Dispatcher, body: dict[str, Any], message: str) -> None:
    """Refused as panda-server refuses: HTTP 200, success false, its words."""
    resp = disp.v1("pilot/acquire_jobs", body)
    assert resp.status_code == 200
    assert resp.json() == {"success": False, "message": message, "data": None}


def test_update_job_lifecycle(disp: Dispatcher) -> None:
    (panda_id,) = disp.submit([job(1)])
    acquire(disp)
    for status in ("starting", "running"):
        assert update(disp, panda_id, status).json() == {
            "success": True, "message": "", "data": {"StatusCode": 0, "command": "NULL"}}
    final = {"trans_exit_code": 0, "pilot_error_code": 0, "job_output_report": "{}", "cpu_consumption_time": 3,
             "max_rss": 1024.5, "attempt_nr": 0, "pilot_id": "fsm-pilot"}
    assert update(disp, panda_id, "finished", **final).json()["data"] == {"StatusCode": 0, "command": "NULL"}
    assert status_of(disp.db, panda_id) == "finished"
    assert history(disp.db, panda_id)[-1]["fields"] == {"job_id": panda_id, "job_status": "finished", **final}
    assert update(disp, panda_id, "running").json()["data"] == {"StatusCode": 0, "command": "alreadydone"}


def test_update_job_for_an_unknown_job(disp: Dispatcher) -> None:
    assert update(disp, 987654, "running").json()["data"] == {"StatusCode": 0, "command": "tobekilled"}


def test_update_job_with_an_invalid_status(disp: Dispatcher) -> None:
    (panda_id,) = disp.submit([job(1)])
    acquire(disp)
    resp = update(disp, panda_id, "exploded")
    assert resp.status_code == 200
    assert resp.json() == {"success": False, "message": "Invalid job status: exploded", "data": {"StatusCode": 50}}
    assert status_of(disp.db, panda_id) == "sent"


def test_a_string_job_id_is_refused_like_panda_server(disp: Dispatcher) -> None:
    resp = update(disp, "1", "running")
    assert resp.status_code == 200
    assert resp.json()["message"] == "Type error: 'job_id' must be of type int, got str."


def test_form_encoded_v1_is_refused_and_answered_as_a_python_repr(disp: Dispatcher) -> None:
    resp = requests.post(f"{disp.url}/api/v1/pilot/update_job", data={"job_id": "1", "job_status": "running"},
                         timeout=10)
    assert resp.status_code == 200 and resp.headers["Content-Type"] == "text/plain"
    assert resp.text.startswith("{'success': False")
    assert ast.literal_eval(resp.text) == {
        "success": False, "message": "Type error: 'job_id' must be of type int, got str.", "data": None}


def test_repr_reply_without_json_accept_and_json_with_it(disp: Dispatcher) -> None:
    plain = requests.get(f"{disp.url}/api/v1/system/is_alive", timeout=10)
    assert plain.text == "{'success': True, 'message': '', 'data': None}"
    as_json = requests.get(f"{disp.url}/api/latest/system/is_alive", headers={"Accept": "application/json"}, timeout=10)
    assert as_json.json() == {"success": True, "message": "", "data": None}


def test_get_job_status(disp: Dispatcher) -> None:
    a, b = disp.submit([job(1), job(2)])
    acquire(disp)
    resp = requests.get(f"{disp.url}/api/v1/pilot/get_job_status", params={"job_ids": [a, b, 99]},
                        headers={"Accept": "application/json"}, timeout=10)
    assert resp.json()["data"] == [{"job_id": a, "status": "sent", "attempt_number": 0},
                                   {"job_id": b, "status": "activated", "attempt_number": 0},
                                   {"job_id": 99, "status": "not found", "attempt_number": 0}]
    single = requests.get(f"{disp.url}/api/v1/pilot/get_job_status?job_ids={b}", timeout=10)
    assert ast.literal_eval(single.text)["data"] == [{"job_id": b, "status": "activated", "attempt_number": 0}]
    bad = requests.get(f"{disp.url}/api/v1/pilot/get_job_status?job_ids=x", timeout=10)
    assert bad.status_code == 200 and ast.literal_eval(bad.text) == {
        "success": False, "data": None,
        "message": "Type error: 'job_ids' with value '['x']' could not be casted to type List from list."}
    posted = disp.v1("pilot/get_job_status", {"job_ids": [a]}).json()
    assert posted == {"success": False, "message": "expecting GET, received POST", "data": None}


def test_update_worker_status(disp: Dispatcher) -> None:
    ok = disp.v1("pilot/update_worker_status", {"worker_id": 7, "harvester_id": "h", "status": "finished"})
    assert ok.json() == {"success": True, "message": "", "data": None}
    bad = disp.v1("pilot/update_worker_status", {"worker_id": 7, "harvester_id": "h", "status": "lost"})
    assert bad.json()["success"] is False and "Invalid worker state" in bad.json()["message"]


# --- submit and set_command -----------------------------------------------------------------------


def test_submit_assigns_increasing_pandaids_and_answers_like_panda_server(disp: Dispatcher) -> None:
    first = disp.submit([job(1), job(2)])
    resp = disp.v1("job/submit", {"jobs": wire([job(3, jobDefinitionID=77), job(4, prodSourceLabel="user")])}).json()
    assert resp["success"] is True and resp["message"] == ""
    (third, def3, name3), (fourth, def4, jobset4) = resp["data"]
    assert first[0] < first[1] < third < fourth and (def3, name3) == (77, "test.job.3")
    assert def4 == third and jobset4 == {"jobsetID": third}  # numbered by the submission, not per user


@pytest.mark.parametrize(
    ("jobs", "message"),
    [
        ([job(1)], "Type error: 'jobs' must be of type str, got list."),  # the old friendlier form
        ('[{"transformation": "echo"}]', "Failed to deserialize jobs: job #0 must be a non-empty JSON list"),
        ("[not json", "Failed to deserialize jobs: not valid JSON"),
        ("[]", "No jobs were submitted"),
        ('[["NULL", "NULL", "not a file list"]]', "its last element must be the list of its files"),
        (wire([job(1, job_label="analysis")]), "job_label=analysis is not valid"),
    ],
)
def test_submit_refuses_what_panda_server_refuses_and_stores_none(disp: Dispatcher, jobs: Any, message: str) -> None:
    resp = disp.v1("job/submit", {"jobs": jobs})
    assert resp.status_code == 200 and resp.json()["success"] is False and message in resp.json()["message"]
    assert acquire(disp)["success"] is False


def test_a_job_panda_server_could_not_insert_gets_no_pandaid_and_the_others_are_stored(disp: Dispatcher) -> None:
    """panda-server answers success with PandaID "NULL" for such a job; the message here says why."""
    wired = json.loads(wire([job(1), job(2), job(3)]))
    wired[0][JOB_COLUMNS.index("jobDefinitionID")] = "NULL"
    wired[2][JOB_COLUMNS.index("attemptNr")] = "two"
    resp = disp.v1("job/submit", {"jobs": json.dumps(wired)}).json()
    assert resp["success"] is True and resp["message"] == (
        "job #0 not stored: jobDefinitionID is required: panda-server keeps it in a NOT NULL column; "
        "job #2 not stored: attemptNr must be an integer, got 'two'")
    (lost, _, name0), (kept, _, name1), (lost2, def2, _) = resp["data"]
    assert (lost, name0, lost2, def2, name1) == ("NULL", "test.job.1", "NULL", 0, "test.job.2")
    assert [j["PandaID"] for j in acquire(disp, n_jobs=5)["data"]["jobs"]] == [kept]


def test_the_client_reports_jobs_the_server_did_not_store(disp: Dispatcher) -> None:
    """What fsm-pilot submit's client makes of such a reply (its own job files never produce one)."""
    good, bad = to_wire(job(1), TEST_QUEUE), to_wire(job(2), TEST_QUEUE)
    bad.columns["jobDefinitionID"] = "NULL"
    answer = submit(disp.url, [good, bad])
    assert [row[0] is None for row in answer.jobs] == [False, True] and "job #1 not stored" in answer.message


def test_set_command_reaches_the_next_update_and_the_kill_ends_failed(disp: Dispatcher) -> None:
    (panda_id,) = disp.submit([job(1)])
    acquire(disp)
    assert update(disp, panda_id, "running").json()["data"]["command"] == "NULL"
    resp = disp.v1("job/set_command", {"job_id": panda_id, "command": "tobekilled"}).json()
    assert resp == {"success": True, "message": "command received", "data": None}
    assert update(disp, panda_id, "running").json()["data"] == {"StatusCode": 0, "command": "tobekilled"}
    legacy = disp.legacy("updateJob", {"jobId": str(panda_id), "state": "running"}).json()
    assert legacy == {"StatusCode": 0, "command": "tobekilled"}
    update(disp, panda_id, "failed", pilot_error_code=1144, pilot_error_diag="killed by the server")
    assert status_of(disp.db, panda_id) == "failed"
    assert [h["answer"] for h in history(disp.db, panda_id) if h["event"] == "update"] == [
        "NULL", "tobekilled", "tobekilled", "tobekilled"]


def test_a_command_replaces_the_pending_one_but_never_a_kill(disp: Dispatcher) -> None:
    """As panda-server's send_command_to_job: one pending command, and tobekilled stays."""
    (panda_id,) = disp.submit([job(1)])
    acquire(disp)
    for command in ("debug", "debugoff"):
        assert disp.v1("job/set_command", {"job_id": panda_id, "command": command}).json()["success"] is True
    assert update(disp, panda_id, "running").json()["data"]["command"] == "debugoff"
    assert disp.v1("job/set_command", {"job_id": panda_id, "command": "tobekilled"}).json()["success"] is True
    after = disp.v1("job/set_command", {"job_id": panda_id, "command": "debug"}).json()
    assert after == {"success": False, "message": "job is being killed", "data": None}
    assert update(disp, panda_id, "running").json()["data"]["command"] == "tobekilled"


def test_set_command_refusals(disp: Dispatcher) -> None:
    (panda_id,) = disp.submit([job(1)])
    missing = disp.v1("job/set_command", {"job_id": 5555, "command": "tobekilled"})
    assert missing.status_code == 200 and missing.json() == {
        "success": False, "message": "no active job with PandaID=5555", "data": None}
    long = disp.v1("job/set_command", {"job_id": panda_id, "command": "x" * 251}).json()
    assert long == {"success": False, "message": "command string too long. must be less than 250 chars", "data": None}
    typed = disp.v1("job/set_command", {"job_id": str(panda_id), "command": "debug"}).json()
    assert typed["message"] == "Type error: 'job_id' must be of type int, got str."
    acquire(disp)
    update(disp, panda_id, "finished")
    done = disp.v1("job/set_command", {"job_id": panda_id, "command": "tobekilled"}).json()
    assert done == {"success": False, "message": f"no active job with PandaID={panda_id}", "data": None}


# --- routing -------------------------------------------------------------------------------------


def test_wrong_http_method_unknown_functions_and_versions(disp: Dispatcher) -> None:
    wrong = disp.v1("pilot/acquire_jobs", method="GET", headers={"Accept": "application/json"})
    assert wrong.status_code == 200 and wrong.json()["message"] == "expecting POST, received GET"
    for path in ("/api/v1/pilot/get_proxy", "/api/v1/nomodule/x", "/api/v2/pilot/acquire_jobs"):
        resp = requests.post(f"{disp.url}{path}", timeout=10)
        assert resp.status_code == 403 and resp.text.startswith("ERROR : method") and "is forbidden" in resp.text
    assert requests.get(f"{disp.url}/api/v1/pilot", timeout=10).status_code == 404
