"""The pilot run for real, as a subprocess, on pre-placed jobs, from INIT to a terminal state."""

from __future__ import annotations

import json
import uuid
import zlib
from pathlib import Path

from fsm_pilot.replay import problems
from tests.pilotrun import job_def, make_launch, run_pilot


def _adler32(path: Path) -> str:
    return f"{zlib.adler32(path.read_bytes()) & 0xFFFFFFFF:08x}"


def _states(records: list[dict[str, object]]) -> list[object]:
    return [r["dest"] for r in records]


def test_job_runs_end_to_end_and_its_output_is_stored(tmp_path: Path) -> None:
    payload = "-c 'printf \"%s\\n\" \"job $PandaID\" > result.txt'"
    launch = make_launch(tmp_path, [job_def(4242, payload, ("result.txt",))])
    result = run_pilot(launch)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    report = launch.reports()[4242]
    assert (report["state"], report["pilotErrorCode"], report["transExitCode"]) == ("finished", 0, 0)
    xml = json.loads(report["xml"])
    stored = launch.storage / "test/" / xml["result.txt"]["surl"].split("/test/", 1)[1]
    assert stored.read_bytes() == b"job 4242\n"
    assert xml["result.txt"]["adler32"] == _adler32(stored)
    assert xml["result.txt"]["fsize"] == stored.stat().st_size
    log = launch.storage / "test/" / xml["job.4242.log.tgz"]["surl"].split("/test/", 1)[1]
    assert xml["job.4242.log.tgz"]["adler32"] == _adler32(log)
    # the log keeps the GUID the job gave it; an output without one gets a lower-case uuid4, as the server's
    assert xml["job.4242.log.tgz"]["guid"] == "00000000-0000-4000-8000-000000004242"
    output_guid = xml["result.txt"]["guid"]
    assert str(uuid.UUID(output_guid)) == output_guid and uuid.UUID(output_guid).version == 4
    assert (launch.dir / "pandaIDs.out").read_text() == "4242\n"
    records = launch.records()
    assert problems(records) == []
    assert _states(records) == ["QUEUEDATA", "CHECKS", "RECOVERY", "CLEANUP", "GETJOB", "VALIDATE",
                                "STAGEIN", "RUNNING", "STAGEOUT", "EXIT"]


def test_failing_payload_fails_the_job_not_the_pilot(tmp_path: Path) -> None:
    launch = make_launch(tmp_path, [job_def(7, "-c 'echo broken >&2; exit 3'", ("never.txt",))])
    result = run_pilot(launch)
    assert result.returncode == 0, result.stderr
    report = launch.reports()[7]
    assert (report["state"], report["pilotErrorCode"], report["transExitCode"]) == ("failed", 1305, 3)
    assert "broken" in report["pilotLog"]
    assert "never.txt" not in json.loads(report["xml"])  # outputs of a failed payload are not stored
    assert "job.7.log.tgz" in json.loads(report["xml"])  # but its log is
    assert problems(launch.records()) == []


def test_timefloor_lets_the_pilot_take_both_jobs(tmp_path: Path) -> None:
    jobs = [job_def(1, "-c 'echo one > a.txt'", ("a.txt",)), job_def(2, "-c 'echo two > b.txt'", ("b.txt",))]
    launch = make_launch(tmp_path, jobs, timefloor=10)
    result = run_pilot(launch)
    assert result.returncode == 0, result.stderr
    assert {k: v["state"] for k, v in launch.reports().items()} == {1: "finished", 2: "finished"}
    assert (launch.dir / "pandaIDs.out").read_text() == "1\n2\n"
    records = launch.records()
    assert problems(records) == []
    assert _states(records).count("RUNNING") == 2
    assert records[-1]["event"] == "no_job" and records[-1]["reason"]["error"] is None


def test_timefloor_zero_runs_exactly_one_job(tmp_path: Path) -> None:
    jobs = [job_def(1, "-c true"), job_def(2, "-c true")]
    launch = make_launch(tmp_path, jobs, timefloor=0)
    result = run_pilot(launch)
    assert result.returncode == 0, result.stderr
    assert list(launch.reports()) == [1]
    last = launch.records()[-1]
    assert (last["event"], last["dest"]) == ("job_done", "EXIT")
    refused = [g for g in last["guards"] if not g["allowed"]]
    assert [g["guard"] for g in refused] == ["timefloor"]


def test_no_job_file_exits_82_no_jobs(tmp_path: Path) -> None:
    launch = make_launch(tmp_path, None)
    result = run_pilot(launch)
    assert result.returncode == 82, result.stderr
    assert launch.records()[-1]["reason"]["error"] == 1385


