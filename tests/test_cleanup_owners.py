"""Cleanup: whose dir it is (live, dead, own, foreign), and races and errors recorded, never raised.

Ages are set relative to the ``now`` handed to cleanup and sit on either side
of a threshold by an hour or more, so no test depends on timing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fsm_pilot.cleanup import CleanupRules, cleanup
from fsm_pilot.liveness import LOCK_NAME, owner_alive
from tests.cleanup_helpers import DAY, EPOCH, H, age, clean, kept, lock_holder, make_job, make_pilot, removed, tree

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
        if fired or not isinstance(path, (str, os.PathLike)) or Path(path) != listed:
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
        if isinstance(path, (str, os.PathLike)) and Path(path) == locked / "private":
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
