"""``fsm-pilot replay LOG``: a post-mortem of a pilot from its ``transitions.jsonl``.

Judges the log against the declared machine and prints its timeline as
text, one JSON document, or a Mermaid gantt chart. The output is written
while the log is read (the per-job part waits in a spool file that moves to
disk past 1 MB), so a million-line log replays in flat memory.

Exit status: 0 legal and complete, 1 illegal (the first divergent record is
named), 3 truncated (no terminal state: where it stopped is named), 2 bad
usage or an unreadable file, 141 the reader of the output went away.
Also runnable as ``python -m fsm_pilot.replay_cli LOG``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from fsm_pilot.replay import Report, replay
from fsm_pilot.timeline import Bar, JobSummary, Observer, Transition, by_machine_order, iso

FORMATS = ("text", "json", "mermaid-gantt", "svg")
BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a writer whose reader went away
EPILOG = "exit status: 0 legal and complete, 1 illegal, 3 truncated, 2 bad usage or an unreadable file"


class _Spool:
    """A text buffer for the part of a report that is printed after the transitions."""

    def __init__(self) -> None:
        self._file = tempfile.SpooledTemporaryFile(  # noqa: SIM115 -- lives as long as the renderer
            max_size=1 << 20, mode="w+", encoding="utf-8")

    def write(self, text: str) -> None:
        self._file.write(text)

    def copy_to(self, out: TextIO) -> None:
        self._file.seek(0)
        while chunk := self._file.read(1 << 16):
            out.write(chunk)
        self._file.close()


class Renderer(Observer):
    """An observer that writes a report as the log is replayed; ``end`` adds what only the end knows."""

    def __init__(self, out: TextIO, log: str) -> None:
        self.out = out
        self.log = log
        self.spool = _Spool()

    def begin(self) -> None:
        """Write what precedes the first transition."""

    def end(self, report: Report) -> None:
        """Write the rest, once the verdict is known."""


# --- text --------------------------------------------------------------------------------------------------

def _reason(reason: Mapping[str, Any]) -> str:
    text = str(reason.get("text", ""))
    if reason.get("error") is not None:
        text += f" [{reason.get('error_name')} {reason['error']}]"
    if reason.get("signal") is not None:
        text += f" [signal {reason['signal']}]"
    return text


def _times(states: Mapping[str, float]) -> str:
    return ", ".join(f"{name} {seconds:.3f}" for name, seconds in states.items())


def _verdict_line(report: Report) -> str:
    v = report.verdict
    if v.status == "legal":
        versions = ", ".join(f"v{n}" for n in report.versions)
        return f"verdict: legal and complete ({report.records} records, schema {versions})"
    if v.status == "illegal":
        where = f"seq {v.seq}" if v.seq is not None else "a record without a seq"
        return f"verdict: ILLEGAL at {where} (line {v.line}): {v.why}"
    at = f" at {iso(v.time)}" if v.time is not None else ""
    cut = "; the last line is cut short" if v.partial_line else ""
    return f"verdict: TRUNCATED in {v.state} after seq {v.seq}{at} (line {v.line}){cut}: {v.why}"


class TextRenderer(Renderer):
    """For people: one line per transition, then the jobs, the totals and the verdict."""

    def begin(self) -> None:
        self.out.write(f"replay of {self.log}\n{'seq':>6}  {'time (UTC)':<29}  {'+seconds':>10}  {'job':>8}  "
                       "transition\n")

    def transition(self, item: Transition) -> None:
        job = "" if item.job_id is None else str(item.job_id)
        move = f"{item.source} -> {item.dest}" if item.ok else f"{item.source} (refused: {item.error})"
        refused = f" (refused by {', '.join(item.refused)})" if item.refused else ""
        self.out.write(f"{item.seq:>6}  {iso(item.time):<29}  {item.rel:>10.3f}  {job:>8}  {item.event}: {move}"
                       f"{refused}  {_reason(item.reason)}\n")

    def job(self, item: JobSummary) -> None:
        outcome = _reason(item.outcome) if item.outcome is not None else "(held when the log ends)"
        self.spool.write(f"  job {item.job_id}: seq {item.first_seq}-{item.last_seq}, {item.seconds:.3f} s "
                         f"({_times(item.states)}) -> {outcome}\n")

    def end(self, report: Report) -> None:
        summary = report.summary()
        self.out.write(f"\njobs ({summary['jobs']})\n")
        self.spool.copy_to(self.out)
        self.out.write(f"\ntime in state: {summary['seconds']:.3f} s in all, pilot {summary['pilot_seconds']:.3f} s, "
                       f"jobs {summary['job_seconds']:.3f} s\n")
        for name, seconds in by_machine_order(report.timeline.seconds).items():
            self.out.write(f"  {name:<10} {seconds:10.3f} s\n")
        self._loop_end(report.timeline.loop_end)
        self._terminal(report)
        self.out.write(_verdict_line(report) + "\n")

    def _loop_end(self, loop_end: Mapping[str, Any] | None) -> None:
        if loop_end is None:
            self.out.write("\njob loop: no job_done or first-job decision recorded\n")
            return
        self.out.write(f"\njob loop ended at seq {loop_end['seq']}: {loop_end['event']} {loop_end['source']} -> "
                       f"{loop_end['dest']}\n")
        for g in loop_end["guards"]:
            allowed = "allowed" if g.get("allowed") else "REFUSED"
            self.out.write(f"  {g['guard']:<15} {allowed:<8} {json.dumps(g.get('inputs'))} vs "
                           f"{json.dumps(g.get('threshold'))}\n")

    def _terminal(self, report: Report) -> None:
        if report.terminal is None:
            self.out.write("terminal: none reached\nexit code: none (no terminal state)\n")
            return
        t = report.terminal
        self.out.write(f"terminal: {t['dest']} at seq {t['seq']} ({iso(t['time'])}): {_reason(t['reason'])}\n"
                       f"exit code: {report.exit_code}\n")


# --- json --------------------------------------------------------------------------------------------------

class JsonRenderer(Renderer):
    """For programs: one JSON document, keys always present and always in the same order."""

    def __init__(self, out: TextIO, log: str) -> None:
        super().__init__(out, log)
        self._sep = {"transitions": "\n", "jobs": "\n"}

    def _item(self, kind: str, stream: TextIO | _Spool, item: Mapping[str, object]) -> None:
        stream.write(self._sep[kind] + "  " + json.dumps(item))
        self._sep[kind] = ",\n"

    def begin(self) -> None:
        self.out.write('{"log": ' + json.dumps(self.log) + ',\n "transitions": [')

    def transition(self, item: Transition) -> None:
        self._item("transitions", self.out, item.as_dict())

    def job(self, item: JobSummary) -> None:
        self._item("jobs", self.spool, item.as_dict())

    def end(self, report: Report) -> None:
        self.out.write('\n ],\n "jobs": [')
        self.spool.copy_to(self.out)
        self.out.write('\n ],\n "summary": ' + json.dumps(report.summary()) +
                       ',\n "verdict": ' + json.dumps(report.verdict.as_dict()) + "\n}\n")


# --- mermaid gantt -----------------------------------------------------------------------------------------

def _label(text: str, colon: bool = False) -> str:
    """Mermaid ends a line at '#' or ';' and a task name at ':' (``colon`` keeps them: a title)."""
    text = text.replace("#", " ").replace(";", ",")
    return text if colon else text.replace(":", " ")


class GanttRenderer(Renderer):
    """A Mermaid gantt chart: a "pilot" section (setup states, waits for jobs, the end), then one per job.

    Bars are states, from the record that entered them to the one that left them, in epoch
    milliseconds (``dateFormat x``); the chart depends on the log only, so it diffs cleanly.
    """

    def __init__(self, out: TextIO, log: str) -> None:
        super().__init__(out, log)
        self._started = False
        self._section: int | None = None

    def transition(self, item: Transition) -> None:
        if not self._started:
            self._header(item.pilot_id)

    def _header(self, pilot_id: str) -> None:
        self._started = True
        self.out.write(f"gantt\n    title {_label('fsm-pilot ' + pilot_id, colon=True)}\n    dateFormat x\n"
                       "    axisFormat %H:%M:%S\n    section pilot\n")

    def bar(self, item: Bar) -> None:
        start, end = round(item.start * 1000), round((item.start + item.seconds) * 1000)
        if item.kind == "state":
            line = f"    {item.state} {item.seconds:.3f}s :s{item.seq}, {start}, {end}\n"
        elif item.kind == "terminal":
            line = f"    {item.state} :milestone, s{item.seq}, {start}, {start}\n"
        else:
            line = f"    {item.state} (the log ends here) :crit, milestone, s{item.seq}, {start}, {start}\n"
        if item.owner is None:
            self.out.write(line)
            return
        if item.owner != self._section:
            self._section = item.owner
            self.spool.write(f"    section job {item.owner}\n")
        self.spool.write(line)

    def end(self, report: Report) -> None:
        if not self._started:
            self._header("(empty log)")
        self.spool.copy_to(self.out)
        v, code = report.verdict, report.exit_code
        self.out.write(f"%% verdict: {v.status} at seq {v.seq}: {_label(v.why, colon=True)}, "
                       f"exit code {'none' if code is None else code}\n")


RENDERERS: dict[str, type[Renderer]] = {"text": TextRenderer, "json": JsonRenderer, "mermaid-gantt": GanttRenderer}


# --- command line ------------------------------------------------------------------------------------------

def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("log", metavar="LOG", help="a pilot's transitions.jsonl")
    parser.add_argument("--format", choices=FORMATS, default=None, help="output format (default: text)")
    parser.add_argument("--json", action="store_true", help="the same as --format json")


def add_replay_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``replay`` subcommand to ``fsm-pilot``'s subparsers (``ns.func`` is :func:`main_replay`)."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "replay", help="check a transition log against the machine and print its timeline",
        description=__doc__.split("\n\n")[1] if __doc__ else None, epilog=EPILOG)
    _add_arguments(parser)
    parser.set_defaults(func=main_replay)
    return parser


def _renderer(fmt: str) -> type[Renderer]:
    if fmt == "svg":  # its own module: it imports Renderer from here
        from fsm_pilot.gantt_svg import SvgGanttRenderer

        return SvgGanttRenderer
    return RENDERERS[fmt]


def _format(ns: argparse.Namespace) -> str | None:
    if ns.json and ns.format not in (None, "json"):
        return None
    return "json" if ns.json else ns.format or "text"


def main_replay(ns: argparse.Namespace) -> int:
    """Replay ``ns.log`` in the chosen format; return the exit status (see the module docstring)."""
    fmt = _format(ns)
    if fmt is None:
        print(f"fsm-pilot replay: --json contradicts --format {ns.format}", file=sys.stderr)
        return 2
    path = Path(ns.log)
    try:
        open(path, "rb").close()  # say "cannot read" before any output, not halfway through it
    except OSError as exc:
        print(f"fsm-pilot replay: cannot read {ns.log}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    if isinstance(sys.stdout, io.TextIOWrapper):  # a log may hold any JSON string, lone surrogates too
        sys.stdout.reconfigure(errors="backslashreplace")
    renderer = _renderer(fmt)(sys.stdout, str(path))
    try:
        renderer.begin()
        report = replay(path, renderer)
        renderer.end(report)
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return BROKEN_PIPE
    except OSError as exc:
        print(f"fsm-pilot replay: {ns.log}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    return report.verdict.exit_status


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m fsm_pilot.replay_cli LOG [...]``, before the subcommand is wired into ``fsm-pilot``."""
    parser = argparse.ArgumentParser(prog="fsm-pilot replay", epilog=EPILOG,
                                     description=__doc__.split("\n\n")[1] if __doc__ else None)
    _add_arguments(parser)
    return main_replay(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
