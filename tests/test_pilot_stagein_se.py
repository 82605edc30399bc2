"""Real pilots stage inputs in from a real XRootD storage element, over root:// and davs://.

The dispatcher serves the jobs; the pilot reads queuedata and CRIC endpoints
from files naming the storage element of tests/xrootd_se.py (SE_ROOT reads over
root://, SE_DAVS over davs://) and writes outputs and logs to the dispatcher's
file:// storage. The pilot's environment has X509_CERT_DIR for the server's
CA and no XRD_* or GFAL_* variable: GFAL_PYTHONBIN and the XrdCl timeouts are
the pilot's own defaults.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest

from fsm_pilot.storage import deterministic_path
from tests.pilotrun import started, wait_for
from tests.pilotserver import Dispatcher, job_spec
from tests.se_helpers import adler32, put
from tests.storage_helpers import load
from tests.test_pilot_server import FAST, _launch, finish
from tests.xrootd_se import StorageElement

SCOPE = "mc23_13p6TeV"
BASE = "/atlas/rucio"
ENDPOINTS = {"SE_ROOT": "root", "SE_DAVS": "davs"}


@dataclass
class Site:
    """A queue reading from the storage element: its queuedata and CRIC files, the dispatcher, the SE."""

    root: Path
    dispatcher: Dispatcher
    se: StorageElement

    def configure(self, copytools: list[str]) -> tuple[str, ...]:
        """Write queuedata (``copytools`` for reading) and the endpoints; return the pilot's options for them."""
        queuedata = load("queuedata_TEST_QUEUE.json")
        queuedata["acopytools"] = {"pr": copytools, "pw": ["mv"], "pl": ["mv"]}
        queuedata["astorages"]["read_lan"] = [*ENDPOINTS, "LOCAL_DISK"]
        endpoints: dict[str, Any] = load("cric_ddmendpoints.json")
        for protocols in endpoints["LOCAL_DISK"]["arprotocols"].values():
            protocols[0]["path"] = str(self.dispatcher.storage)
        for name, scheme in ENDPOINTS.items():
            endpoints[name] = {**endpoints["LOCAL_DISK"], "name": name, "arprotocols": {"read_lan": [
                {"endpoint": self.se.url(scheme).rstrip("/"), "path": BASE, "flavour": scheme.upper()}]}}
        (self.root / "queuedata.json").write_text(json.dumps(queuedata))
        (self.root / "storagedata.json").write_text(json.dumps(endpoints))
        return ("--queuedata-url", str(self.root / "queuedata.json"),
                "--storagedata-url", str(self.root / "storagedata.json"))

    def replica(self, lfn: str, data: bytes) -> str:
        """Write a replica where Rucio's deterministic path puts it on the SE; return its catalog adler32."""
        put(self.se, f"{BASE}/{deterministic_path(SCOPE, lfn)}", data)
        return adler32(data)

    def submit(self, job_pars: str, inputs: dict[str, tuple[bytes, str, str]]) -> int:
        """One job reading ``inputs``: lfn -> (content, catalog adler32, endpoint)."""
        spec = job_spec(job_pars, ("out.txt",))
        names = list(inputs)
        spec.update({"inFiles": ",".join(names), "fsize": ",".join(str(len(inputs[n][0])) for n in names),
                     "checksum": ",".join(f"ad:{inputs[n][1]}" for n in names),
                     "scopeIn": ",".join(SCOPE for _ in names),
                     "GUID": ",".join(f"00000000-0000-4000-8000-{i:012d}" for i in range(len(names))),
                     # the server chooses endpoints; a dst: token picks one of the queue's (as with panda-server)
                     "dispatchDBlockToken": ",".join(f"dst:{inputs[n][2]}" for n in names)})
        [panda_id] = self.dispatcher.submit(spec)
        return panda_id

    def run(self, copytools: list[str], *extra: str, python: str = sys.executable) -> tuple[int, str]:
        """A pilot (run by ``python``) reading with ``copytools``; its exit code and stderr."""
        return finish(self.start(copytools, *extra, python=python), timeout=120)

    def start(self, copytools: list[str], *extra: str, python: str = sys.executable) -> subprocess.Popen[str]:
        """A pilot (run by ``python``) reading with ``copytools``, started."""
        launch = _launch(self.root / "p")
        env = {**{k: v for k, v in os.environ.items() if not k.startswith(("FSM_PILOT_", "XRD_", "GFAL_"))},
               "X509_CERT_DIR": str(self.se.ca_dir)}
        cmd = [python, "-m", "fsm_pilot", "run", "-q", "TEST_QUEUE", "-j", "managed", "-t", "-a", str(launch.dir),
               "--url", self.dispatcher.url, *FAST, "--timefloor", "0", *self.configure(copytools), *extra]
        return started(subprocess.Popen(cmd, cwd=launch.dir, env=env, text=True, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE))

    def final(self, panda_id: int) -> dict[str, Any]:
        rows = self.dispatcher.query("SELECT state, fields FROM job_history WHERE PandaID = ? AND event = 'update' "
                                     "ORDER BY id DESC LIMIT 1", panda_id)
        state, fields = rows[0]
        return {"state": state, **json.loads(fields)}


