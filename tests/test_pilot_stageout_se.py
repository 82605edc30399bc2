"""Real pilots storing their outputs and log on a real XRootD storage element, end to end.

The embedded dispatcher serves a queue whose endpoint speaks root:// or davs://
(CRIC's ``write_lan`` protocols) and names xrdcp or gfal-copy in ``acopytools``.
The pilot runs a job, stores its output and its log there, and reports the
surls; the test reads the stored bytes from the server's data dir and asks the
server for its own adler32. Then the failures: a dead server, a stalled one
(the pilot's own deadline), SIGTERM during an upload (the copy's tree killed,
the job reported, the log still stored).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tarfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest

from fsm_pilot.replay import problems
from tests.pilotrun import FIXTURES, Launch, all_gone, started, wait_for
from tests.pilotserver import Dispatcher, job_spec
from tests.test_pilot_server import FAST, _launch, finish
from tests.xrootd_se import StorageElement

ENDPOINT = "XRD_DISK"
SYSTEM_PYTHON = "/usr/bin/python3"
REPO = Path(__file__).parent.parent


def _queue_files(root: Path, se: StorageElement, copytool: str, scheme: str) -> tuple[Path, Path]:
    """TEST_QUEUE writing to the storage element with ``copytool``, and the CRIC endpoint for it."""
    queue = json.loads((FIXTURES / "queuedata_TEST_QUEUE.json").read_text())
    queue["acopytools"] = {"pr": ["xrdcp"], "pw": [copytool], "pl": [copytool]}
    queue["copytools"] = {copytool: {"setup": ""}}
    queue["astorages"] = {key: [ENDPOINT] for key in ("pr", "pw", "pl", "read_lan", "write_lan")}
    protocol = {"endpoint": se.url(scheme).rstrip("/"), "path": "/atlas/rucio", "flavour": scheme.upper()}
    ddm = {ENDPOINT: {"name": ENDPOINT, "type": "DATADISK", "is_deterministic": True,
                      "arprotocols": {"write_lan": [protocol], "read_lan": [protocol], "write_wan": [protocol]}}}
    root.mkdir(parents=True, exist_ok=True)
    (root / "queuedata.json").write_text(json.dumps(queue))
    (root / "ddmendpoints.json").write_text(json.dumps(ddm))
    return root / "queuedata.json", root / "ddmendpoints.json"


@pytest.fixture
def serve(tmp_path: Path, storage_element: StorageElement) -> Any:
    """A dispatcher whose queue writes to the storage element: ``serve(copytool, scheme)``."""
    servers: list[Dispatcher] = []

    def start(copytool: str, scheme: str) -> Dispatcher:
        queuedata, storagedata = _queue_files(tmp_path / "config", storage_element, copytool, scheme)
        server = Dispatcher(tmp_path / "dispatcher", queuedata=queuedata, storagedata=storagedata).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def _pilot(launch: Launch, url: str, se: StorageElement, *extra: str, python: str = sys.executable,
           env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """A pilot for TEST_QUEUE with the storage element's client environment (fail fast, trust its CA)."""
    environment = {**{k: v for k, v in os.environ.items() if not k.startswith("FSM_PILOT_")}, **se.client_env(),
                   **(env or {})}
    cmd = [python, "-m", "fsm_pilot", "run", "-q", "TEST_QUEUE", "-j", "managed", "-t", "-a", str(launch.dir),
           "--url", url, "--timefloor", "0", *FAST, *extra]
    return started(subprocess.Popen(cmd, cwd=launch.dir, env=environment, text=True, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE))


def _final(server: Dispatcher, panda_id: int) -> dict[str, Any]:
    rows = server.query("SELECT fields FROM job_history WHERE PandaID = ? AND event = 'update' "
                        "AND state IN ('finished', 'failed')", panda_id)
    assert len(rows) == 1, rows
    return dict(json.loads(rows[0][0]))


def _replica(se: StorageElement, surl: str) -> Path:
    """The stored file behind a surl (root://host:port//atlas/... or davs://host:port/atlas/...)."""
    path = surl.split(f"127.0.0.1:{se.port}", 1)[1].lstrip("/")
    return se.data / path


