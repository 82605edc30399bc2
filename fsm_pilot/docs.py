"""The README's generated sections, rewritten from the code: ``python -m fsm_pilot.docs``.

Each section sits between ``<!-- generated: NAME -->`` and ``<!-- end: NAME -->``;
a test fails when the README differs from what this produces.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path

from fsm_pilot.config import precedence_markdown
from fsm_pilot.exitcodes import exit_code_markdown
from fsm_pilot.guards import GUARD_ERRORS, GUARD_SOURCES, GUARDS
from fsm_pilot.machine import STATES, TRANSITIONS
from fsm_pilot.stagein.failures import rules_markdown


def states_markdown() -> str:
    """One row per state: its step module and what it does."""
    rows = ["| state | step | what it does |", "|---|---|---|"]
    for s in STATES:
        rows.append(f"| {s.name} | {f'`fsm_pilot/states/{s.step}.py`' if s.step else '(terminal)'} | {s.doc} |")
    return "\n".join(rows) + "\n"


def guards_markdown() -> str:
    """One row per guard: the edges it sits on, its threshold, what a refusal means."""
    rows = ["| guard | on the edges | threshold (from) | a refusal means |", "|---|---|---|---|"]
    for name in GUARDS:
        edges = ", ".join(sorted({f"{e.source} -{e.trigger}->" for e in TRANSITIONS if name in e.guards}))
        rows.append(f"| `{name}` | {edges} | {GUARD_SOURCES[name]} | {GUARD_ERRORS[name]} |")
    return "\n".join(rows) + "\n"


SECTIONS: dict[str, Callable[[], str]] = {"states": states_markdown, "guards": guards_markdown,
                                          "settings": precedence_markdown, "exit-codes": exit_code_markdown,
                                          "copy-failures": rules_markdown}
README = Path(__file__).resolve().parent.parent / "README.md"


def render(text: str) -> str:
    """``text`` with every generated section replaced by what the code says now."""
    for name, make in SECTIONS.items():
        pattern = re.compile(rf"(<!-- generated: {name} -->\n).*?(<!-- end: {name} -->)", re.S)
        match = pattern.search(text)
        if match is None:
            raise ValueError(f"README has no generated section {name!r}")
        text = text[:match.start()] + match.group(1) + make() + match.group(2) + text[match.end():]
    return text


def main() -> int:
    """Rewrite the README in place."""
    README.write_text(render(README.read_text()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
