"""The ``fsm-pilot`` command: ``run`` (the pilot) and ``exit-codes`` (the table).

``fsm-pilot -q QUEUE ...`` without a subcommand means ``run``, so a wrapper
that launched ``pilot.py -q ...`` only swaps the executable.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # typing itself costs ~10 ms to import: not before the handlers

if TYPE_CHECKING:  # imported lazily: nothing heavy may run before the signal handlers are installed
    import argparse
    from collections.abc import Sequence
    from typing import Any

SUBCOMMANDS = ("run", "exit-codes", "diagram", "replay", "dispatcher", "submit", "status")


def parser(only_run: bool = False) -> argparse.ArgumentParser:
    """The argument parser with every subcommand (or only ``run``: a pilot need not import the tools)."""
    import argparse

    from fsm_pilot import __version__
    from fsm_pilot.options import add_run_options

    top = argparse.ArgumentParser(prog="fsm-pilot", description="A PanDA pilot as a declared state machine.")
    top.add_argument("--version", action="version", version=f"fsm-pilot {__version__}")
    sub = top.add_subparsers(dest="command", required=True)
    add_run_options(sub.add_parser("run", help="run the pilot"))
    if not only_run:
        _add_tools(sub)
    return top


def _add_tools(sub: Any) -> None:
    """The operator tools' subcommands."""
    from fsm_pilot.diagram_cli import add_diagram_arguments
    from fsm_pilot.dispatcher.cli import add_dispatcher_parser, add_status_parser, add_submit_parser
    from fsm_pilot.replay_cli import add_replay_parser

    sub.add_parser("exit-codes", help="print the shell exit-code table as Markdown")
    add_diagram_arguments(sub.add_parser(
        "diagram", help="export the state diagram: markdown operator page, mermaid, dot, svg; --highlight LOG"))
    add_replay_parser(sub)
    add_dispatcher_parser(sub)
    add_submit_parser(sub)
    add_status_parser(sub)


def cmd_run(ns: argparse.Namespace) -> int:
    """Build the context, drive the machine, return the exit code."""
    import os
    import socket
    import time

    from fsm_pilot.lean import skip_unused

    skip_unused()  # before structlog and requests are imported: what they would load and a pilot never uses
    from fsm_pilot import config, driver, logsetup, machine, signals
    from fsm_pilot.context import Context
    from fsm_pilot.errors import PilotFailure
    from fsm_pilot.options import run_args
    from fsm_pilot.translog import TransitionLog

    start_wall, start_mono = time.time(), time.monotonic()
    sig = signals.install()
    args = run_args(ns)
    env = dict(os.environ)
    try:
        settings = config.resolve(args.settings, env, {})
    except PilotFailure as exc:
        print(f"fsm-pilot run: {exc.diag}", file=sys.stderr)
        return 2
    machine.validate()
    from fsm_pilot.payload import become_subreaper

    become_subreaper()
    log = logsetup.configure(args.debug)
    pilot_id = f"{socket.gethostname()}:{os.getpid()}:{int(start_wall)}"
    ctx = Context(args=args, env=env, log=log, translog=TransitionLog(pilot_id), signals=sig,
                  settings=settings, pilot_id=pilot_id, start_wall=start_wall, start_mono=start_mono)
    try:
        return driver.run(ctx)
    finally:
        logsetup.close()
        signals.settle()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script and ``python -m fsm_pilot``; never ends in a traceback."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version"):
        argv.insert(0, "run")
    if argv and argv[0] == "run":
        try:
            from fsm_pilot import signals

            signals.install()  # first: a pilot told to stop while it starts still stops cleanly
        except KeyboardInterrupt:
            print("fsm-pilot: interrupted while starting; nothing was done", file=sys.stderr)
            return 130
    try:
        return _main(argv)
    except KeyboardInterrupt:  # a tool (not the pilot, which records SIGINT) interrupted: no traceback
        print("fsm-pilot: interrupted", file=sys.stderr)
        return 130


def _main(argv: list[str]) -> int:
    ns = parser(only_run=bool(argv) and argv[0] == "run").parse_args(argv)
    if ns.command == "exit-codes":
        from fsm_pilot.exitcodes import exit_code_markdown

        sys.stdout.write(exit_code_markdown())
        return 0
    if ns.command == "diagram":
        from fsm_pilot.diagram_cli import main_diagram

        return main_diagram(ns)
    if ns.command in ("replay", "dispatcher", "submit", "status"):
        code: int = ns.func(ns)
        return code
    try:
        return cmd_run(ns)
    except Exception as exc:  # the last line of defence: a message and 70, never a bare traceback
        print(f"fsm-pilot: unexpected error: {exc!r}", file=sys.stderr)
        return 70