@pytest.fixture
def site(tmp_path: Path, storage_element: StorageElement) -> Iterator[Site]:
    yield from se_site(tmp_path, storage_element)


def se_site(tmp_path: Path, storage_element: StorageElement) -> Iterator[Site]:
    """The dispatcher serves a queue that reads from the SE's endpoints too (so a job's inputs may name them)."""
    queuedata = load("queuedata_TEST_QUEUE.json")
    queuedata["astorages"]["read_lan"] = [*ENDPOINTS, "LOCAL_DISK"]
    (tmp_path / "dispatcher-queuedata.json").write_text(json.dumps(queuedata))
    server = Dispatcher(tmp_path / "dispatcher", queuedata=tmp_path / "dispatcher-queuedata.json").start()
    yield Site(tmp_path, server, storage_element)
    server.stop()


def _staged(err: str) -> dict[str, str]:
    """lfn -> "copytool source" for every input the pilot's log says it staged in."""
    found = {}
    for line in err.splitlines():
        if "input staged in" in line:
            fields = dict(re.findall(r"(\w+)=(\S+)", line))
            found[fields["lfn"]] = f"{fields['copytool']} {fields['source']}"
    return found


def test_inputs_staged_in_over_root_and_davs(site: Site) -> None:
    """xrdcp reads the root:// replica; it cannot read davs://, so gfal-copy reads the other one."""
    a, b = b"alpha\n" * 1000, b"beta\n" * 3000
    panda_id = site.submit("-c 'cat a.dat b.dat > out.txt'", {
        "a.dat": (a, site.replica("a.dat", a), "SE_ROOT"), "b.dat": (b, site.replica("b.dat", b), "SE_DAVS")})
    code, err = site.run(["xrdcp", "gfal"])
    assert code == 0, err
    assert site.final(panda_id)["state"] == "finished", err
    assert _staged(err) == {"a.dat": f"xrdcp {site.se.url('root')}{BASE}/{deterministic_path(SCOPE, 'a.dat')}",
                            "b.dat": f"gfal {site.se.url('davs')}{BASE}/{deterministic_path(SCOPE, 'b.dat')}"}, err


@pytest.mark.parametrize("reader", [("SE_ROOT", "xrdcp"), ("SE_DAVS", "gfal")])
@pytest.mark.parametrize(("case", "code"), [("missing", 1331), ("corrupt", 1171)])
def test_missing_or_corrupt_replica_fails_the_job(site: Site, tmp_path: Path, reader: tuple[str, str], case: str,
                                                  code: int) -> None:
    """Missing: the server says so. Corrupt: changed behind the server's back, wrong against the catalog."""
    endpoint, copytool = reader
    data = b"input bytes\n" * 2000
    catalog = adler32(data)
    if case == "corrupt":
        site.replica("in.dat", data.replace(b"input", b"INPUT", 1))
    marker = tmp_path / "ran"
    panda_id = site.submit(f"-c 'touch {marker}'", {"in.dat": (data, catalog, endpoint)})
    exit_code, err = site.run([copytool])
    assert exit_code == 0, err
    final = site.final(panda_id)
    assert (final["state"], final["pilot_error_code"]) == ("failed", code), final
    assert copytool in final["pilot_error_diag"] or "adler32" in final["pilot_error_diag"], final
    assert not marker.exists()


