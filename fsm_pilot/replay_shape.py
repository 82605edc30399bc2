"""What a well-formed transition record is: each field replay reads present, with its JSON type.

A log handed to replay is untrusted (cut short, hand-edited, corrupted), so
the rules look at a record's shape before they read a field of it: a field
missing or of the wrong type is named as such instead of ending in a KeyError
or TypeError. The types are the ones ``docs/transition-log.md`` documents, as
JSON has them: a boolean is not an integer, an integer is a number, and the
clocks are finite readings a date can show.

Checked: every top-level field, every field of the reason (its error and
signal give the exit code), and each guard decision's name and decision (the
guard-evidence rule reads them). Not judged: a decision's evidence (``inputs``,
``threshold``, ``error``), which no rule reads and the report shows as
recorded; checking its types on every guard record would cost replay about 5%
of its time (bench/replay_throughput.py).

The full check (:func:`shape_problem`) names what is wrong; replay's common
path vouches for the same with plain type comparisons (and, for the guards,
a key remembered from a record that passed this check).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from operator import itemgetter
from typing import Any

#: 9999-12-31T23:59:59Z, the last second a datetime (so a report) can show: later is not a time.
MAX_EPOCH = 253402300799.0

_NONE = type(None)
_KINDS = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "an array",
          dict: "an object", _NONE: "null"}
_EXPECTED = {(int,): "an integer", (int, float): "a number", (str,): "a string", (str, _NONE): "a string or null",
             (int, _NONE): "an integer or null", (list,): "an array", (dict,): "an object", (bool,): "a boolean"}

#: Top-level fields and their types (exact types: JSON gives no subclasses, and True is not an integer here).
TOP: tuple[tuple[str, tuple[type, ...]], ...] = (
    ("v", (int,)), ("seq", (int,)), ("time", (int, float)), ("mono", (int, float)), ("pilot_id", (str,)),
    ("job_id", (int, _NONE)), ("event", (str,)), ("source", (str,)), ("dest", (str, _NONE)),
    ("guards", (list,)), ("reason", (dict,)), ("ok", (bool,)), ("error", (str, _NONE)),
)
#: The fields of a guard decision the rules read.
GUARD: tuple[tuple[str, tuple[type, ...]], ...] = (("guard", (str,)), ("allowed", (bool,)))
REASON: tuple[tuple[str, tuple[type, ...]], ...] = (
    ("text", (str,)), ("error", (int, _NONE)), ("error_name", (str, _NONE)), ("signal", (int, _NONE)),
)
#: A reason's values in :data:`REASON` order (KeyError if one is missing).
REASON_FIELDS = itemgetter(*(name for name, _ in REASON))


def show(value: object, limit: int = 60) -> str:
    """``repr(value)``, cut to ``limit`` characters: a verdict names a value, it does not reprint a huge one."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def _kind(value: object) -> str:
    return _KINDS.get(type(value), type(value).__name__)


def _type_problem(where: str, value: object, types: tuple[type, ...]) -> str | None:
    if value is ...:
        return f"{where} is missing"
    if type(value) in types:
        return None
    return f"{where} is {_kind(value)} ({show(value)}), expected {_EXPECTED[types]}"


def _clock_problem(name: str, value: float) -> str | None:
    """``time`` and ``mono`` become dates and durations: finite, and within what a date can show."""
    if math.isfinite(value) and 0 <= value <= MAX_EPOCH:
        return None
    return f"field {name!r} is {show(value)}, not a clock reading (0 to {MAX_EPOCH:.0f} seconds)"


def _guard_problem(index: int, count: int, decision: object) -> str | None:
    where = f"guard {index} of {count}"
    if type(decision) is not dict:
        return f"{where} is {_kind(decision)} ({show(decision)}), expected an object"
    name = decision.get("guard")
    if type(name) is str:
        where += f" ({show(name)})"
    for key, types in GUARD:
        why = _type_problem(f"{where}: field {key!r}", decision.get(key, ...), types)
        if why is not None:
            return why
    return None


def shape_problem(record: Mapping[str, Any]) -> str | None:
    """The first field of ``record`` that is missing or of the wrong type, said for people; None if none."""
    for name, types in TOP:
        why = _type_problem(f"field {name!r}", record.get(name, ...), types)
        if why is not None:
            return why
    why = _clock_problem("time", record["time"]) or _clock_problem("mono", record["mono"])
    if why is not None:
        return why
    guards = record["guards"]
    for index, decision in enumerate(guards, start=1):
        why = _guard_problem(index, len(guards), decision)
        if why is not None:
            return why
    reason = record["reason"]
    for key, types in REASON:
        why = _type_problem(f"reason field {key!r}", reason.get(key, ...), types)
        if why is not None:
            return why
    return None
