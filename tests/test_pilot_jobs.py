"""What a job's definition makes the pilot do: argv without a shell, cores, missing outputs, ARC, nocleanup."""

from __future__ import annotations

import json
from pathlib import Path

from tests.pilotrun import job_def, make_launch, run_pilot
from tests.pilotserver import Dispatcher, job_spec
from tests.test_pilot_server import _launch, finish, pilot


def test_job_pars_are_words_never_a_shell_command(tmp_path: Path) -> None:
    script = "import sys, json; json.dump(sys.argv[1:], open(\"args.json\", \"w\"))"
    job_pars = f"-c '{script}' 'a b' ';' '$(touch pwned)' \"x'y\" `id`"
    launch = make_launch(tmp_path, [job_def(1, job_pars, ("args.json",), transformation="python3")])
    assert run_pilot(launch).returncode == 0
    xml = json.loads(launch.reports()[1]["xml"])
    stored = launch.storage / "test" / xml["args.json"]["surl"].split("/test/", 1)[1]
    assert json.loads(stored.read_text()) == ["a b", ";", "$(touch pwned)", "x'y", "`id`"]
    assert not list(tmp_path.rglob("pwned"))


def test_unbalanced_quotes_and_too_many_cores_are_rejected(tmp_path: Path) -> None:
    jobs = [job_def(1, "-c 'unbalanced"), job_def(2, "-c true", coreCount="4096")]
    launch = make_launch(tmp_path, jobs, timefloor=10)
    assert run_pilot(launch).returncode == 0
    reports = launch.reports()
    assert (reports[1]["pilotErrorCode"], reports[2]["pilotErrorCode"]) == (1302, 1344)


def test_missing_output_fails_the_job_and_the_log_is_still_stored(tmp_path: Path) -> None:
    launch = make_launch(tmp_path, [job_def(3, "-c true", ("promised.txt",))])
    assert run_pilot(launch).returncode == 0
    report = launch.reports()[3]
    assert (report["state"], report["pilotErrorCode"]) == ("failed", 1165)
    assert list(json.loads(report["xml"])) == ["job.3.log.tgz"]


def test_arc_output_list_names_each_stored_file_with_its_checksum(tmp_path: Path) -> None:
    launch = make_launch(tmp_path, [job_def(4, "-c 'echo x > o.txt'", ("o.txt",))])
    assert run_pilot(launch, "--output-dir", str(tmp_path / "arc")).returncode == 0
    xml = json.loads(launch.reports()[4]["xml"])
    lines = (tmp_path / "arc" / "output.list").read_text().splitlines()
    assert sorted(lines) == sorted(f"{lfn} {v['surl']}:checksumtype=adler32:checksumvalue={v['adler32']}"
                                   for lfn, v in xml.items())


def test_nocleanup_from_the_server_keeps_the_job_dir(tmp_path: Path) -> None:
    server = Dispatcher(tmp_path / "dispatcher").start()
    try:
        kept, removed = server.submit(job_spec("-c 'touch here.txt'"), job_spec("-c 'touch here.txt'"))
        server.v1("job/set_command", {"job_id": kept, "command": "nocleanup"})
        launch = _launch(tmp_path / "p")
        code, err = finish(pilot(launch, server.url, "--timefloor", "10"))
        assert code == 0, err
    finally:
        server.stop()
    pilot_dir = launch.pilot_dir()
    assert pilot_dir is not None
    assert (pilot_dir / f"PanDA_Pilot-{kept}" / "here.txt").exists()
    assert not (pilot_dir / f"PanDA_Pilot-{removed}").exists()


def test_harvester_worker_status_started_and_finished(tmp_path: Path) -> None:
    server = Dispatcher(tmp_path / "dispatcher").start()
    try:
        launch = _launch(tmp_path / "p")
        env = {"HARVESTER_ID": "harvester-test", "HARVESTER_WORKER_ID": "4711"}
        code, err = finish(pilot(launch, server.url, env=env))
        assert code == 82, err  # no jobs: the worker still reports started and finished
        rows = server.query("SELECT harvester_id, worker_id, status FROM workers")
    finally:
        server.stop()
    assert rows == [("harvester-test", "4711", "finished")]
