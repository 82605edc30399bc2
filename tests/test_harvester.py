"""The test plays Harvester through files only, against a real pilot process: one PUSH job, one PULL job.

Harvester's side, as HSF/harvester's shared-file messenger does it: it places
``pandaJobData.out`` (``{"<PandaID>": {job}}``), answers ``worker_requestjob.json``
by writing the job file and removing the request, and reads
``worker_attributes.json``, ``jobReport.json``, ``event_status.dump.json`` and
``kill_worker``. No server: the pilot runs with ``-z``, so Harvester reports for it.
"""

from __future__ import annotations

import json
import signal
import zlib
from pathlib import Path
from typing import Any

from tests.pilotrun import Launch, job_def, make_launch, run_pilot, start_pilot, stop, wait_for

REPORT = {"exitCode": 0, "executor": [{"name": "step", "logfileReport": {"big": "x" * 100}, "rc": 0}]}


def _harvester(tmp_path: Path, jobs: list[dict[str, str]] | None = None) -> tuple[Launch, Path]:
    """A launch dir with queuedata, and an access point with ``jobs`` pre-placed as Harvester writes them."""
    launch = make_launch(tmp_path)
    access = tmp_path / "access"
    access.mkdir()
    if jobs is not None:
        (access / "pandaJobData.out").write_text(json.dumps({j["PandaID"]: j for j in jobs}))
    return launch, access


def _options(access: Path, mode: str) -> tuple[str, ...]:
    return ("-z", "--harvester-workdir", str(access), "--harvester-submit-mode", mode)


def _json(path: Path) -> Any:
    return json.loads(path.read_text())


def _adler32(path: Path) -> str:
    return f"{zlib.adler32(path.read_bytes()) & 0xFFFFFFFF:08x}"


def _payload_writing(output: str) -> str:
    """Job parameters of a payload that writes ``output`` and a jobReport.json."""
    return f"-c 'echo data > {output}; echo {json.dumps(json.dumps(REPORT))[1:-1]} > jobReport.json'"


def _error_of_last_transition(launch: Launch) -> int | None:
    error: int | None = launch.records()[-1]["reason"]["error"]
    return error


def test_push_job_leaves_what_harvester_reads(tmp_path: Path) -> None:
    job = job_def(11, _payload_writing("out.txt"), ("out.txt",))
    launch, access = _harvester(tmp_path, [job])
    result = run_pilot(launch, *_options(access, "PUSH"))
    assert result.returncode == 0, result.stderr

    attributes = _json(access / "worker_attributes.json")
    assert (attributes["jobStatus"], attributes["jobId"], attributes["pilotErrorCode"],
            attributes["transExitCode"]) == ("finished", "11", 0, 0)
    assert "xml" not in attributes and attributes["startTime"] and attributes["endTime"]

    report = _json(access / "jobReport.json")
    assert report["executor"] == [{"name": "step", "logfileReport": {}, "rc": 0}]

    (entries,) = _json(access / "event_status.dump.json").values()
    assert [e["type"] for e in entries] == ["log", "output"]
    log, output = entries
    assert (Path(log["path"]).name, log["guid"]) == ("job.11.log.tgz", job["logGUID"])
    assert Path(output["path"]) == access / "out.txt"
    for entry in entries:
        stored = Path(entry["path"])
        assert (entry["fsize"], entry["chksum"]) == (stored.stat().st_size, _adler32(stored))
    assert (access / "out.txt").read_text() == "data\n"

    assert (access / "kill_worker").read_bytes() == b""
    assert (access / "worker_heartbeat.json").is_file()
    assert not (access / "worker_requestjob.json").exists()
    pilot_dir = launch.pilot_dir()
    assert pilot_dir is not None and not (pilot_dir / "heartbeat.json").exists()  # Harvester's files instead


def test_failed_push_job_reports_its_codes_and_only_the_log(tmp_path: Path) -> None:
    launch, access = _harvester(tmp_path, [job_def(12, "-c 'echo partial > out.txt; exit 3'", ("out.txt",))])
    result = run_pilot(launch, *_options(access, "PUSH"))
    assert result.returncode == 0, result.stderr  # a failed job does not fail the pilot
    attributes = _json(access / "worker_attributes.json")
    assert (attributes["jobStatus"], attributes["transExitCode"], attributes["exeErrorCode"]) == ("failed", 3, 3)
    assert [e["type"] for e in _json(access / "event_status.dump.json")["12"]] == ["log"]
    assert not (access / "jobReport.json").exists()  # the payload wrote none
    assert (access / "kill_worker").exists()


