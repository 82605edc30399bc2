"""Real pilots behind a chaos proxy: garbage 200 replies are retried within ``--update-timeout``.

The proxy is the loopback stub of ``test_panda_client_stub`` scripted to
answer a path with garbage a few times (or forever) and otherwise to forward
the request to the real dispatcher. A pilot that meets garbage a few times
runs its job; one that meets it forever gives up with the usual exit code
(79 for getJob, 71 for queuedata) once the budget is spent, and not before.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
import requests

from tests.pilotrun import Launch, make_launch, started, wait_for
from tests.pilotserver import Dispatcher, job_spec
from tests.test_panda_client_stub import Canned, Seen, StubPanda, running_stub

QUEUEDATA = "/cache/schedconfig/TEST_QUEUE.all.json"
DDM = "/cric/ddmendpoints.json"
GETJOB = {"legacy": "/server/panda/getJob", "v1": "/api/v1/pilot/acquire_jobs"}
PATHS = (QUEUEDATA, DDM, "/server/panda/getJob", "/server/panda/updateJob", "/server/panda/getStatus",
         "/api/v1/pilot/acquire_jobs", "/api/v1/pilot/update_job", "/api/v1/pilot/get_job_status")
FAST = ("--heartbeat-interval", "600", "--kill-grace", "0.5", "--getjob-wait", "0", "-v", "1",
        "--min-free-disk", "1000", "--timefloor", "0")


@pytest.fixture
def proxy(dispatcher: Dispatcher) -> Iterator[StubPanda]:
    with running_stub() as stub:
        for path in PATHS:
            stub.on(path, forward_to(dispatcher.url))
        yield stub


def forward_to(url: str) -> Callable[[Seen], Canned]:
    """A stub reply that passes the request on to ``url`` and hands back its answer."""
    def forward(seen: Seen) -> Canned:
        query = f"?{urlencode(seen.query, doseq=True)}" if seen.query else ""
        headers = {k: v for k, v in seen.headers.items() if k.lower() in ("content-type", "accept")}
        answer = requests.request(seen.method, f"{url}{seen.path}{query}", data=seen.body, headers=headers,
                                  timeout=30)
        return Canned(answer.status_code, answer.text, answer.headers.get("Content-Type", "text/plain"))
    return forward


def garbage(*bodies: str) -> list[Canned]:
    return [Canned(body=body, content_type="text/html") for body in bodies]


def new_launch(root: Path, local_queuedata: bool = False) -> Launch:
    """A launch dir; queuedata comes from the server unless ``local_queuedata``."""
    if local_queuedata:
        return make_launch(root)
    launch = Launch(root)
    launch.dir.mkdir(parents=True)
    return launch


def time_in(launch: Launch, state: str) -> float:
    """Seconds the pilot spent in ``state``, from its transition log (monotonic clock)."""
    records = launch.records()
    entered = next(r["mono"] for r in records if r["dest"] == state and r["ok"])
    left = next(r["mono"] for r in records if r["source"] == state and r["ok"] and r["mono"] >= entered)
    return float(left - entered)


def pilot(launch: Launch, url: str, *extra: str) -> subprocess.Popen[str]:
    """A pilot pulling from ``url``."""
    cmd = [sys.executable, "-m", "fsm_pilot", "run", "-q", "TEST_QUEUE", "-j", "managed", "-t", "-a",
           str(launch.dir), "--url", url, *FAST, *extra]
    return started(subprocess.Popen(cmd, cwd=launch.dir, text=True, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE))


def finish(proc: subprocess.Popen[str], timeout: float = 120) -> tuple[int, str]:
    _, err = proc.communicate(timeout=timeout)
    return proc.returncode, err


#: Per dialect: what the proxy answers the first queuedata and getJob requests with.
CHAOS = {"legacy": (("", "<html>oops"), ('{"StatusCode": 0, "PandaID": 1, "jobN', "[1, 2]")),
         "v1": (('{"nickname": "TEST_QUEUE", "sta', "[1, 2]"), ("", "<html>oops"))}


@pytest.mark.parametrize("api", ["legacy", "v1"])
def test_a_few_garbage_replies_are_retried_and_the_job_runs(
        tmp_path: Path, dispatcher: Dispatcher, proxy: StubPanda, api: str) -> None:
    [panda_id] = dispatcher.submit(job_spec("-c 'echo ok'"))
    qd_garbage, job_garbage = CHAOS[api]
    proxy.on(QUEUEDATA, *garbage(*qd_garbage), forward_to(dispatcher.url))
    proxy.on(GETJOB[api], *garbage(*job_garbage), forward_to(dispatcher.url))
    code, err = finish(pilot(new_launch(tmp_path / "p"), proxy.url, "--api", api, "--update-timeout", "20"))
    assert code == 0, err
    assert dispatcher.status(panda_id) == {panda_id: "finished"}
    assert proxy.count(QUEUEDATA) == 3 and proxy.count(GETJOB[api]) == 3
    assert err.count("panda.unreadable") >= 4


@pytest.mark.parametrize("api", ["legacy", "v1"])
def test_getjob_garbage_forever_exits_79_once_the_budget_is_spent(
        tmp_path: Path, proxy: StubPanda, api: str) -> None:
    budget = 2.0
    proxy.on(GETJOB[api], *garbage("<html>oops</html>"))
    launch = new_launch(tmp_path / "p", local_queuedata=True)
    code, err = finish(pilot(launch, proxy.url, "--api", api, "--update-timeout", str(budget)))
    assert code == 79, err
    assert time_in(launch, "GETJOB") >= 0.8 * budget
    assert proxy.count(GETJOB[api]) > 1 and "oops" in err


def test_queuedata_garbage_forever_exits_71_once_the_budget_is_spent(tmp_path: Path, proxy: StubPanda) -> None:
    budget = 2.0
    proxy.on(QUEUEDATA, *garbage('{"nickname": "TEST_QUEUE", "sta'))
    launch = new_launch(tmp_path / "p")
    code, err = finish(pilot(launch, proxy.url, "--update-timeout", str(budget)))
    assert code == 71, err
    assert time_in(launch, "QUEUEDATA") >= 0.8 * budget
    assert proxy.count(QUEUEDATA) > 1


def test_update_timeout_is_a_time_budget_not_five_attempts(tmp_path: Path, proxy: StubPanda) -> None:
    """503 forever to getJob with --update-timeout 2: asked until most of the 2 s is used, not 5 times."""
    budget = 2.0
    proxy.on(GETJOB["legacy"], Canned(503, "busy", "text/plain"))
    launch = new_launch(tmp_path / "p", local_queuedata=True)
    code, err = finish(pilot(launch, proxy.url, "--api", "legacy", "--update-timeout", str(budget)))
    assert code == 79, err
    assert time_in(launch, "GETJOB") >= 0.8 * budget
    assert proxy.count(GETJOB["legacy"]) > 5


def test_a_signal_stops_the_retrying_at_once(tmp_path: Path, proxy: StubPanda) -> None:
    """With a 300 s budget against a server that always 503s, SIGTERM ends the pilot now, not at the budget."""
    proxy.on(GETJOB["legacy"], Canned(503, "busy", "text/plain"))
    launch = new_launch(tmp_path / "p", local_queuedata=True)
    proc = pilot(launch, proxy.url, "--api", "legacy", "--update-timeout", "300")
    wait_for(lambda: proxy.count(GETJOB["legacy"]) >= 2, what="getJob retried")
    proc.send_signal(signal.SIGTERM)
    code, err = finish(proc, timeout=60)  # a hang guard far below the 300 s budget
    assert code == 128 + signal.SIGTERM, err
    assert launch.records()[-1]["source"] in ("GETJOB", "ABORTING"), launch.records()[-1]
