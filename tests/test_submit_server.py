"""``fsm-pilot submit`` and ``status`` and the v1 calls around a job, checked the same way on two servers.

The same exchange runs against the embedded dispatcher and, when FSM_PILOT_PANDA_SERVER_URL and
FSM_PILOT_PANDA_SERVER_QUEUE name one (the real-server CI exports them), a real panda-server 1.0.4: submit
with the command line, wait for ``activated``, take the job with acquire_jobs, compare what is served with
the job file, set commands, report, read the status back, and check that both refuse the same malformed
requests in the same words. The real server must have no other job waiting in that queue.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from fsm_pilot.dispatcher.client import submit
from fsm_pilot.dispatcher.submitspec import to_wire
from tests.dispatcher_helpers import FIXTURES, ROOT, TEST_QUEUE, queue_args, running
from tests.test_panda_client_stub import running_stub
from tests.test_panda_client_stub import v1 as v1_reply

#: Where each server leaves a job whose pilot reported it failed: panda-server parks it until its adder runs.
FINAL_SEEN = {"embedded": "failed", "panda-server": "holding"}
JSON = {"Accept": "application/json"}


def job_file(tmp: Path) -> tuple[Path, dict[str, Any]]:
    """A job with inputs, outputs and flags, in the getJob names a user writes."""
    job = {"transformation": "bash", "jobPars": "-c 'cat a.txt > o.txt'", "jobName": f"fsm.submit.{uuid.uuid4()}",
           "prodSourceLabel": "managed", "inFiles": "a.txt", "fsize": "6", "checksum": "ad:0a1b2c3d",
           "GUID": str(uuid.uuid4()), "scopeIn": "test", "realDatasetsIn": "test.in", "outFiles": "o.txt",
           "scopeOut": "test", "scopeLog": "test", "coreCount": "2", "maxCpuCount": 600, "currentPriority": 321,
           "debug": "True", "loopingCheck": False}
    path = tmp / "job.json"
    path.write_text(json.dumps(job))
    return path, job


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fsm_pilot", *args], capture_output=True, text=True, check=False,
                          timeout=120, cwd=ROOT)


def v1(url: str, function: str, body: dict[str, Any]) -> dict[str, Any]:
    resp = requests.post(f"{url}/api/v1/{function}", json=body, timeout=60)
    assert resp.status_code == 200, resp.text
    answer: dict[str, Any] = resp.json()
    return answer


def status(url: str, panda_id: int) -> str:
    done = cli("status", "--url", url, str(panda_id))
    assert done.returncode == 0, done.stderr
    return done.stdout.split()[1]


def wait_status(url: str, panda_id: int, wanted: str, timeout: float = 60) -> None:
    """panda-server activates a submitted job in a thread of its own: wait for it, with a deadline."""
    deadline = time.monotonic() + timeout
    seen = status(url, panda_id)
    while seen != wanted:
        assert time.monotonic() < deadline, f"job {panda_id} is {seen!r}, not {wanted!r}, after {timeout} s"
        time.sleep(0.2)
        seen = status(url, panda_id)


def check_served(served: dict[str, Any], job: dict[str, Any]) -> None:
    """What a pilot gets back is what was submitted, with panda-server's names and types."""
    reference = json.loads((FIXTURES / "panda-server-1.0.4_acquire_jobs_response.json").read_text())
    optional = {"pilotSecrets"}  # panda-server adds it when its configuration names pilot secrets
    assert set(served) - optional == set(reference["data"]["jobs"][0]) | {"debug", "loopingCheck"}
    same = ("transformation", "jobPars", "jobName", "prodSourceLabel", "inFiles", "fsize", "checksum", "GUID",
            "scopeIn", "realDatasetsIn", "scopeOut", "scopeLog", "maxCpuCount", "currentPriority", "debug",
            "loopingCheck")
    assert {k: served[k] for k in same} == {k: job[k] for k in same}
    assert (served["coreCount"], served["attemptNr"], served["jobDefinitionID"]) == (2, 0, 0)
    log = f"{job['jobName']}.job.log.tgz"
    assert served["outFiles"] == f"o.txt,{log}" and served["logFile"] == log


def exercise(kind: str, url: str, queue: str, tmp: Path) -> None:
    """The whole exchange; every expectation holds for both servers unless FINAL_SEEN says otherwise."""
    path, job = job_file(tmp)
    done = cli("submit", "--url", url, "--queue", queue, str(path))
    assert done.returncode == 0, done.stderr
    (panda_id,) = [int(line) for line in done.stdout.split()]
    wait_status(url, panda_id, "activated")
    taken = v1(url, "pilot/acquire_jobs", {"site_name": queue, "prod_source_label": "managed", "node": "fsm-test",
                                           "n_jobs": 1})
    assert taken["success"] is True, taken
    (served,) = taken["data"]["jobs"]
    assert served["PandaID"] == panda_id, "another job was waiting in the queue"
    check_served(served, job)
    received = {"success": True, "message": "command received", "data": None}
    assert v1(url, "job/set_command", {"job_id": panda_id, "command": "debug"}) == received
    assert v1(url, "job/set_command", {"job_id": panda_id, "command": "tobekilled"}) == received
    assert v1(url, "job/set_command", {"job_id": panda_id, "command": "debugoff"}) == {
        "success": False, "message": "job is being killed", "data": None}
    running_reply = v1(url, "pilot/update_job", {"job_id": panda_id, "job_status": "running", "attempt_nr": 0})
    running_reply["data"].pop("pilotSecrets", None)
    assert running_reply == {"success": True, "message": "",  # the job is in debug mode: every answer says so
                             "data": {"StatusCode": 0, "command": "debug,tobekilled"}}
    final = v1(url, "pilot/update_job", {"job_id": panda_id, "job_status": "failed", "attempt_nr": 0,
                                         "pilot_error_code": 1144, "pilot_error_diag": "killed by the server"})
    assert final["success"] is True and final["data"]["StatusCode"] == 0
    assert status(url, panda_id) == FINAL_SEEN[kind]
    unstorable = to_wire({"transformation": "x"}, queue)
    unstorable.columns["jobDefinitionID"] = "NULL"  # a NOT NULL column: the insert fails, the answer says so
    (lost,) = submit(url, [unstorable]).jobs
    assert lost[0] is None and lost[2] == unstorable.columns["jobName"]
    refusals(url, queue)


