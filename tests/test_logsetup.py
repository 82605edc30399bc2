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


@pytest.mark.parametrize("fields", [
    {"status": 200, "elapsed": 0.0012, "path": "http://127.0.0.1:1/server/panda/getJob"},
    {"diag": "payload failed: exit 3", "n": None, "d": {"a": [1, "b c"]}, "ok": True},
    {"q": "it's", "dq": 'say "x"', "eq": "a=b", "tab": "a\tb", "nl": "a\nb", "empty": "", "uni": "é→"},
    {},
])
def test_plain_console_reads_as_structlogs_renderer(fields: dict[str, object]) -> None:
    """The console of a batch job gets the same line structlog's renderer would write, only cheaper."""
    import structlog

    event = {"timestamp": "2026-12-03T21:49:44.559462Z", "level": "warning", "event": "job dir kept", **fields}
    plain = logsetup.PlainConsole()(None, "info", dict(event))
    assert plain == structlog.dev.ConsoleRenderer(colors=False)(None, "info", dict(event)).rstrip()
