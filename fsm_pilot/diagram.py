"""The state diagram and the operator page, generated from the machine's tables (never drawn by hand).

One model, three renderings: Mermaid (GitHub draws it inside Markdown),
Graphviz DOT (clusters; SVG through ``dot``) and a Markdown operator page. All
are plain text built here from :data:`~fsm_pilot.machine.STATES` and
:data:`~fsm_pilot.machine.TRANSITIONS`, never through a ``transitions``
GraphMachine: no extra dependency, nothing built in the running pilot, and the
output is byte-for-byte deterministic (declaration order throughout), so the
committed copies in ``diagrams/`` can be compared with what the code says.

A :class:`Run` folded from a transition log (:func:`fold`) can be laid over
any rendering: visited states and taken edges are highlighted and every
visited state shows the time the run spent in it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from fsm_pilot.errors import SIGNAL_ERRORS, PilotError
from fsm_pilot.exitcodes import exit_code_markdown
from fsm_pilot.machine import INITIAL, STATES, TRANSITIONS, Edge, State
from fsm_pilot.translog import SCHEMA_VERSION

_E = PilotError

#: The PanDA errors each state's step (and the helpers it calls) can set, for the operator page.
#: Hand-kept next to the table that shows it, because which code raises what is not declared
#: anywhere; tests/test_diagram.py checks that every one is a PilotError raised somewhere in the code.
STATE_ERRORS: dict[str, tuple[PilotError, ...]] = {
    "INIT": (_E.MKDIR,),
    "QUEUEDATA": (_E.QUEUEDATA, _E.QUEUEDATANOTOK, _E.PANDAQUEUENOTACTIVE, _E.PANDAQUEUENOTONLINE, _E.NOPROXY),
    "CHECKS": (_E.NOPROXY, _E.CVMFSISNOTALIVE),
    "RECOVERY": (_E.KILLSIGNAL,),
    "CLEANUP": (),
    "GETJOB": (_E.COMMUNICATIONFAILURE, _E.NOJOBSINPANDA, _E.CONVERSIONFAILURE, _E.FILEHANDLINGFAILURE,
               _E.NOPROXY),
    "VALIDATE": (_E.NOTSAMELENGTH, _E.BADOUTPUTFILENAME, _E.LFNTOOLONG, _E.CONVERSIONFAILURE, _E.TRANSFORMNOTFOUND,
                 _E.UNKNOWNCHECKSUMTYPE, _E.RESOURCEUNAVAILABLE, _E.TRFDOWNLOADFAILURE, _E.MKDIR, _E.PANDAKILL),
    "STAGEIN": (_E.STAGEINFAILED, _E.MISSINGINPUTFILE, _E.GETADMISMATCH, _E.GETMD5MISMATCH, _E.STAGEINTIMEOUT,
                _E.NOSTORAGE, _E.NOSTORAGEPROTOCOL, _E.UNKNOWNCOPYTOOL, _E.NOTIMPLEMENTED, _E.TRFDOWNLOADFAILURE,
                _E.UNKNOWNCHECKSUMTYPE, _E.QUEUEDATANOTOK, _E.NOLOCALSPACE, _E.NOPROXY, _E.PANDAKILL),
    "RUNNING": (_E.PAYLOADEXECUTIONFAILURE, _E.PAYLOADEXCEEDMAXMEM, _E.LOOPINGJOB, _E.USERDIRTOOLARGE,
                _E.STDOUTTOOBIG, _E.OUTPUTFILETOOLARGE, _E.NOLOCALSPACE, _E.REACHEDMAXTIME, _E.PANDAKILL,
                _E.TRANSFORMNOTFOUND),
    "STAGEOUT": (_E.STAGEOUTFAILED, _E.PUTADMISMATCH, _E.MISSINGOUTPUTFILE, _E.EMPTYOUTPUTFILE, _E.NOSTORAGE,
                 _E.NOSTORAGEPROTOCOL, _E.NOTIMPLEMENTED, _E.CHECKSUMCALCFAILURE, _E.LOGFILECREATIONFAILURE),
    "ABORTING": (*SIGNAL_ERRORS.values(), _E.KILLSIGNAL, _E.UNKNOWNEXCEPTION),
    "EXIT": (),
    "FAILED": (),
    "ABORTED": (),
}

#: DOT clusters: (id, title, states). "The job loop" is a reading of the graph, not something the
#: machine declares, so it is written down here; non-terminal states in no cluster are drawn loose.
CLUSTERS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("setup", "setup: once per pilot", ("INIT", "QUEUEDATA", "CHECKS", "RECOVERY", "CLEANUP")),
    ("jobs", "the job loop: once per job", ("GETJOB", "VALIDATE", "STAGEIN", "RUNNING", "STAGEOUT", "ABORTING")),
)

#: Highlight colours (amber: visible on GitHub's light and dark themes); unvisited parts are greyed.
HOT, HOT_FILL, COLD, COLD_TEXT = "#b45309", "#fde68a", "#9ca3af", "#6b7280"

#: Characters GitHub's Mermaid misreads in a state description or label: ``;`` ends a statement
#: (the rest of the line became bogus states), ``#`` starts an entity, ``:`` a new description.
_MERMAID_SAFE = str.maketrans({";": ",", ":": " -", "#": "No.", '"': "'"})


class LogError(ValueError):
    """A transition log that cannot be drawn: the message says which line and why."""


@dataclass(frozen=True)
class Link:
    """One arrow: every declared edge from ``source`` to ``dest``, merged so the picture stays readable."""

    source: str
    dest: str
    edges: tuple[Edge, ...]

    @property
    def label(self) -> str:
        """``trigger [guards]`` per distinct edge, joined by `` / `` (``fail / abort``)."""
        parts: list[str] = []
        for e in self.edges:
            text = e.trigger + (f" [{', '.join(e.guards)}]" if e.guards else "")
            if text not in parts:
                parts.append(text)
        return " / ".join(parts)


def links(edges: Iterable[Edge] = TRANSITIONS) -> tuple[Link, ...]:
    """The arrows to draw, in the order their first edge is declared."""
    pairs: dict[tuple[str, str], list[Edge]] = {}
    for edge in edges:
        pairs.setdefault((edge.source, edge.dest), []).append(edge)
    return tuple(Link(source, dest, tuple(group)) for (source, dest), group in pairs.items())


def seconds_text(seconds: float) -> str:
    """A duration short enough for a diagram box: ``312 ms``, ``12.3 s``, ``7250 s``."""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    return f"{seconds:.1f} s" if seconds < 100 else f"{seconds:.0f} s"


@dataclass
class Run:
    """What one pilot did, folded from its transition log: visits and time per state, uses per link.

    ``seconds`` holds only time whose start and end are both in the log: INIT's
    first visit (the log starts when it ends) and the last state are not timed.
    """

    visits: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    taken: dict[tuple[str, str], int] = field(default_factory=dict)
    started: str | None = None
    last: str | None = None
    records: int = 0

    def label(self, state: str) -> str:
        """``RUNNING · 12.3 s, 3x``: what the run spent in ``state`` (the name alone if unvisited)."""
        count = self.visits.get(state, 0)
        if not count:
            return state
        spent = self.seconds.get(state)
        return f"{state} · {seconds_text(spent)}, {count}x" if spent is not None else f"{state} · {count}x"


_PAIRS = {(edge.source, edge.dest) for edge in TRANSITIONS}


def _checked(line: int, record: object) -> tuple[bool, str, str | None, float]:
    """``(ok, source, dest, mono)`` of one record, or a LogError saying what is wrong with it."""
    if not isinstance(record, Mapping):
        raise LogError(f"line {line}: not a JSON object")
    if record.get("v") != SCHEMA_VERSION:
        raise LogError(f"line {line}: schema version {record.get('v')!r}, this fsm-pilot reads {SCHEMA_VERSION}")
    ok, source, dest, mono = (record.get(k) for k in ("ok", "source", "dest", "mono"))
    if not isinstance(ok, bool) or not isinstance(source, str) or not (dest is None or isinstance(dest, str)):
        raise LogError(f"line {line}: not a transition record (ok, source, dest)")
    if isinstance(mono, bool) or not isinstance(mono, (int, float)):
        raise LogError(f"line {line}: mono is {mono!r}, not a number")
    if ok and (source, dest) not in _PAIRS:
        raise LogError(f"line {line}: {source} -> {dest} is not an edge of the declared machine")
    return ok, source, dest, float(mono)


def fold(records: Iterable[tuple[int, object]]) -> Run:
    """Fold ``(line number, record)`` pairs, streamed in log order, into a :class:`Run`.

    Refused attempts (``ok: false``) leave the state as it was. A log that
    starts elsewhere than INIT (a job's slice) or has gaps is drawn all the
    same: time is counted only between two records of the same visit.
    """
    run, entered = Run(), None
    for line, record in records:
        ok, source, dest, mono = _checked(line, record)
        run.records += 1
        if not ok or dest is None:
            continue
        if run.started is None:
            run.started = source
        if source != run.last:  # the first record, or a gap: the run was in ``source``, since when is unknown
            run.visits[source] = run.visits.get(source, 0) + 1
        elif entered is not None:
            if mono < entered:
                raise LogError(f"line {line}: the monotonic clock went back: not one pilot's log")
            run.seconds[source] = run.seconds.get(source, 0.0) + mono - entered
        run.visits[dest] = run.visits.get(dest, 0) + 1
        run.taken[(source, dest)] = run.taken.get((source, dest), 0) + 1
        run.last, entered = dest, mono
    if run.started is None:
        raise LogError("no transition was taken: nothing to highlight" if run.records else "the log is empty")
    return run


def _box_lines(state: State, run: Run | None) -> list[str]:
    """A state's box, line by line: name (with the run's time), step module, purpose."""
    lines = [run.label(state.name) if run else state.name]
    if state.step:
        lines.append(f"fsm_pilot/states/{state.step}.py")
    return [*lines, state.doc]


#: A line break inside a state description: Mermaid's two characters backslash and n.
_BREAK = "\\n"


def _safe(text: str) -> str:
    return text.translate(_MERMAID_SAFE)


def mermaid(run: Run | None = None) -> str:
    """The machine in Mermaid; with a ``run``, the highlighted flowchart (:func:`mermaid_flowchart`)."""
    if run is not None:
        return mermaid_flowchart(run)
    lines = ["stateDiagram-v2", f"    [*] --> {INITIAL}"]
    lines += [f"    {s.name}: " + _BREAK.join(_safe(t) for t in _box_lines(s, None)) for s in STATES]
    lines += [f"    {link.source} --> {link.dest}: {_safe(link.label)}" for link in links()]
    lines += [f"    {s.name} --> [*]" for s in STATES if s.terminal]
    return "\n".join(lines) + "\n"


def mermaid_flowchart(run: Run) -> str:
    """The machine with a run's path, as a Mermaid flowchart.

    A flowchart, not a ``stateDiagram-v2``: state diagrams do not support
    ``linkStyle`` (mermaid-js/mermaid#1352; the words become stray states),
    and styling the taken edges is the point. ``linkStyle`` counts links in
    the order they are emitted: the start arrow is 0, then :func:`links`.
    """
    lines = ["flowchart TD", f'    start_((" ")) --> {INITIAL}']
    for s in STATES:
        text = "<br>".join(_safe(t) for t in _box_lines(s, run))
        lines.append(f'    {s.name}(["{text}"])' if s.terminal else f'    {s.name}["{text}"]')
    drawn = links()
    for link in drawn:
        used = run.taken.get((link.source, link.dest), 0)
        label = _safe(link.label) + (f" · {used}x" if used else "")
        lines.append(f'    {link.source} -->|"{label}"| {link.dest}')
    visited = [s.name for s in STATES if run.visits.get(s.name)]
    unvisited = [s.name for s in STATES if not run.visits.get(s.name)]
    hot = [str(i + 1) for i, link in enumerate(drawn) if (link.source, link.dest) in run.taken]
    if run.started == INITIAL:
        hot.insert(0, "0")
    lines += [f"    classDef visited fill:{HOT_FILL},stroke:{HOT},stroke-width:2px,color:#000000",
              f"    classDef unvisited fill:#f3f4f6,stroke:{COLD},color:{COLD_TEXT}",
              f"    class {','.join(visited)} visited"]
    if unvisited:
        lines.append(f"    class {','.join(unvisited)} unvisited")
    if hot:
        lines.append(f"    linkStyle {','.join(hot)} stroke:{HOT},stroke-width:3px")
    return "\n".join(lines) + "\n"


def _q(lines: Iterable[str]) -> str:
    """A DOT string of ``lines``, escaped, one ``\\n`` (centred line break) between them."""
    return '"' + "\\n".join(t.replace("\\", "\\\\").replace('"', '\\"') for t in lines) + '"'


def _dot_node(state: State, run: Run | None) -> str:
    attrs = [f"label={_q(_box_lines(state, run))}"]
    style = ["rounded", "bold"] if state.terminal else ["rounded"]
    if run is not None and run.visits.get(state.name):
        attrs += [f'fillcolor="{HOT_FILL}"', f'color="{HOT}"', "penwidth=2.5"]
        style.append("filled")
    elif run is not None:
        attrs += [f'color="{COLD}"', f'fontcolor="{COLD_TEXT}"']
    return f'{state.name} [{", ".join(attrs)}, style="{",".join(style)}"];'


def _dot_edge(link: Link, run: Run | None) -> str:
    label = link.label.replace(" [", "\n[")  # guards on their own line keep the arrows short
    used = run.taken.get((link.source, link.dest), 0) if run else 0
    attrs = [f"label={_q((label + (f' · {used}x' if used else '')).splitlines())}"]
    if used:
        attrs += [f'color="{HOT}"', f'fontcolor="{HOT}"', "penwidth=2.5"]
    elif run is not None:
        attrs += [f'color="{COLD}"', f'fontcolor="{COLD_TEXT}"']
    return f"    {link.source} -> {link.dest} [{', '.join(attrs)}];"


def dot(run: Run | None = None) -> str:
    """The machine as a Graphviz digraph: setup and job-loop clusters, terminal states on the last rank."""
    lines = ["digraph pilot {",
             '    graph [rankdir=TB, fontname="Helvetica", fontsize=11, nodesep=0.35, ranksep=0.45];',
             '    node [shape=box, fontname="Helvetica", fontsize=10, margin="0.12,0.06"];',
             '    edge [fontname="Helvetica", fontsize=9];',
             "    start_ [shape=point, width=0.15, label=\"\"];"]
    clustered = {name for _, _, names in CLUSTERS for name in names}
    for key, title, names in CLUSTERS:
        lines += [f"    subgraph cluster_{key} {{", f"        label={_q([title])};",
                  '        style="rounded,dashed"; color="#9ca3af"; fontcolor="#4b5563";']
        lines += [f"        {_dot_node(s, run)}" for s in STATES if s.name in names]
        lines.append("    }")
    lines += [f"    {_dot_node(s, run)}" for s in STATES if not s.terminal and s.name not in clustered]
    lines.append("    { rank=sink;")
    lines += [f"        {_dot_node(s, run)}" for s in STATES if s.terminal]
    lines.append("    }")
    start_hot = run is not None and run.started == INITIAL
    lines.append(f"    start_ -> {INITIAL}" + (f' [color="{HOT}", penwidth=2.5];' if start_hot else ";"))
    lines += [_dot_edge(link, run) for link in links()]
    return "\n".join([*lines, "}"]) + "\n"


def _errors_cell(errors: Iterable[PilotError]) -> str:
    return ", ".join(f"{e.name} ({int(e)})" for e in errors)


def _guards_cell(state: str) -> str:
    names = dict.fromkeys(g for e in TRANSITIONS if e.source == state for g in e.guards)
    return ", ".join(f"`{g}`" for g in names)


def states_table() -> str:
    """One row per state: its step, what it does, the PanDA errors it can set, the guards on its edges."""
    rows = ["| state | step | what it does | PanDA errors it can set | guards on its edges |",
            "|---|---|---|---|---|"]
    for s in STATES:
        step = f"`fsm_pilot/states/{s.step}.py`" if s.step else "(terminal)"
        rows.append(f"| {s.name} | {step} | {s.doc} | {_errors_cell(STATE_ERRORS.get(s.name, ()))} "
                    f"| {_guards_cell(s.name)} |")
    return "\n".join(rows) + "\n"


def run_table(run: Run) -> str:
    """The highlighted run in numbers: visits and time per visited state, in declaration order."""
    rows = ["| state | visits | time in state |", "|---|---:|---:|"]
    for s in STATES:
        if run.visits.get(s.name):
            spent = run.seconds.get(s.name)
            rows.append(f"| {s.name} | {run.visits[s.name]} | {seconds_text(spent) if spent is not None else ''} |")
    return "\n".join(rows) + "\n"


_INTRO = ("Generated from `fsm_pilot/machine.py`, `fsm_pilot/guards.py` and `fsm_pilot/exitcodes.py`; do not edit. "
          "Regenerate every file in `diagrams/` with `python -m fsm_pilot.diagram_cli --write-all diagrams/`. "
          "The same machine in Graphviz: [pilot.dot](pilot.dot), [pilot.svg](pilot.svg).\n\n"
          "An edge reads `trigger [guards]`: the step returns the trigger, and a guarded edge is taken only if "
          "every guard allows; otherwise the unguarded edge with the same trigger is the fallback.\n")

_ERRORS_NOTE = ("A setup state's error ends the pilot with the exit code below; RECOVERY's are reported for the "
                "dead pilots' jobs it finishes; a job state's error fails the job (reported to PanDA, its log "
                "kept) and the pilot goes on. Any step that raises fails with "
                f"{_errors_cell([_E.UNKNOWNEXCEPTION])}, a trigger the machine refuses with "
                f"{_errors_cell([_E.INTERNALPILOTPROBLEM])} (`fsm_pilot/driver.py`).\n")


def markdown(run: Run | None = None) -> str:
    """The operator page: the diagram, then the states, guards and exit-code tables."""
    from fsm_pilot.docs import guards_markdown  # the README's table, so the two never disagree
    from fsm_pilot.drain_doc import budget_markdown

    parts = ["# The pilot's state machine\n", _INTRO]
    if run is not None:
        parts += [f"The path of one run is highlighted ({run.records} records, ended in {run.last}); "
                  "each state it visited shows its total time and visits.\n", run_table(run)]
    parts += [f"```mermaid\n{mermaid(run)}```\n", "## States\n", states_table(), _ERRORS_NOTE,
              "## Guards\n", guards_markdown(), "## Clock, time budget, drain, flight record\n", budget_markdown(),
              "## Exit codes\n", exit_code_markdown()]
    return "\n".join(parts)
