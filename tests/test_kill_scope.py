"""Kill scope: only processes proven to be the payload's are ever signalled (issue 9, item 1).

The attack: a wrapper starts a background helper, then ``exec``s the pilot. The
helper's own child outlives the helper and is adopted by the pilot (a child
subreaper) after the payload started. It is not the payload's and must survive
every kill of the payload tree; a payload child that escaped with ``setsid``
and a double fork must still die (its environment carries the payload's mark).
The pilot side runs in a driver subprocess so pytest never becomes a subreaper.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.test_payload import DEADLINE, ESCAPES, gone, recorded, script, wait_until

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux-only pilot")

#: The pilot's side: a subreaper with a wrapper-style helper that forks only after the payload started.
DRIVER = """
import dataclasses, json, os, subprocess, sys, time
from pathlib import Path
from fsm_pilot.payload import become_subreaper, descendants, kill_tree, start_payload

cfg = json.loads(sys.argv[1])
assert become_subreaper()
tmp = Path(cfg["tmp"])
# the wrapper's helper: started before the payload; its child starts after it and is orphaned to us
helper = subprocess.Popen(["sh", "-c", 'while [ ! -e "$1/go" ]; do sleep 0.01; done; '
                           'sleep 60 >/dev/null 2>&1 & echo $! > "$1/helper.pid"', "helper", str(tmp)])
payload = start_payload(cfg["argv"], tmp, tmp / "out", tmp / "err", cfg["env"])
(tmp / "go").touch()
helper.wait()
print(json.dumps({"pid": payload.pid}), flush=True)
sys.stdin.readline()  # the test says go once the payload's tree is complete
seen = [p.pid for p in descendants(payload)]
report = kill_tree(payload, 0.5)
print(json.dumps({"seen": seen, "report": dataclasses.asdict(report)}), flush=True)
"""


def _drive(tmp_path: Path, body: str, count: int,
           cleanup: list[psutil.Process]) -> tuple[dict[str, Any], list[psutil.Process], psutil.Process]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PIDS": str(tmp_path / "pids")}
    cfg = {"argv": script(tmp_path, body), "env": env, "tmp": str(tmp_path)}
    driver_path = tmp_path / "driver.py"
    driver_path.write_text(DRIVER)
    driver = subprocess.Popen([sys.executable, str(driver_path), json.dumps(cfg)], text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=Path(__file__).parent.parent)
    assert driver.stdin is not None and driver.stdout is not None
    try:
        json.loads(driver.stdout.readline())
        procs = recorded(tmp_path, count, cleanup)
        helper_pid = tmp_path / "helper.pid"
        wait_until(lambda: helper_pid.exists() and helper_pid.read_text().strip() != "", "the helper's orphan")
        orphan = psutil.Process(int(helper_pid.read_text()))
        cleanup.append(orphan)
        wait_until(lambda: orphan.ppid() == driver.pid, "the helper's orphan adopted by the pilot")
        driver.stdin.write("go\n")
        driver.stdin.flush()
        result = json.loads(driver.stdout.readline())
    finally:
        driver.stdin.close()
        assert driver.wait(timeout=DEADLINE) == 0
    return result, procs, orphan


def test_wrapper_helper_orphan_is_never_killed(tmp_path: Path, cleanup: list[psutil.Process]) -> None:
    body = 'echo $$ >> "$PIDS"\nsh -c \'echo $$ >> "$PIDS"; sleep 60 & echo $! >> "$PIDS"; wait\' &\nwait\n'
    result, procs, orphan = _drive(tmp_path, body, 3, cleanup)
    report = result["report"]
    assert orphan.pid not in result["seen"]
    assert orphan.pid not in report["terminated"] + report["killed"]
    assert not gone(orphan), "the wrapper helper's child was killed with the payload"
    assert all(gone(p) for p in procs)
    assert len(report["terminated"]) == 3  # exactly the payload's tree


def test_escaped_setsid_child_still_dies_beside_an_adopted_orphan(tmp_path: Path,
                                                                   cleanup: list[psutil.Process]) -> None:
    result, procs, orphan = _drive(tmp_path, ESCAPES + "exec sleep 60\n", 3, cleanup)
    assert {p.pid for p in procs} <= set(result["seen"])
    assert all(gone(p) for p in procs)
    assert not gone(orphan) and orphan.pid not in result["seen"]
