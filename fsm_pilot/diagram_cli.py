"""``fsm-pilot diagram``: the machine as Markdown, Mermaid, DOT or SVG, optionally with a run's path.

The I/O around :mod:`fsm_pilot.diagram` (which only builds text): streaming a
transition log for ``--highlight``, running Graphviz's ``dot`` for SVG, writing
files. ``python -m fsm_pilot.diagram_cli --write-all diagrams/`` regenerates
the committed diagrams. Exit codes: 0 done, 2 a bad argument or ``--highlight``
log (a message, never a traceback), 3 SVG wanted but Graphviz is missing or failed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TextIO

from fsm_pilot import diagram
from fsm_pilot.diagram import LogError, Run

FORMATS = ("markdown", "mermaid", "dot", "svg")
#: ``-o FILE`` without ``--format``: the format its suffix names (else markdown, the operator page).
SUFFIXES = {".md": "markdown", ".mmd": "mermaid", ".dot": "dot", ".gv": "dot", ".svg": "svg"}
#: What ``--write-all DIR`` writes: one file per format, named as committed in ``diagrams/``.
ALL_FILES = (("pilot.md", "markdown"), ("pilot.mmd", "mermaid"), ("pilot.dot", "dot"), ("pilot.svg", "svg"))
EXIT_OK, EXIT_USAGE, EXIT_GRAPHVIZ = 0, 2, 3
DOT_TIMEOUT = 60.0
NO_DOT = ("Graphviz's `dot` is not on PATH, so no SVG can be made "
          "(Debian: apt-get install graphviz); --format dot prints its input")


class GraphvizError(RuntimeError):
    """SVG was asked for, and ``dot`` is missing or failed."""


def add_diagram_arguments(parser: argparse.ArgumentParser) -> None:
    """The diagram options, for ``fsm-pilot diagram`` and ``python -m fsm_pilot.diagram_cli``."""
    parser.add_argument("--format", choices=FORMATS, default=None,
                        help="markdown: the operator page (default, or from -o's suffix); mermaid: the "
                             "diagram alone; dot: Graphviz source; svg: drawn by Graphviz's dot")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("-o", "--output", default="-", metavar="FILE", help="file to write (default: stdout)")
    where.add_argument("--write-all", metavar="DIR", type=Path, default=None,
                       help="write pilot.md, pilot.mmd, pilot.dot and pilot.svg into DIR (as in diagrams/)")
    parser.add_argument("--highlight", metavar="LOG", type=Path, default=None,
                        help="a transitions.jsonl: highlight the run's path, with the time spent per state")


def _lines(f: TextIO) -> Iterator[tuple[int, object]]:
    """Each non-blank line of an open log as ``(line number, parsed JSON)``, one at a time."""
    for number, line in enumerate(f, start=1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except ValueError as exc:
            raise LogError(f"line {number}: not JSON ({exc})") from None


def read_run(path: Path) -> Run:
    """Stream a transition log into a :class:`~fsm_pilot.diagram.Run`; LogError says what is wrong."""
    try:
        with open(path, encoding="utf-8") as f:
            return diagram.fold(_lines(f))
    except OSError as exc:
        raise LogError(f"cannot read it: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise LogError(f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def svg(dot_source: str) -> str:
    """``dot -Tsvg`` of ``dot_source``; GraphvizError when dot is missing or fails."""
    exe = shutil.which("dot")
    if exe is None:
        raise GraphvizError(NO_DOT)
    try:
        done = subprocess.run([exe, "-Tsvg"], input=dot_source, capture_output=True, encoding="utf-8",
                              timeout=DOT_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise GraphvizError(f"dot -Tsvg did not run: {exc}") from None
    if done.returncode != 0:
        raise GraphvizError(f"dot -Tsvg failed ({done.returncode}): {done.stderr.strip()[:500]}")
    return done.stdout


def render(fmt: str, run: Run | None = None) -> str:
    """The text of one format (``svg`` runs Graphviz and may raise GraphvizError)."""
    if fmt == "markdown":
        return diagram.markdown(run)
    if fmt == "mermaid":
        return diagram.mermaid(run)
    if fmt == "dot":
        return diagram.dot(run)
    if fmt == "svg":
        return svg(diagram.dot(run))
    raise ValueError(f"unknown format {fmt!r}")


def _format(ns: argparse.Namespace) -> str:
    if ns.format is not None:
        return str(ns.format)
    return SUFFIXES.get(Path(ns.output).suffix.lower(), "markdown") if ns.output != "-" else "markdown"


def _fail(code: int, message: str) -> int:
    print(f"fsm-pilot diagram: {message}", file=sys.stderr)
    return code


def write_all(directory: Path, run: Run | None = None) -> int:
    """Every committed file into ``directory``; the SVG only where Graphviz is (else exit 3, after the rest)."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, fmt in ALL_FILES:
        try:
            text = render(fmt, run)
        except GraphvizError as exc:
            return _fail(EXIT_GRAPHVIZ, f"{directory / name} not written: {exc}")
        (directory / name).write_text(text, encoding="utf-8")
        print(f"wrote {directory / name}")
    return EXIT_OK


def _emit(output: str, text: str) -> None:
    if output == "-":
        sys.stdout.write(text)
    else:
        Path(output).write_text(text, encoding="utf-8")


def main_diagram(ns: argparse.Namespace) -> int:
    """Run the diagram command for parsed arguments; return the exit code."""
    if ns.write_all is not None and ns.format is not None:
        return _fail(EXIT_USAGE, "--write-all writes every format: drop --format")
    run = None
    if ns.highlight is not None:
        try:
            run = read_run(ns.highlight)
        except LogError as exc:
            return _fail(EXIT_USAGE, f"--highlight {ns.highlight}: {exc}")
    try:
        if ns.write_all is not None:
            return write_all(ns.write_all, run)
        _emit(ns.output, render(_format(ns), run))
    except GraphvizError as exc:
        return _fail(EXIT_GRAPHVIZ, str(exc))
    except OSError as exc:
        return _fail(EXIT_USAGE, f"cannot write {exc.filename or ns.output}: {exc.strerror or exc}")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m fsm_pilot.diagram_cli``: the same options as ``fsm-pilot diagram``."""
    parser = argparse.ArgumentParser(prog="fsm-pilot diagram",
                                     description="The pilot's state machine as Markdown, Mermaid, DOT or SVG.")
    add_diagram_arguments(parser)
    return main_diagram(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
