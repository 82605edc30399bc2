"""Replay of malformed logs: every field of a real recorded log, mutated, ends in a verdict, never a traceback.

A log handed to ``fsm-pilot replay`` is untrusted (cut short, hand-edited,
corrupted). Each field of the records of a real run (the committed fixture
``multi_job.jsonl``, written by a real pilot), at the top level, in a guard
decision and in the reason, is deleted or replaced by a value of each JSON
type (null, array, object, string, integer, boolean, a 100,000-character
string; the clocks also by inf, nan, -1 and 1e300, a guard's decision also by
1, 0, 1.0 and 0.0, which equal true and false). For every mutation:

- replay returns a verdict whose exit status is a documented one;
- the common path and the full rules give the same verdict (the common path
  judges most records of a long log, see ``fsm_pilot.replay._Run.run``);
- a field the rules or the report read, given a type the schema does not
  allow, makes the log illegal at that line, naming the field.

All mutations go through the library in-process (about 1,500 logs); one per
field goes through the real command in a subprocess, in each output format.
"""

from __future__ import annotations

import copy
import json
import math
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fsm_pilot.replay import _EDGE_VERDICTS, Report, Verdict, _Run, replay
from fsm_pilot.timeline import Timeline
from tests.test_replay import TRANSLOG, Records, fixture_records, write_log

NONE = type(None)
MISSING = object()  # the field deleted
HUGE = "x" * 100_000
MUTATIONS: dict[str, object] = {"missing": MISSING, "null": None, "array": [1, "a"], "object": {"k": 1},
                                "string": "garbage", "integer": 7, "boolean": True, "huge string": HUGE}
CLOCK_MUTATIONS: dict[str, object] = {"inf": math.inf, "nan": math.nan, "negative": -1.0, "1e300": 1e300}
#: 1 == True and hash(1) == hash(True): a remembered (guard, True) must not vouch for (guard, 1)
DECISION_MUTATIONS: dict[str, object] = {"1": 1, "0": 0, "1.0": 1.0, "0.0": 0.0}
EXIT_STATUSES = {0, 1, 3}  # legal, illegal, truncated (2 is an unreadable file, 141 a reader gone)

# The schema of docs/transition-log.md, written out here (not imported) so a loosened check fails a test.
TOP = {"v": (int,), "seq": (int,), "time": (int, float), "mono": (int, float), "pilot_id": (str,),
       "job_id": (int, NONE), "event": (str,), "source": (str,), "dest": (str, NONE), "guards": (list,),
       "reason": (dict,), "ok": (bool,), "error": (str, NONE)}
#: A guard decision: the rules read its name and decision; inputs, threshold and error are evidence
#: shown as recorded (not judged, so only "never crashes" is asserted for them).
GUARD: dict[str, tuple[type, ...] | None] = {"guard": (str,), "allowed": (bool,), "inputs": None,
                                             "threshold": None, "error": None}
REASON = {"text": (str,), "error": (int, NONE), "error_name": (str, NONE), "signal": (int, NONE)}

# multi_job.jsonl, by line: 1 the first record, 5 CLEANUP -> GETJOB (3 guards), 10 the first job_done
# (6 guards; its edge not yet remembered in a fresh process), 12 a job step without guards, 15 the second
# job_done (its edge remembered: the common path), 20 job_done -> EXIT (terminal: always the full rules).
TOP_LINES = (1, 10, 12, 15, 20)
GUARD_LINES = (5, 10, 15, 20)


def full_rules(path: Path) -> Report:
    """Replay with every line through the full rules (``_Run.feed``), none judged on the common path.

    The remembered edge verdicts are set aside meanwhile: each edge is judged from its record alone.
    """
    remembered = dict(_EDGE_VERDICTS)
    _EDGE_VERDICTS.clear()
    try:
        run = _Run(path, Timeline())
        with open(path, "rb") as f:
            for raw in f:
                if run.feed(raw):
                    break
        return run.report()
    finally:
        _EDGE_VERDICTS.clear()
        _EDGE_VERDICTS.update(remembered)


def mutate(target: dict[str, Any], key: str, value: object) -> None:
    if value is MISSING:
        del target[key]
    else:
        target[key] = copy.deepcopy(value)