def _no_copy_left(se: StorageElement) -> bool:
    """No client process anywhere still talks to the storage element (the killed copy's tree is gone)."""
    port = str(se.port)
    for proc in psutil.process_iter(["cmdline", "status"]):
        cmdline = " ".join(proc.info["cmdline"] or ())
        if port in cmdline and "xrootd" not in cmdline and proc.info["status"] != psutil.STATUS_ZOMBIE:
            return False
    return True


def _heartbeats(site: Site, panda_id: int) -> int:
    """How many ``running`` updates the server got for the job (stage-in sends one as it starts)."""
    return len(site.dispatcher.query("SELECT id FROM job_history WHERE PandaID = ? AND event = 'update' "
                                     "AND state = 'running'", panda_id))


@pytest.mark.parametrize(("endpoint", "copytool"), [("SE_ROOT", "xrdcp"), ("SE_DAVS", "gfal")])
def test_stalled_server_is_cut_off_by_the_copy_timeout(site: Site, endpoint: str, copytool: str) -> None:
    """SIGSTOPped server: the pilot's own timer (--copy-timeout 2) kills the copy's tree; STAGEINTIMEOUT.

    Heartbeats go out while the one copy hangs (every 0.3 s here), not only between files.
    """
    data = b"x" * 10_000
    panda_id = site.submit("-c true", {"in.dat": (data, site.replica("in.dat", data), endpoint)})
    site.se.stall()
    code, err = site.run([copytool], "--copy-timeout", "2", "--heartbeat-interval", "0.3")
    assert code == 0, err
    final = site.final(panda_id)
    assert (final["state"], final["pilot_error_code"]) == ("failed", 1151), final
    assert "not done within 2 s, copy killed" in final["pilot_error_diag"]
    assert _no_copy_left(site.se)
    assert _heartbeats(site, panda_id) >= 3  # the payload never ran: all of them were sent during the copy


def test_kill_command_during_a_hanging_copy_kills_it_and_fails_the_job(site: Site) -> None:
    """tobekilled, answered to a heartbeat sent while the copy hangs: the copy's tree is killed, PANDAKILL."""
    data = b"z" * 10_000
    panda_id = site.submit("-c true", {"in.dat": (data, site.replica("in.dat", data), "SE_ROOT")})
    site.se.stall()
    proc = site.start(["xrdcp"], "--copy-timeout", "100", "--heartbeat-interval", "0.3")
    wait_for(lambda: site.dispatcher.status(panda_id)[panda_id] == "running", what="stage-in started")
    site.dispatcher.v1("job/set_command", {"job_id": panda_id, "command": "tobekilled"})
    code, err = finish(proc, timeout=60)
    assert code == 0, err
    final = site.final(panda_id)
    assert (final["state"], final["pilot_error_code"]) == ("failed", 1144), final
    assert "killed by the server during stage-in" in final["pilot_error_diag"]
    assert _no_copy_left(site.se)


@pytest.mark.parametrize(("endpoint", "copytool"), [("SE_ROOT", "xrdcp"), ("SE_DAVS", "gfal")])
def test_dead_server_fails_fast_as_unreachable(site: Site, endpoint: str, copytool: str) -> None:
    """Nothing listens: with the pilot's XrdCl defaults xrdcp gives up on its own, long before the copy timeout."""
    data = b"y" * 10_000
    panda_id = site.submit("-c true", {"in.dat": (data, site.replica("in.dat", data), endpoint)})
    site.se.stop()
    code, err = site.run([copytool], "--copy-timeout", "100")
    assert code == 0, err
    final = site.final(panda_id)
    assert (final["state"], final["pilot_error_code"]) == ("failed", 1327), final
