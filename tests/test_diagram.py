"""The committed diagram is what the code generates: docs never drift."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from fsm_pilot.diagram import markdown, mermaid
from fsm_pilot.machine import STATES, TRANSITIONS

COMMITTED = Path(__file__).parent.parent / "diagrams" / "pilot.md"


def test_committed_diagram_matches_the_machine() -> None:
    assert COMMITTED.read_text() == markdown(), (
        "diagrams/pilot.md is stale: run `fsm-pilot diagram -o diagrams/pilot.md` and commit it")


def test_every_state_and_edge_is_drawn() -> None:
    text = mermaid()
    assert all(f"    {s.name}: " in text for s in STATES)
    assert all(f"    {e.source} --> {e.dest}: " in text for e in TRANSITIONS)
    assert "CLEANUP --> GETJOB: next [disk_space, proxy_lifetime, pilot_lifetime]" in text


def test_cli_output_is_deterministic() -> None:
    runs = [subprocess.run([sys.executable, "-m", "fsm_pilot", "diagram"], capture_output=True, text=True,
                           check=True).stdout for _ in range(2)]
    assert runs[0] == runs[1] == markdown()