def test_rejected_job_is_reported_failed_with_its_code_and_its_log_kept(tmp_path: Path) -> None:
    bad = job_def(55, "-c true", ("../escape.txt",))
    launch = make_launch(tmp_path, [bad])
    result = run_pilot(launch)
    assert result.returncode == 0, result.stderr
    report = launch.reports()[55]
    assert (report["state"], report["pilotErrorCode"]) == ("failed", 1371)
    assert list(json.loads(report["xml"])) == ["job.55.log.tgz"]
    assert "RUNNING" not in _states(launch.records())
    assert not list(tmp_path.rglob("escape.txt"))


def test_malformed_job_file_ends_with_a_code_and_no_traceback(tmp_path: Path) -> None:
    launch = make_launch(tmp_path, None)
    (launch.dir / "pandaJobData.out").write_bytes(b"\x00\xff this is not a job {")
    result = run_pilot(launch)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    last = launch.records()[-1]
    assert (last["dest"], last["reason"]["error"]) == ("FAILED", 1302)
    assert (launch.dir / "pandaJobData.out").exists()  # kept for a post-mortem


def test_queuedata_that_is_not_json_ends_with_72(tmp_path: Path) -> None:
    launch = make_launch(tmp_path, [job_def(1, "-c true")])
    (launch.dir / "queuedata.json").write_text("{not json")
    result = run_pilot(launch)
    assert result.returncode == 72, result.stderr
    assert "Traceback" not in result.stderr


def test_inactive_queue_ends_with_78(tmp_path: Path) -> None:
    launch = make_launch(tmp_path, [job_def(1, "-c true")], state="TEST")
    assert run_pilot(launch).returncode == 78


def test_too_little_disk_refuses_the_first_job_with_69(tmp_path: Path) -> None:
    launch = make_launch(tmp_path, [job_def(1, "-c true")])
    result = run_pilot(launch, "--min-free-disk", str(10**18))
    assert result.returncode == 69, result.stderr
    last = launch.records()[-1]
    assert (last["source"], last["dest"]) == ("CLEANUP", "EXIT")
    assert last["guards"][0]["guard"] == "disk_space" and last["guards"][0]["allowed"] is False
    assert launch.reports() == {}


def test_pilot_log_and_transition_log_are_json_lines(tmp_path: Path) -> None:
    launch = make_launch(tmp_path, [job_def(3, "-c true")])
    assert run_pilot(launch).returncode == 0
    pilot_dir = launch.pilot_dir()
    assert pilot_dir is not None
    lines = (pilot_dir / "pilot.log").read_text().splitlines()
    events = [json.loads(line)["event"] for line in lines]
    assert "pilot started" in events and "job ended" in events
    seqs = [r["seq"] for r in launch.records()]
    assert seqs == list(range(1, len(seqs) + 1))


def test_jobs_failing_fast_in_a_row_stop_the_pilot_as_a_black_hole(tmp_path: Path) -> None:
    jobs = [job_def(i, "-c 'exit 1'") for i in range(1, 6)]
    launch = make_launch(tmp_path, jobs, timefloor=10)
    result = run_pilot(launch)
    assert result.returncode == 75, result.stderr
    assert list(launch.reports()) == [1, 2, 3]
    last = launch.records()[-1]
    assert (last["event"], last["dest"], last["reason"]["error"]) == ("job_done", "EXIT", 1332)


def test_max_jobs_caps_the_jobs_per_pilot(tmp_path: Path) -> None:
    launch = make_launch(tmp_path, [job_def(i, "-c true") for i in range(1, 5)], timefloor=10)
    result = run_pilot(launch, "--max-jobs", "2")
    assert result.returncode == 0, result.stderr
    assert list(launch.reports()) == [1, 2]
    refused = [g["guard"] for g in launch.records()[-1]["guards"] if not g["allowed"]]
    assert refused == ["max_jobs"]


def test_each_job_gets_its_own_work_dir_and_the_payload_its_environment(tmp_path: Path) -> None:
    script = "-c 'env > env.$PandaID.txt'"
    jobs = [job_def(11, script, ("env.11.txt",)), job_def(12, script, ("env.12.txt",))]
    launch = make_launch(tmp_path, jobs, timefloor=10, maxtime=0)
    assert run_pilot(launch, "-z").returncode == 0  # -z: reports go to heartbeat.json, job dirs removed
    pilot_dir = launch.pilot_dir()
    assert pilot_dir is not None
    for panda_id in (11, 12):
        xml = json.loads(launch.reports()[panda_id]["xml"])
        stored = launch.storage / "test" / xml[f"env.{panda_id}.txt"]["surl"].split("/test/", 1)[1]
        env = dict(line.split("=", 1) for line in stored.read_text().splitlines() if "=" in line)
        assert (env["PandaID"], env["PanDA_TaskID"], env["ATHENA_PROC_NUMBER"]) == (str(panda_id), "77", "1")
        assert env["PILOT_JOB_DIR"] == str(pilot_dir / f"PanDA_Pilot-{panda_id}")
        assert not (pilot_dir / f"PanDA_Pilot-{panda_id}").exists()
    assert json.loads((pilot_dir / "heartbeat.json").read_text())["jobId"] == "12"
