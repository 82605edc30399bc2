"""The timeline of a checked transition log: when each state was entered and how long it lasted.

Durations come from ``mono`` (the monotonic clock: a wall-clock step on the
node does not make a state last minus one hour); wall-clock ``time`` only
dates them. A state's time belongs to the job held while in it (the job of
the record that entered it) for the job states, else to the pilot. INIT has
no duration: nothing is recorded before it ends.

Only totals are kept. Each transition, each state's bar and each job's
summary goes to an :class:`Observer` once known, so a renderer can stream
them and a million-line log needs no more memory than a short one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from fsm_pilot.machine import HOLDING_JOB, STATES, terminal_states

#: States whose time belongs to the job held in them.
JOB_STATES = frozenset((*HOLDING_JOB, "ABORTING"))
_ORDER = {s.name: i for i, s in enumerate(STATES)}
_TERMINALS = terminal_states()


def iso(epoch: float) -> str:
    """An epoch time as ISO 8601 UTC with milliseconds (what operators paste into a ticket)."""
    return datetime.fromtimestamp(epoch, tz=timezone.utc).isoformat(timespec="milliseconds")


def by_machine_order(seconds: Mapping[str, float]) -> dict[str, float]:
    """Per-state times in the order the machine declares the states, rounded to microseconds."""
    return {name: round(seconds[name], 6) for name in sorted(seconds, key=lambda n: _ORDER.get(n, len(_ORDER)))}


@dataclass(frozen=True)
class Transition:
    """One record as the timeline shows it."""

    seq: int
    time: float
    rel: float  #: seconds since the first record
    pilot_id: str
    job_id: int | None
    event: str
    source: str
    dest: str | None
    ok: bool
    reason: Mapping[str, Any]
    refused: tuple[str, ...]  #: guards that refused on this attempt
    error: str | None

    def as_dict(self) -> dict[str, object]:
        return {"seq": self.seq, "time": self.time, "iso": iso(self.time), "rel": round(self.rel, 6),
                "job_id": self.job_id, "event": self.event, "source": self.source, "dest": self.dest,
                "ok": self.ok, "reason": dict(self.reason), "refused": list(self.refused), "error": self.error}


@dataclass(frozen=True)
class Bar:
    """A stay in one state: ``kind`` is "state", "terminal" (no duration) or "open" (the log ends in it)."""

    state: str
    owner: int | None  #: the job held, None for the pilot's own states
    seq: int  #: the record that entered the state
    start: float  #: wall-clock epoch, on the monotonic scale of the first record
    seconds: float
    kind: str = "state"


@dataclass
class JobSummary:
    """One job's stay in the pilot: its states' times, and the reason the last one ended."""

    job_id: int
    first_seq: int
    start: float
    rel: float
    last_seq: int = 0
    seconds: float = 0.0
    states: dict[str, float] = field(default_factory=dict)
    outcome: Mapping[str, Any] | None = None  #: reason of the record that left the job (None: log ended)

    @property
    def complete(self) -> bool:
        return self.outcome is not None

    def as_dict(self) -> dict[str, object]:
        return {"job_id": self.job_id, "first_seq": self.first_seq, "last_seq": self.last_seq,
                "start": self.start, "iso": iso(self.start), "rel": round(self.rel, 6),
                "seconds": round(self.seconds, 6), "time_in_state": by_machine_order(self.states),
                "complete": self.complete, "outcome": dict(self.outcome) if self.outcome is not None else None}


class Observer:
    """Receives the timeline as it is built (the default ignores it: a bare replay)."""

    def transition(self, item: Transition) -> None:
        """A record was checked."""

    def bar(self, item: Bar) -> None:
        """A stay in a state ended (or the log ended in it)."""

    def job(self, item: JobSummary) -> None:
        """A job left the pilot (or the log ended while it was held)."""


def _loop_end(record: Mapping[str, Any]) -> dict[str, object]:
    guards = record["guards"]
    return {"seq": record["seq"], "event": record["event"], "source": record["source"], "dest": record["dest"],
            "refused": [g["guard"] for g in guards if g.get("allowed") is False], "guards": guards}


class Timeline:
    """Totals of a checked log, built one record at a time; details go to the observer."""

    def __init__(self, observer: Observer | None = None) -> None:
        self.observer = observer or Observer()
        self.pilot_id: str | None = None
        self.first: tuple[float, float] | None = None  #: (time, mono) of the first record
        self.last: tuple[float, float] | None = None
        self.seconds: dict[str, float] = {}
        self.pilot_seconds = 0.0
        self.jobs = 0
        self.loop_end: dict[str, object] | None = None
        self._state: tuple[str, int | None, int, float] | None = None  #: state, owner, seq, mono entered
        self._job: JobSummary | None = None
        # a bare replay skips building events nobody reads (a third of its time on a long log)
        self._shows_transitions = type(self.observer).transition is not Observer.transition
        self._shows_bars = type(self.observer).bar is not Observer.bar

    def _wall(self, mono: float) -> float:
        assert self.first is not None
        return self.first[0] + (mono - self.first[1])

    def add(self, record: Mapping[str, Any]) -> None:
        """Take the next record (already checked)."""
        time, mono = float(record["time"]), float(record["mono"])
        if self.first is None:
            self.first, self.pilot_id = (time, mono), record["pilot_id"]
        self.last = (time, mono)
        if self._shows_transitions:
            refused = tuple(g["guard"] for g in record["guards"] if g.get("allowed") is False)
            self.observer.transition(Transition(
                record["seq"], time, self._rel(mono), record["pilot_id"], record["job_id"],
                record["event"], record["source"], record["dest"], record["ok"], record["reason"], refused,
                record.get("error")))
        if not record["ok"]:
            return
        if record["event"] == "job_done" or (record["source"] == "CLEANUP" and record["dest"] == "EXIT"):
            self.loop_end = _loop_end(record)
        self._leave(record, mono)
        self._enter(record, mono)

    def _leave(self, record: Mapping[str, Any], mono: float) -> None:
        """Close the stay in the current state (INIT's start is not recorded: no bar)."""
        if self._state is None:
            return
        state, owner, seq, entered = self._state
        spent = mono - entered
        self.seconds[state] = self.seconds.get(state, 0.0) + spent
        if self._shows_bars:
            self.observer.bar(Bar(state, owner, seq, self._wall(entered), spent))
        if self._job is None:
            self.pilot_seconds += spent
            return
        self._job.states[state] = self._job.states.get(state, 0.0) + spent
        self._job.seconds += spent
        self._job.last_seq = record["seq"]
        if (record["job_id"] if record["dest"] in JOB_STATES else None) != self._job.job_id:
            self._job.outcome = record["reason"]
            self.observer.job(self._job)
            self._job = None

    def _enter(self, record: Mapping[str, Any], mono: float) -> None:
        dest, seq = str(record["dest"]), int(record["seq"])
        owner = record["job_id"] if dest in JOB_STATES else None
        if owner is not None and self._job is None:
            self.jobs += 1
            self._job = JobSummary(owner, seq, self._wall(mono), self._rel(mono))
        self._state = (dest, owner, seq, mono)
        if dest in _TERMINALS:
            self.observer.bar(Bar(dest, None, seq, self._wall(mono), 0.0, "terminal"))

    def _rel(self, mono: float) -> float:
        assert self.first is not None
        return mono - self.first[1]

    def close(self) -> None:
        """The log ended: a non-terminal last state and a held job are reported open."""
        if self._state is None or self._state[0] in _TERMINALS:
            return
        state, owner, seq, entered = self._state
        self.observer.bar(Bar(state, owner, seq, self._wall(entered), 0.0, "open"))
        if self._job is not None:
            self._job.last_seq = seq
            self.observer.job(self._job)
            self._job = None

    def summary(self) -> dict[str, object]:
        """Totals with stable keys (None where the log has no record)."""
        first, last = self.first, self.last
        return {
            "pilot_id": self.pilot_id,
            "start": first[0] if first else None, "start_iso": iso(first[0]) if first else None,
            "end": last[0] if last else None, "end_iso": iso(last[0]) if last else None,
            "seconds": round(last[1] - first[1], 6) if first and last else 0.0,
            "pilot_seconds": round(self.pilot_seconds, 6),
            "job_seconds": round(sum(self.seconds.values()) - self.pilot_seconds, 6),
            "jobs": self.jobs, "time_in_state": by_machine_order(self.seconds), "loop_end": self.loop_end,
        }
