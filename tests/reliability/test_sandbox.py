"""The sandbox the campaign relies on: a process inside cannot see, hence cannot signal, the test."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import psutil
import pytest

from tests.pilotrun import all_gone, wait_for
from tests.reliability.sandbox import Sandbox

pytestmark = pytest.mark.needs_pidns

PROBE = """
import os, sys
try:
    os.kill(int(sys.argv[1]), 0)
    print("visible")
except ProcessLookupError:
    print("invisible")
"""


def test_a_sandboxed_process_cannot_reach_the_test_process(tmp_path: Path, sandbox: Sandbox) -> None:
    assert sandbox.namespaced
    proc = sandbox.spawn([sys.executable, "-c", PROBE, str(os.getpid())], cwd=tmp_path, env=dict(os.environ),
                         name="probe")
    assert proc.wait(30) == 0, proc.stderr()
    assert proc.stdout_path.read_text().strip() == "invisible"
    assert proc.inner_pid != proc.pid  # it sees itself under another pid than the host gives it


def test_closing_the_sandbox_ends_everything_left_in_it(tmp_path: Path) -> None:
    box = Sandbox(tmp_path / "box", namespaced=True)
    proc = box.spawn(["sh", "-c", "( setsid sleep 301.5 & ) ; exec sleep 302.5"], cwd=tmp_path,
                     env=dict(os.environ), name="leaver")
    wait_for(lambda: psutil.Process(proc.pid).cmdline() == ["sleep", "302.5"], what="the shell replaced by sleep")
    [escaped] = wait_for(lambda: box.find("301.5"), what="the escaped sleep")
    box.close()
    assert proc.wait(10) == -9
    wait_for(lambda: all_gone([proc.pid, escaped]), timeout=10, what="the sandbox emptied")
