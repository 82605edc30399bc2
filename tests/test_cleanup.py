"""Cleanup of old pilots' leftovers: real dirs with forged ages (os.utime), real lock holders, no sleeps.

Ages are set relative to the ``now`` handed to cleanup and sit on either side
of a threshold by an hour or more, so no test depends on timing.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import NamedTuple

import pytest

from tests.cleanup_helpers import DAY, EPOCH, H, age, clean, kept, make_job, make_pilot, removed, tree

# --- the rules, each below and above its threshold ----------------------------------------------------------------


@pytest.mark.parametrize(("hours", "goes"), [(11, False), (13, True)])
def test_empty_dir_in_a_dead_pilots_dir_goes_after_12h(launch: Path, now: float, hours: int, goes: bool) -> None:
    pilot = make_pilot(launch)
    (pilot / "scratch").mkdir()
    age(pilot, 1 * H, now)  # the pilot dir itself is recent: only the rules inside apply
    age(pilot / "scratch", hours * H, now)
    report = clean(launch, now)
    assert (pilot / "scratch").exists() is not goes
    assert pilot.is_dir() and (pilot / "pilot.log").exists() and not report.errors


@pytest.mark.parametrize("job", [(None, False), ("finished", True), ("failed", True)])
@pytest.mark.parametrize(("hours", "goes"), [(11, False), (13, True)])
def test_lingering_job_dir_goes_after_12h(launch: Path, now: float, job: tuple[str | None, bool], hours: int,
                                          goes: bool) -> None:
    state, done = job
    pilot = make_pilot(launch)
    job_dir = make_job(pilot, 7, state, done=done, updated=now - hours * H)
    age(pilot, 1 * H, now)
    age(job_dir, hours * H, now)
    report = clean(launch, now)
    assert job_dir.exists() is not goes
    assert (job_dir in removed(report)) is goes and pilot.is_dir() and not report.errors


@pytest.mark.parametrize(("state", "done"), [("finished", False), ("failed", False), ("transferring", False),
                                             ("running", False), ("holding", False)])
def test_job_dir_with_an_undelivered_job_stays(launch: Path, now: float, state: str, done: bool) -> None:
    pilot = make_pilot(launch)
    job = make_job(pilot, 7, state, done=done, updated=now - 3 * DAY)
    age(pilot, 1 * H, now)
    age(job, 3 * DAY, now)
    report = clean(launch, now)
    assert job.is_dir() and "not delivered" in kept(report)[job]


@pytest.mark.parametrize(("maxed_out_age", "hours", "goes"), [(12 * H, 11, False), (12 * H, 13, True),
                                                              (2 * H, 1, False), (2 * H, 3, True)])
def test_maxed_out_job_dir_goes_after_its_own_age(launch: Path, now: float, maxed_out_age: float, hours: int,
                                                  goes: bool) -> None:
    pilot = make_pilot(launch)
    job = make_job(pilot, 7, "failed", done=False, maxed=True, updated=now - hours * H)  # undelivered: still goes
    age(pilot, 1 * H, now)
    age(job, hours * H, now)
    report = clean(launch, now, maxed_out_age=maxed_out_age)
    assert job.exists() is not goes
    assert not goes or "maxed out" in {d.path: d.reason for d in report.removed}[job]


class Case(NamedTuple):
    prefix: str
    state: str | None  # None: no job dir; "": a job dir without a state file
    done: bool
    hours: int  # the age of the whole pilot dir
    updated: int | None  # hours ago the state file says it was updated (None: as old as the dir)
    goes: bool


PILOT_CASES = [
    Case("Panda_Pilot", None, False, 11, None, False),
    Case("Panda_Pilot", None, False, 13, None, True),
    Case("PanDA_Pilot3", None, False, 13, None, True),
    Case("PanDA_Pilot3", "", False, 13, None, True),
    Case("Panda_Pilot", "finished", True, 11, None, False),
    Case("Panda_Pilot", "finished", True, 13, None, True),
    Case("Panda_Pilot", "failed", True, 13, None, True),
    Case("Panda_Pilot", "running", False, 6 * 24, None, False),
    Case("Panda_Pilot", "running", False, 8 * 24, None, True),
    Case("Panda_Pilot", "starting", False, 8 * 24, None, True),
    Case("Panda_Pilot", "holding", False, 6 * 24, None, False),
    Case("Panda_Pilot", "holding", False, 8 * 24, None, True),
    Case("Panda_Pilot", "running", False, 8 * 24, 24, False),  # the recorded time is newer than the mtime
    Case("Panda_Pilot", "transferring", False, 8 * 24, None, False),
    Case("Panda_Pilot", "finished", False, 8 * 24, None, False),
    Case("Panda_Pilot", "failed", False, 8 * 24, None, False),
]


@pytest.mark.parametrize("case", PILOT_CASES, ids=lambda c: f"{c.prefix}-{c.state}-{c.done}-{c.hours}h-{c.updated}")
def test_old_pilot_dir_goes_when_every_job_is_settled(launch: Path, now: float, case: Case) -> None:
    pilot = make_pilot(launch, prefix=case.prefix)
    if case.state is not None:
        updated = now - (case.hours if case.updated is None else case.updated) * H
        make_job(pilot, 7, case.state or None, done=case.done, updated=updated)
    age(pilot, case.hours * H, now)
    report = clean(launch, now)
    assert pilot.exists() is not case.goes
    assert (pilot in removed(report)) is case.goes and not report.errors and launch.is_dir()


def test_newest_mtime_anywhere_below_counts(launch: Path, now: float) -> None:
    pilot = make_pilot(launch)
    job = make_job(pilot, 7)
    (job / "sub").mkdir()
    (job / "sub" / "deep.txt").write_text("still written to")
    age(pilot, 13 * H, now)
    os.utime(job / "sub" / "deep.txt", (now - H, now - H))  # its parents' mtimes stay old
    report = clean(launch, now)
    assert job.is_dir() and "touched within 12 h" in kept(report)[pilot] and "touched" in kept(report)[job]


def test_pilot_dir_goes_only_when_all_its_jobs_are_settled(launch: Path, now: float) -> None:
    pilot = make_pilot(launch)
    make_job(pilot, 1, "finished", done=True, updated=now - 8 * DAY)
    make_job(pilot, 2, "running", updated=now - 8 * DAY)
    make_job(pilot, 3, maxed=True)
    make_job(pilot, 4, "finished", done=False, updated=now - 8 * DAY)
    age(pilot, 8 * DAY, now)
    report = clean(launch, now)
    assert "PanDA_Pilot-4 is not settled" in kept(report)[pilot]
    # the children are then judged one by one: only the undelivered job stays
    assert sorted(p.name for p in pilot.iterdir()) == ["PanDA_Pilot-2", "PanDA_Pilot-4", "pilot.log"]
    assert not report.errors


BAD_STATES = [b"{not json", b"[1, 2]", b'{"state": ["running"]}', b'{"state": "exploded", "done": true}',
              b"\xff\xfe\x00", b""]


@pytest.mark.parametrize("raw", BAD_STATES)
@pytest.mark.parametrize(("hours", "goes"), [(13, False), (8 * 24, True)])
def test_unreadable_job_state_is_unknown_and_stays_a_week(launch: Path, now: float, raw: bytes, hours: int,
                                                          goes: bool) -> None:
    pilot = make_pilot(launch)
    job = make_job(pilot, 7, raw=raw)
    age(pilot, hours * H, now)
    report = clean(launch, now)
    assert pilot.exists() is not goes and not report.errors
    if not goes:
        assert "unreadable state" in kept(report)[job]


def test_job_state_that_is_not_a_regular_file_is_unknown(launch: Path, tmp_path: Path, now: float) -> None:
    outside = tmp_path / "state.json"
    outside.write_text(json.dumps({"state": "finished", "done": True}))
    pilot = make_pilot(launch)
    (make_job(pilot, 1) / "jobstate.json").symlink_to(outside)  # never read through a link
    (make_job(pilot, 2) / "jobstate.json").mkdir()
    os.mkfifo(make_job(pilot, 3) / "jobstate.json")  # must not hang the pilot
    age(pilot, 13 * H, now)
    before = tree(tmp_path / "launch")
    report = clean(launch, now)
    assert tree(tmp_path / "launch") == before and pilot in kept(report) and not report.errors
    assert json.loads(outside.read_text()) == {"state": "finished", "done": True}


# --- symlinks -----------------------------------------------------------------------------------------------------


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A dir outside the launch dir with a sentinel, an empty dir and a job-like dir: recent, so never judged."""
    path = tmp_path / "outside"
    (path / "sub").mkdir(parents=True)
    (path / "sentinel").write_text("keep me\n")
    (path / "sub" / "data").write_text("data\n")
    (path / "empty").mkdir()
    return path


