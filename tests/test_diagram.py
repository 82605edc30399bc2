"""The diagrams are what the code generates (docs never drift), and each format draws the whole machine."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fsm_pilot.diagram import CLUSTERS, STATE_ERRORS, dot, links, markdown, mermaid
from fsm_pilot.diagram_cli import ALL_FILES, render
from fsm_pilot.errors import PilotError
from fsm_pilot.guards import GUARDS
from fsm_pilot.machine import STATES, TRANSITIONS

ROOT = Path(__file__).parent.parent
DIAGRAMS = ROOT / "diagrams"
REGENERATE = "run `python -m fsm_pilot.diagram_cli --write-all diagrams/` and commit diagrams/"
TEXT_FILES = [(name, fmt) for name, fmt in ALL_FILES if fmt != "svg"]


def _graphviz_version(text: str) -> str | None:
    found = re.search(r"graphviz version (\S+)", text)
    return found.group(1) if found else None


@pytest.mark.parametrize(("name", "fmt"), TEXT_FILES)
def test_committed_diagram_matches_the_machine(name: str, fmt: str) -> None:
    committed = DIAGRAMS / name
    assert committed.exists(), f"diagrams/{name} is missing: {REGENERATE}"
    assert committed.read_text(encoding="utf-8") == render(fmt), f"diagrams/{name} is stale: {REGENERATE}"


def test_committed_svg_matches_the_machine() -> None:
    committed = DIAGRAMS / "pilot.svg"
    exe = shutil.which("dot")
    if exe is None:
        pytest.skip("Graphviz's dot is not installed (apt-get install graphviz): cannot regenerate the SVG")
    if not committed.exists():
        pytest.fail(f"diagrams/pilot.svg is missing: {REGENERATE}")
    recorded = _graphviz_version(committed.read_text(encoding="utf-8"))
    here = _graphviz_version(subprocess.run([exe, "-V"], capture_output=True, text=True, check=False).stderr)
    if recorded != here:
        pytest.skip(f"diagrams/pilot.svg was made by Graphviz {recorded}, this machine has {here}: "
                    "their SVGs differ in layout, so only the same version can be compared")
    assert committed.read_text(encoding="utf-8") == render("svg"), f"diagrams/pilot.svg is stale: {REGENERATE}"


def _descriptions(text: str) -> dict[str, str]:
    return dict(re.findall(r"^    (\w+): (.*)$", text, re.M))


def test_mermaid_draws_every_state_with_its_step_and_every_edge() -> None:
    text = mermaid()
    assert text.startswith("stateDiagram-v2\n    [*] --> INIT\n")
    described = _descriptions(text)
    assert list(described) == [s.name for s in STATES]
    for s in STATES:
        assert described[s.name].startswith(s.name + "\\n")
        assert (f"\\nfsm_pilot/states/{s.step}.py\\n" in described[s.name]) == (s.step is not None)
    arrows = re.findall(r"^    (\w+) --> (\w+): (.*)$", text, re.M)
    assert {(a, b) for a, b, _ in arrows} == {(e.source, e.dest) for e in TRANSITIONS}
    assert len(arrows) == len(links())  # one arrow per pair: triggers sharing it are merged
    assert "    CLEANUP --> GETJOB: next [disk_space, proxy_lifetime, pilot_lifetime]" in text
    assert "    RUNNING --> ABORTING: fail / abort" in text
    assert all(f"    {s.name} --> [*]" in text for s in STATES if s.terminal)


def test_every_guard_is_on_its_edges_in_every_format() -> None:
    for link in links():
        for edge in link.edges:
            if edge.guards:
                assert f"{edge.trigger} [{', '.join(edge.guards)}]" in link.label
    guarded = [link for link in links() if any(e.guards for e in link.edges)]
    assert guarded and {g for link in guarded for e in link.edges for g in e.guards} == set(GUARDS)
    for link in guarded:
        assert f"    {link.source} --> {link.dest}: {link.label}" in mermaid()
        guards = link.label.split(" [", 1)[1]
        assert re.search(rf"    {link.source} -> {link.dest} \[label=\"[^\"]*\\n\[{re.escape(guards)}", dot())


def test_mermaid_has_nothing_githubs_parser_misreads() -> None:
    """``;`` ends a statement (the rest became stray states), ``#`` starts an entity, ``:`` a description."""
    text = mermaid()
    texts = list(_descriptions(text).values()) + [label for *_, label in
                                                  re.findall(r"^    (\w+) --> (\w+): (.*)$", text, re.M)]
    assert texts
    for item in texts:
        assert not set(item) & set(';#:"'), item
    assert "%%" not in text and "linkStyle" not in text  # stateDiagram has no linkStyle


