"""Put a benchmark's numbers into the README: the block between two markers, rewritten by the bench itself.

A bench run with ``--readme`` calls :func:`write_block` with the lines it printed,
so the README's numbers are the ones a run produced, never typed by hand. The
block is ``<!-- bench: NAME -->`` ... ``<!-- end bench: NAME -->``; it must exist.
"""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def write_block(name: str, text: str, readme: Path = README) -> None:
    """Replace the README's block ``name`` with ``text`` (a fenced block of the bench's output)."""
    pattern = re.compile(rf"(<!-- bench: {re.escape(name)} -->\n).*?(<!-- end bench: {re.escape(name)} -->)", re.S)
    current = readme.read_text()
    match = pattern.search(current)
    if match is None:
        raise SystemExit(f"{readme} has no block <!-- bench: {name} -->")
    body = "```\n" + text.rstrip("\n") + "\n```\n"
    readme.write_text(current[:match.start()] + match.group(1) + body + match.group(2) + current[match.end():])
