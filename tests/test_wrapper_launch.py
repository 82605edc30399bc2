"""fsm-pilot launched the way sites launch pilots: the unmodified production wrapper, a bare python3, the tarball.

Each test runs ``runpilot2-wrapper.sh`` with ``env -i`` (PATH, HOME, CURL_HOME
only) and a python3 that has nothing but its standard library, against the
embedded dispatcher on 127.0.0.1. What is checked is what a site sees: the
wrapper's exit code (WRAPPER.md's table), the job's final state on the server,
the payload tree gone. No step of the wrapper reaches beyond this machine.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

if any(shutil.which(tool) is None for tool in ("bash", "curl", "which")):
    pytest.skip("the production wrapper needs bash, curl and which (apt-get install curl)", allow_module_level=True)

from tests.deploy_env import FIXTURES, Node, build_tarball, interpreters, make_node, pilot_exit_status
from tests.pilotrun import all_gone, wait_for
from tests.pilotserver import Dispatcher, free_port, job_spec

#: Our own options (shorter intervals); the wrapper forwards options it does not know, in order.
FAST = ("--heartbeat-interval", "0.5", "--kill-grace", "0.5", "--getjob-wait", "0", "--min-free-disk", "1000")
PYTHONS = interpreters()
#: The newest python on this machine runs the tests that are not about the python version.
NEWEST = PYTHONS[max(PYTHONS, key=lambda v: tuple(int(p) for p in v.split(".")))]


@pytest.fixture(scope="module")
def tarball(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tarball(tmp_path_factory.mktemp("dist") / "pilot3.tar.gz")


def _factory_options(node: Node, url: str) -> list[str]:
    """What Harvester's pilots_starter adds to the wrapper's command line (PILOT3_FACTS.md), aimed at ``url``."""
    return ["-r", "TEST_QUEUE", "-s", "TEST_SITE", "-a", str(node.launch), "--resource-type", "SCORE", "-j",
            "managed", "-i", "PR", "--job-type", "managed", "-w", "generic", "--pilot-user=ATLAS", f"--url={url}",
            "-d", "--harvester-submit-mode=PULL", "--allow-same-user=False"]


def _start(node: Node, *args: str, piloturl: str = "local") -> subprocess.Popen[str]:
    """The wrapper in its own process group (as a batch job is), in the launch dir."""
    return subprocess.Popen(node.wrapper_cmd(*args, piloturl=piloturl), cwd=node.launch, env=node.env(),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


@pytest.fixture
def wrappers() -> Iterator[list[subprocess.Popen[str]]]:
    """Wrappers a test started; a failing test's are ended with their whole process group."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()


def _finish(proc: subprocess.Popen[str], timeout: float = 90) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def _final_fields(server: Dispatcher, panda_id: int) -> dict[str, object]:
    rows = server.query("SELECT fields FROM job_history WHERE PandaID = ? AND event = 'update' "
                        "AND outcome = 'accepted' ORDER BY id DESC LIMIT 1", panda_id)
    fields: dict[str, object] = json.loads(rows[0][0])
    return fields


@pytest.mark.parametrize("minor", sorted(PYTHONS))
def test_the_wrapper_runs_a_job_end_to_end_with_a_bare_python(
        minor: str, tarball: Path, tmp_path: Path, dispatcher: Dispatcher) -> None:
    [panda_id] = dispatcher.submit(job_spec("-c 'echo $PandaID > out.txt'", ("out.txt",)))
    node = make_node(tmp_path / "node", PYTHONS[minor], tarball)
    code, out, err = _finish(_start(node, *_factory_options(node, dispatcher.url), *FAST))
    assert (code, pilot_exit_status(out)) == (0, 0), out[-3000:] + err[-3000:]
    assert f"pilot.py -q TEST_QUEUE -i PR -j managed -t -a {node.launch} --resource-type SCORE" in out
    assert dispatcher.status(panda_id) == {panda_id: "finished"}
    report = json.loads(str(_final_fields(dispatcher, panda_id)["job_output_report"]))
    stored = dispatcher.storage / report["out.txt"]["surl"].split(str(dispatcher.storage) + "/", 1)[1]
    assert stored.read_text() == f"{panda_id}\n"
    assert re.search(rf"pandaids: {panda_id}\b", out), "the wrapper reads the job's id from pilot3/pandaIDs.out"
    assert re.search(rf"\[info +\] pilot .*python={re.escape(minor)}\.\d+", err), "the node's python ran it"