def bad_type(value: object, types: tuple[type, ...] | None) -> bool:
    return types is not None and (value is MISSING or type(value) not in types)


def out_of_clock(key: str, value: object) -> bool:
    return key in ("time", "mono") and type(value) is float and not (math.isfinite(value) and value >= 0
                                                                     and value < 1e12)


Case = tuple[str, int, str, object, str]  # (where, line, mutation name, value, what the why must name)


def cases(where: str) -> Iterator[tuple[Case, Records, bool]]:
    """Each mutation of the field ``where`` ("top:seq", "guard:allowed", "reason:signal"); True: it must be illegal."""
    part, key = where.split(":")
    extra = CLOCK_MUTATIONS if key in ("time", "mono") else DECISION_MUTATIONS if key == "allowed" else {}
    mutations = {**MUTATIONS, **extra}
    lines = GUARD_LINES if part == "guard" else TOP_LINES
    for line in lines:
        for name, value in mutations.items():
            for index in ((0, -1) if part == "guard" else (0,)):
                records = fixture_records()
                record = records[line - 1]
                if part == "top":
                    mutate(record, key, value)
                    illegal, named = bad_type(value, TOP[key]) or out_of_clock(key, value), f"field '{key}'"
                    if key == "v":  # no v: version 0, whose source is "from"
                        named = "field 'source'" if value is MISSING else "schema version"
                elif part == "guard":
                    mutate(record["guards"][index], key, value)
                    illegal, named = bad_type(value, GUARD[key]), f"field '{key}'"
                else:
                    mutate(record["reason"], key, value)
                    illegal, named = bad_type(value, REASON[key]), f"reason field '{key}'"
                label = f"{name} (guard {index})" if part == "guard" else name
                yield (where, line, label, value, named), records, illegal


FIELDS = [f"top:{k}" for k in TOP] + [f"guard:{k}" for k in GUARD] + [f"reason:{k}" for k in REASON]


@pytest.fixture(scope="module", autouse=True)
def _remember_the_edges() -> None:
    replay(TRANSLOG / "multi_job.jsonl")  # so a mutated record of a known edge meets the common path


def _check(case: Case, report: Report, full: Report, illegal: bool) -> list[str]:
    where, line, name, _, named = case
    verdict: Verdict = report.verdict
    said = f"{where} {name} at line {line}: {verdict}"
    problems = []
    if verdict.exit_status not in EXIT_STATUSES:
        problems.append(f"{said}: exit status {verdict.exit_status}")
    if (verdict, report.records, report.exit_code) != (full.verdict, full.records, full.exit_code):
        problems.append(f"{said}: the full rules say {full.verdict}")
    if illegal and (verdict.status, verdict.line) != ("illegal", line):
        problems.append(f"{said}: expected illegal at line {line}")
    elif illegal and named not in verdict.why:
        problems.append(f"{said}: the verdict does not name {named}")
    if len(verdict.why) > 300:
        problems.append(f"{where} {name} at line {line}: a verdict of {len(verdict.why)} characters")
    return problems


@pytest.mark.parametrize("where", FIELDS)
def test_every_mutation_of_a_field_ends_in_a_verdict(tmp_path: Path, where: str) -> None:
    problems: list[str] = []
    count = 0
    for case, records, illegal in cases(where):
        path = write_log(tmp_path / "t.jsonl", records)
        report, full = replay(path), full_rules(path)  # an exception here fails the test: that is the point
        problems += _check(case, report, full, illegal)
        count += 1
    assert count >= 40
    assert not problems, "\n".join(problems[:20])


SUBPROCESS_FORMATS = ("text", "json", "mermaid-gantt", "svg")


