"""A pilot dir's owner is alive or dead by its lock file: pid, start time, boot id and a held flock."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from fsm_pilot.liveness import LOCK_NAME, owner_alive, read_owner, start_ticks, take_lock


def test_own_lock_says_alive(tmp_path: Path) -> None:
    handle = take_lock(tmp_path)
    try:
        owner = read_owner(tmp_path)
        assert owner is not None and owner.pid == os.getpid() and owner.start_ticks == start_ticks(os.getpid())
        assert owner_alive(tmp_path) is True
    finally:
        handle.close()


def test_dead_owner_and_reused_pid_say_dead(tmp_path: Path) -> None:
    code = (f"from fsm_pilot.liveness import take_lock; from pathlib import Path; "
            f"h = take_lock(Path({str(tmp_path)!r}))")
    subprocess.run([sys.executable, "-c", code], check=True)  # took the lock, then exited
    assert owner_alive(tmp_path) is False
    # a live process with the recorded pid but another start time is not the owner
    data = json.loads((tmp_path / LOCK_NAME).read_text())
    data.update(pid=os.getpid(), start_ticks=(start_ticks(os.getpid()) or 0) + 1)
    (tmp_path / LOCK_NAME).write_text(json.dumps(data))
    assert owner_alive(tmp_path) is False


def test_live_other_process_holding_the_lock_says_alive(tmp_path: Path) -> None:
    code = (f"import sys; from fsm_pilot.liveness import take_lock; from pathlib import Path; "
            f"h = take_lock(Path({str(tmp_path)!r})); print('locked', flush=True); sys.stdin.read()")
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        (tmp_path / LOCK_NAME).write_text("garbage")  # even an unreadable record: the flock is held
        assert owner_alive(tmp_path) is True
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(10)


def test_no_lock_file_is_unknown(tmp_path: Path) -> None:
    assert owner_alive(tmp_path) is None
