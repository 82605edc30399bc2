"""Tails of logs for the server: updateJob's ``pilotLog`` and the payload's stderr.

Pilot 3 sends, for a failed or holding job, ``- Log from pilotlog.txt -`` and the last
20 lines of its own log, cut to 1024 characters (pilot/user/generic/diagnose.py,
get_pilot_log_extracts; control/job.py, add_timing_and_extracts). fsm-pilot's log lines
are JSON records, so 1024 characters hold only a few of them: when the last 20 do not
fit, the warnings and errors among them are kept first, then the newest of the rest,
always in the log's order. Pilot 3 also writes the payload's stderr into its own log
(interpret); fsm-pilot logs its last lines when a payload fails, so they reach
``pilotLog`` the same way.
"""

from __future__ import annotations

import json
from pathlib import Path

PILOT_LOG_LINES = 20
PILOT_LOG_LIMIT = 1024
#: Enough of a file's end for 20 long lines.
_READ_BYTES = 64 * 1024
_IMPORTANT = frozenset({"warning", "error", "critical", "exception"})


def last_lines(path: Path, count: int, read_bytes: int = _READ_BYTES) -> list[str]:
    """The last ``count`` complete lines of a text file (none when it cannot be read)."""
    try:
        with open(path, "rb") as f:
            size = f.seek(0, 2)
            f.seek(max(0, size - read_bytes))
            data = f.read()
    except OSError:
        return []
    lines = data.decode("utf-8", "replace").splitlines()
    if size > read_bytes and lines:
        lines = lines[1:]  # the first one is cut
    return lines[-count:] if count > 0 else []


def _important(line: str) -> bool:
    try:
        record = json.loads(line)
    except ValueError:
        return False
    return isinstance(record, dict) and str(record.get("level", "")).lower() in _IMPORTANT


def _fitting(lines: list[str], room: int) -> list[str]:
    """Which lines to keep in ``room`` characters (each plus a newline): warnings first, then the newest."""
    keep: set[int] = set()
    ranked = [i for i in reversed(range(len(lines))) if _important(lines[i])]
    ranked += [i for i in reversed(range(len(lines))) if i not in ranked]
    for i in ranked:
        if len(lines[i]) + 1 <= room:
            keep.add(i)
            room -= len(lines[i]) + 1
    return [lines[i] for i in sorted(keep)]


def _event(line: str) -> object:
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record.get("event") if isinstance(record, dict) else None


def pilot_log(path: Path | None, limit: int = PILOT_LOG_LIMIT, count: int = PILOT_LOG_LINES,
              skip: frozenset[str] = frozenset()) -> str:
    """``- Log from <name> -`` and the tail of the pilot's own log, at most ``limit`` characters.

    ``count`` lines are read; those whose event is in ``skip`` are left out (the flight record
    shows the transitions already).
    """
    if path is None or not path.is_file():
        return ""
    header = f"- Log from {path.name} -\n"
    lines = last_lines(path, count)
    if skip:
        lines = [line for line in lines if _event(line) not in skip]
    kept = _fitting(lines, limit - len(header))
    if not kept and lines:  # not even one whole line fits: the end of the last one
        kept = [lines[-1][-(limit - len(header)):]]
    return (header + "\n".join(kept))[:limit] if kept else ""


def stderr_tail(path: Path, limit: int = 500) -> str:
    """The end of a payload's stderr, whole lines where they fit in ``limit`` characters."""
    lines = last_lines(path, 20)
    text = "\n".join(lines)
    return text[-limit:]
