"""Checking a recorded transition log against the declared machine.

A log is legal when its records are numbered without gaps, each transition
starts where the previous one ended, every transition taken is declared,
the guard evidence agrees with the edge taken, and it ends in a terminal
state whose reason gives an exit code. Post-mortems (``fsm-pilot replay``)
and the tests use the same check.

:func:`replay` streams a file line by line, so a million-line log costs the
same memory as a short one: the checker keeps the current state and seq,
the timeline keeps totals, and everything per record or per job goes to an
observer as it happens. Most records are judged on a short path of plain
comparisons (``_Run.run``), the others by the full rules. Records of an
older schema are upgraded by :data:`ADAPTERS` first, one version at a
time, so the rules only ever see the current schema.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from operator import itemgetter
from pathlib import Path
from typing import Any

from fsm_pilot.errors import PilotError
from fsm_pilot.exitcodes import Reason, exit_code
from fsm_pilot.machine import INITIAL, TRANSITIONS, Edge, terminal_states
from fsm_pilot.replay_shape import MAX_EPOCH, REASON_FIELDS, shape_problem, show
from fsm_pilot.timeline import Observer, Timeline, iso
from fsm_pilot.translog import SCHEMA_VERSION

TERMINALS = terminal_states()

#: What each verdict means to a shell (2 is bad usage / an unreadable file, decided by the CLI).
EXIT_STATUS = {"legal": 0, "illegal": 1, "truncated": 3}

_DECODE = json.JSONDecoder().decode
_GUARD_NAME = itemgetter("guard")
_ALLOWED = itemgetter("allowed")
#: The fields the rules and the timeline read, in one call (KeyError if one is missing).
_FIELDS = itemgetter("v", "seq", "source", "event", "dest", "guards", "ok", "time", "mono", "pilot_id", "job_id",
                     "reason", "error")


def _edges() -> dict[tuple[str, str], list[Edge]]:
    table: dict[tuple[str, str], list[Edge]] = {}
    for edge in TRANSITIONS:
        table.setdefault((edge.trigger, edge.source), []).append(edge)
    return table


@cache
def _edge_table() -> dict[tuple[str, str], list[Edge]]:
    """The edge table, built once: replay looks it up for every record."""
    return _edges()


def _guards_agree(record: Mapping[str, Any], candidates: list[Edge]) -> str | None:
    """The edge taken must be the first whose guards all allowed, per the recorded evidence."""
    verdict = {g["guard"]: g["allowed"] for g in record["guards"]}  # their shape is checked first
    for edge in candidates:
        if all(verdict.get(g) is True for g in edge.guards):
            if edge.dest != record["dest"]:
                return f"guards allowed {edge.dest} but the log says {record['dest']}"
            return None
        if not any(verdict.get(g) is False for g in edge.guards):
            return f"no evidence that a guard of the edge to {edge.dest} refused"
    return "no declared edge matches the recorded guards"


def _version_problem(record: Mapping[str, Any]) -> str | None:
    version = record.get("v")
    if type(version) is not int or version != SCHEMA_VERSION:
        return f"schema version {show(version)}, expected {SCHEMA_VERSION}"
    return None


def _continuity_problem(record: Mapping[str, Any], expected_seq: int, state: str) -> str | None:
    if record["seq"] != expected_seq:
        return f"sequence number {record['seq']}, expected {expected_seq}"
    if state in TERMINALS:
        return f"a record after the terminal state {state}"
    if record["source"] != state:
        return f"source {show(record['source'])}, but the previous record ended in {state}"
    return None


#: Verdicts of the edge rules by (state, event, dest, guard evidence): a long log repeats a few dozen.
_EDGE_VERDICTS: dict[tuple[object, ...], str | None] = {}
_EDGE_VERDICTS_MAX = 4096


def check_record(record: Mapping[str, Any], expected_seq: int, state: str) -> str | None:
    """Why ``record`` is illegal after ``state``, or None."""
    why = _version_problem(record) or shape_problem(record) or _continuity_problem(record, expected_seq, state)
    if why is not None or not record["ok"]:
        return why  # a refused attempt leaves the state as it was
    # the shape is checked: event and dest are str or None, each guard has a str name and a bool decision.
    # The key holds the decisions' ids: True and False are the only objects with theirs, so a key met again
    # vouches for bools (a value would not: 1 == True and hash(1) == hash(True)).
    guards = record["guards"]
    key = (state, record["event"], record["dest"], *map(_GUARD_NAME, guards), *map(id, map(_ALLOWED, guards)))
    try:
        return _EDGE_VERDICTS[key]
    except KeyError:
        verdict = _edge_problem(record, state)
    if len(_EDGE_VERDICTS) < _EDGE_VERDICTS_MAX:
        _EDGE_VERDICTS[key] = verdict
    return verdict


def _edge_problem(record: Mapping[str, Any], state: str) -> str | None:
    """The edge taken must be declared from ``state`` and agree with the recorded guard evidence."""
    candidates = _edge_table().get((record["event"], state))
    if not candidates:
        return f"event {show(record['event'])} is not declared from {state}"
    if record["dest"] not in {e.dest for e in candidates}:
        return f"{record['event']} from {state} to {show(record['dest'])} is not declared"
    return _guards_agree(record, candidates)


def reason_of(record: Mapping[str, Any]) -> Reason:
    """The recorded reason as the driver had it (raises ValueError for an unknown error code)."""
    reason = record.get("reason") or {}
    error = reason.get("error")
    return Reason(str(reason.get("text", "")), PilotError(error) if error is not None else None,
                  reason.get("signal"))


def _terminal_problem(record: Mapping[str, Any]) -> str | None:
    """The reason of the last transition must give an exit code, as it did for the pilot."""
    try:
        reason_of(record)
    except ValueError:
        return f"reason error {show(record['reason']['error'])} is not a PanDA error code: no exit code follows"
    signal = record["reason"]["signal"]
    if record["dest"] == "ABORTED" and signal is not None and not 0 < signal < 128:
        return f"reason signal {show(signal)} is not a signal number (1 to 127): no exit code follows"
    return None


class Checker:
    """The rules, one record at a time: only the current state and seq are kept."""

    def __init__(self) -> None:
        self.state = INITIAL
        self.seq = 0
        self.last: Mapping[str, Any] | None = None

    @property
    def complete(self) -> bool:
        return self.state in TERMINALS

    def feed(self, record: Mapping[str, Any]) -> str | None:
        """Check ``record`` after the ones fed so far; advance on success, else say why not."""
        why = check_record(record, self.seq + 1, self.state)
        if why is None and record.get("ok") and record["dest"] in TERMINALS:
            why = _terminal_problem(record)
        if why is not None:
            return why
        self.seq += 1
        self.last = record
        if record["ok"]:
            self.state = str(record["dest"])
        return None


def problems(records: Iterable[Mapping[str, Any]]) -> list[str]:
    """Every rule the log breaks, first divergence first (empty = legal and complete)."""
    checker = Checker()
    for record in records:
        why = checker.feed(record)
        if why is not None:
            return [f"record {checker.seq + 1}: {why}"]
    if not checker.complete:
        return [f"truncated: the log stops in {checker.state} after {checker.seq} records"]
    return []


# --- schema versions -------------------------------------------------------------------------------------

Adapter = Callable[[dict[str, Any]], dict[str, Any]]


class SchemaError(ValueError):
    """A record this fsm-pilot cannot upgrade to the current schema."""


def _from_v0(record: dict[str, Any]) -> dict[str, Any]:
    """Version 0 (pre-release): no ``v``, ``from``/``to`` for source/dest, no ``mono`` (wall clock only)."""
    up = {key: value for key, value in record.items() if key not in ("from", "to")}
    up["v"] = 1
    up["source"] = record.get("from")
    up["dest"] = record.get("to")
    up.setdefault("mono", record.get("time"))
    return up


#: version -> the function that turns a record of that version into one of the next version.
ADAPTERS: dict[int, Adapter] = {0: _from_v0}


def upgrade(record: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """The record in the current schema, and the version it was written in (no ``v``: version 0)."""
    version = record.get("v", 0)
    if type(version) is int and version == SCHEMA_VERSION:  # the common case, first
        return record, version
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise SchemaError(f"schema version {show(version)} is not a version number")
    if version > SCHEMA_VERSION:
        raise SchemaError(f"schema version {show(version)} is newer than this fsm-pilot reads ({SCHEMA_VERSION}): "
                          "replay it with the fsm-pilot that wrote it")
    written = version
    while version < SCHEMA_VERSION:
        record = ADAPTERS[version](record)
        version = record["v"]
    return record, written


# --- streaming replay ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Verdict:
    """How the log ends: legal (complete), illegal (the first divergence) or truncated (where it stopped)."""

    status: str
    why: str
    state: str  #: the state the log had reached by the last legal record
    seq: int | None = None  #: illegal: the divergent record's seq (None if it has none); else the last seq
    line: int | None = None  #: the line of the divergent record, or the last line read
    time: float | None = None  #: the wall-clock time of the last legal record
    partial_line: bool = False  #: the log ends in a line cut short (a pilot killed mid-write)

    @property
    def exit_status(self) -> int:
        return EXIT_STATUS[self.status]

    def as_dict(self) -> dict[str, object]:
        return {"status": self.status, "exit_status": self.exit_status, "why": self.why, "state": self.state,
                "seq": self.seq, "line": self.line, "time": self.time,
                "iso": iso(self.time) if self.time is not None else None, "partial_line": self.partial_line}


@dataclass
class Report:
    """What replay found: the verdict, what the log reached and the timeline's totals."""

    path: str
    verdict: Verdict
    records: int
    versions: list[int]
    timeline: Timeline
    terminal: Mapping[str, Any] | None = None  #: the record that entered the terminal state
    exit_code: int | None = None  #: the pilot's exit code, as it follows from the terminal record

    def summary(self) -> dict[str, object]:
        """Everything but the per-transition and per-job detail, with stable keys."""
        terminal = None
        if self.terminal is not None:
            terminal = {"state": self.terminal["dest"], "seq": self.terminal["seq"],
                        "time": self.terminal["time"], "iso": iso(self.terminal["time"]),
                        "reason": self.terminal["reason"]}
        return {"records": self.records, "schema_versions": self.versions, **self.timeline.summary(),
                "terminal": terminal, "exit_code": self.exit_code}


