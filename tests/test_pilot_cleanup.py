"""CLEANUP as a real pilot runs it: an old dead pilot's dir goes, a young one and a live one stay."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from tests.pilotrun import job_def, make_launch, run_pilot


def _old_pilot_dir(root: Path, name: str, age: float) -> Path:
    """A leftover pilot dir with one delivered job, every entry aged ``age`` seconds."""
    job_dir = root / name / "PanDA_Pilot-77"
    job_dir.mkdir(parents=True)
    (job_dir / "jobstate.json").write_text(json.dumps({"version": 1, "state": "finished", "done": True}))
    (job_dir / "payload.stdout").write_text("old\n")
    then = time.time() - age
    for path in [*sorted(root.joinpath(name).rglob("*"), reverse=True), root / name]:
        os.utime(path, (then, then), follow_symlinks=False)
    return root / name


def test_cleanup_removes_an_old_leftover_and_keeps_a_young_one(tmp_path: Path) -> None:
    launch = make_launch(tmp_path, [job_def(1, "-c true")])
    old = _old_pilot_dir(launch.dir, "Panda_Pilot_11_1000", 13 * 3600)
    young = _old_pilot_dir(launch.dir, "Panda_Pilot_12_2000", 3600)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("not ours")
    (young / "escape").symlink_to(outside)
    result = run_pilot(launch)
    assert result.returncode == 0, result.stderr
    assert not old.exists() and young.exists()
    assert (outside / "keep.txt").read_text() == "not ours"
    [translog] = launch.dir.glob("Panda_Pilot_*/transitions.jsonl")  # the leftovers have none
    record = next(r for r in map(json.loads, translog.read_text().splitlines()) if r["source"] == "CLEANUP")
    assert record["reason"]["text"].startswith("cleanup: removed 1,")


def test_cleanup_age_is_configurable(tmp_path: Path) -> None:
    launch = make_launch(tmp_path, [job_def(1, "-c true")])
    young = _old_pilot_dir(launch.dir, "Panda_Pilot_12_2000", 3600)
    assert run_pilot(launch, "--cleanup-age", "1800").returncode == 0
    assert not young.exists()
