"""The legacy dialect (/server/panda/<method>) over real loopback HTTP against a dispatcher subprocess."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
import requests

from tests.dispatcher_helpers import TEST_QUEUE, Dispatcher, history, job, job_row, queue_args, running, status_of

GETJOB = {"siteName": TEST_QUEUE, "computingElement": TEST_QUEUE, "prodSourceLabel": "managed",
          "diskSpace": "10000", "workingGroup": "", "cpu": "2596.15", "mem": "24105.5", "node": "vm",
          "allowOtherCountry": "False"}


@pytest.fixture
def disp(tmp_path: Path) -> Iterator[Dispatcher]:
    with running(tmp_path, *queue_args()) as d:
        yield d


def urlencoded(resp: requests.Response) -> dict[str, str]:
    assert resp.headers["Content-Type"] == "text/plain"
    return {k: v[0] for k, v in parse_qs(resp.text, keep_blank_values=True).items()}


def take(disp: Dispatcher) -> dict[str, Any]:
    got: dict[str, Any] = disp.legacy("getJob", GETJOB).json()
    assert got["StatusCode"] == 0, got
    return got


def update(disp: Dispatcher, panda_id: int | str, state: str, *, accept_json: bool = True,
           **fields: str) -> requests.Response:
    return disp.legacy("updateJob", {"jobId": str(panda_id), "state": state, **fields}, accept_json=accept_json)


# --- getJob ------------------------------------------------------------------------------------


def test_getjob_json_has_the_job_fields_at_top_level(disp: Dispatcher) -> None:
    (panda_id,) = disp.submit([job(1, coreCount="2", taskID="77")])
    resp = disp.legacy("getJob", GETJOB)
    assert resp.status_code == 200 and resp.headers["Content-Type"] == "application/json"
    got = resp.json()
    assert got["StatusCode"] == 0 and got["nSent"] == 1
    assert got["PandaID"] == panda_id and got["transformation"] == "echo" and got["jobPars"] == "hello 1"
    assert got["coreCount"] == 2 and got["taskID"] == 77 and got["attemptNr"] == 0
    assert job_row(disp.db, panda_id) == ("sent", TEST_QUEUE, 0, None, "vm")


def test_getjob_urlencoded_without_accept_json(disp: Dispatcher) -> None:
    (panda_id,) = disp.submit([job(1)])
    got = urlencoded(disp.legacy("getJob", GETJOB, accept_json=False))
    assert got["StatusCode"] == "0" and got["PandaID"] == str(panda_id) and got["jobPars"] == "hello 1"
    assert got["ioIntensity"] == "None"  # panda-server urlencodes its nulls the same way


def test_getjob_without_jobs_answers_statuscode_20(disp: Dispatcher) -> None:
    assert disp.legacy("getJob", GETJOB).json() == {"StatusCode": 20, "errorDialog": "no jobs in PanDA"}
    assert urlencoded(disp.legacy("getJob", GETJOB, accept_json=False)) == {"StatusCode": "20"}


def test_getjob_for_another_site_gets_nothing(disp: Dispatcher) -> None:
    disp.submit([job(1)])
    other = {**GETJOB, "siteName": "ELSEWHERE", "computingElement": "ELSEWHERE"}
    assert disp.legacy("getJob", other).json()["StatusCode"] == 20


def test_getjob_njobs_returns_a_list(disp: Dispatcher) -> None:
    ids = disp.submit([job(1), job(2)])
    got = disp.legacy("getJob", {**GETJOB, "nJobs": "5"}).json()
    assert got["StatusCode"] == 0 and [j["PandaID"] for j in got["jobs"]] == ids
    assert all(j["nSent"] == 2 and j["StatusCode"] == 0 for j in got["jobs"])
    assert disp.legacy("getJob", {**GETJOB, "nJobs": "5"}).json()["StatusCode"] == 20


def test_getjob_njobs_urlencoded_carries_the_list_as_json(disp: Dispatcher) -> None:
    ids = disp.submit([job(1)])
    got = urlencoded(disp.legacy("getJob", {**GETJOB, "nJobs": "2"}, accept_json=False))
    assert got["StatusCode"] == "0" and [j["PandaID"] for j in json.loads(got["jobs"])] == ids


def test_getjob_takes_the_best_priority_first(disp: Dispatcher) -> None:
    low, high = disp.submit([job(1, currentPriority=10), job(2, currentPriority=900)])
    assert take(disp)["PandaID"] == high and take(disp)["PandaID"] == low


def test_getjob_without_sitename_is_a_bad_request(disp: Dispatcher) -> None:
    resp = disp.legacy("getJob", {"node": "vm"})
    assert resp.status_code == 400 and "siteName" in resp.text


# --- updateJob ---------------------------------------------------------------------------------


def test_update_lifecycle_records_every_update_and_the_full_final_report(disp: Dispatcher) -> None:
    (panda_id,) = disp.submit([job(1)])
    take(disp)
    for state in ("starting", "running", "running"):
        assert update(disp, panda_id, state, attemptNr="0").json() == {"StatusCode": 0, "command": "NULL"}
    final = {"transExitCode": "0", "pilotErrorCode": "0", "xml": '{"x.log.tgz": {"guid": "g"}}',
             "pilotID": "unknown|PR|3.7.0.36", "cpuConsumptionTime": "12", "endTime": "1795634548.08"}
    report = {"jobId": str(panda_id), "state": "finished", "attemptNr": "0", **final}
    assert disp.legacy("updateJob", report).json() == {"StatusCode": 0, "command": "NULL"}
    assert job_row(disp.db, panda_id) == ("finished", TEST_QUEUE, 0, None, "unknown|PR|3.7.0.36")
    events = history(disp.db, panda_id)
    assert [(e["event"], e["state"], e["outcome"]) for e in events] == [
        ("submitted", "activated", "accepted"), ("sent", "sent", "accepted"),
        ("update", "starting", "accepted"), ("update", "running", "accepted"), ("update", "running", "accepted"),
        ("update", "finished", "accepted")]
    assert events[-1]["fields"] == {"jobId": str(panda_id), "state": "finished", "attemptNr": "0", **final}
    assert events[1]["fields"] == GETJOB


@pytest.mark.parametrize("accept_json", [True, False])
def test_update_after_the_final_report_is_alreadydone(disp: Dispatcher, accept_json: bool) -> None:
    (panda_id,) = disp.submit([job(1)])
    take(disp)
    assert update(disp, panda_id, "failed", pilotErrorCode="1144").json()["command"] == "NULL"
    again = update(disp, panda_id, "finished", accept_json=accept_json)
    body = again.json() if accept_json else urlencoded(again)
    assert body == ({"StatusCode": 0, "command": "alreadydone"} if accept_json
                    else {"StatusCode": "0", "command": "alreadydone"})
    assert status_of(disp.db, panda_id) == "failed"
    assert history(disp.db, panda_id)[-1]["outcome"] == "already_final"


def test_update_for_an_unknown_job_is_tobekilled(disp: Dispatcher) -> None:
    assert update(disp, 424242, "running").json() == {"StatusCode": 0, "command": "tobekilled"}
    assert history(disp.db, 424242)[-1]["outcome"] == "unknown_job"


def test_update_for_a_job_never_handed_out_is_tobekilled_and_changes_nothing(disp: Dispatcher) -> None:
    (panda_id,) = disp.submit([job(1)])
    assert update(disp, panda_id, "running").json() == {"StatusCode": 0, "command": "tobekilled"}
    assert status_of(disp.db, panda_id) == "activated"
    assert take(disp)["PandaID"] == panda_id


def test_update_with_another_attempt_number_is_tobekilled(disp: Dispatcher) -> None:
    (panda_id,) = disp.submit([job(1, attemptNr=3)])
    assert take(disp)["attemptNr"] == 3
    assert update(disp, panda_id, "running", attemptNr="2").json()["command"] == "tobekilled"
    assert update(disp, panda_id, "running", attemptNr="3").json()["command"] == "NULL"


def test_update_with_an_unknown_state_gets_a_bare_statuscode_0(disp: Dispatcher) -> None:
    (panda_id,) = disp.submit([job(1)])
    take(disp)
    assert update(disp, panda_id, "exploded").json() == {"StatusCode": 0}
    assert status_of(disp.db, panda_id) == "sent"
    assert history(disp.db, panda_id)[-1]["outcome"] == "invalid_state"


def test_update_backwards_is_recorded_but_keeps_the_status(disp: Dispatcher) -> None:
    (panda_id,) = disp.submit([job(1)])
    take(disp)
    update(disp, panda_id, "running")
    assert update(disp, panda_id, "starting").json() == {"StatusCode": 0, "command": "NULL"}
    assert status_of(disp.db, panda_id) == "running"
    assert history(disp.db, panda_id)[-1]["outcome"] == "stale"


def test_update_without_a_job_null_is_acknowledged(disp: Dispatcher) -> None:
    assert update(disp, "NULL", "failed").json() == {"StatusCode": 0}


@pytest.mark.parametrize(
    ("fields", "needle"),
    [({"jobId": "abc", "state": "running"}, "jobId must be an integer"),
     ({"jobId": "1"}, "missing required field(s): state")],
)
def test_malformed_updates_are_bad_requests(disp: Dispatcher, fields: dict[str, str], needle: str) -> None:
    resp = disp.legacy("updateJob", fields)
    assert resp.status_code == 400 and needle in resp.text


# --- getStatus, updateWorkerPilotStatus, unknown methods, malformed bodies --------------------------


def test_getstatus_answers_urlencoded_like_panda_server(disp: Dispatcher) -> None:
    a, _b = disp.submit([job(1), job(2)])
    take(disp)
    update(disp, a, "running")
    resp = disp.legacy("getStatus", {"ids": f"{a} {_b} 999"})
    assert urlencoded(resp) == {"StatusCode": "0", "status": "running+activated+notfound", "attemptNr": "0+0+0"}


def test_update_worker_pilot_status(disp: Dispatcher) -> None:
    fields = {"site": TEST_QUEUE, "workerID": "7", "harvesterID": "h1", "status": "started", "node_id": "vm"}
    assert disp.legacy("updateWorkerPilotStatus", fields).json() == {"StatusCode": 0}
    bad = disp.legacy("updateWorkerPilotStatus", {**fields, "status": "dancing"})
    assert bad.status_code == 200 and bad.text.startswith("Invalid worker state.")
    assert disp.legacy("updateWorkerPilotStatus", {"site": TEST_QUEUE}).status_code == 400


def test_unknown_legacy_method_is_forbidden(disp: Dispatcher) -> None:
    resp = disp.legacy("getProxy", {})
    assert resp.status_code == 403 and resp.text == "ERROR : method getProxy is forbidden"


def test_unknown_path_is_404(disp: Dispatcher) -> None:
    assert requests.get(f"{disp.url}/server/panda/getJob/extra", timeout=10).status_code == 404
    assert requests.get(f"{disp.url}/index.html", timeout=10).status_code == 404


def test_malformed_bodies_are_bad_requests(disp: Dispatcher) -> None:
    bad_utf8 = requests.post(f"{disp.url}/server/panda/getJob", data=b"siteName=%ff%fe", timeout=10,
                             headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert bad_utf8.status_code == 400 and "malformed form data" in bad_utf8.text
    bad_json = requests.post(f"{disp.url}/server/panda/getJob", data=b"{not json", timeout=10,
                             headers={"Content-Type": "application/json"})
    assert bad_json.status_code == 400 and "malformed JSON" in bad_json.text


def test_legacy_json_body_is_accepted_like_the_form(disp: Dispatcher) -> None:
    (panda_id,) = disp.submit([job(1)])
    resp = requests.post(f"{disp.url}/server/panda/getJob", json={**GETJOB, "allowOtherCountry": False},
                         headers={"Accept": "application/json"}, timeout=10)
    assert resp.json()["PandaID"] == panda_id
