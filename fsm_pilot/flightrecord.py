"""The flight record: why a job ended abnormally, readable in PanDA's monitor without the node.

When a job fails, or the pilot was stopped by a signal while holding it, the final
update's ``pilotLog`` carries the pilot's last transitions (when, from, trigger, to,
seconds spent in the state left, reason and error code) followed by the tail of
its own log (:func:`fsm_pilot.logtail.pilot_log`: warnings and errors first, the
transition lines left out since the head shows them).

Size: panda-server keeps ``pilotLog[:4000]`` in ``pandalog.message``, a
``varchar(4000)`` (taskbuffer storePilotLog; panda-database's schema), so the
record is cut to 4000 bytes of UTF-8 (ASCII for the transitions: Oracle's
VARCHAR2(4000) counts bytes). The transitions take at most half of it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from pathlib import Path

from fsm_pilot.logtail import pilot_log

#: Transitions kept for the record (the translog's in-memory tail holds one more, for the first duration).
TRANSITIONS = 12
#: What panda-server stores of pilotLog (pandalog.message varchar(4000), clipped at 4000 on insert).
SERVER_LIMIT = 4000
_LINE = 200
#: Log lines read for the tail (transition lines among them are left out: the head shows them).
LOG_LINES = 40


def _line(record: Mapping[str, object], previous: Mapping[str, object] | None) -> str:
    reason = record.get("reason") if isinstance(record.get("reason"), Mapping) else {}
    assert isinstance(reason, Mapping)
    when = time.strftime("%H:%M:%S", time.gmtime(float(str(record.get("time", 0)))))
    spent = ""
    if previous is not None:
        spent = f" {float(str(record.get('mono', 0))) - float(str(previous.get('mono', 0))):.1f}s"
    error = f" [{reason.get('error_name')} {reason.get('error')}]" if reason.get("error") else ""
    arrow = f"{record.get('source')} -{record.get('event')}-> {record.get('dest') or '(refused)'}"
    text = f"{when} {arrow}{spent}: {reason.get('text', '')}{error}"
    return text.encode("ascii", "backslashreplace").decode("ascii")[:_LINE]


def transition_lines(records: Iterable[Mapping[str, object]], count: int = TRANSITIONS) -> list[str]:
    """The last ``count`` transitions, one line each (seconds: time spent in the state left), then where it is now."""
    kept = list(records)[-(count + 1):]
    lines = [_line(r, kept[i - 1] if i else None) for i, r in enumerate(kept)][-count:]
    if kept and kept[-1].get("dest"):
        spent = time.monotonic() - float(str(kept[-1].get("mono", 0)))
        lines.append(f"{time.strftime('%H:%M:%S', time.gmtime())} in {kept[-1]['dest']} for {spent:.1f}s (now)")
    return lines


def _head(lines: list[str]) -> str:
    return f"- Last {len(lines)} transitions (UTC, seconds in the state left) -\n" + "\n".join(lines) if lines else ""


def flight_record(records: Iterable[Mapping[str, object]], log: Path | None, limit: int = SERVER_LIMIT) -> str:
    """The transitions, then the tail of the pilot's log, within ``limit`` bytes of UTF-8."""
    lines = transition_lines(records)
    while lines and len(_head(lines)) > limit // 2:  # the oldest transitions go first
        lines.pop(0)
    head = _head(lines)
    room = limit - len(head) - 1
    while True:  # the tail is fitted in characters; a non-ASCII line takes more bytes: fit again, smaller
        tail = pilot_log(log, room, LOG_LINES, frozenset({"transition"})) if room > 0 else ""
        text = "\n".join(part for part in (head, tail) if part)
        over = len(text.encode("utf-8")) - limit
        if over <= 0 or room <= 0:
            return text.encode("utf-8")[:limit].decode("utf-8", "ignore")
        room -= over
