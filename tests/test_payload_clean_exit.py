"""A payload that exited alone is judged without a /proc scan; one that left a process behind never is.

Real subreaper (a driver process, as the pilot is one), real payloads and signals.
The driver counts the /proc scans kill_tree makes by wrapping the scan function:
instrumentation, not a stand-in (the scan still runs).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.test_payload import DEADLINE, ESCAPES, env_for, gone, recorded, script

DRIVER = """
import dataclasses, json, sys
from pathlib import Path
import fsm_pilot.payload.process as process
from fsm_pilot.payload import become_subreaper, kill_tree, start_payload, wait_payload

cfg = json.loads(sys.argv[1])
if cfg["subreaper"]:
    assert become_subreaper()
scans = []
real = process.scan_procs
process.scan_procs = lambda: scans.append(1) or real()
tmp = Path(cfg["tmp"])
payload = start_payload(cfg["argv"], tmp, tmp / "out", tmp / "err", cfg["env"])
assert wait_payload(payload, None, 10.0) == "exited"
report = kill_tree(payload, 0.5)
print(json.dumps({"scans": len(scans), "report": dataclasses.asdict(report)}), flush=True)
"""


def _drive(tmp_path: Path, argv: list[str], subreaper: bool = True) -> dict[str, Any]:
    (tmp_path / "driver.py").write_text(DRIVER)
    cfg = {"argv": argv, "env": env_for(tmp_path), "tmp": str(tmp_path), "subreaper": subreaper}
    done = subprocess.run([sys.executable, str(tmp_path / "driver.py"), json.dumps(cfg)], capture_output=True,
                          text=True, timeout=DEADLINE, check=False)
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@pytest.mark.parametrize("code", [0, 7])
def test_a_payload_that_exited_alone_needs_no_scan(tmp_path: Path, code: int) -> None:
    result = _drive(tmp_path, ["sh", "-c", f"exit {code}"])
    assert result["scans"] == 0
    report = result["report"]
    assert (report["terminated"], report["killed"], report["returncode"]) == ([], [], code)


def test_a_payload_that_left_processes_behind_is_scanned_and_they_die(tmp_path: Path) -> None:
    cleanup: list[psutil.Process] = []
    try:
        result = _drive(tmp_path, script(tmp_path, ESCAPES))  # a child, and a setsid child, both sleep on
        procs = recorded(tmp_path, 3, cleanup)
        assert result["scans"] >= 1 and all(gone(p) for p in procs)
        left = {p.pid for p in procs[1:]}
        assert left <= set(result["report"]["terminated"])
    finally:
        for proc in cleanup:
            if not gone(proc):
                proc.kill()


def test_a_pilot_that_is_no_subreaper_always_scans(tmp_path: Path) -> None:
    result = _drive(tmp_path, ["true"], subreaper=False)
    assert result["scans"] >= 1
