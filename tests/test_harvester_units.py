"""Harvester mode's rules in-process: when it applies, where jobs are looked for, what is written."""

from __future__ import annotations

import json
import os
import time
from dataclasses import replace
from pathlib import Path

import pytest

from fsm_pilot import config, logsetup
from fsm_pilot.cli import parser
from fsm_pilot.context import Context, JobRun, RunArgs
from fsm_pilot.errors import PilotError, PilotFailure
from fsm_pilot.harvester import jobrequest, stageout, workreport
from fsm_pilot.harvester.mode import files_mode, is_harvester
from fsm_pilot.job import job_identity
from fsm_pilot.jobsource import job_files
from fsm_pilot.options import run_args
from fsm_pilot.signals import SignalState
from fsm_pilot.translog import TransitionLog

IDS = {"HARVESTER_ID": "h1", "HARVESTER_WORKER_ID": "7"}


def _args(tmp_path: Path, **changes: object) -> RunArgs:
    return replace(RunArgs(queue="Q", workdir=tmp_path, launch_dir=tmp_path), **changes)  # type: ignore[arg-type]


def _ctx(tmp_path: Path, env: dict[str, str] | None = None, cli: dict[str, float | None] | None = None,
         **changes: object) -> Context:
    args = _args(tmp_path, **{"harvester_workdir": tmp_path / "access", "no_server_update": True, **changes})
    (tmp_path / "access").mkdir(exist_ok=True)
    env = env or {}
    return Context(args=args, env=env, log=logsetup.configure(), translog=TransitionLog("t"), signals=SignalState(),
                   settings=config.resolve(cli or {}, env, {}), pilot_id="t")


def _run(workdir: Path | None = None) -> JobRun:
    record: dict[str, object] = {"PandaID": "5", "logFile": "x.log.tgz", "outFiles": "a.root,x.log.tgz"}
    return JobRun(identity=job_identity(record), record=record, workdir=workdir)


@pytest.mark.parametrize(("changes", "env", "expected"), [
    ({"harvester_workdir": Path("/a"), "no_server_update": True}, {}, True),
    ({"harvester_datadir": Path("/a"), "url": None}, {}, True),  # no --url: no server updates either
    ({"harvester_workerattributes": "w.json", "no_server_update": True}, {}, True),
    ({"harvester_eventstatusdump": "e.json", "no_server_update": True}, {}, True),
    ({"harvester_workdir": Path("/a"), "url": "https://127.0.0.1:1"}, {}, False),  # the pilot reports itself
    ({"push": True, "url": "https://127.0.0.1:1"}, IDS, True),
    ({"push": False, "url": "https://127.0.0.1:1"}, IDS, False),  # Harvester's ids in PULL: a plain pilot
    ({"push": True}, {}, False),  # PUSH alone is a pre-placed job, not Harvester
])
def test_harvester_mode_is_pilot3s_rule(tmp_path: Path, changes: dict[str, object], env: dict[str, str],
                                        expected: bool) -> None:
    assert is_harvester(_args(tmp_path, **changes), env) is expected


def test_files_mode_needs_harvester_and_no_server_updates(tmp_path: Path) -> None:
    assert files_mode(_ctx(tmp_path))
    assert not files_mode(_ctx(tmp_path, env=IDS, push=True, no_server_update=False, url="https://127.0.0.1:1",
                               harvester_workdir=None))


def test_harvester_options_parse_and_switch_the_mode_on(tmp_path: Path) -> None:
    ns = parser().parse_args(["run", "-q", "Q", "-z", "--harvester-datadir", str(tmp_path / "data"), "-x", "3",
                              "--harvester-eventstatusdump", "esd.json"])
    args = run_args(ns, cwd=tmp_path)
    assert (args.harvester_datadir, args.harvester_eventstatusdump, args.settings["getjob_failures"]) == (
        tmp_path / "data", "esd.json", 3.0)
    assert is_harvester(args, {}) and not args.ignored


def test_job_file_places_in_pilot3s_order(tmp_path: Path) -> None:
    access, data = tmp_path / "access", tmp_path / "data"
    assert job_files(_ctx(tmp_path)) == [access / "pandaJobData.out", access / "HPCJobs.json"]
    assert job_files(_ctx(tmp_path, harvester_datadir=data)) == [data / "pandaJobData.out", access / "HPCJobs.json"]
    explicit = tmp_path / "job.json"
    assert job_files(_ctx(tmp_path, job_file=explicit)) == [explicit]


@pytest.mark.parametrize(("push", "cli", "env", "attempts"), [
    (True, None, {}, 12), (False, None, {}, 5), (True, 3.0, {}, 3),
    (False, None, {"FSM_PILOT_GETJOB_FAILURES": "2"}, 2),
    (False, 4.0, {"FSM_PILOT_GETJOB_FAILURES": "2"}, 4),  # the command line before the environment
])
def test_request_attempts(tmp_path: Path, push: bool, cli: float | None, env: dict[str, str], attempts: int) -> None:
    ctx = _ctx(tmp_path, env=env, cli={"getjob_failures": cli}, push=push)
    assert jobrequest.request_attempts(ctx) == attempts


