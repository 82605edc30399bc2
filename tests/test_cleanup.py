"""Cleanup of old pilots' leftovers: real dirs with forged ages (os.utime), real lock holders, no sleeps.

Ages are set relative to the ``now`` handed to cleanup and sit on either side
of a threshold by an hour or more, so no test depends on timing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from fsm_pilot.cleanup import CleanupReport, CleanupRules, cleanup
from fsm_pilot.liveness import LOCK_NAME, owner_alive

H = 3600.0
DAY = 24 * H
EPOCH = 1_700_000_000


@pytest.fixture
def launch(tmp_path: Path) -> Path:
    path = tmp_path.resolve() / "launch"
    path.mkdir()
    return path


@pytest.fixture
def now() -> float:
    return time.time()


def age(top: Path, seconds: float, now: float) -> None:
    """Give ``top`` and everything below it the mtime ``now - seconds``; links themselves, never targets."""
    stamp = now - seconds
    for dirpath, dirnames, filenames in os.walk(top):  # a link to a dir is listed, not entered
        for name in dirnames + filenames:
            os.utime(os.path.join(dirpath, name), (stamp, stamp), follow_symlinks=False)
    os.utime(top, (stamp, stamp), follow_symlinks=False)


def make_pilot(launch: Path, pid: int = 4242, prefix: str = "Panda_Pilot") -> Path:
    pilot = launch / f"{prefix}_{pid}_{EPOCH}"
    pilot.mkdir()
    (pilot / "pilot.log").write_text("log\n")
    return pilot


def make_job(pilot: Path, panda_id: int, state: str | None = None, *, done: bool = False,
             updated: float | None = None, maxed: bool = False, raw: bytes | None = None) -> Path:
    job = pilot / f"PanDA_Pilot-{panda_id}"
    job.mkdir()
    (job / "payload.stdout").write_text("out\n")
    if raw is not None:
        (job / "jobstate.json").write_bytes(raw)
    elif state is not None:
        (job / "jobstate.json").write_text(json.dumps({"version": 1, "state": state, "done": done,
                                                        "updated": updated}))
    if maxed:
        (job / "MAXEDOUT").write_text("")
    return job


def clean(launch: Path, now: float | None, own: Path | None = None, **rules: Any) -> CleanupReport:
    return cleanup(launch, own, CleanupRules(**rules), now=now)


def removed(report: CleanupReport) -> set[Path]:
    return {d.path for d in report.removed}


def kept(report: CleanupReport) -> dict[Path, str]:
    return {d.path: d.reason for d in report.kept}


def tree(top: Path) -> list[tuple[str, int, int, int]]:
    """Every entry below ``top`` (links not followed) with mode, size and mtime: a before/after witness."""
    found = []
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            info = os.lstat(path)
            found.append((os.path.relpath(path, top), info.st_mode, info.st_size, info.st_mtime_ns))
    return sorted(found)


def lock_holder(pilot: Path) -> subprocess.Popen[str]:
    """A live process that took the pilot dir's lock and holds it until its stdin closes."""
    code = (f"import sys; from pathlib import Path; from fsm_pilot.liveness import take_lock; "
            f"h = take_lock(Path({str(pilot)!r})); print('locked', flush=True); sys.stdin.read()")
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


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


# --- who owns a dir -----------------------------------------------------------------------------------------------


def test_live_pilots_dir_is_untouched_even_when_ancient_then_goes_once_it_died(launch: Path, now: float) -> None:
    pilot = make_pilot(launch)
    (pilot / "scratch").mkdir()
    make_job(pilot, 7)
    make_job(pilot, 8, "failed", maxed=True)
    proc = lock_holder(pilot)
    try:
        age(pilot, 30 * DAY, now)
        before = tree(pilot)
        report = clean(launch, now)
        assert tree(pilot) == before and not report.removed and not report.errors
        assert kept(report) == {pilot: "its pilot is alive"}
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(10)
    assert owner_alive(pilot) is False
    assert removed(clean(launch, now)) == {pilot}


