"""Measurements on real files (forged mtimes, symlinks out of the job dir) and a real payload."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fsm_pilot.job import parse_job
from fsm_pilot.monitor import Limits, measure, target_for
from fsm_pilot.monitor.measure import LOOPING_IGNORE, activity, dir_size, log_sizes, newest_change, output_sizes
from fsm_pilot.payload import Payload, kill_tree, start_payload

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux-only pilot")

NOW = 2_000_000_000.0  # a fixed "now" (epoch s): every age below is forged relative to it
OLD = NOW - 10_000


def write(path: Path, size: int = 0, mtime: float = OLD) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    os.utime(path, (mtime, mtime))
    return path


def age_dirs(root: Path, mtime: float = OLD) -> None:
    """Make every directory below ``root`` look untouched since ``mtime`` (creating files changed them)."""
    for dirpath, dirnames, _ in os.walk(root):
        for name in dirnames:
            os.utime(Path(dirpath) / name, (mtime, mtime))


@pytest.fixture
def job_dir(tmp_path: Path) -> Path:
    """A job dir with old files, plus a fresh tree outside it that symlinks point to."""
    outside = tmp_path / "outside"
    write(outside / "fresh.dat", 5000, mtime=NOW)
    root = tmp_path / "job"
    write(root / "input.root", 100)
    write(root / "sub" / "deep" / "result.txt", 10, mtime=OLD + 500)
    (root / "link_dir").symlink_to(outside)
    (root / "link_file").symlink_to(outside / "fresh.dat")
    os.link(root / "input.root", root / "hardlink.root")
    age_dirs(root)
    return root


def test_newest_change_skips_symlinks(job_dir: Path) -> None:
    mtime, path, complete = newest_change(job_dir, (), recent_after=NOW - 7200)
    assert (mtime, path, complete) == (OLD + 500, str(job_dir / "sub" / "deep" / "result.txt"), True)


def test_activity_counts_from_the_newest_change(job_dir: Path) -> None:
    found = activity(job_dir, LOOPING_IGNORE, now_wall=NOW, started_wall=NOW - 20_000, limit=7200)
    assert found.idle_seconds == 9500 and found.newest_mtime == OLD + 500 and found.complete


def test_activity_never_counts_from_before_the_payload_started(job_dir: Path) -> None:
    found = activity(job_dir, LOOPING_IGNORE, now_wall=NOW, started_wall=NOW - 3000, limit=7200)
    assert found.idle_seconds == 3000


def test_activity_in_an_empty_job_dir_counts_from_the_start(tmp_path: Path) -> None:
    found = activity(tmp_path, LOOPING_IGNORE, now_wall=NOW, started_wall=NOW - 8000, limit=7200)
    assert found.idle_seconds == 8000 and found.newest_mtime is None


def test_pilot3s_ignored_files_do_not_count(job_dir: Path) -> None:
    for name in ("pilotlog.txt", "setup.py", "prmon.txt", "pandaJobData.out", "user.lib.tgz"):
        write(job_dir / name, 1, mtime=NOW)
    age_dirs(job_dir)
    os.utime(job_dir, (OLD, OLD))
    found = activity(job_dir, LOOPING_IGNORE, now_wall=NOW, started_wall=NOW - 20_000, limit=7200)
    assert found.idle_seconds == 9500
    everything = activity(job_dir, (), now_wall=NOW, started_wall=NOW - 20_000, limit=7200)
    assert everything.idle_seconds == 0


def test_ignored_names_match_below_the_job_dir_only(tmp_path: Path) -> None:
    root = tmp_path / "my.pyenv" / "pilotlog" / "job"
    write(root / "data.out", 1, mtime=NOW - 5)
    found = activity(root, LOOPING_IGNORE, now_wall=NOW, started_wall=0, limit=7200)
    assert found.idle_seconds == 5


def test_a_recent_change_deep_down_stops_the_walk(job_dir: Path) -> None:
    write(job_dir / "sub" / "deep" / "new.log", 1, mtime=NOW - 60)
    age_dirs(job_dir)
    found = activity(job_dir, (), now_wall=NOW, started_wall=NOW - 20_000, limit=7200)
    assert found.idle_seconds == 60 and found.newest_path == str(job_dir / "sub" / "deep" / "new.log")
    assert not found.complete


def test_a_new_subdir_counts_as_a_change(job_dir: Path) -> None:
    (job_dir / "sub" / "fresh_dir").mkdir()
    os.utime(job_dir / "sub" / "fresh_dir", (NOW - 30, NOW - 30))
    os.utime(job_dir / "sub", (OLD, OLD))
    assert activity(job_dir, (), now_wall=NOW, started_wall=0, limit=7200).idle_seconds == 30


def test_dir_size_counts_regular_files_once_and_no_symlinks(job_dir: Path) -> None:
    found = dir_size(job_dir)
    assert (found.size_bytes, found.files, found.complete) == (110, 2, True)  # not the 5000 B outside


def test_dir_size_stops_past_the_limit(tmp_path: Path) -> None:
    for index in range(50):
        write(tmp_path / f"d{index % 5}" / f"f{index}", 100)
    assert dir_size(tmp_path).size_bytes == 5000
    cut = dir_size(tmp_path, stop_above=250)
    assert not cut.complete and 250 < cut.size_bytes <= 350 and cut.files == 3


def test_dir_size_of_a_missing_dir(tmp_path: Path) -> None:
    assert dir_size(tmp_path / "gone").size_bytes == 0


def test_log_sizes(tmp_path: Path) -> None:
    write(tmp_path / "payload.stdout", 7)
    write(tmp_path / "log.generate", 3)
    write(tmp_path / "log.panda.job.log.tgz", 99)
    (tmp_path / "log.link").symlink_to(tmp_path / "payload.stdout")
    sizes = log_sizes(tmp_path, [tmp_path / "payload.stdout", tmp_path / "payload.stderr"])
    assert sizes == {str(tmp_path / "log.generate"): 3, str(tmp_path / "payload.stdout"): 7}


def test_output_sizes(tmp_path: Path) -> None:
    write(tmp_path / "a.root", 12)
    write(tmp_path / "empty.root")
    assert output_sizes(tmp_path, ["a.root", "empty.root", "missing.root"]) == {"a.root": 12, "empty.root": 0}


@pytest.fixture
def sleeper(tmp_path: Path) -> Iterator[Payload]:
    work = tmp_path / "work"
    work.mkdir()
    payload = start_payload(["sleep", "60"], work, work / "payload.stdout", work / "payload.stderr",
                            {"PATH": os.environ.get("PATH", os.defpath)})
    yield payload
    kill_tree(payload, 0.5)
    payload.close()


def limits(**changes: object) -> Limits:
    base: dict[str, object] = {"memory_kb": None, "workdir_bytes": 10**9, "stdout_bytes": 10**9,
                               "output_file_bytes": 10**9, "min_free_bytes": 0, "job_walltime": None,
                               "lifetime_end": 10**9, "looping_limit": 7200.0}
    return Limits(**{**base, **changes})  # type: ignore[arg-type]


def test_measure_takes_only_what_is_due(sleeper: Payload) -> None:
    work = sleeper.stdout_path.parent
    write(work / "out.root", 4)
    target = target_for(sleeper, work, parse_job({"PandaID": 1, "transformation": "x", "outFiles": "out.root"}))
    nothing = measure((), target, limits(), now=time.monotonic(), now_wall=time.time())
    assert (nothing.sample, nothing.activity, nothing.workdir, nothing.logs, nothing.outputs,
            nothing.free_bytes) == (None, None, None, None, None, None)
    every = ("memory", "looping", "workdir", "stdout", "output_sizes", "disk")
    found = measure(every, target, limits(), now=time.monotonic(), now_wall=time.time())
    assert found.sample is not None and found.sample.usage.nprocs >= 1
    assert found.activity is not None and found.workdir is not None and found.workdir.size_bytes == 4
    assert found.logs == {str(work / "payload.stderr"): 0, str(work / "payload.stdout"): 0}
    assert found.outputs == {"out.root": 4}
    assert found.free_bytes is not None and found.free_bytes > 0 and found.errors == {}


def test_looping_is_not_measured_when_disabled(sleeper: Payload) -> None:
    target = target_for(sleeper, sleeper.stdout_path.parent, parse_job({"PandaID": 1, "transformation": "x"}))
    found = measure(("looping",), target, limits(looping_limit=None), now=time.monotonic(), now_wall=time.time())
    assert found.activity is None


def test_disk_measurement_failure_is_reported(sleeper: Payload, tmp_path: Path) -> None:
    target = target_for(sleeper, tmp_path / "no_such_dir", parse_job({"PandaID": 1, "transformation": "x"}))
    found = measure(("disk",), target, limits(), now=time.monotonic(), now_wall=time.time())
    assert found.free_bytes is None and "statvfs" in found.errors["disk"]
