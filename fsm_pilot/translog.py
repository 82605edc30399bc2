"""The transition log: one JSON line per transition attempt, in order.

It is the pilot's flight recorder (``fsm-pilot replay`` reads it for
post-mortems), so each line is flushed as it is written and the file is
fsynced when the pilot reaches a terminal state. Records made before the
pilot dir exists are kept in memory and written when it is attached.
"""

from __future__ import annotations

import json
import os
import time
from collections import deque
from pathlib import Path
from typing import IO, Any

from fsm_pilot.redact import redact

SCHEMA_VERSION = 1
#: Records kept in memory for the flight record (fsm_pilot.flightrecord: 12 shown, one more for a duration).
RECENT = 13
FILENAME = "transitions.jsonl"


class TransitionLog:
    """Appends transition records to ``transitions.jsonl`` in the pilot dir."""

    def __init__(self, pilot_id: str) -> None:
        self.pilot_id = pilot_id
        self.seq = 0
        self.path: Path | None = None
        self._file: IO[str] | None = None
        self._pending: list[str] = []
        #: the newest records, for the flight record a failed job's final update carries
        self.recent: deque[dict[str, object]] = deque(maxlen=RECENT)

    def attach(self, directory: Path) -> None:
        """Start writing to ``directory/transitions.jsonl``, flushing what was buffered."""
        self.path = directory / FILENAME
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 -- lives as long as the pilot
        for line in self._pending:
            self._file.write(line)
        self._pending.clear()
        self._file.flush()

    def append(self, *, event: str, source: str, dest: str | None, job_id: int | None,
               guards: list[dict[str, object]], reason: dict[str, object], ok: bool,
               error: str | None = None) -> dict[str, object]:
        """Write one record and return it."""
        self.seq += 1
        record: dict[str, object] = {
            "v": SCHEMA_VERSION, "seq": self.seq, "time": time.time(), "mono": time.monotonic(),
            "pilot_id": self.pilot_id, "job_id": job_id, "event": event, "source": source,
            "dest": dest, "guards": guards, "reason": reason, "ok": ok, "error": error,
        }
        line = redact(json.dumps(record, separators=(",", ":"), default=str)) + "\n"  # a reason may quote a reply
        self.recent.append(json.loads(line))
        if self._file is None:
            self._pending.append(line)
        else:
            self._file.write(line)
            self._file.flush()
        return record

    def close(self) -> None:
        """Flush and fsync: the pilot reached a terminal state and may be killed any moment."""
        if self._file is None:
            return
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        self._file = None


def read_records(path: Path) -> list[dict[str, Any]]:
    """All records of a transition log (small logs; replay streams large ones)."""
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