@pytest.mark.parametrize(("hours", "goes"), [(11, False), (13, True)])
def test_dead_pilots_dir_is_judged_by_age(launch: Path, now: float, hours: int, goes: bool) -> None:
    pilot = make_pilot(launch)
    code = f"from pathlib import Path; from fsm_pilot.liveness import take_lock; h = take_lock(Path({str(pilot)!r}))"
    subprocess.run([sys.executable, "-c", code], check=True)  # took the lock, then exited
    assert (pilot / LOCK_NAME).exists() and owner_alive(pilot) is False
    age(pilot, hours * H, now)
    report = clean(launch, now)
    assert pilot.exists() is not goes and (pilot in removed(report)) is goes and not report.errors


def test_own_pilot_dir_is_always_skipped(launch: Path, now: float) -> None:
    pilot = make_pilot(launch)
    (pilot / "scratch").mkdir()
    make_job(pilot, 7)
    age(pilot, 30 * DAY, now)
    before = tree(pilot)
    report = clean(launch, now, own=launch / ".." / "launch" / pilot.name)
    assert tree(pilot) == before and kept(report) == {pilot: "this pilot's own dir"}


def test_launch_dir_and_foreign_entries_are_never_removed(tmp_path: Path, now: float) -> None:
    launch = tmp_path.resolve() / f"Panda_Pilot_1_{EPOCH}"  # even one named like a pilot dir
    launch.mkdir()
    pilot = make_pilot(launch)
    (launch / "queuedata.json").write_text("{}")
    (launch / "old-workdir").mkdir()
    (launch / f"Panda_Pilot_5_{EPOCH}").write_text("a file named like a pilot dir")
    (launch / "Panda_Pilot_x").mkdir()  # not <pid>_<epoch>
    age(launch, 30 * DAY, now)
    report = clean(launch, now)
    assert removed(report) == {pilot} and launch.is_dir() and not report.errors
    assert sorted(p.name for p in launch.iterdir()) == sorted(
        ["queuedata.json", "old-workdir", f"Panda_Pilot_5_{EPOCH}", "Panda_Pilot_x"])


def test_default_now_is_the_clock(launch: Path) -> None:
    pilot = make_pilot(launch)
    age(pilot, 13 * H, time.time())
    assert removed(clean(launch, None)) == {pilot}


# --- races and errors: recorded, never raised ---------------------------------------------------------------------


class _Listing:
    """What os.scandir returns, from entries listed before the race."""

    def __init__(self, entries: list[os.DirEntry[str]]) -> None:
        self._entries = iter(entries)

    def __enter__(self) -> _Listing:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def __iter__(self) -> Iterator[os.DirEntry[str]]:
        return self

    def __next__(self) -> os.DirEntry[str]:
        return next(self._entries)


def vanish_after_listing(monkeypatch: pytest.MonkeyPatch, listed: Path, victim: Path) -> None:
    """The first listing of ``listed`` is taken, then ``victim`` is removed, as a rival pilot could do.

    A real rival cannot be scheduled into the microseconds between a listing and
    the use of its entries without sleeps or luck; patching os.scandir puts the
    race exactly there, every time.
    """
    real = os.scandir
    fired: list[bool] = []

    def scandir(path: Any) -> Any:
        if fired or not isinstance(path, str | os.PathLike) or Path(path) != listed:
            return real(path)
        fired.append(True)
        with real(str(path)) as listing:
            entries = list(listing)
        shutil.rmtree(victim)
        return _Listing(entries)

    monkeypatch.setattr(os, "scandir", scandir)