def test_symlinks_to_outside_are_never_followed_when_a_dead_pilots_dir_goes(launch: Path, outside: Path,
                                                                              now: float) -> None:
    pilot = make_pilot(launch)
    (pilot / "escape").symlink_to(outside)
    (pilot / "PanDA_Pilot-7").symlink_to(outside / "sub")  # named like a job dir
    (pilot / "sentinel-link").symlink_to(outside / "sentinel")
    job = make_job(pilot, 8, "finished", done=True, updated=now - DAY)
    (job / "inputs").symlink_to(outside)
    top_link = launch / f"Panda_Pilot_9_{EPOCH}"
    top_link.symlink_to(outside)  # named like a pilot dir
    age(pilot, DAY, now)  # the links are old, their (recent) targets would keep the dir if followed
    age(top_link, DAY, now)
    before = tree(outside)
    report = clean(launch, now)
    assert removed(report) == {pilot} and not report.errors
    assert tree(outside) == before and (outside / "sentinel").read_text() == "keep me\n"
    assert top_link.is_symlink() and "symlink" in kept(report)[top_link]


def test_symlinks_inside_a_kept_pilot_dir_are_left_in_place(launch: Path, outside: Path, now: float) -> None:
    pilot = make_pilot(launch)
    (pilot / "PanDA_Pilot-7").symlink_to(outside / "empty")  # an old empty "job dir" if it were followed
    (pilot / "scratch").symlink_to(outside / "empty")
    age(outside, 8 * DAY, now)  # old targets: following a link would remove them
    age(pilot, 8 * DAY, now)
    make_job(pilot, 8, "running", updated=now)  # keeps the pilot dir: its children are judged
    before = tree(outside)
    report = clean(launch, now)
    assert tree(outside) == before and not report.errors
    assert (pilot / "PanDA_Pilot-7").is_symlink() and (pilot / "scratch").is_symlink()


def test_launch_dir_given_through_a_symlink_is_resolved_and_kept(launch: Path, tmp_path: Path, now: float) -> None:
    pilot = make_pilot(launch)
    age(pilot, 13 * H, now)
    link = tmp_path / "launch-link"
    link.symlink_to(launch)
    report = clean(link, now)
    assert removed(report) == {pilot} and link.is_symlink() and launch.is_dir()


