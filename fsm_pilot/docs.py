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

SECTIONS: dict[str, Callable[[], str]] = {"settings": precedence_markdown, "exit-codes": exit_code_markdown}
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
