"""The dispatcher as a service: crash safety, configuration, queue documents, the CLI commands."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path
from typing import Any

import requests

from tests.dispatcher_helpers import (
    FIXTURES,
    ROOT,
    TEST_QUEUE,
    Dispatcher,
    history,
    job,
    module_cmd,
    queue_args,
    running,
    status_of,
    wire,
)

GETJOB = {"siteName": TEST_QUEUE, "node": "vm"}


def test_sigkill_loses_no_submitted_job_and_no_recorded_state(tmp_path: Path) -> None:
    disp = Dispatcher(tmp_path / "d.db", queue_args()).start()
    a, b, c, d = disp.submit([job(i) for i in range(4)])
    assert disp.legacy("getJob", GETJOB).json()["PandaID"] == a
    assert disp.legacy("getJob", GETJOB).json()["PandaID"] == b
    disp.legacy("updateJob", {"jobId": str(a), "state": "running"})
    disp.legacy("updateJob", {"jobId": str(b), "state": "finished", "transExitCode": "0", "xml": "{}"})
    disp.v1("job/set_command", {"job_id": a, "command": "tobekilled"})
    before = {i: history(disp.db, i) for i in (a, b, c, d)}
    disp.kill()

    with running(tmp_path, db=tmp_path / "d.db") as again:
        assert [status_of(again.db, i) for i in (a, b, c, d)] == ["running", "finished", "activated", "activated"]
        assert {i: history(again.db, i) for i in (a, b, c, d)} == before
        assert again.legacy("updateJob", {"jobId": str(a), "state": "running"}).json()["command"] == "tobekilled"
        assert again.legacy("updateJob", {"jobId": str(b), "state": "running"}).json()["command"] == "alreadydone"
        taken = {again.legacy("getJob", GETJOB).json()["PandaID"] for _ in range(2)}
        assert taken == {c, d} and again.legacy("getJob", GETJOB).json()["StatusCode"] == 20
        (e,) = again.submit([job(9)])
        assert e > d  # PandaIDs are never reused
        got = requests.get(f"{again.url}/cache/schedconfig/{TEST_QUEUE}.all.json", timeout=10).json()
        assert got["nickname"] == TEST_QUEUE  # the queues survive too, without --queuedata


def test_queuedata_and_cric_documents(tmp_path: Path) -> None:
    args = [*queue_args(), "--storagedata", str(FIXTURES / "cric_ddmendpoints.json")]
    with running(tmp_path, *args) as disp:
        queue = json.loads((FIXTURES / "queuedata_TEST_QUEUE.json").read_text())
        got = requests.get(f"{disp.url}/cache/schedconfig/{TEST_QUEUE}.all.json", timeout=10)
        assert got.headers["Content-Type"] == "application/json" and got.json() == queue
        assert requests.get(f"{disp.url}/cric/pandaqueues.json", timeout=10).json() == {TEST_QUEUE: queue}
        endpoints = json.loads((FIXTURES / "cric_ddmendpoints.json").read_text())
        assert requests.get(f"{disp.url}/cric/ddmendpoints.json", timeout=10).json() == endpoints
        assert requests.get(f"{disp.url}/cache/schedconfig/NOPE.all.json", timeout=10).status_code == 404


def test_without_files_it_serves_the_bundled_queue_and_a_storage_dir(tmp_path: Path) -> None:
    with running(tmp_path) as disp:
        queues = requests.get(f"{disp.url}/cric/pandaqueues.json", timeout=10).json()
        assert list(queues) == ["FSM_EXAMPLE"]
        (endpoint,) = requests.get(f"{disp.url}/cric/ddmendpoints.json", timeout=10).json().values()
        path = endpoint["arprotocols"]["write_lan"][0]["path"]
        assert path == str((tmp_path / "storage").resolve()) and Path(path).is_dir()
        (panda_id,) = disp.submit([job(1, computingSite="FSM_EXAMPLE")])
        got = disp.legacy("getJob", {"siteName": "FSM_EXAMPLE"}).json()
        assert got["PandaID"] == panda_id and got["ddmEndPointOut"] == "LOCAL_DISK"


def test_storage_dir_and_several_queue_files(tmp_path: Path) -> None:
    other = json.loads((FIXTURES / "queuedata_TEST_QUEUE.json").read_text())
    other.update(nickname="OTHER", name="OTHER", panda_resource="OTHER_SITE")
    (tmp_path / "other.json").write_text(json.dumps({"OTHER": other}))
    args = [*queue_args(), "--queuedata", str(tmp_path / "other.json"), "--storage-dir", str(tmp_path / "se")]
    with running(tmp_path, *args) as disp:
        assert sorted(requests.get(f"{disp.url}/cric/pandaqueues.json", timeout=10).json()) == ["OTHER", TEST_QUEUE]
        assert (tmp_path / "se").is_dir()
        elsewhere = disp.v1("job/submit", {"jobs": wire([job(1)], "NOWHERE")}).json()  # stored, as panda-server does
        assert elsewhere["success"] is True and elsewhere["message"] == (
            "job #0: computingSite 'NOWHERE' is not a queue of this dispatcher (served: OTHER, TEST_QUEUE): "
            "no pilot will get it")
        (panda_id,) = disp.submit([job(1, computingSite="OTHER")])
        assert disp.legacy("getJob", {"siteName": TEST_QUEUE}).json()["StatusCode"] == 20
        assert disp.legacy("getJob", {"siteName": "OTHER_SITE"}).json()["PandaID"] == panda_id


def test_a_bad_queuedata_file_stops_start_up_with_a_message(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text('{"no": "nickname"}')
    cmd = module_cmd("dispatcher", "--db", str(tmp_path / "d.db"), "--port", "0", "--queuedata",
                     str(tmp_path / "bad.json"))
    done = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 1 and "not a queue with a nickname" in done.stderr


def test_default_host_is_loopback_and_sigint_stops_it_cleanly(tmp_path: Path) -> None:
    cmd = module_cmd("dispatcher", "--db", str(tmp_path / "d.db"), "--port", "0")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("listening on http://127.0.0.1:")
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
        if proc.stdout is not None:
            proc.stdout.close()


def test_served_job_has_exactly_panda_server_1_0_4_fields(tmp_path: Path) -> None:
    reference = json.loads((FIXTURES / "panda-server-1.0.4_acquire_jobs_response.json").read_text())
    (ref_job,) = reference["data"]["jobs"]
    with running(tmp_path, *queue_args()) as disp:
        disp.submit([job(1), job(2)])
        legacy = disp.legacy("getJob", GETJOB).json()
        v1 = disp.v1("pilot/acquire_jobs", {"site_name": TEST_QUEUE}).json()
    (v1_job,) = v1["data"]["jobs"]
    assert set(legacy) == set(ref_job) == set(v1_job)
    assert set(v1) == set(reference) and set(v1["data"]) == set(reference["data"])
    for name, value in ref_job.items():  # same JSON types where the reference has a value
        if value not in (None, "NULL"):
            assert type(legacy[name]) is type(value), name


# --- submit and status commands -----------------------------------------------------------------------


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(module_cmd(*args), check=False, capture_output=True, text=True, timeout=60, cwd=ROOT)


def test_submit_and_status_commands(tmp_path: Path) -> None:
    one, many = tmp_path / "one.json", tmp_path / "many.json"
    one.write_text(json.dumps(job(1)))
    many.write_text(json.dumps([job(2), job(3)]))
    with running(tmp_path, *queue_args()) as disp:
        done = cli("submit", "--url", disp.url, "--queue", TEST_QUEUE, str(one), str(many))
        assert done.returncode == 0, done.stderr
        ids = [int(line) for line in done.stdout.split()]
        assert len(ids) == 3 and ids == sorted(ids)
        disp.legacy("getJob", GETJOB)
        status = cli("status", "--url", disp.url, *map(str, ids), "777")
        assert status.returncode == 0, status.stderr
        assert status.stdout.splitlines() == [f"{ids[0]} sent attemptNr=0", f"{ids[1]} activated attemptNr=0",
                                              f"{ids[2]} activated attemptNr=0", "777 not found"]


def test_submit_refused_and_unreachable(tmp_path: Path) -> None:
    bad, good = tmp_path / "bad.json", tmp_path / "good.json"
    bad.write_text(json.dumps({"jobPars": "no transformation"}))
    good.write_text(json.dumps(job(1)))
    with running(tmp_path, *queue_args()) as disp:
        unsent = cli("submit", "--url", disp.url, "--queue", TEST_QUEUE, str(bad))
        assert unsent.returncode == 1 and "bad.json job #0: transformation is required" in unsent.stderr
        labelled = tmp_path / "label.json"
        labelled.write_text(json.dumps(job(1, job_label="analysis")))
        refused = cli("submit", "--url", disp.url, "--queue", TEST_QUEUE, str(labelled))
        assert refused.returncode == 1 and "the server refused (HTTP 200): job_label=analysis is not valid" in (
            refused.stderr)
        elsewhere = cli("submit", "--url", disp.url, "--queue", "NOWHERE", str(good))
        assert elsewhere.returncode == 0 and "'NOWHERE' is not a queue of this dispatcher" in elsewhere.stderr
        url = disp.url
    for args in (("submit", "--url", url, "--queue", TEST_QUEUE, str(good)), ("status", "--url", url, "1")):
        gone = cli(*args)
        assert gone.returncode == 1 and "cannot reach the server" in gone.stderr
    unreadable = cli("submit", "--url", url, str(tmp_path / "missing.json"))
    assert unreadable.returncode == 1 and "cannot read job file" in unreadable.stderr


def test_cli_functions_are_exposed_for_fsm_pilot() -> None:
    import argparse

    from fsm_pilot.dispatcher import cli as dcli

    top = argparse.ArgumentParser()
    sub = top.add_subparsers(dest="command")
    for add in (dcli.add_dispatcher_parser, dcli.add_submit_parser, dcli.add_status_parser):
        add(sub)
    ns: Any = top.parse_args(["status", "--url", "http://127.0.0.1:1", "5"])
    assert ns.func is dcli.main_status and ns.ids == [5]
    assert top.parse_args(["dispatcher", "--db", "x.db"]).func is dcli.main_dispatcher