def test_dot_draws_every_state_in_a_cluster_or_the_last_rank() -> None:
    text = dot()
    assert text.startswith("digraph pilot {\n") and text.endswith("}\n")
    assert text.count("{") == text.count("}")
    for s in STATES:
        assert re.search(rf"^ +{s.name} \[label=\"{s.name}\\n", text, re.M), s.name
        if s.step:
            assert f"\\nfsm_pilot/states/{s.step}.py\\n" in text
    for link in links():
        assert re.search(rf"^    {link.source} -> {link.dest} \[label=", text, re.M), link
    assert "    start_ -> INIT;" in text
    clustered = [name for _, _, names in CLUSTERS for name in names]
    assert sorted(clustered) == sorted(s.name for s in STATES if not s.terminal), "CLUSTERS misses a state"
    sink = text.split("{ rank=sink;", 1)[1].split("}", 1)[0]
    assert [s.name for s in STATES if f"{s.name} [" in sink] == [s.name for s in STATES if s.terminal]


def test_every_state_has_a_row_with_its_errors() -> None:
    assert list(STATE_ERRORS) == [s.name for s in STATES]
    page = markdown()
    for s in STATES:
        row = next(line for line in page.splitlines() if line.startswith(f"| {s.name} | "))
        for error in STATE_ERRORS[s.name]:
            assert isinstance(error, PilotError)
            assert f"{error.name} ({int(error)})" in row


def test_every_listed_error_is_raised_somewhere_in_the_code() -> None:
    sources = [p for p in ROOT.joinpath("fsm_pilot").rglob("*.py")
               if p.name not in ("diagram.py", "diagram_cli.py", "exitcodes.py")]
    code = "\n".join(p.read_text(encoding="utf-8") for p in sources)
    for state, errors in STATE_ERRORS.items():
        for error in errors:
            assert re.search(rf"PilotError\.{error.name}\b", code), f"{state}: {error.name} is raised nowhere"


def test_operator_page_has_the_diagram_and_the_three_tables() -> None:
    page = markdown()
    assert f"```mermaid\n{mermaid()}```\n" in page
    assert "| state | step | what it does | PanDA errors it can set | guards on its edges |" in page
    assert all(f"| `{name}` | " in page for name in GUARDS)
    assert "| 143 | stopped by SIGTERM (128 + 15) | SIGTERM (1201) |" in page
    assert "python -m fsm_pilot.diagram_cli --write-all diagrams/" in page


def test_output_is_deterministic() -> None:
    for fmt in ("markdown", "mermaid", "dot"):
        assert render(fmt) == render(fmt)


@pytest.mark.parametrize("fmt", ["markdown", "mermaid", "dot"])
def test_cli_output_is_deterministic(fmt: str) -> None:
    runs = [subprocess.run([sys.executable, "-m", "fsm_pilot.diagram_cli", "--format", fmt], capture_output=True,
                           text=True, check=True).stdout for _ in range(2)]
    assert runs[0] == runs[1] == render(fmt)


def test_fsm_pilot_diagram_prints_the_operator_page() -> None:
    out = subprocess.run([sys.executable, "-m", "fsm_pilot", "diagram"], capture_output=True, text=True,
                         check=True).stdout
    assert out == markdown()
