"""A job's final report reaches the dispatcher with the job's own attemptNr, or the pilot says loudly why not.

Real pilots against the real dispatcher over loopback. A job submitted with
attemptNr -5 is rejected by the pilot (a negative attempt number is not a
valid definition) and reported failed with attemptNr -5, which the dispatcher
accepts. When the dispatcher does refuse the final report (the pilot was
handed a different attemptNr than the server holds: a proxy rewrites it), the
pilot logs the refusal at error level with the server's answer and never as
``ok=True``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.pilotrun import Launch, started
from tests.pilotserver import Dispatcher, job_spec
from tests.test_panda_client_stub import Canned, Seen, StubPanda, running_stub
from tests.test_pilot_garbage import PATHS, forward_to

FAST = ("--heartbeat-interval", "600", "--kill-grace", "0.5", "--getjob-wait", "0", "-v", "1",
        "--min-free-disk", "1000", "--timefloor", "0", "--update-timeout", "20")


def run_pilot(root: Path, url: str, *extra: str) -> tuple[int, str, Launch]:
    launch = Launch(root)
    launch.dir.mkdir(parents=True)
    cmd = [sys.executable, "-m", "fsm_pilot", "run", "-q", "TEST_QUEUE", "-j", "managed", "-t", "-a",
           str(launch.dir), "--url", url, *FAST, *extra]
    proc = started(subprocess.Popen(cmd, cwd=launch.dir, text=True, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE))
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err, launch


def updates(server: Dispatcher, panda_id: int) -> list[tuple[str, str]]:
    rows = server.query("SELECT state, outcome FROM job_history WHERE PandaID = ? AND event = 'update' ORDER BY id",
                        panda_id)
    return [(str(state), str(outcome)) for state, outcome in rows]


def lines(err: str, *words: str) -> list[str]:
    return [line for line in err.splitlines() if all(word in line for word in words)]


@pytest.mark.parametrize("api", ["legacy", "v1"])
def test_a_job_with_attempt_nr_minus_5_ends_failed_on_the_dispatcher(
        tmp_path: Path, dispatcher: Dispatcher, api: str) -> None:
    [panda_id] = dispatcher.submit({**job_spec("-c 'echo ok'"), "attemptNr": "-5"})
    code, err, launch = run_pilot(tmp_path / "p", dispatcher.url, "--api", api)
    assert code == 0, err
    assert dispatcher.status(panda_id) == {panda_id: "failed"}, err
    assert updates(dispatcher, panda_id) == [("failed", "accepted")]
    rejected = next(r for r in launch.records() if r["source"] == "VALIDATE")
    assert "attemptNr=-5" in rejected["reason"]["text"]
    assert launch.reports()[panda_id]["attemptNr"] == -5
    assert not lines(err, "final update refused")
    assert lines(err, "update sent", "ok=True", "state=failed", "attempt_nr=-5"), err


def rewrite_attempt(url: str, attempt: object) -> Callable[[Seen], Canned]:
    """Forward a getJob, then change the job's attemptNr in the reply (legacy JSON or the v1 envelope)."""
    forward = forward_to(url)

    def rewrite(seen: Seen) -> Canned:
        answer = forward(seen)
        reply: Any = json.loads(answer.body)
        jobs = reply.get("jobs") or (reply.get("data") or {}).get("jobs") or [reply]
        for job in jobs:
            if "PandaID" in job:
                job["attemptNr"] = attempt
        return Canned(answer.status, json.dumps(reply), answer.content_type)
    return rewrite


@pytest.fixture
def proxy(dispatcher: Dispatcher) -> Iterator[StubPanda]:
    with running_stub() as stub:
        for path in PATHS:
            stub.on(path, forward_to(dispatcher.url))
        yield stub


@pytest.mark.parametrize("api", ["legacy", "v1"])
def test_a_refused_final_report_is_logged_loudly_never_as_ok(
        tmp_path: Path, dispatcher: Dispatcher, proxy: StubPanda, api: str) -> None:
    [panda_id] = dispatcher.submit(job_spec("-c 'echo ok'"))  # attemptNr 0 on the dispatcher
    path = "/server/panda/getJob" if api == "legacy" else "/api/v1/pilot/acquire_jobs"
    proxy.on(path, rewrite_attempt(dispatcher.url, -7))
    code, err, launch = run_pilot(tmp_path / "p", proxy.url, "--api", api)
    assert code == 0, err  # the job ran (and was rejected); the pilot itself did its work
    assert updates(dispatcher, panda_id) == [("failed", "bad_attempt")]
    assert dispatcher.status(panda_id) == {panda_id: "sent"}  # the dispatcher's refusal stands
    refused = lines(err, "final update refused", f"panda_id={panda_id}")
    assert refused and "[error" in refused[0] and "tobekilled" in refused[0], err
    assert not lines(err, "update sent", "ok=True", "state=failed"), err
    report = launch.reports()[panda_id]
    assert report["attemptNr"] == -7 and report["fsm_pilot_refused"] == "tobekilled"


def test_an_attempt_nr_that_is_no_integer_is_said_loudly_and_left_out(
        tmp_path: Path, dispatcher: Dispatcher, proxy: StubPanda) -> None:
    [panda_id] = dispatcher.submit(job_spec("-c 'echo ok'"))
    proxy.on("/api/v1/pilot/acquire_jobs", rewrite_attempt(dispatcher.url, "two"))
    code, err, launch = run_pilot(tmp_path / "p", proxy.url, "--api", "v1")
    assert code == 0, err
    taken = next(r for r in launch.records() if r["source"] == "GETJOB")
    assert "attemptNr='two' is not an integer: its reports go without attemptNr" in taken["reason"]["text"]
    assert lines(err, "[warning", "attemptNr cannot be reported", "attemptNr='two'"), err
    assert dispatcher.status(panda_id) == {panda_id: "failed"}  # no attemptNr: the server's own attempt
    assert "attemptNr" not in launch.reports()[panda_id]
