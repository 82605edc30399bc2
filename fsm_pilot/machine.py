"""The pilot, declared once as data: states with their steps, and edges with their guards.

Everything else (the driver, the diagram, replay, the docs) reads these two
tables. ``validate()`` checks them at start-up, because ``transitions`` only
notices a bad destination when the trigger fires, in production, on a node.

Steps are bound by name in :data:`STATES` and called back by the driver after
the transition has completed, not as ``on_enter`` callbacks: a step run inside
``on_enter`` would run inside the trigger call, so a trigger it needs would
nest, an exception would leave the transition half done, and the hours a
payload runs would be spent "inside" a transition. Called by the driver, each
transition is atomic and logged before its step's work starts.
"""

from __future__ import annotations

import importlib
import logging
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from fsm_pilot.guards import GUARDS


@dataclass(frozen=True)
class State:
    """A state: its name, the module in ``fsm_pilot/states/`` whose ``step`` it runs, and what it is for."""

    name: str
    step: str | None
    doc: str
    terminal: bool = False


@dataclass(frozen=True)
class Edge:
    """A transition: on ``trigger`` from ``source`` to ``dest`` if every guard allows."""

    trigger: str
    source: str
    dest: str
    guards: tuple[str, ...] = ()


SETUP = ("INIT", "QUEUEDATA", "CHECKS", "RECOVERY", "CLEANUP", "GETJOB")
HOLDING_JOB = ("VALIDATE", "STAGEIN", "RUNNING", "STAGEOUT")
ANOTHER_JOB = ("disk_space", "proxy_lifetime", "pilot_lifetime")
NEXT_JOB = ("black_hole", "timefloor", "max_jobs", *ANOTHER_JOB)
#: Where a drain (a drain file, the warning signal) ends the pilot: between jobs, never with one held.
DRAINABLE = ("QUEUEDATA", "CHECKS", "RECOVERY", "CLEANUP", "GETJOB", "STAGEOUT")

STATES: tuple[State, ...] = (
    State("INIT", "init", "record the start time, create the pilot dir"),
    State("QUEUEDATA", "queuedata", "load the queue's configuration and its storage endpoints"),
    State("CHECKS", "checks", "measure the node, check CVMFS, set the payload memory limit"),
    State("RECOVERY", "recovery", "finish what an earlier pilot on this node left behind"),
    State("CLEANUP", "cleanup", "remove old work dirs; measure facts for the first job"),
    State("GETJOB", "getjob", "take a job definition"),
    State("VALIDATE", "validate", "parse the job; reject unsafe or inconsistent definitions"),
    State("STAGEIN", "stagein", "fetch the job's inputs, verify size and checksum"),
    State("RUNNING", "running", "run the payload in its own work dir and process group"),
    State("STAGEOUT", "stageout", "store outputs and the log, report the job's final state"),
    State("ABORTING", "aborting", "record the held job as failed (signal or crash), keep its log"),
    State("EXIT", None, "the pilot ended by decision (no job, a guard refused another, drained)", terminal=True),
    State("FAILED", None, "the pilot could not go on (bad queuedata, no proxy, a crash)", terminal=True),
    State("ABORTED", None, "the pilot was stopped by a signal", terminal=True),
)

INITIAL = "INIT"

TRANSITIONS: tuple[Edge, ...] = (
    #    trigger           source       dest        guards
    Edge("next",           "INIT",      "QUEUEDATA"),
    Edge("next",           "QUEUEDATA", "CHECKS"),
    Edge("next",           "CHECKS",    "RECOVERY"),
    Edge("next",           "RECOVERY",  "CLEANUP"),
    Edge("next",           "CLEANUP",   "GETJOB",   ANOTHER_JOB),
    Edge("next",           "CLEANUP",   "EXIT"),
    Edge("got_job",        "GETJOB",    "VALIDATE"),
    Edge("no_job",         "GETJOB",    "EXIT"),
    Edge("accept",         "VALIDATE",  "STAGEIN"),
    Edge("reject",         "VALIDATE",  "STAGEOUT"),
    Edge("staged_in",      "STAGEIN",   "RUNNING"),
    Edge("stagein_failed", "STAGEIN",   "STAGEOUT"),
    Edge("payload_done",   "RUNNING",   "STAGEOUT"),
    Edge("job_done",       "STAGEOUT",  "GETJOB",   NEXT_JOB),
    Edge("job_done",       "STAGEOUT",  "EXIT"),
    *(Edge("drain",        source,      "EXIT") for source in DRAINABLE),
    *(Edge("fail",         source,      "FAILED") for source in SETUP),
    *(Edge("fail",         source,      "ABORTING") for source in HOLDING_JOB),
    Edge("fail",           "ABORTING",  "FAILED"),
    *(Edge("abort",        source,      "ABORTED") for source in SETUP),
    *(Edge("abort",        source,      "ABORTING") for source in HOLDING_JOB),
    Edge("abort",          "ABORTING",  "ABORTED"),
)  # fmt: skip

