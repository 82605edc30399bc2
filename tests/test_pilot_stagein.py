"""Stage-in, heartbeats in every job state, and URL transformations: real pilots, dispatcher, storage."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from fsm_pilot.replay import problems
from tests.pilotrun import wait_for
from tests.pilotserver import Dispatcher, free_port, job_spec
from tests.test_pilot_server import _launch, finish, pilot


def _replica(server: Dispatcher, scope: str, lfn: str, data: bytes) -> str:
    """Put a replica at its deterministic path on the dispatcher's storage; return its adler32."""
    digest = hashlib.md5(f"{scope}:{lfn}".encode()).hexdigest()
    path = server.storage / scope / digest[:2] / digest[2:4] / lfn
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return f"{zlib.adler32(data) & 0xFFFFFFFF:08x}"


def _with_inputs(spec: dict[str, object], files: dict[str, tuple[int, str]]) -> dict[str, object]:
    """Add inputs (lfn -> (size, adler32)) to a job spec, with PanDA's aligned comma lists."""
    names = list(files)
    spec.update({"inFiles": ",".join(names), "fsize": ",".join(str(files[n][0]) for n in names),
                 "checksum": ",".join(f"ad:{files[n][1]}" for n in names), "scopeIn": ",".join("test" for _ in names),
                 "GUID": ",".join(f"00000000-0000-4000-8000-{i:012d}" for i in range(len(names)))})
    return spec


def _updates(server: Dispatcher, panda_id: int) -> list[tuple[float, str]]:
    rows = server.query("SELECT time, state FROM job_history WHERE PandaID = ? AND event = 'update' ORDER BY id",
                        panda_id)
    return [(float(t), str(s)) for t, s in rows]


def test_inputs_are_staged_in_and_read_by_the_payload(tmp_path: Path, dispatcher: Dispatcher) -> None:
    data = {"a.txt": b"alpha\n", "b.txt": b"beta\n" * 1000}
    files = {lfn: (len(body), _replica(dispatcher, "test", lfn, body)) for lfn, body in data.items()}
    spec = _with_inputs(job_spec("-c 'cat a.txt b.txt > joined.txt'", ("joined.txt",)), files)
    [panda_id] = dispatcher.submit(spec)
    launch = _launch(tmp_path / "p")
    code, err = finish(pilot(launch, dispatcher.url, "--timefloor", "0"))
    assert code == 0, err
    assert dispatcher.status(panda_id) == {panda_id: "finished"}
    [(fields,)] = dispatcher.query("SELECT fields FROM job_history WHERE PandaID = ? AND state = 'finished'",
                                   panda_id)
    report = json.loads(json.loads(fields)["job_output_report"])
    stored = dispatcher.storage / report["joined.txt"]["surl"].split(str(dispatcher.storage) + "/", 1)[1]
    assert stored.read_bytes() == data["a.txt"] + data["b.txt"]
    assert "a.txt" not in report  # inputs are not outputs, and not in the log either
    assert problems(launch.records()) == []


@pytest.mark.parametrize(("corrupt", "code"), [("checksum", 1171), ("missing", 1331), ("size", 1099)])
def test_bad_input_fails_the_job_without_running_it(tmp_path: Path, dispatcher: Dispatcher, corrupt: str,
                                                    code: int) -> None:
    adler = _replica(dispatcher, "test", "in.dat", b"payload input")
    size = 13
    if corrupt == "checksum":
        adler = "0badc0de"
    elif corrupt == "size":
        size = 99
    lfn = "gone.dat" if corrupt == "missing" else "in.dat"  # no replica of gone.dat is ever written
    marker = tmp_path / "ran"
    [panda_id] = dispatcher.submit(_with_inputs(job_spec(f"-c 'touch {marker}'"), {lfn: (size, adler)}))
    launch = _launch(tmp_path / "p")
    code_, err = finish(pilot(launch, dispatcher.url, "--timefloor", "0"))
    assert code_ == 0, err
    [(fields,)] = dispatcher.query("SELECT fields FROM job_history WHERE PandaID = ? AND state = 'failed'",
                                   panda_id)
    assert json.loads(fields)["pilot_error_code"] == code
    assert not marker.exists()
    steps = [(r["source"], r["event"]) for r in launch.records()]
    assert ("STAGEIN", "stagein_failed") in steps and ("RUNNING", "payload_done") not in steps


def test_heartbeats_in_stagein_running_and_stageout(tmp_path: Path, dispatcher: Dispatcher) -> None:
    inputs = {f"in{i}.dat": bytes(200_000) for i in range(6)}
    files = {lfn: (len(body), _replica(dispatcher, "test", lfn, body)) for lfn, body in inputs.items()}
    outputs = tuple(f"out{i}.dat" for i in range(6))
    writes = "; ".join(f"head -c 300000 /dev/urandom > {o}" for o in outputs)
    spec = _with_inputs(job_spec(f"-c '{writes}; sleep 0.5'", outputs), files)
    [panda_id] = dispatcher.submit(spec)
    launch = _launch(tmp_path / "p")
    code, err = finish(pilot(launch, dispatcher.url, "--timefloor", "0", "--heartbeat-interval", "0.001"))
    assert code == 0, err
    entered = {r["dest"]: r["time"] for r in launch.records() if r["job_id"] == panda_id}
    beats = [t for t, state in _updates(dispatcher, panda_id) if state == "running"]
    in_stagein = [t for t in beats if entered["STAGEIN"] <= t < entered["RUNNING"]]
    in_running = [t for t in beats if entered["RUNNING"] <= t < entered["STAGEOUT"]]
    in_stageout = [t for t in beats if t >= entered["STAGEOUT"]]
    assert len(in_stagein) >= 2 and len(in_running) >= 2 and len(in_stageout) >= 2, (
        len(in_stagein), len(in_running), len(in_stageout))
    assert _updates(dispatcher, panda_id)[-1][1] == "finished"


@pytest.fixture
def trf_server(tmp_path: Path) -> Iterator[str]:
    """A plain HTTP server (python -m http.server) on loopback serving a transformation script."""
    root = tmp_path / "trf"
    (root / "user").mkdir(parents=True)
    (root / "user" / "hello.sh").write_text("#!/bin/sh\necho \"hello $1\" > hello.txt\n")
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                             "--directory", str(root)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        import requests
        try:
            return requests.get(f"{url}/user/hello.sh", timeout=1).ok
        except requests.RequestException:
            return False

    wait_for(up, what="the transformation server")
    yield url
    proc.terminate()
    proc.wait(10)


def test_url_transformation_runs_only_from_an_allowed_base(tmp_path: Path, dispatcher: Dispatcher,
                                                            trf_server: str) -> None:
    allowed = job_spec("world", ("hello.txt",), transformation=f"{trf_server}/user/hello.sh")
    elsewhere = job_spec("world", ("hello.txt",), transformation=f"{trf_server}/elsewhere/hello.sh")
    ok_id, refused_id = dispatcher.submit(allowed, elsewhere)
    launch = _launch(tmp_path / "p")
    code, err = finish(pilot(launch, dispatcher.url, "--timefloor", "10", "-g", f"{trf_server}/user"))
    assert code == 0, err
    assert dispatcher.status(ok_id, refused_id) == {ok_id: "finished", refused_id: "failed"}
    [(fields,)] = dispatcher.query("SELECT fields FROM job_history WHERE PandaID = ? AND state = 'failed'",
                                   refused_id)
    assert json.loads(fields)["pilot_error_code"] == 1149
