"""A dispatcher that cannot start says why in one line, exits non-zero, and leaves nothing behind."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest


def _start(tmp_path: Path, db: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "fsm_pilot", "dispatcher", "--db", str(db), "--port", "0", *extra]
    return subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)


def _one_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    [line] = done.stderr.strip().splitlines()
    return line


@pytest.mark.parametrize(("make", "expected"), [
    ("dir", "is a directory"),
    ("text", "is not an SQLite database"),
    ("missing-dir", "does not exist (create it first)"),
])
def test_a_db_that_cannot_be_one_is_refused_in_one_line_creating_nothing(
        tmp_path: Path, make: str, expected: str) -> None:
    db = {"dir": tmp_path / "adir", "text": tmp_path / "notes.txt", "missing-dir": tmp_path / "no" / "x.db"}[make]
    if make == "dir":
        db.mkdir()
    if make == "text":
        db.write_text("not a database\n")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    line = _one_line(_start(tmp_path, db))
    assert expected in line and line.startswith("dispatcher: ")
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    if make == "text":
        assert db.read_text() == "not a database\n"


def test_a_port_in_use_leaves_no_new_database_or_storage_dir(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        db = tmp_path / "d.db"
        cmd = [sys.executable, "-m", "fsm_pilot", "dispatcher", "--db", str(db), "--port", str(port)]
        done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
    line = _one_line(done)
    assert "in use" in line, line
    assert list(tmp_path.iterdir()) == []
