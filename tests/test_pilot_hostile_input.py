"""Hostile input ends in a PanDA code, never a crash: huge jobPars, names too long for the file system,
deeply nested JSON, a dead pilot's files that make no sense.

Each test runs the real pilot on real files and asserts the specific code and
that no step raised (no traceback, no "exception in <STATE>" reason).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from fsm_pilot.command import MAX_JOB_PARS_BYTES
from tests.pilotrun import Launch, job_def, make_launch, run_pilot

DEEP_LIST = "[" * 100_000 + "]" * 100_000
DEEP_OBJECT = '{"a":' * 100_000 + "1" + "}" * 100_000


def _clean(launch: Launch, result: subprocess.CompletedProcess[str]) -> None:
    """No step raised: the console and pilot.log show no traceback and no 'exception in' reason."""
    pilot_dir = launch.pilot_dir()
    log = (pilot_dir / "pilot.log").read_text() if pilot_dir and (pilot_dir / "pilot.log").exists() else ""
    for text in (result.stderr, log):
        assert "Traceback" not in text
        assert "exception in " not in text


def _stored(launch: Launch, report: dict[str, str], lfn: str) -> Path:
    xml: dict[str, dict[str, str]] = json.loads(report["xml"])
    return launch.storage / "test" / xml[lfn]["surl"].split("/test/", 1)[1]


def test_job_pars_over_the_limit_is_rejected_with_1302(tmp_path: Path) -> None:
    job_pars = "-c true " + "word " * (MAX_JOB_PARS_BYTES // 5)
    launch = make_launch(tmp_path, [job_def(1, job_pars)])
    result = run_pilot(launch)
    assert result.returncode == 0, result.stderr[-2000:]
    _clean(launch, result)
    report = launch.reports()[1]
    assert (report["state"], report["pilotErrorCode"]) == ("failed", 1302)
    assert f"over the {MAX_JOB_PARS_BYTES} byte limit" in report["pilotErrorDiag"]
    assert list(json.loads(report["xml"])) == ["job.1.log.tgz"]  # rejected: only its log is stored


def test_large_job_pars_under_the_limit_reach_the_payload_word_for_word(tmp_path: Path) -> None:
    script = "import sys; open('argv.txt', 'w').write(str(len(sys.argv) - 1) + ' ' + sys.argv[-1])"
    words = [f"{n:06d}" + "x" * 93 for n in range(9000)]  # 900 kB in 9,000 words of 99 characters
    job_pars = f"-c \"{script}\" " + " ".join(words)
    assert 800_000 < len(job_pars) < MAX_JOB_PARS_BYTES
    launch = make_launch(tmp_path, [job_def(2, job_pars, ("argv.txt",), transformation="python3")])
    result = run_pilot(launch, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    _clean(launch, result)
    report = launch.reports()[2]
    assert (report["state"], report["pilotErrorCode"]) == ("finished", 0)
    assert _stored(launch, report, "argv.txt").read_text() == f"9000 {words[-1]}"


def test_nul_in_job_pars_is_rejected_with_1302(tmp_path: Path) -> None:
    launch = make_launch(tmp_path, [job_def(3, "-c true 'a\x00b'")])
    result = run_pilot(launch)
    assert result.returncode == 0, result.stderr[-2000:]
    _clean(launch, result)
    report = launch.reports()[3]
    assert (report["state"], report["pilotErrorCode"]) == ("failed", 1302)
    assert "NUL" in report["pilotErrorDiag"]


@pytest.mark.parametrize("transformation", ["x" * 4096, "/" + "x" * 4096, "dir/" * 1200 + "x", "/tmp/" + "d/" * 3000])
def test_transformation_name_too_long_for_the_file_system_is_rejected_with_1346(
        tmp_path: Path, transformation: str) -> None:
    launch = make_launch(tmp_path, [job_def(4, "-c true", transformation=transformation)])
    result = run_pilot(launch)
    assert result.returncode == 0, result.stderr[-2000:]
    _clean(launch, result)
    report = launch.reports()[4]
    assert (report["state"], report["pilotErrorCode"]) == ("failed", 1346)
    assert "too long" in report["pilotErrorDiag"]


def test_transformation_url_naming_a_file_too_long_is_refused_before_any_download(tmp_path: Path) -> None:
    url = "http://127.0.0.1:9/trf/" + "u" * 300  # port 9 (discard): nothing is ever fetched
    launch = make_launch(tmp_path, [job_def(7, "-c true", transformation=url)])
    result = run_pilot(launch, "-g", "http://127.0.0.1:9/trf")
    assert result.returncode == 0, result.stderr[-2000:]
    _clean(launch, result)
    report = launch.reports()[7]
    assert (report["state"], report["pilotErrorCode"]) == ("failed", 1149)
    assert "file name too long" in report["pilotErrorDiag"]
    assert "RUNNING" not in [r["dest"] for r in launch.records()]


@pytest.mark.parametrize("document", [DEEP_LIST, DEEP_OBJECT], ids=["list", "object"])
def test_deeply_nested_queuedata_file_ends_with_72(tmp_path: Path, document: str) -> None:
    launch = make_launch(tmp_path, [job_def(5, "-c true")])
    (launch.dir / "queuedata.json").write_text(document)
    result = run_pilot(launch)
    assert result.returncode == 72, result.stderr[-2000:]
    _clean(launch, result)
    assert "nested too deeply" in launch.records()[-1]["reason"]["text"]


def test_deeply_nested_storage_endpoints_file_ends_with_72(tmp_path: Path) -> None:
    launch = make_launch(tmp_path, [job_def(6, "-c true")])
    (launch.dir / "storagedata.json").write_text(DEEP_OBJECT)
    result = run_pilot(launch)
    assert result.returncode == 72, result.stderr[-2000:]
    _clean(launch, result)


#: The lock file of a pilot that died on another boot: its dir is recovered.
DEAD_OWNER = json.dumps({"pid": 1, "start_ticks": 1, "boot_id": "another-boot"})


def _dead_pilot_dir(launch: Launch, lock: str, state: str | None = None, translog: bytes | None = None) -> Path:
    """A dead pilot's dir beside the launch dir's pilots, holding job 5 in ``state``."""
    pilot_dir = launch.dir / "Panda_Pilot_zz_dead"  # sorts after the live one, which Launch reads
    pilot_dir.mkdir()
    (pilot_dir / "pilot.lock").write_text(lock)
    if translog is not None:
        (pilot_dir / "transitions.jsonl").write_bytes(translog)
    if state is not None:
        (pilot_dir / "PanDA_Pilot-5").mkdir()
        (pilot_dir / "PanDA_Pilot-5" / "jobstate.json").write_text(state)
    return pilot_dir


def _state(**fields: object) -> str:
    base: dict[str, object] = {"version": 1, "panda_id": 5, "state": "running", "machine_state": "RUNNING",
                               "record": job_def(5, "-c true"), "done": False}
    base.update(fields)
    return json.dumps(base)


def test_deeply_nested_lock_file_of_another_pilot_dir_is_left_alone(tmp_path: Path) -> None:
    launch = make_launch(tmp_path, [job_def(1, "-c true")])
    _dead_pilot_dir(launch, DEEP_LIST, _state())
    result = run_pilot(launch)
    assert result.returncode == 0, result.stderr[-2000:]
    _clean(launch, result)
    assert {k: v["state"] for k, v in launch.reports().items()} == {1: "finished"}  # job 5: owner unknown


@pytest.mark.parametrize("state", [
    DEEP_LIST, DEEP_OBJECT, "[1, 2]", _state(record=[1]), _state(panda_id="x"), _state(timings={"setup": "x"}),
    _state(start_time=float("nan")), _state(payload=[1]), _state(payload={"pid": "self", "sid": 1}),
    _state(state=["running"]), _state(end_time=10**400),
], ids=["deep-list", "deep-object", "list", "record", "panda_id", "timings", "nan", "payload", "payload-pid",
        "state", "huge-number"])
def test_job_state_of_a_dead_pilot_that_makes_no_sense_is_not_recovered(tmp_path: Path, state: str) -> None:
    launch = make_launch(tmp_path, [job_def(1, "-c true")])
    _dead_pilot_dir(launch, DEAD_OWNER, state)
    result = run_pilot(launch)
    assert result.returncode == 0, result.stderr[-2000:]
    _clean(launch, result)
    assert {k: v["state"] for k, v in launch.reports().items()} == {1: "finished"}


def test_recovery_skips_transition_log_lines_that_are_not_records(tmp_path: Path) -> None:
    launch = make_launch(tmp_path, [job_def(1, "-c true")])
    record = json.dumps({"job_id": 5, "event": "next", "source": "VALIDATE", "dest": "RUNNING"})
    lines = f"[1]\n\"text\"\n{DEEP_LIST}\n{record}\n".encode() + b"\xff\xfe not UTF-8\n"
    _dead_pilot_dir(launch, DEAD_OWNER, _state(), translog=lines)
    result = run_pilot(launch)
    assert result.returncode == 0, result.stderr[-2000:]
    _clean(launch, result)
    reports = launch.reports()
    assert (reports[5]["state"], reports[5]["pilotErrorCode"]) == ("failed", 1200)
    assert reports[1]["state"] == "finished"


def test_a_fifo_named_pilot_lock_never_blocks_the_next_pilot(tmp_path: Path) -> None:
    launch = make_launch(tmp_path, [job_def(1, "-c true")])
    pilot_dir = _dead_pilot_dir(launch, DEAD_OWNER, _state())
    (pilot_dir / "pilot.lock").unlink()
    os.mkfifo(pilot_dir / "pilot.lock")  # nobody ever writes: an open() for reading would wait for ever
    result = run_pilot(launch, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    _clean(launch, result)
    assert {k: v["state"] for k, v in launch.reports().items()} == {1: "finished"}  # job 5: owner unknown