def _server_adler32(se: StorageElement, surl: str) -> str:
    path = "/" + surl.split(f"127.0.0.1:{se.port}", 1)[1].lstrip("/")
    out = subprocess.run(["xrdfs", f"127.0.0.1:{se.port}", "query", "checksum", path], capture_output=True,
                         text=True, env={**os.environ, **se.client_env()}, timeout=60, check=True).stdout
    return out.split()[1]


def _pilot_log(launch: Launch) -> list[dict[str, Any]]:
    pilot_dir = launch.pilot_dir()
    assert pilot_dir is not None
    return [json.loads(line) for line in (pilot_dir / "pilot.log").read_text().splitlines() if line.startswith("{")]


def _check_stored(se: StorageElement, final: dict[str, Any], lfns: list[str]) -> dict[str, Any]:
    report = json.loads(final["job_output_report"])
    for lfn in lfns:
        entry = report[lfn]
        data = _replica(se, entry["surl"]).read_bytes()
        assert (len(data), f"{zlib.adler32(data):08x}") == (entry["fsize"], entry["adler32"])
        assert _server_adler32(se, entry["surl"]) == entry["adler32"]
        assert entry["endpoint"] == ENDPOINT
    return dict(report)


def _copytools_used(launch: Launch) -> set[str]:
    return {str(r["copytool"]) for r in _pilot_log(launch) if r.get("event") == "stage-out copy verified"}


PAYLOAD = "-c 'head -c 5000000 /dev/urandom > out.dat; echo done'"
SMALL = "-c 'echo data > out.dat'"  # under 1 MB: the copy's deadline is --stageout-timeout itself


@pytest.mark.parametrize("case", [("xrdcp", "root", "xrdcp"), ("gfalcopy", "davs", "gfal-copy")])
def test_outputs_and_log_are_stored_and_reported(tmp_path: Path, storage_element: StorageElement,
                                                 serve: Callable[[str, str], Dispatcher],
                                                 case: tuple[str, str, str]) -> None:
    copytool, scheme, label = case
    prefix = f"{scheme}://"
    server = serve(copytool, scheme)
    [panda_id] = server.submit(job_spec(PAYLOAD, ("out.dat",)))
    launch = _launch(tmp_path / "p")
    code, err = finish(_pilot(launch, server.url, storage_element), timeout=120)
    assert code == 0, err
    assert server.status(panda_id) == {panda_id: "finished"}
    final = _final(server, panda_id)
    log_lfn = f"{next(iter(json.loads(final['job_output_report']).keys() - {'out.dat'}))}"
    report = _check_stored(storage_element, final, ["out.dat", log_lfn])
    assert report["out.dat"]["surl"].startswith(f"{prefix}127.0.0.1:{storage_element.port}/")
    assert "/atlas/rucio/test/" in report["out.dat"]["surl"]
    assert _copytools_used(launch) == {label}
    with tarfile.open(_replica(storage_element, report[log_lfn]["surl"])) as tar:
        names = tar.getnames()
    assert not any(name.endswith("/out.dat") for name in names)  # outputs are not in the log, as in Pilot 3
    assert any(name.endswith("/stageout.log") for name in names)
    assert problems(launch.records()) == []


def _bindings_python() -> tuple[str, str] | None:
    """/usr/bin/python3 with the project and its dependencies on PYTHONPATH, if it imports both bindings."""
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        return None
    site = next((p for p in sys.path if p.endswith("site-packages")), None)
    if site is None:
        return None
    pythonpath = os.pathsep.join((str(REPO), site))
    probe = subprocess.run([SYSTEM_PYTHON, "-c", "import gfal2, fsm_pilot.cli; from XRootD import client"],
                           env={**os.environ, "PYTHONPATH": pythonpath}, capture_output=True, check=False)
    return (SYSTEM_PYTHON, pythonpath) if probe.returncode == 0 else None


@pytest.mark.skipif(_bindings_python() is None, reason="/usr/bin/python3 cannot import gfal2, XRootD and the "
                                                       "pilot's dependencies (python3-gfal2, python3-xrootd)")