def test_pilot_dir_vanishing_after_the_launch_dir_was_listed(launch: Path, now: float,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = make_pilot(launch, pid=1), make_pilot(launch, pid=2)
    age(first, 13 * H, now)
    age(second, 13 * H, now)
    vanish_after_listing(monkeypatch, launch, first)
    report = clean(launch, now)
    assert not report.errors and removed(report) == {second} and "vanished" in kept(report)[first]


def test_job_dir_vanishing_after_its_pilot_dir_was_listed(launch: Path, now: float,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    pilot = make_pilot(launch)
    gone, other = make_job(pilot, 1), make_job(pilot, 2)
    age(pilot, 1 * H, now)  # a recent pilot dir: its children are listed and judged
    age(gone, 13 * H, now)
    age(other, 13 * H, now)
    vanish_after_listing(monkeypatch, pilot, gone)
    report = clean(launch, now)
    assert not report.errors and removed(report) == {other} and "vanished" in kept(report)[gone]


def test_dir_vanishing_just_before_its_removal(launch: Path, now: float, monkeypatch: pytest.MonkeyPatch) -> None:
    pilot = make_pilot(launch)
    age(pilot, 13 * H, now)
    real = shutil.rmtree

    def rival_first(path: Any, **kw: Any) -> None:
        real(path)  # a rival removed it between the safety check and the removal
        real(path, **kw)

    monkeypatch.setattr(shutil, "rmtree", rival_first)
    report = clean(launch, now)
    assert not report.errors and removed(report) == {pilot} and not pilot.exists()


def test_permission_denied_is_recorded_and_the_rest_goes_on(launch: Path, now: float,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    locked, other = make_pilot(launch, pid=1), make_pilot(launch, pid=2)
    (locked / "private").mkdir()
    age(locked, 13 * H, now)
    age(other, 13 * H, now)
    real = os.scandir

    def scandir(path: Any) -> Any:  # tests may run as root, where chmod 000 denies nothing
        if isinstance(path, str | os.PathLike) and Path(path) == locked / "private":
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    report = clean(launch, now)
    assert locked.is_dir() and removed(report) == {other}
    assert [d.path for d in report.errors] == [locked, locked / "private"]


def test_failed_removal_is_recorded(launch: Path, now: float, monkeypatch: pytest.MonkeyPatch) -> None:
    pilot = make_pilot(launch)
    age(pilot, 13 * H, now)
    real = os.unlink

    def unlink(path: Any, *args: Any, **kw: Any) -> None:
        if os.fspath(path) == "pilot.log" or os.fspath(path).endswith("/pilot.log"):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        real(path, *args, **kw)

    monkeypatch.setattr(os, "unlink", unlink)
    report = clean(launch, now)
    assert not report.removed and len(report.errors) == 1 and "Permission denied" in report.errors[0].reason
    assert (pilot / "pilot.log").exists()


def test_walk_is_bounded(launch: Path, now: float) -> None:
    pilot = make_pilot(launch)
    for n in range(20):
        (pilot / f"f{n}").write_text("x")
    age(pilot, 13 * H, now)
    report = clean(launch, now, max_walk_entries=10)
    assert pilot.is_dir() and "too big" in kept(report)[pilot]
    assert removed(clean(launch, now, max_walk_entries=100)) == {pilot}


def test_missing_launch_dir_is_an_error_not_an_exception(tmp_path: Path, now: float) -> None:
    report = clean(tmp_path / "nowhere", now)
    assert len(report.errors) == 1 and not report.removed


def test_decisions_are_logged(launch: Path, now: float) -> None:
    events: list[tuple[str, str, dict[str, Any]]] = []

    class Log:
        def debug(self, event: str, **kw: Any) -> None:
            events.append(("debug", event, kw))

        def info(self, event: str, **kw: Any) -> None:
            events.append(("info", event, kw))

        def warning(self, event: str, **kw: Any) -> None:
            events.append(("warning", event, kw))

    pilot = make_pilot(launch)
    age(pilot, 13 * H, now)
    cleanup(launch, None, CleanupRules(), now=now, log=Log())
    assert ("info", "cleanup removed") in {(level, event) for level, event, _ in events}
    assert events[-1] == ("info", "cleanup done", {"removed": 1, "kept": 0, "errors": 0})