def refusals(url: str, queue: str) -> None:
    """Malformed requests: HTTP 200, success false, panda-server's words."""
    def refused(message: str) -> dict[str, Any]:
        return {"success": False, "message": message, "data": None}

    assert v1(url, "job/submit", {"jobs": [{"transformation": "echo"}]}) == refused(
        "Type error: 'jobs' must be of type str, got list.")
    assert v1(url, "pilot/acquire_jobs", {"site_name": queue, "colour": "red"}) == refused(
        "Argument error: got an unexpected keyword argument 'colour'")
    assert v1(url, "pilot/update_job", {"job_id": "1", "job_status": "running"}) == refused(
        "Type error: 'job_id' must be of type int, got str.")
    assert v1(url, "pilot/get_job_status", {"job_ids": [1]}) == refused("expecting GET, received POST")
    assert v1(url, "job/set_command", {"job_id": 9_999_999_999, "command": "debug"}) == refused(
        "no active job with PandaID=9999999999")
    unknown = requests.get(f"{url}/api/v1/pilot/get_job_status", params={"job_ids": 9_999_999_999}, headers=JSON,
                           timeout=60).json()
    assert unknown == {"success": True, "message": "",
                       "data": [{"job_id": 9_999_999_999, "status": "not found", "attempt_number": 0}]}


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[str]:
    with running(tmp_path, *queue_args()) as disp:
        yield disp.url


def test_submit_and_the_job_calls_on_the_embedded_dispatcher(embedded: str, tmp_path: Path) -> None:
    exercise("embedded", embedded, TEST_QUEUE, tmp_path)


def test_submit_and_the_job_calls_on_a_real_panda_server(tmp_path: Path) -> None:
    url, queue = os.environ.get("FSM_PILOT_PANDA_SERVER_URL"), os.environ.get("FSM_PILOT_PANDA_SERVER_QUEUE")
    if not url or not queue:
        pytest.skip("no real panda-server: set FSM_PILOT_PANDA_SERVER_URL and FSM_PILOT_PANDA_SERVER_QUEUE")
    exercise("panda-server", url, queue, tmp_path)


def test_a_job_whose_inputs_are_not_ready_is_assigned_and_never_handed_out(embedded: str, tmp_path: Path) -> None:
    """As with panda-server's setupper: only jobs whose every input is ready (or cached) are activated."""
    path = tmp_path / "waiting.json"
    files = [{"lfn": "in.dat", "type": "input", "status": "unknown"}, {"lfn": "j.log", "type": "log"}]
    path.write_text(json.dumps({"transformation": "x", "Files": files}))
    done = cli("submit", "--url", embedded, "--queue", TEST_QUEUE, str(path))
    assert done.returncode == 0, done.stderr
    assert status(embedded, int(done.stdout)) == "assigned"
    taken = v1(embedded, "pilot/acquire_jobs", {"site_name": TEST_QUEUE})
    assert taken == {"success": False, "message": "No jobs in PanDA", "data": None}


def test_submit_and_status_present_the_pilots_credentials(tmp_path: Path) -> None:
    """panda-server takes submissions only from an authenticated caller: the token goes as the pilot sends it."""
    token = tmp_path / "token"
    token.write_text("header.payload.signature\n")
    path, job = job_file(tmp_path)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("PANDA_AUTH", "OIDC_AUTH", "X509"))},
           "PANDA_AUTH_TOKEN": str(token), "PANDA_AUTH_ORIGIN": "myvo.pilot"}
    with running_stub() as stub:
        stub.on("/api/v1/job/submit", v1_reply([[7, 0, job["jobName"]]]))
        stub.on("/api/v1/pilot/get_job_status", v1_reply([{"job_id": 7, "status": "activated", "attempt_number": 0}]))
        submitted = subprocess.run([sys.executable, "-m", "fsm_pilot", "submit", "--url", stub.url, "--queue", "Q",
                                    str(path)], capture_output=True, text=True, env=env, check=False, timeout=60)
        shown = subprocess.run([sys.executable, "-m", "fsm_pilot", "status", "--url", stub.url, "7"],
                               capture_output=True, text=True, env=env, check=False, timeout=60)
    assert (submitted.returncode, submitted.stdout, shown.stdout) == (0, "7\n", "7 activated attemptNr=0\n")
    for seen in stub.seen:
        assert seen.headers["Authorization"] == "Bearer header.payload.signature", seen.path
        assert seen.headers["Origin"] == "myvo.pilot"
    (sent,) = stub.requests_to("/api/v1/job/submit")
    assert sent.headers["Content-Type"] == "application/json" and isinstance(sent.json()["jobs"], str)