def test_an_output_may_not_take_an_exchange_files_name(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path)
    src = tmp_path / "worker_attributes.json"
    src.write_text("{}")
    with pytest.raises(PilotFailure) as caught:
        stageout.put(ctx, src, "worker_attributes.json", "g", ddm_endpoint="", within=None)
    assert caught.value.error is PilotError.BADOUTPUTFILENAME
    assert not (tmp_path / "access" / "worker_attributes.json").exists()


def test_event_status_keeps_other_jobs_entries_not_yet_taken(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path)
    path = tmp_path / "access" / "event_status.dump.json"
    path.write_text(json.dumps({"4": [{"type": "log", "path": "/x"}], "junk": "not a list"}))
    run = _run()
    run.xml["x.log.tgz"] = {"guid": "g", "fsize": 3, "adler32": "0000000a", "surl": "file:///s/x.log.tgz"}
    run.xml["a.root"] = {"guid": "h", "fsize": 4, "adler32": "0000000b", "surl": "root://remote/a.root"}
    stageout.publish_outputs(ctx, run)
    assert json.loads(path.read_text()) == {
        "4": [{"type": "log", "path": "/x"}],
        "5": [{"type": "log", "path": "/s/x.log.tgz", "guid": "g", "fsize": 3, "chksum": "0000000a"}]}
    path.write_text("garbage")
    stageout.publish_outputs(ctx, run)
    assert list(json.loads(path.read_text())) == ["5"]


@pytest.mark.parametrize("content", ['{"a": NaN}', "[1, 2]", "{" * 100_000, "not json"])
def test_a_bad_job_report_is_not_copied(tmp_path: Path, content: str) -> None:
    ctx, workdir = _ctx(tmp_path), tmp_path / "job"
    workdir.mkdir()
    (workdir / "jobReport.json").write_text(content)
    workreport.copy_job_report(ctx, _run(workdir))
    assert not (tmp_path / "access" / "jobReport.json").exists()


def test_a_job_report_linking_out_of_the_job_dir_is_not_copied(tmp_path: Path) -> None:
    ctx, workdir = _ctx(tmp_path), tmp_path / "job"
    workdir.mkdir()
    secret = tmp_path / "secret.json"
    secret.write_text('{"token": "s3cr3t"}')
    os.symlink(secret, workdir / "jobReport.json")
    workreport.copy_job_report(ctx, _run(workdir))
    assert not (tmp_path / "access" / "jobReport.json").exists()


def test_worker_attributes_are_the_update_without_xml_plus_job_status(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path)
    fields: dict[str, object] = {"jobId": "5", "state": "running", "xml": "{}", "pilotErrorCode": 0}
    assert workreport.publish(ctx, _run(), "running", fields, final=False)
    written = json.loads((tmp_path / "access" / "worker_attributes.json").read_text())
    assert written["jobStatus"] == "running" and "xml" not in written and written["pilotErrorCode"] == 0
    assert written["timestamp"].endswith("+0000")


def test_worker_attributes_that_cannot_be_written_keep_the_update_pending(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path)
    (tmp_path / "access").rmdir()
    assert not workreport.publish(ctx, _run(), "running", {"jobId": "5"}, final=False)


class _HarvesterWritesBetweenLooks(SignalState):
    """Time passing between two looks at the job file: Harvester writes ``text`` there meanwhile (or nothing)."""

    def __init__(self, path: Path, text: str | None) -> None:
        super().__init__()
        self.path, self.text = path, text

    def sleep(self, seconds: float, warnings: bool = False) -> bool:
        if self.text is not None:
            self.path.write_text(self.text)
        return False


@pytest.mark.parametrize("finished", [True, False])
def test_a_job_file_caught_half_written_is_read_again(tmp_path: Path, finished: bool) -> None:
    job = json.dumps({"8": {"PandaID": "8", "logFile": "l.tgz"}})
    path = tmp_path / "access" / "pandaJobData.out"
    ctx = _ctx(tmp_path)
    ctx.signals = _HarvesterWritesBetweenLooks(path, job if finished else None)
    path.write_text(job[:10])  # Harvester writes in place: the pilot may look in the middle
    if finished:
        found = jobrequest.await_job(ctx, time.monotonic() + 60)
        assert found is not None and found.record is not None and found.record["PandaID"] == "8"
    else:  # the same file, still cut short at the next look: Harvester is done with it, and it is broken
        with pytest.raises(PilotFailure) as caught:
            jobrequest.await_job(ctx, time.monotonic() + 60)
        assert caught.value.error is PilotError.CONVERSIONFAILURE
