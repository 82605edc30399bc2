"""`make demo` end to end, and the "what next" commands it prints work when pasted."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

from tests.pilotserver import free_port


def _pasted(line: str, port: int) -> list[str]:
    """A printed command as a shell would split it, minus a trailing ``&`` and comment, on ``port``."""
    words = shlex.split(line.split("#", maxsplit=1)[0].replace("25443", str(port)))
    return [w for w in words if w != "&"]


def test_the_demo_runs_and_its_what_next_commands_work(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "fsm_pilot.demo", "demo-run"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "job 1: server says finished" in done.stdout
    commands = done.stdout.split("what next:\n", 1)[1].splitlines()
    assert len(commands) == 6, commands
    port = free_port()
    replay, diagram, dispatcher, status = (_pasted(c.strip(), port) for c in commands[2:])
    assert subprocess.run(replay, cwd=tmp_path, capture_output=True, check=False, timeout=60).returncode == 0
    drawn = subprocess.run(diagram, cwd=tmp_path, capture_output=True, text=True, check=False, timeout=60)
    assert drawn.returncode == 0 and drawn.stdout.startswith("flowchart TD") and "INIT · 1x" in drawn.stdout
    server = subprocess.Popen(dispatcher, cwd=tmp_path, stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None and server.stdout.readline().startswith("listening on ")
        shown = subprocess.run(status, cwd=tmp_path, capture_output=True, text=True, check=False, timeout=60)
    finally:
        server.terminate()
        server.wait(20)
    assert shown.stdout.splitlines()[0].startswith("1 finished"), shown