@pytest.mark.parametrize("case", [("xrdcp", "root", "XRootD bindings"), ("gfal", "davs", "gfal2 bindings")])
def test_where_the_bindings_import_they_do_the_copies(tmp_path: Path, storage_element: StorageElement,
                                                     serve: Callable[[str, str], Dispatcher],
                                                     case: tuple[str, str, str]) -> None:
    copytool, scheme, label = case
    found = _bindings_python()
    assert found is not None
    python, pythonpath = found
    server = serve(copytool, scheme)
    [panda_id] = server.submit(job_spec(PAYLOAD, ("out.dat",)))
    launch = _launch(tmp_path / "p")
    code, err = finish(_pilot(launch, server.url, storage_element, python=python,
                              env={"PYTHONPATH": pythonpath}), timeout=120)
    assert code == 0, err
    final = _final(server, panda_id)
    report = json.loads(final["job_output_report"])
    _check_stored(storage_element, final, list(report))
    assert _copytools_used(launch) == {label}


def test_dead_server_fails_the_job_as_unreachable(tmp_path: Path, storage_element: StorageElement,
                                                       serve: Callable[[str, str], Dispatcher]) -> None:
    server = serve("xrdcp", "root")
    storage_element.stop()
    [panda_id] = server.submit(job_spec(PAYLOAD, ("out.dat",)))
    launch = _launch(tmp_path / "p")
    code, err = finish(_pilot(launch, server.url, storage_element), timeout=120)
    assert code == 0, err
    final = _final(server, panda_id)
    assert (final["job_status"], final["pilot_error_code"]) == ("failed", 1327)  # UNREACHABLENETWORK
    assert "Connection error" in final["pilot_error_diag"]
    assert json.loads(final.get("job_output_report") or "{}") == {}


def test_stalled_server_ends_at_the_pilots_deadline_with_heartbeats(
        tmp_path: Path, storage_element: StorageElement, serve: Callable[[str, str], Dispatcher]) -> None:
    server = serve("xrdcp", "root")
    storage_element.stall()
    [panda_id] = server.submit(job_spec(SMALL, ("out.dat",)))
    launch = _launch(tmp_path / "p")
    proc = _pilot(launch, server.url, storage_element, "--stageout-timeout", "2", "--heartbeat-interval", "0.3")
    code, err = finish(proc, timeout=120)
    storage_element.resume()
    assert code == 0, err
    final = _final(server, panda_id)
    assert (final["job_status"], final["pilot_error_code"]) == ("failed", 1152)
    assert "not done within 2 s, killed" in final["pilot_error_diag"]
    entered = {r["dest"]: r["time"] for r in launch.records() if r["job_id"] == panda_id}
    beats = server.query("SELECT time FROM job_history WHERE PandaID = ? AND event = 'update' AND state = 'running' "
                         "AND time >= ?", panda_id, entered["STAGEOUT"])
    assert len(beats) >= 3, beats  # every copy waited ~2 s (two for the output, two for the log)


def _copies(pilot: subprocess.Popen[str], *markers: str) -> list[int]:
    """The pilot's descendants whose command line names every one of ``markers``."""
    try:
        children = psutil.Process(pilot.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    found = []
    for child in children:
        try:
            cmdline = " ".join(child.cmdline())
            if all(marker in cmdline for marker in markers):
                found.append(child.pid)
        except psutil.Error:
            continue
    return found


def test_sigterm_during_an_upload_kills_the_copy_and_the_job_is_reported(
        tmp_path: Path, storage_element: StorageElement, serve: Callable[[str, str], Dispatcher]) -> None:
    """The server is frozen, so the upload cannot end by itself; SIGTERM then: the copy's tree is killed,
    the job fails with SIGTERM's code, and the log (the server thawed) is stored all the same."""
    server = serve("xrdcp", "root")
    storage_element.stall()
    [panda_id] = server.submit(job_spec(PAYLOAD, ("out.dat",)))
    launch = _launch(tmp_path / "p")
    proc = _pilot(launch, server.url, storage_element)
    copies = wait_for(lambda: _copies(proc, "xrdcp", "out.dat"), timeout=60, what="the output's upload running")
    proc.send_signal(signal.SIGTERM)
    wait_for(lambda: all_gone(copies), what="the upload's process tree killed")
    storage_element.resume()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    final = _final(server, panda_id)
    assert (final["job_status"], final["pilot_error_code"]) == ("failed", 1201)
    assert final["pilot_error_diag"] == "stage-out stopped by SIGTERM: 0 of 1 outputs stored"
    report = json.loads(final["job_output_report"])
    assert list(report) != [] and "out.dat" not in report  # the log only
    _check_stored(storage_element, final, list(report))
    assert not list(storage_element.data.rglob("out.dat"))  # --posc: the cut upload left nothing behind