@dataclass
class _Run:
    """One pass over a log: decode, upgrade, check, then hand the record to the timeline."""

    path: Path
    timeline: Timeline
    checker: Checker = field(default_factory=Checker)
    versions: set[int] = field(default_factory=set)
    verdict: Verdict | None = None
    line: int = 0

    def _stop(self, status: str, why: str, seq: int | None, partial: bool = False) -> None:
        last = self.checker.last
        self.verdict = Verdict(status, why, self.checker.state, seq, self.line,
                               last["time"] if last is not None else None, partial)

    def _decode(self, raw: bytes) -> dict[str, Any] | None:
        deep = ""
        try:
            record = _DECODE(raw.decode())
        except ValueError:  # UnicodeDecodeError too
            record = None
        except RecursionError:
            record, deep = None, " (nested deeper than the decoder goes)"
        if isinstance(record, dict):
            return record
        if not raw.endswith(b"\n"):  # only the last line can lack its newline: a write cut short
            self._stop("truncated", f"line {self.line} is cut short ({len(raw)} bytes)", self.checker.seq, True)
        else:
            self._stop("illegal", f"line {self.line} is not a JSON object{deep}", None)
        return None

    def feed(self, raw: bytes) -> bool:
        """Take one line; True when the log cannot be read further."""
        self.line += 1
        if raw.isspace():
            return False
        record = self._decode(raw)
        if record is None:
            return True
        try:
            record, version = upgrade(record)
            why = self.checker.feed(record)
        except SchemaError as exc:
            why = str(exc)
        if why is not None:
            seq = record.get("seq")
            self._stop("illegal", why, seq if isinstance(seq, int) and not isinstance(seq, bool) else None)
            return True
        self.versions.add(version)
        self.timeline.add(record)
        return False

    def run(self, lines: Iterable[bytes]) -> None:
        """Check and add every line, stopping at the first the log cannot be read past.

        The common record (current schema, next seq, from the current state, an
        edge whose verdict is remembered as legal, fields of the usual types,
        not terminal) is judged here with plain comparisons on locals; any other
        goes through :meth:`feed`, the full rules, which name what is wrong. A
        remembered key was built from a record that passed them, so a hit also
        vouches for the types of event, dest and the guard names (only a str
        equals a str; the decisions are keyed by id, see :func:`check_record`),
        and for a current state that is not terminal.
        """
        decode, fields, verdicts, terminals, add = _DECODE, _FIELDS, _EDGE_VERDICTS, TERMINALS, self.timeline.take
        reason_fields, name_of, allowed, max_epoch = REASON_FIELDS, _GUARD_NAME, _ALLOWED, MAX_EPOCH
        checker, line = self.checker, self.line
        state, seq_before, last, common_seen = checker.state, checker.seq, checker.last, False
        for raw in lines:
            line += 1
            try:
                record = decode(raw.decode())
                v, seq, source, event, dest, guards, ok, time, mono, pilot_id, job_id, reason, error = fields(record)
                text, code, name, signal = reason_fields(reason)
                if guards:
                    common = verdicts.get((state, event, dest, *map(name_of, guards), *map(id, map(allowed, guards))),
                                          False) is None
                else:
                    common = verdicts.get((state, event, dest), False) is None
            except (ValueError, KeyError, TypeError, RecursionError):  # the full rules say which
                common = False
            if (common and source == state and seq == seq_before + 1 and type(seq) is int and ok is True
                    and v == SCHEMA_VERSION and type(v) is int and dest not in terminals
                    and type(guards) is list and type(pilot_id) is str
                    and type(time) is type(mono) is float and 0.0 <= time <= max_epoch and 0.0 <= mono <= max_epoch
                    and (job_id is None or type(job_id) is int) and (error is None or type(error) is str)
                    and type(text) is str and (code is None or type(code) is int)
                    and (name is None or type(name) is str) and (signal is None or type(signal) is int)):
                state, seq_before, last, common_seen = dest, seq, record, True
                add(record, mono, event, dest, seq)
                continue
            checker.state, checker.seq, checker.last, self.line = state, seq_before, last, line - 1
            stop = self.feed(raw)
            state, seq_before, last = checker.state, checker.seq, checker.last
            if stop:
                break
        else:
            self.line = line
        checker.state, checker.seq, checker.last = state, seq_before, last
        if common_seen:
            self.versions.add(SCHEMA_VERSION)

    def report(self) -> Report:
        self.timeline.close()
        checker = self.checker
        if self.verdict is None and checker.complete:
            self._stop("legal", "legal and complete", checker.seq)
        elif self.verdict is None:
            self._stop("truncated", f"no terminal state: the log stops in {checker.state}", checker.seq)
        assert self.verdict is not None
        report = Report(str(self.path), self.verdict, checker.seq, sorted(self.versions), self.timeline)
        if checker.complete and checker.last is not None:
            report.terminal = checker.last
            report.exit_code = exit_code(checker.state, reason_of(checker.last))
        return report


def replay(path: Path, observer: Observer | None = None) -> Report:
    """Stream the log at ``path`` through the checks and the timeline; ``observer`` sees each event.

    Raises OSError when the file cannot be read; every problem of its content is in the verdict.
    """
    run = _Run(path, Timeline(observer))
    with open(path, "rb") as f:
        run.run(f)
    return run.report()
