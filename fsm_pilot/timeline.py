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
    """An epoch time as ISO 8601 UTC with milliseconds (what operators paste into a ticket).

    Replay checks each record's clocks, but a time derived from two of them (a
    job's start: the first wall time plus monotonic seconds since) can still be
    past what a date can show in a corrupt log: it is then shown as a number.
    """
    try:
        return datetime.fromtimestamp(epoch, tz=timezone.utc).isoformat(timespec="milliseconds")
    except (OverflowError, OSError, ValueError):
        return f"{epoch!r} (not a date)"


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
    """Totals of a checked log, built one record at a time; details go to the observer.

    :meth:`take` runs once per record of a million-line log: it keeps floats
    and the current stay, and builds an event or a job's summary only for an
    observer that shows them (a bare replay builds none).
    """

    def __init__(self, observer: Observer | None = None) -> None:
        self.observer = observer or Observer()
        self.pilot_id: str | None = None
        self.first: tuple[float, float] | None = None  #: (time, mono) of the first record
        self.seconds: dict[str, float] = {}
        self.pilot_seconds = 0.0
        self.jobs = 0
        self._last: Mapping[str, Any] | None = None
        self._loop_record: Mapping[str, Any] | None = None  #: the record that ended the job loop
        #: the stay in the current state: state, the job held (None: the pilot's own), seq, mono entered
        self._state: tuple[str, int | None, int, float] | None = None
        self._job: JobSummary | None = None  #: the held job, if the observer shows jobs
        kind = type(self.observer)
        self._shows_transitions = kind.transition is not Observer.transition
        self._shows_bars = kind.bar is not Observer.bar
        self._shows_jobs = kind.job is not Observer.job
        self._shows_stays = self._shows_bars or self._shows_jobs
        self._noting = True  #: :meth:`take` calls :meth:`_note`: for the first record, and each if shown

    @property
    def last(self) -> tuple[float, float] | None:
        """(time, mono) of the last record."""
        return None if self._last is None else (float(self._last["time"]), float(self._last["mono"]))

    @property
    def loop_end(self) -> dict[str, object] | None:
        """How the job loop ended: the last job_done (or CLEANUP -> EXIT) and its guards' evidence."""
        return None if self._loop_record is None else _loop_end(self._loop_record)

    def _wall(self, mono: float) -> float:
        assert self.first is not None
        return self.first[0] + (mono - self.first[1])

    def _rel(self, mono: float) -> float:
        assert self.first is not None
        return mono - self.first[1]

    def add(self, record: Mapping[str, Any]) -> None:
        """Take the next record (already checked)."""
        if record["ok"]:
            self.take(record, float(record["mono"]), record["event"], record["dest"], int(record["seq"]))
            return
        self._note(record, float(record["mono"]))  # a refused attempt: the state stays as it was

    def _note(self, record: Mapping[str, Any], mono: float) -> None:
        if self.first is None:
            self.first, self.pilot_id = (float(record["time"]), mono), record["pilot_id"]
            self._noting = self._shows_transitions
        self._last = record
        if self._shows_transitions:
            self._transition(record, mono)

    def take(self, record: Mapping[str, Any], mono: float, event: str, dest: str, seq: int) -> None:
        """:meth:`add` of a record that moved the machine, its fields already read (replay's common case)."""
        if self._noting:
            self._note(record, mono)
        self._last = record
        if event == "job_done" or (dest == "EXIT" and record["source"] == "CLEANUP"):
            self._loop_record = record
        owner = record["job_id"] if dest in JOB_STATES else None  # the job held in dest
        stay, held = self._state, None
        if stay is not None:  # INIT's start is not recorded: it has no stay to close
            state, held, _, entered = stay
            spent = mono - entered
            self.seconds[state] = self.seconds.get(state, 0.0) + spent
            if held is None:
                self.pilot_seconds += spent
            if self._shows_stays:
                self._left(record, stay, spent, owner)
        if owner is not None and owner != held:
            self.jobs += 1
            if self._shows_jobs:
                self._job = JobSummary(owner, seq, self._wall(mono), self._rel(mono))
        self._state = (dest, owner, seq, mono)
        if dest in _TERMINALS:
            self.observer.bar(Bar(dest, None, seq, self._wall(mono), 0.0, "terminal"))

    def _transition(self, record: Mapping[str, Any], mono: float) -> None:
        refused = tuple(g["guard"] for g in record["guards"] if g.get("allowed") is False)
        self.observer.transition(Transition(
            record["seq"], float(record["time"]), self._rel(mono), record["pilot_id"], record["job_id"],
            record["event"], record["source"], record["dest"], record["ok"], record["reason"], refused,
            record.get("error")))

    def _left(self, record: Mapping[str, Any], stay: tuple[str, int | None, int, float], spent: float,
              owner: int | None) -> None:
        """Tell the observer about the stay just closed, and the job if it left the pilot."""
        state, held, seq, entered = stay
        if self._shows_bars:
            self.observer.bar(Bar(state, held, seq, self._wall(entered), spent))
        job = self._job
        if job is None:  # the pilot's own state (the held job is in stay[1])
            return
        job.states[state] = job.states.get(state, 0.0) + spent
        job.seconds += spent
        job.last_seq = record["seq"]
        if owner != job.job_id:
            job.outcome = record["reason"]
            self.observer.job(job)
            self._job = None

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
