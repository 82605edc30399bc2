"""One handler writes every record to the console and to pilot.log, rendered and redacted per destination."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from fsm_pilot import logsetup

TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJl"


def test_console_and_pilot_log_get_every_record(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = logsetup.configure()  # binds sys.stderr as captured now
    logsetup.add_file(tmp_path / "pilot.log")
    log.info("panda.request", status=200, auth=f"Bearer {TOKEN}")
    logging.getLogger("fsm_pilot.storage.logtar").warning("log tarball: skipped %s (%s)", "/a", "symlink")
    logsetup.close()
    console = capsys.readouterr().err.splitlines()
    lines = [json.loads(line) for line in (tmp_path / "pilot.log").read_text().splitlines()]
    assert [r["event"] for r in lines] == ["panda.request", "log tarball: skipped /a (symlink)"]
    assert lines[0]["status"] == 200 and lines[0]["level"] == "info" and "timestamp" in lines[0]
    assert lines[1]["level"] == "warning"
    assert len(console) == 2 and "panda.request" in console[0] and "status=200" in console[0]
    assert "log tarball: skipped /a (symlink)" in console[1]
    assert TOKEN not in (tmp_path / "pilot.log").read_text() and TOKEN not in "\n".join(console)
