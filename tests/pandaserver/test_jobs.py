"""Jobs that end on their own, as panda-server 1.0.4 records them once its adder ran.

Each case submits through panda-server's own API, runs the real pilot against the real server (REST v1 over
127.0.0.1), runs the adder, and reads the server's tables: jobsarchived4 (state, codes, diagnostics),
filestable4 (files, checksums), pandalog (the pilot log the server keeps for a failed job).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import zlib
from pathlib import Path

from tests.pandaserver.cases import Case
from tests.pandaserver.stack import QUEUE, Stack


def adler32(data: bytes) -> str:
    return f"{zlib.adler32(data) & 0xFFFFFFFF:08x}"


def rucio_path(storage: Path, scope: str, lfn: str) -> Path:
    """Where a deterministic endpoint keeps ``scope:lfn`` (Rucio's rule, written out here on purpose)."""
    digest = hashlib.md5(f"{scope}:{lfn}".encode()).hexdigest()
    return storage.joinpath(*scope.split("."), digest[0:2], digest[2:4], lfn)


def status_line(stack: Stack, panda_id: int) -> str:
    """What ``fsm-pilot status`` prints for the job."""
    done = subprocess.run([sys.executable, "-m", "fsm_pilot", "status", "--url", stack.server.url, str(panda_id)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_input_staged_in_and_output_staged_out(case: Case, stack: Stack) -> None:
    data = f"input of {case.token}\n".encode()
    source = rucio_path(stack.storage, "ci.inputs", "in.dat")
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_bytes(data)
    [panda_id] = case.submit({
        "transformation": "bash", "jobPars": "-c 'tr a-z A-Z < in.dat > out.dat'",
        "inFiles": "in.dat", "fsize": str(len(data)), "checksum": f"ad:{adler32(data)}", "scopeIn": "ci.inputs",
        "realDatasetsIn": "ci.inputs.ds", "outFiles": "out.dat", "scopeOut": "ci.outputs", "scopeLog": "ci.logs"})
    launch = case.launch()
    run = case.run_pilot(launch)
    assert run.returncode == 0, run.stderr[-3000:]

    case.finalize(panda_id)
    job = case.archived(panda_id)
    assert (job["jobstatus"], job["piloterrorcode"], job["exeerrorcode"], job["transexitcode"]) == \
        ("finished", 0, 0, "0")
    files = case.files(panda_id)
    output = data.upper()
    assert files["input:in.dat"]["checksum"] == f"ad:{adler32(data)}"
    assert files["input:in.dat"]["fsize"] == len(data)
    stored = files["output:out.dat"]
    assert (stored["status"], stored["checksum"], stored["fsize"]) == ("ready", f"ad:{adler32(output)}", len(output))
    assert rucio_path(stack.storage, "ci.outputs", "out.dat").read_bytes() == output
    [log] = [row for key, row in files.items() if key.startswith("log:")]
    stored_log = rucio_path(stack.storage, "ci.logs", log["lfn"]).read_bytes()
    assert (log["status"], log["checksum"], log["fsize"]) == ("ready", f"ad:{adler32(stored_log)}", len(stored_log))
    assert source.read_bytes() == data  # cp: the replica stays where it was
    assert status_line(stack, panda_id) == f"{panda_id} finished attemptNr=0"


def test_failing_payload(case: Case, stack: Stack) -> None:
    [panda_id] = case.submit({"transformation": "bash", "jobPars": "-c 'echo no such input >&2; exit 3'",
                              "scopeLog": "ci.logs"})
    launch = case.launch()
    run = case.run_pilot(launch)
    assert run.returncode == 0, run.stderr[-3000:]  # the pilot did its work: the job failed, not the pilot

    case.finalize(panda_id)
    job = case.archived(panda_id)
    assert job["jobstatus"] == "failed"
    assert (job["piloterrorcode"], job["exeerrorcode"], job["transexitcode"]) == (1305, 3, "3")
    final = case.updates(panda_id)[-1]["body"]  # what the pilot sent is what the server keeps
    assert final["job_status"] == "failed"
    assert (job["piloterrordiag"], job["exeerrordiag"]) == (final["pilot_error_diag"], final["exe_error_diag"])
    assert job["piloterrordiag"] and job["exeerrordiag"]
    [pilot_log] = [row for row in case.pandalog(panda_id) if row["type"] == "pilotLog"]
    assert "no such input" in pilot_log["message"]
    assert pilot_log["message"].startswith("- Last ")  # the flight record: transitions first, within 4000
    assert "RUNNING -payload_done-> STAGEOUT" in pilot_log["message"] and len(pilot_log["message"]) <= 4000
    [log] = [row for key, row in case.files(panda_id).items() if key.startswith("log:")]
    assert log["status"] == "failed"  # the adder marks a failed job's log so
    assert status_line(stack, panda_id) == f"{panda_id} failed attemptNr=0"


def test_no_jobs(case: Case) -> None:
    launch = case.launch()
    run = case.run_pilot(launch)
    assert run.returncode == 82, run.stderr[-3000:]
    asked = [e for e in case.exchanges() if e["path"] == "/api/v1/pilot/acquire_jobs"]
    assert len(asked) == 1
    reply = json.loads(asked[0]["reply"])
    assert (reply["success"], reply["data"]) == (False, None), reply
    assert not case.rows(f"SELECT pandaid FROM doma_panda.jobsactive4 WHERE computingsite = '{QUEUE}'")


def test_api_auto_settles_on_v1(case: Case) -> None:
    [panda_id] = case.submit({"transformation": "bash", "jobPars": "-c 'echo auto > auto.txt'",
                              "outFiles": "auto.txt", "scopeOut": "ci.outputs", "scopeLog": "ci.logs"})
    launch = case.launch()
    run = case.run_pilot(launch, "--api", "auto")
    assert run.returncode == 0, run.stderr[-3000:]
    paths = {e["path"] for e in case.exchanges() if not e["path"].startswith("/logger/")}
    assert paths <= {"/api/v1/pilot/acquire_jobs", "/api/v1/pilot/update_job", "/api/v1/job/submit"}, paths
    case.finalize(panda_id)
    assert case.archived(panda_id)["jobstatus"] == "finished"