Step = Callable[[Any], Any]


class DeclarationError(Exception):
    """The machine's declaration is broken; raised at start-up, never later."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("broken machine declaration:\n  " + "\n  ".join(problems))
        self.problems = problems


def terminal_states(states: Iterable[State] = STATES) -> frozenset[str]:
    """Names of the states the pilot ends in."""
    return frozenset(s.name for s in states if s.terminal)


def resolve_step(module: str, package: str = "fsm_pilot.states") -> Step | None:
    """The ``step`` function of ``fsm_pilot/states/<module>.py``, or None if it does not resolve."""
    try:
        mod = importlib.import_module(f"{package}.{module}")
    except ImportError:
        return None
    step = getattr(mod, "step", None)
    return step if callable(step) else None


def _reach(start: Iterable[str], edges: Mapping[str, set[str]]) -> set[str]:
    seen = set(start)
    todo = deque(seen)
    while todo:
        for nxt in edges.get(todo.popleft(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def _check_names(states: tuple[State, ...], edges: tuple[Edge, ...], guards: Mapping[str, object],
                 package: str) -> list[str]:
    problems = []
    names = [s.name for s in states]
    problems += [f"state {n} is declared twice" for n in sorted({n for n in names if names.count(n) > 1})]
    known = set(names)
    for e in edges:
        problems += [f"edge {e.trigger}: {e.source} -> {e.dest}: unknown state {n}"
                     for n in (e.source, e.dest) if n not in known]
        problems += [f"edge {e.trigger}: {e.source} -> {e.dest}: unknown guard {g}"
                     for g in e.guards if g not in guards]
    for s in states:
        if s.terminal and s.step is not None:
            problems.append(f"terminal state {s.name} must not have a step")
        elif not s.terminal and (s.step is None or resolve_step(s.step, package) is None):
            problems.append(f"state {s.name}: step {s.step!r} does not resolve to {package}.<module>.step")
    return problems


def _check_graph(states: tuple[State, ...], edges: tuple[Edge, ...], initial: str) -> list[str]:
    problems = []
    names = {s.name for s in states}
    terminals = terminal_states(states)
    forward: dict[str, set[str]] = {}
    backward: dict[str, set[str]] = {}
    for e in edges:
        forward.setdefault(e.source, set()).add(e.dest)
        backward.setdefault(e.dest, set()).add(e.source)
    if initial not in names:
        problems.append(f"initial state {initial} is not declared")
    reachable = _reach([initial], forward)
    problems += [f"state {n} is unreachable from {initial}" for n in sorted(names - reachable)]
    finishing = _reach(terminals, backward)
    problems += [f"state {n} cannot reach a terminal state" for n in sorted(names - finishing - terminals)]
    problems += [f"terminal state {e.source} has an outgoing edge ({e.trigger})"
                 for e in edges if e.source in terminals]
    problems += [f"state {n} has no {trigger} edge" for n in sorted(names - terminals)
                 for trigger in ("abort", "fail")
                 if not any(e.trigger == trigger and e.source == n for e in edges)]
    return problems


def _check_order(edges: tuple[Edge, ...]) -> list[str]:
    """Edges sharing a trigger and source are tried in order: only the last may be unguarded."""
    problems = []
    groups: dict[tuple[str, str], list[Edge]] = {}
    for e in edges:
        groups.setdefault((e.trigger, e.source), []).append(e)
    for (trigger, source), group in groups.items():
        for e in group[:-1]:
            if not e.guards:
                problems.append(f"{trigger} from {source}: unguarded edge to {e.dest} shadows later edges")
        if group[-1].guards:
            problems.append(f"{trigger} from {source}: no unguarded fallback edge after the guarded ones")
    return problems


def validate(states: tuple[State, ...] = STATES, edges: tuple[Edge, ...] = TRANSITIONS,
             initial: str = INITIAL, guards: Mapping[str, object] = GUARDS,
             package: str = "fsm_pilot.states") -> None:
    """Check the declaration; raise :class:`DeclarationError` listing every problem."""
    problems = _check_names(states, edges, guards, package)
    problems += _check_graph(states, edges, initial)
    problems += _check_order(edges)
    if problems:
        raise DeclarationError(problems)


def build(model: Any, condition: Callable[[str], Callable[[], bool]]) -> Any:
    """Attach the declared machine to ``model``; ``condition(name)`` makes a guard's callable.

    Returns the ``transitions.Machine``. Its own logger is kept at WARNING:
    its INFO records triple the cost of a trigger and duplicate our log.
    """
    from transitions import Machine

    logging.getLogger("transitions").setLevel(logging.WARNING)
    spec = [
        {"trigger": e.trigger, "source": e.source, "dest": e.dest,
         "conditions": [condition(g) for g in e.guards]}
        for e in TRANSITIONS
    ]
    return Machine(model=model, states=[s.name for s in STATES], transitions=spec, initial=INITIAL,
                   auto_transitions=False, send_event=False, ignore_invalid_triggers=False)
