"""Shared pieces of the cleanup tests: forged ages, fake pilot and job dirs, a lock holder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from fsm_pilot.cleanup import CleanupReport, CleanupRules, cleanup

H = 3600.0
DAY = 24 * H
EPOCH = 1_700_000_000


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