def test_pull_job_is_requested_and_placed_through_files(tmp_path: Path) -> None:
    launch, access = _harvester(tmp_path)
    proc = start_pilot(launch, *_options(access, "PULL"))
    request = access / "worker_requestjob.json"
    wait_for(request.exists, what="the pilot's job request")
    assert _json(request) == {"nJobs": 1}
    job = job_def(21, _payload_writing("pulled.txt"), ("pulled.txt",))
    with open(access / "pandaJobData.out", "w") as handle:  # as Harvester's feed_jobs: in place, then the request
        json.dump({job["PandaID"]: job}, handle)
    request.unlink()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    attributes = _json(access / "worker_attributes.json")
    assert (attributes["jobStatus"], attributes["jobId"]) == ("finished", "21")
    assert [Path(e["path"]).name for e in _json(access / "event_status.dump.json")["21"]] == [
        "job.21.log.tgz", "pulled.txt"]
    assert (access / "kill_worker").exists() and not request.exists()


def test_push_pilot_asks_harvester_for_its_next_job(tmp_path: Path) -> None:
    """Pilot 3's multi-job PUSH: the first job pre-placed, the next one requested through the file."""
    launch, access = _harvester(tmp_path, [job_def(31, "-c 'echo one > one.txt'", ("one.txt",))])
    proc = start_pilot(launch, *_options(access, "PUSH"), "--timefloor", "600", "--max-jobs", "2")
    request = access / "worker_requestjob.json"
    wait_for(request.exists, what="the request for a second job")
    assert _json(access / "worker_attributes.json")["jobStatus"] == "finished"  # job 31 reported first
    job = job_def(32, "-c 'echo two > two.txt'", ("two.txt",))
    (access / "pandaJobData.out").write_text(json.dumps({job["PandaID"]: job}))
    request.unlink()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert _json(access / "worker_attributes.json")["jobId"] == "32"
    declared = _json(access / "event_status.dump.json")  # Harvester took neither list yet: both are there
    assert {key: [Path(e["path"]).name for e in entries] for key, entries in declared.items()} == {
        "31": ["job.31.log.tgz", "one.txt"], "32": ["job.32.log.tgz", "two.txt"]}


def test_signal_while_waiting_for_harvester_ends_the_pilot_at_once(tmp_path: Path) -> None:
    launch, access = _harvester(tmp_path)
    proc = start_pilot(launch, *_options(access, "PULL"))  # waits up to 5 x 120 s unless interrupted
    wait_for((access / "worker_requestjob.json").exists, what="the pilot's job request")
    code, err = stop(proc, signal.SIGTERM, timeout=20)
    assert code == 128 + signal.SIGTERM, err
    assert (access / "kill_worker").exists()
    assert not (access / "worker_requestjob.json").exists()  # withdrawn: no job may be fed to a gone pilot


def test_garbage_answer_from_harvester_fails_with_conversion_failure(tmp_path: Path) -> None:
    launch, access = _harvester(tmp_path)
    proc = start_pilot(launch, *_options(access, "PULL"))
    wait_for((access / "worker_requestjob.json").exists, what="the pilot's job request")
    (access / "pandaJobData.out").write_text('{"21": {"PandaID": "21", "jobPars": ')  # stays cut short
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err  # FAILED, an error without a shell code of its own
    assert _error_of_last_transition(launch) == 1302  # CONVERSIONFAILURE
    assert "invalid JSON" in err and "Traceback" not in err
    assert (access / "kill_worker").exists()


def test_garbage_preplaced_job_fails_at_once_without_a_request(tmp_path: Path) -> None:
    launch, access = _harvester(tmp_path)
    (access / "pandaJobData.out").write_bytes(b"\xff\xfe not a job")
    result = run_pilot(launch, *_options(access, "PUSH"))
    assert result.returncode == 1, result.stderr
    assert _error_of_last_transition(launch) == 1302
    assert "job requested from Harvester" not in result.stderr
    assert (access / "kill_worker").exists()


def test_request_that_cannot_be_written_fails_with_file_handling_failure(tmp_path: Path) -> None:
    launch, access = _harvester(tmp_path)
    (access / "worker_requestjob.json").mkdir()  # something in the way the pilot cannot replace
    result = run_pilot(launch, *_options(access, "PULL"))
    assert result.returncode == 1, result.stderr
    assert _error_of_last_transition(launch) == 1303  # FILEHANDLINGFAILURE
    assert "cannot write the job request" in result.stderr and "Traceback" not in result.stderr
