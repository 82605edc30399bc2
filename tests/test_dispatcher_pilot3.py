"""The real, unmodified PanDA Pilot 3 (PyPI ``panda-pilot``) takes a job from the dispatcher and finishes it.

What Pilot 3 needs, none of it a change to its code:

- ``--url http://127.0.0.1 -p PORT``: Pilot 3 keeps the scheme it is given (https only
  when none is), and makes every server call with the ``curl`` binary (skipped without it).
- ``HARVESTER_PILOT_CONFIG``: a copy of Pilot 3's own default.cfg whose queue and storage
  URLs point at the dispatcher; with the shipped one it waits ~50 s per retry series for
  atlas-cric.cern.ch and CVMFS before it falls back to ``--queuedata-url``.
- the payload arrives as an input file: the ``generic`` user plug-in only runs a
  transformation already in the job dir (or downloaded from two hard-wired hosts), and
  its ``mv`` copytool stages inputs in from the directory above the job dir, which is
  the launch dir when ``-a`` is not given. Outputs are left there too (ARC style).
- ``PILOT_NOKILL=1`` and, where ``unshare`` works, a PID namespace: at the end of a job
  Pilot 3 SIGTERMs and SIGKILLs every process of the same user whose parent is PID 1,
  which on a developer's machine or in CI means unrelated daemons and other tests.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import uuid
import zlib
from pathlib import Path

import pytest

from tests.dispatcher_helpers import TEST_QUEUE, Dispatcher, history, queue_args, running, status_of

PILOT_RUN_TIMEOUT = 600
_NETWORK_TROUBLE = ("NewConnectionError", "ConnectionError", "Temporary failure in name resolution",
                    "Max retries exceeded", "Network is unreachable", "timed out", "ProxyError",
                    "No matching distribution found", "Could not find a version")
PAYLOAD = '#!/bin/sh\necho "hello from Pilot 3: $*" > out.txt\necho payload done\n'


def _unpack(archive: Path, into: Path) -> Path:
    with tarfile.open(archive) as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(into, filter="data")
        else:  # pragma: no cover - Python without the extraction filters
            for member in tar.getmembers():
                assert not member.name.startswith("/") and ".." not in Path(member.name).parts
            tar.extractall(into)
    (launcher,) = into.glob("*/pilot.py")
    return launcher


@pytest.fixture(scope="session")
def pilot3(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Pilot 3's pilot.py: from $FSM_PILOT3_DIR, or downloaded with pip into a session tmp dir."""
    given = os.environ.get("FSM_PILOT3_DIR")
    if given and (Path(given) / "pilot.py").is_file():
        return Path(given) / "pilot.py"
    if shutil.which("curl") is None:
        pytest.skip("Pilot 3 makes every server call with the curl binary, and there is none on PATH")
    cache = tmp_path_factory.mktemp("pilot3")
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--dest", str(cache), "panda-pilot>=3.7"]
    done = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        output = done.stdout + done.stderr
        if any(sign in output for sign in _NETWORK_TROUBLE):
            pytest.skip(f"pip cannot reach PyPI to download panda-pilot: {output.strip()[-300:]}")
        raise AssertionError(f"pip download panda-pilot failed:\n{output}")
    (archive,) = cache.glob("panda*pilot-*.tar.gz")
    return _unpack(archive, cache / "src")


def _isolation() -> list[str]:
    """A PID namespace for Pilot 3 when this machine allows one (root, or user namespaces)."""
    if shutil.which("unshare") is None:
        return []
    base = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"]
    for prefix in (base, [base[0], "--user", "--map-root-user", *base[1:]]):
        if subprocess.run([*prefix, "true"], check=False, capture_output=True, timeout=30).returncode == 0:
            return prefix
    return []


def _pilot_config(pilot: Path, url: str, into: Path) -> Path:
    """Pilot 3's default.cfg with the information-system URLs pointing at the dispatcher."""
    replace = {"queuedata_url": f"{url}/cache/schedconfig/{{pandaqueue}}.all.json",
               "queues_url": f"{url}/cric/pandaqueues.json", "storages_url": f"{url}/cric/ddmendpoints.json",
               "pandaserver": url}
    lines = []
    for line in (pilot.parent / "pilot" / "util" / "default.cfg").read_text().splitlines():
        key = line.split(":", 1)[0].strip()
        lines.append(f"{key}: {replace[key]}" if key in replace and not line.startswith("#") else line)
    config = into / "pilot3.cfg"
    config.write_text("\n".join(lines) + "\n")
    return config


def _submit(disp: Dispatcher, payload: bytes) -> int:
    adler = f"{zlib.adler32(payload) & 0xFFFFFFFF:08x}"
    spec = {"transformation": "run.sh", "jobPars": "via the dispatcher", "jobName": "pilot3.trivial",
            "prodSourceLabel": "managed", "inFiles": "run.sh", "GUID": str(uuid.uuid4()),
            "fsize": str(len(payload)), "checksum": f"ad:{adler}", "scopeIn": "test",
            "realDatasetsIn": "test.inputs", "prodDBlocks": "test.inputs", "prodDBlockToken": "NULL",
            "dispatchDblock": "NULL", "dispatchDBlockToken": "NULL", "outFiles": "out.txt", "scopeOut": "test"}
    (panda_id,) = disp.submit([spec])
    return panda_id


def test_pilot3_gets_a_job_and_reports_it_finished(pilot3: Path, tmp_path: Path) -> None:
    launch = tmp_path / "launch"
    launch.mkdir()
    (launch / "run.sh").write_text(PAYLOAD)
    (launch / "run.sh").chmod(0o755)
    with running(tmp_path, *queue_args()) as disp:
        panda_id = _submit(disp, PAYLOAD.encode())
        port = disp.url.rsplit(":", 1)[1]
        cmd = [*_isolation(), sys.executable, str(pilot3), "-q", TEST_QUEUE, "--url", "http://127.0.0.1", "-p", port,
               "--queuedata-url", f"{disp.url}/cache/schedconfig/{{pandaqueue}}.all.json",
               "--storagedata-url", f"{disp.url}/cric/ddmendpoints.json",
               "-j", "managed", "-w", "generic", "--pilot-user", "generic", "-t"]
        config = _pilot_config(pilot3, disp.url, tmp_path)
        env = {**os.environ, "PILOT_NOKILL": "1", "HARVESTER_PILOT_CONFIG": str(config)}
        with (tmp_path / "pilot3.log").open("w") as log:
            code = subprocess.run(cmd, check=False, cwd=launch, env=env, stdout=log, stderr=subprocess.STDOUT,
                                  timeout=PILOT_RUN_TIMEOUT).returncode
        text = (tmp_path / "pilot3.log").read_text()
        assert code == 0, text[-4000:]
        assert status_of(disp.db, panda_id) == "finished", text[-4000:]
    events = history(tmp_path / "dispatcher.db", panda_id)
    sent = next(e for e in events if e["event"] == "sent")
    assert sent["fields"]["siteName"] == TEST_QUEUE and sent["fields"]["prodSourceLabel"] == "managed"
    updates = [(e["state"], e["outcome"]) for e in events if e["event"] == "update"]
    assert updates[0] == ("starting", "accepted") and updates[-1] == ("finished", "accepted")
    report = events[-1]["fields"]
    assert report["transExitCode"] == "0" and report["pilotErrorCode"] == "0"
    assert set(json.loads(report["xml"])) == {"out.txt", "pilot3.trivial.job.log.tgz"}
    assert (launch / "out.txt").read_text() == "hello from Pilot 3: via the dispatcher\n"
    assert "found orphan process" not in text
