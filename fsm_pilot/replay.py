"""Checking a recorded transition log against the declared machine.

A log is legal when its records are numbered without gaps, each transition
starts where the previous one ended, every transition taken is declared,
the guard evidence agrees with the edge taken, and it ends in a terminal
state. Post-mortems and the tests use the same check.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from fsm_pilot.machine import INITIAL, TRANSITIONS, Edge, terminal_states
from fsm_pilot.translog import SCHEMA_VERSION


def _edges() -> dict[tuple[str, str], list[Edge]]:
    table: dict[tuple[str, str], list[Edge]] = {}
    for edge in TRANSITIONS:
        table.setdefault((edge.trigger, edge.source), []).append(edge)
    return table


def _guards_agree(record: Mapping[str, Any], candidates: list[Edge]) -> str | None:
    """The edge taken must be the first whose guards all allowed, per the recorded evidence."""
    verdict = {g["guard"]: g["allowed"] for g in record.get("guards") or []}
    for edge in candidates:
        if all(verdict.get(g) is True for g in edge.guards):
            if edge.dest != record["dest"]:
                return f"guards allowed {edge.dest} but the log says {record['dest']}"
            return None
        if not any(verdict.get(g) is False for g in edge.guards):
            return f"no evidence that a guard of the edge to {edge.dest} refused"
    return "no declared edge matches the recorded guards"


def _header_problem(record: Mapping[str, Any], expected_seq: int, state: str) -> str | None:
    if record.get("v") != SCHEMA_VERSION:
        return f"schema version {record.get('v')!r}, expected {SCHEMA_VERSION}"
    if record.get("seq") != expected_seq:
        return f"sequence number {record.get('seq')!r}, expected {expected_seq}"
    if record.get("source") != state:
        return f"source {record.get('source')!r}, but the previous record ended in {state}"
    return None


def check_record(record: Mapping[str, Any], expected_seq: int, state: str) -> str | None:
    """Why ``record`` is illegal after ``state``, or None."""
    why = _header_problem(record, expected_seq, state)
    if why is not None or not record.get("ok"):
        return why  # a refused attempt leaves the state as it was
    candidates = _edges().get((record["event"], state))
    if not candidates:
        return f"event {record['event']!r} is not declared from {state}"
    if record.get("dest") not in {e.dest for e in candidates}:
        return f"{record['event']} from {state} to {record.get('dest')!r} is not declared"
    return _guards_agree(record, candidates)


def problems(records: Iterable[Mapping[str, Any]]) -> list[str]:
    """Every rule the log breaks, first divergence first (empty = legal and complete)."""
    state, seq = INITIAL, 0
    for seq, record in enumerate(records, start=1):
        why = check_record(record, seq, state)
        if why is not None:
            return [f"record {seq}: {why}"]
        if record.get("ok"):
            state = str(record["dest"])
    if state not in terminal_states():
        return [f"truncated: the log stops in {state} after {seq} records"]
    return []
