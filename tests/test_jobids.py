"""pandaIDs.out for the wrapper: appended per job, never followed through a symlink, never fatal."""

from __future__ import annotations

from pathlib import Path

from fsm_pilot import config, logsetup
from fsm_pilot.context import Context, RunArgs
from fsm_pilot.jobids import record_job_id
from fsm_pilot.signals import SignalState
from fsm_pilot.translog import TransitionLog


def _ctx(tmp_path: Path, jobid_file: Path | None) -> Context:
    args = RunArgs(queue="Q", workdir=tmp_path, launch_dir=tmp_path, jobid_file=jobid_file)
    return Context(args=args, env={}, log=logsetup.configure(), translog=TransitionLog("t"), signals=SignalState(),
                   settings=config.resolve({}, {}, {}), pilot_id="t", pilot_dir=tmp_path)


def test_each_job_id_is_appended_on_its_own_line(tmp_path: Path) -> None:
    path = tmp_path / "pandaIDs.out"
    path.write_text("7\n")  # an earlier pilot's ids stay: the wrapper reports all of them
    ctx = _ctx(tmp_path, path)
    record_job_id(ctx, 11)
    record_job_id(ctx, 12)
    assert path.read_text() == "7\n11\n12\n"


def test_no_file_without_the_option(tmp_path: Path) -> None:
    record_job_id(_ctx(tmp_path, None), 11)
    assert list(tmp_path.iterdir()) == []


def test_a_symlink_is_not_followed_and_a_failure_is_not_fatal(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep\n")
    link = tmp_path / "pandaIDs.out"
    link.symlink_to(victim)
    record_job_id(_ctx(tmp_path, link), 11)
    record_job_id(_ctx(tmp_path, tmp_path / "missing" / "pandaIDs.out"), 12)
    assert victim.read_text() == "keep\n"
