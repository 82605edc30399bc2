"""pilotLog: the tail of the pilot's own log as Pilot 3 sends it, fitted to 1024 characters; CPU seconds."""

from __future__ import annotations

import json
from pathlib import Path

from fsm_pilot.logtail import PILOT_LOG_LIMIT, last_lines, pilot_log, stderr_tail
from fsm_pilot.report import cpu_time


def _log(path: Path, records: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_short_tail_is_sent_whole_after_pilot_3s_header(tmp_path: Path) -> None:
    log = _log(tmp_path / "pilot.log", [{"event": f"step {i}", "level": "info"} for i in range(3)])
    assert pilot_log(log) == "- Log from pilot.log -\n" + "\n".join(log.read_text().splitlines())


def test_a_long_tail_keeps_warnings_first_then_the_newest_in_the_logs_order(tmp_path: Path) -> None:
    # five warnings before the last 20 lines: never sent
    records: list[dict[str, object]] = [{"event": f"old {i}", "level": "warning"} for i in range(5)]
    records += [{"event": f"line {i}", "level": "info", "padding": "x" * 60} for i in range(20)]
    records[12] = {"event": "payload stderr", "level": "warning", "tail": "broken"}
    records[20] = {"event": "copy failed", "level": "error", "padding": "y" * 60}
    text = pilot_log(_log(tmp_path / "pilot.log", records))
    assert len(text) <= PILOT_LOG_LIMIT and text.startswith("- Log from pilot.log -\n")
    events = [json.loads(line)["event"] for line in text.splitlines()[1:]]
    assert "payload stderr" in events and "copy failed" in events and not any(e.startswith("old") for e in events)
    assert events[-1] == "line 19" and events == sorted(events, key=[str(r["event"]) for r in records].index)


def test_one_line_longer_than_the_limit_gives_its_end(tmp_path: Path) -> None:
    log = tmp_path / "pilot.log"
    log.write_text("a" * 5000 + "THE END\n")
    text = pilot_log(log)
    assert len(text) == PILOT_LOG_LIMIT and text.endswith("THE END")


def test_nothing_to_send_without_a_log(tmp_path: Path) -> None:
    assert pilot_log(None) == "" and pilot_log(tmp_path / "missing.log") == ""
    assert pilot_log(_log(tmp_path / "empty.log", [])) == ""


def test_last_lines_skip_the_cut_first_line_of_a_large_file(tmp_path: Path) -> None:
    big = tmp_path / "big"
    big.write_text("".join(f"{i:06d}\n" for i in range(20000)))
    assert last_lines(big, 3, read_bytes=100) == ["019997", "019998", "019999"]
    assert all(len(line) == 6 for line in last_lines(big, 50, read_bytes=100))
    stderr = tmp_path / "payload.stderr"
    stderr.write_text("first\n" + "e" * 600 + "\nlast words\n")
    assert stderr_tail(stderr).endswith("\nlast words") and len(stderr_tail(stderr)) == 500


def test_cpu_seconds_are_whole_and_a_short_job_that_used_cpu_is_not_zero() -> None:
    assert [cpu_time(s) for s in (0.0, 0.2, 1.0, 12.4)] == [0, 1, 1, 13]
    assert all(isinstance(cpu_time(s), int) for s in (0.0, 0.2, 12.4))
