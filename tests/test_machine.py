"""The declaration is checked at start-up: each check fires on a broken table."""

from __future__ import annotations

from dataclasses import replace

import pytest

from fsm_pilot import machine
from fsm_pilot.machine import STATES, TRANSITIONS, DeclarationError, Edge, State, validate


def _problems(states: tuple[State, ...] = STATES, edges: tuple[Edge, ...] = TRANSITIONS,
              initial: str = machine.INITIAL) -> list[str]:
    with pytest.raises(DeclarationError) as caught:
        validate(states, edges, initial)
    return caught.value.problems


def _without(edges: tuple[Edge, ...], trigger: str, source: str) -> tuple[Edge, ...]:
    return tuple(e for e in edges if (e.trigger, e.source) != (trigger, source))


def test_the_declared_machine_is_valid() -> None:
    validate()


def test_unknown_destination_is_caught() -> None:
    edges = (*TRANSITIONS, Edge("oops", "GETJOB", "NOWHERE"))
    assert "edge oops: GETJOB -> NOWHERE: unknown state NOWHERE" in _problems(edges=edges)


def test_unknown_guard_is_caught() -> None:
    edges = tuple(replace(e, guards=("no_such_guard",)) if e.guards else e for e in TRANSITIONS)
    assert any("unknown guard no_such_guard" in p for p in _problems(edges=edges))


def test_unresolvable_step_is_caught() -> None:
    states = tuple(replace(s, step="no_such_module") if s.name == "RUNNING" else s for s in STATES)
    expected = "state RUNNING: step 'no_such_module' does not resolve to fsm_pilot.states.<module>.step"
    assert expected in _problems(states)


def test_unreachable_state_is_caught() -> None:
    states = (*STATES, State("LIMBO", "init", "never entered"))
    edges = (*TRANSITIONS, Edge("abort", "LIMBO", "ABORTED"), Edge("fail", "LIMBO", "FAILED"))
    assert _problems(states, edges) == ["state LIMBO is unreachable from INIT"]


def test_state_that_cannot_finish_is_caught() -> None:
    states = (*STATES, State("TRAP", "init", "no way out"))
    edges = (*TRANSITIONS, Edge("trap", "GETJOB", "TRAP"), Edge("loop", "TRAP", "TRAP"))
    found = _problems(states, edges)
    assert "state TRAP cannot reach a terminal state" in found
    assert "state TRAP has no abort edge" in found


def test_missing_abort_edge_is_caught() -> None:
    assert _problems(edges=_without(TRANSITIONS, "abort", "STAGEOUT")) == ["state STAGEOUT has no abort edge"]


def test_terminal_state_with_outgoing_edge_is_caught() -> None:
    edges = (*TRANSITIONS, Edge("revive", "EXIT", "INIT"))
    assert "terminal state EXIT has an outgoing edge (revive)" in _problems(edges=edges)


def test_guarded_edge_without_fallback_is_caught() -> None:
    edges = tuple(e for e in TRANSITIONS if not (e.trigger == "job_done" and e.dest == "EXIT"))
    assert "job_done from STAGEOUT: no unguarded fallback edge after the guarded ones" in _problems(edges=edges)


def test_unguarded_edge_shadowing_later_ones_is_caught() -> None:
    edges = (Edge("next", "CLEANUP", "EXIT"), *TRANSITIONS)
    assert "next from CLEANUP: unguarded edge to EXIT shadows later edges" in _problems(edges=edges)


def test_duplicate_state_and_unknown_initial_are_caught() -> None:
    found = _problems((*STATES, STATES[0]), initial="START")
    assert "state INIT is declared twice" in found
    assert "initial state START is not declared" in found


def test_terminal_state_with_a_step_is_caught() -> None:
    states = tuple(replace(s, step="init") if s.name == "EXIT" else s for s in STATES)
    assert "terminal state EXIT must not have a step" in _problems(states)


class _Model:
    state: str


def test_built_machine_takes_guarded_edge_or_fallback() -> None:
    verdict = {"timefloor": True, "disk_space": True, "proxy_lifetime": True, "pilot_lifetime": True,
               "max_jobs": True, "black_hole": True}
    model = _Model()
    machine.build(model, lambda name: lambda: verdict[name])
    for trigger in ("next", "next", "next", "next", "next", "got_job", "accept", "staged_in", "payload_done"):
        assert model.trigger(trigger)  # type: ignore[attr-defined]
    assert model.state == "STAGEOUT"
    verdict["timefloor"] = False
    assert model.trigger("job_done")  # type: ignore[attr-defined]
    assert model.state == "EXIT"


def test_auto_transitions_are_off() -> None:
    model = _Model()
    machine.build(model, lambda name: lambda: True)
    assert not hasattr(model, "to_EXIT")