def test_the_wrapper_fetches_the_tarball_over_http_and_removes_its_temporary_dir(
        tarball: Path, tmp_path: Path, dispatcher: Dispatcher, wrappers: list[subprocess.Popen[str]]) -> None:
    [panda_id] = dispatcher.submit(job_spec("-c 'true'"))
    node = make_node(tmp_path / "node", NEWEST, None)
    served = subprocess.Popen([sys.executable, "-u", "-m", "http.server", "0", "--bind", "127.0.0.1",
                               "--directory", str(tarball.parent)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        assert served.stdout is not None
        port = int(re.search(r"port (\d+)", served.stdout.readline()).group(1))  # type: ignore[union-attr]
        url = f"http://127.0.0.1:{port}/pilot3.tar.gz"
        proc = _start(node, "--url", dispatcher.url, *FAST, piloturl=url)
        wrappers.append(proc)
        code, out, err = _finish(proc)
    finally:
        served.terminate()
        _, served_log = served.communicate(timeout=10)
    assert (code, pilot_exit_status(out)) == (0, 0), out[-3000:] + err[-3000:]
    assert '"GET /pilot3.tar.gz HTTP/1.1" 200' in served_log
    assert dispatcher.status(panda_id) == {panda_id: "finished"}
    assert not list(node.launch.glob("atlas_*")) and not list(node.launch.glob("pilot3"))


def _closed_server(node: Node) -> list[str]:
    """Options aiming the pilot at a port nobody listens on, with the queue's files in the launch dir."""
    ddm = json.loads((FIXTURES / "cric_ddmendpoints.json").read_text())
    (node.launch / "storagedata.json").write_text(json.dumps(ddm))
    return ["--url", f"http://127.0.0.1:{free_port()}", "--update-timeout", "1"]


@pytest.mark.parametrize(("case", "codes"), [("no jobs", (82, 0)), ("server down", (79, 79))])
def test_the_wrapper_maps_the_pilots_exit_code_as_its_table_says(
        case: str, codes: tuple[int, int], tarball: Path, tmp_path: Path, dispatcher: Dispatcher) -> None:
    node = make_node(tmp_path / "node", NEWEST, tarball)
    target = ["--url", dispatcher.url] if case == "no jobs" else _closed_server(node)
    code, out, err = _finish(_start(node, *target, *FAST))
    assert (pilot_exit_status(out), code) == codes, out[-3000:] + err[-3000:]


def _running_job(dispatcher: Dispatcher, tmp_path: Path) -> tuple[int, Path]:
    """A job whose payload leaves a background child; both write their pids to ``pids``."""
    pids = tmp_path / "pids"
    [panda_id] = dispatcher.submit(job_spec(f"-c 'sleep 300 & echo $! >> {pids}; echo $$ >> {pids}; wait'"))
    return panda_id, pids


def _payload_pids(pids: Path) -> list[int] | None:
    found = [int(p) for p in pids.read_text().split()] if pids.exists() else []
    return found if len(found) == 2 else None


def test_sigterm_to_the_process_group_mid_job_reports_the_job_and_ends_the_payload_tree(
        tarball: Path, tmp_path: Path, dispatcher: Dispatcher, wrappers: list[subprocess.Popen[str]]) -> None:
    panda_id, pids = _running_job(dispatcher, tmp_path)
    node = make_node(tmp_path / "node", NEWEST, tarball)
    proc = _start(node, "--url", dispatcher.url, *FAST)
    wrappers.append(proc)
    payload = wait_for(lambda: _payload_pids(pids), what="the payload and its child")
    wait_for(lambda: dispatcher.status(panda_id)[panda_id] == "running", what="job running")
    os.killpg(proc.pid, signal.SIGTERM)  # what a batch system does: the whole job's process group
    code, out, err = _finish(proc)
    assert (pilot_exit_status(out), code) == (143, 1), out[-3000:] + err[-3000:]
    assert dispatcher.status(panda_id) == {panda_id: "failed"}, err[-5000:]
    assert _final_fields(dispatcher, panda_id)["pilot_error_code"] == 1201
    assert all_gone(payload)


def _pilot_process(wrapper: subprocess.Popen[str]) -> psutil.Process:
    """The python3 running pilot3/pilot.py under ``wrapper``."""
    def find() -> psutil.Process | None:
        for child in psutil.Process(wrapper.pid).children(recursive=True):
            try:
                if any(arg.endswith("pilot3/pilot.py") for arg in child.cmdline()):
                    return child
            except psutil.NoSuchProcess:
                continue
        return None
    found: psutil.Process = wait_for(find, what="the pilot process")
    return found


#: signal, (pilot exit code, wrapper exit code, the job's pilotErrorCode)
SIGNAL_CASES = [(signal.SIGINT, (130, 2, 1208)), (signal.SIGQUIT, (131, 131, 1202))]


@pytest.mark.parametrize(("signum", "expected"), SIGNAL_CASES)
def test_a_signal_the_wrapper_made_the_pilot_ignore_still_stops_it(
        signum: int, expected: tuple[int, int, int], *, tarball: Path, tmp_path: Path, dispatcher: Dispatcher,
        wrappers: list[subprocess.Popen[str]]) -> None:
    panda_id, pids = _running_job(dispatcher, tmp_path)
    node = make_node(tmp_path / "node", NEWEST, tarball)
    proc = _start(node, "--url", dispatcher.url, *FAST)
    wrappers.append(proc)
    pilot = _pilot_process(proc)
    payload = wait_for(lambda: _payload_pids(pids), what="the payload and its child")
    wait_for(lambda: dispatcher.status(panda_id)[panda_id] == "running", what="job running")
    pilot.send_signal(signum)
    code, out, err = _finish(proc)
    assert (pilot_exit_status(out), code, _final_fields(dispatcher, panda_id)["pilot_error_code"]) == expected, \
        out[-3000:] + err[-3000:]
    assert all_gone(payload)