@pytest.mark.parametrize("where", FIELDS)
def test_the_command_gives_a_verdict_for_a_mutated_field(tmp_path: Path, where: str) -> None:
    # one mutation per field through the real command, cycling the mutations, lines and output formats
    n = FIELDS.index(where)
    all_cases = list(cases(where))
    case, records, illegal = all_cases[(n * 7) % len(all_cases)]
    fmt = SUBPROCESS_FORMATS[n % len(SUBPROCESS_FORMATS)]
    path = write_log(tmp_path / "t.jsonl", records)
    result = subprocess.run([sys.executable, "-m", "fsm_pilot", "replay", "--format", fmt, str(path)],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode in EXIT_STATUSES, (case[:3], result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr and result.stderr == "", result.stderr[-2000:]
    expected = full_rules(path).verdict
    assert result.returncode == expected.exit_status
    line = case[1]
    if illegal:
        assert result.returncode == 1
    if fmt == "text" and expected.status != "legal":
        assert f"(line {expected.line})" in result.stdout.splitlines()[-1]
    elif fmt == "json":
        assert json.loads(result.stdout)["verdict"]["line"] == expected.line
    if illegal:
        assert expected.line == line


def test_a_guard_decision_without_allowed_is_illegal_not_a_key_error(tmp_path: Path) -> None:
    # the reported defect: a decision without "allowed" ended in KeyError: 'allowed' (exit 1, like an illegal log)
    for line in (10, 15):  # the first job_done: the full rules; the second: its edge is remembered by then
        records = fixture_records()
        del records[line - 1]["guards"][0]["allowed"]
        log = write_log(tmp_path / f"no_allowed_{line}.jsonl", records)
        result = subprocess.run([sys.executable, "-m", "fsm_pilot", "replay", str(log)], capture_output=True,
                                text=True, timeout=60, check=False)
        assert (result.returncode, result.stderr) == (1, ""), result.stderr
        assert result.stdout.splitlines()[-1] == (
            f"verdict: ILLEGAL at seq {line} (line {line}): guard 1 of 6 ('black_hole'): field 'allowed' is missing")


def test_a_line_nested_too_deep_is_illegal_not_a_recursion_error(tmp_path: Path) -> None:
    lines = (TRANSLOG / "multi_job.jsonl").read_text().splitlines(keepends=True)
    lines[4] = "[" * 100_000 + "\n"
    path = tmp_path / "deep.jsonl"
    path.write_text("".join(lines))
    verdict = replay(path).verdict
    assert (verdict.status, verdict.line, verdict.state) == ("illegal", 5, "CLEANUP")
    assert verdict.why == "line 5 is not a JSON object (nested deeper than the decoder goes)"
    assert full_rules(path).verdict == verdict


def test_strings_that_utf8_cannot_encode_are_printed_escaped(tmp_path: Path) -> None:
    # JSON allows a lone surrogate ("\ud800"); printed as is, it ended in UnicodeEncodeError
    records = fixture_records()
    records[3]["reason"]["text"] = "bad \ud800 text"
    records[0]["pilot_id"] = "wn\udcff:1:2"
    log = write_log(tmp_path / "surrogates.jsonl", records)
    for fmt in SUBPROCESS_FORMATS:
        result = subprocess.run([sys.executable, "-m", "fsm_pilot", "replay", "--format", fmt, str(log)],
                                capture_output=True, text=True, timeout=60, check=False, errors="replace")
        assert (result.returncode, result.stderr) == (0, ""), (fmt, result.stderr)
    text = subprocess.run([sys.executable, "-m", "fsm_pilot", "replay", str(log)], capture_output=True, text=True,
                          timeout=60, check=False).stdout
    assert "bad \\ud800 text" in text


def test_clocks_at_their_limits_still_give_a_report(tmp_path: Path) -> None:
    # each clock is a reading a date can show, but a job's start (first wall time + monotonic seconds since)
    # can be past what a date can show: shown as a number, not an OverflowError/ValueError
    records = fixture_records()
    records[0]["mono"], records[0]["time"] = 0.0, 253402300799.0
    for record in records[1:]:
        record["mono"], record["time"] = 253402300799.0, 0.0
    log = write_log(tmp_path / "clocks.jsonl", records)
    for fmt in SUBPROCESS_FORMATS:
        result = subprocess.run([sys.executable, "-m", "fsm_pilot", "replay", "--format", fmt, str(log)],
                                capture_output=True, text=True, timeout=60, check=False)
        assert (result.returncode, result.stderr) == (0, ""), (fmt, result.stderr)
    document = json.loads(subprocess.run([sys.executable, "-m", "fsm_pilot", "replay", "--json", str(log)],
                                         capture_output=True, text=True, timeout=60, check=False).stdout)
    assert document["jobs"][0]["iso"].endswith("(not a date)")
