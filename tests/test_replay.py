"""Replay's rules, one broken at a time, on a real recorded log edited in the test; truncated logs.

Each case names the exact record replay must report as the first divergence:
a post-mortem that points one record too late sends the reader to the wrong
place in a million-line log.
"""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Callable
from copy import deepcopy
from pathlib import Path
from typing import Any

import pytest

from fsm_pilot.replay import Checker, Report, check_record, problems, replay, upgrade

TRANSLOG = Path(__file__).parent / "fixtures" / "translog"
Records = list[dict[str, Any]]


def fixture_records(name: str = "multi_job") -> Records:
    """The records of a committed fixture (multi_job: 3 jobs, seq 1-20, ends job_done -> EXIT)."""
    return [json.loads(line) for line in (TRANSLOG / f"{name}.jsonl").read_text().splitlines()]


def write_log(path: Path, records: Records, tail: str = "") -> Path:
    """Write records as the pilot does (compact JSON lines), then ``tail`` verbatim."""
    path.write_text("".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records) + tail)
    return path


def replayed(tmp_path: Path, records: Records, tail: str = "") -> Report:
    return replay(write_log(tmp_path / "transitions.jsonl", records, tail))


def renumber(records: Records) -> Records:
    for seq, record in enumerate(records, start=1):
        record["seq"] = seq
    return records


def _set(index: int, **fields: Any) -> Callable[[Records], None]:
    def edit(records: Records) -> None:
        records[index].update(fields)
    return edit


def _guard(index: int, guard: str, allowed: bool) -> Callable[[Records], None]:
    def edit(records: Records) -> None:
        next(g for g in records[index]["guards"] if g["guard"] == guard)["allowed"] = allowed
    return edit


def _drop(index: int) -> Callable[[Records], None]:
    def edit(records: Records) -> None:
        del records[index]
    return edit


def _reason_error(index: int, error: int) -> Callable[[Records], None]:
    def edit(records: Records) -> None:
        records[index]["reason"]["error"] = error
    return edit


def _after_terminal(records: Records) -> None:
    records.append({**deepcopy(records[-1]), "seq": 21, "source": "EXIT", "dest": "GETJOB"})


def _remove_field(index: int, name: str) -> Callable[[Records], None]:
    def edit(records: Records) -> None:
        del records[index][name]
    return edit


# (edit, the first divergent seq, its line, words of the reason)
BROKEN = {
    "newer schema": (_set(3, v=2), 4, 4, "schema version 2 is newer"),
    "schema not a number": (_set(3, v="1"), 4, 4, "not a version number"),
    "seq gap": (_drop(6), 8, 7, "sequence number 8, expected 7"),
    "seq repeated": (_set(7, seq=7), 7, 8, "sequence number 7, expected 8"),
    "discontinuity": (_set(7, source="VALIDATE"), 8, 8, "source 'VALIDATE', but the previous record ended in STAGEIN"),
    "undeclared trigger": (_set(8, event="teleport"), 9, 9, "event 'teleport' is not declared from RUNNING"),
    "undeclared destination": (_set(8, dest="EXIT"), 9, 9, "payload_done from RUNNING to 'EXIT' is not declared"),
    "guard refused, edge taken anyway": (_guard(9, "black_hole", False), 10, 10,
                                         "guards allowed EXIT but the log says GETJOB"),
    "fallback without a refusal": (_guard(19, "max_jobs", True), 20, 20,
                                   "no evidence that a guard of the edge to GETJOB refused"),
    "terminal reason without an exit code": (_reason_error(19, 99999), 20, 20, "99999 is not a PanDA error code"),
    "a record after the terminal state": (_after_terminal, 21, 21, "a record after the terminal state EXIT"),
    "field missing": (_remove_field(4, "time"), 5, 5, "field 'time' is missing"),
    "field of the wrong type": (_set(4, ok="yes"), 5, 5, "field 'ok' is a string ('yes'), expected a boolean"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_each_rule_broken_names_the_first_divergent_record(tmp_path: Path, case: str) -> None:
    edit, seq, line, why = BROKEN[case]
    records = fixture_records()
    edit(records)
    report = replayed(tmp_path, records)
    assert (report.verdict.status, report.verdict.seq, report.verdict.line) == ("illegal", seq, line), report.verdict
    assert why in report.verdict.why
    assert report.verdict.exit_status == 1


def test_the_first_of_two_divergences_is_reported(tmp_path: Path) -> None:
    records = fixture_records()
    records[11]["event"] = "teleport"  # seq 12
    records[7]["source"] = "GETJOB"  # seq 8: the first
    report = replayed(tmp_path, records)
    assert (report.verdict.seq, report.verdict.state) == (8, "STAGEIN")
    assert report.records == 7  # what was judged legal before the divergence


def test_a_line_that_is_not_json_is_illegal_and_placed_by_line(tmp_path: Path) -> None:
    lines = (TRANSLOG / "multi_job.jsonl").read_text().splitlines(keepends=True)
    lines[4] = "garbage\n"
    path = tmp_path / "t.jsonl"
    path.write_text("".join(lines))
    verdict = replay(path).verdict
    assert (verdict.status, verdict.seq, verdict.line, verdict.state) == ("illegal", None, 5, "CLEANUP")
    assert "line 5 is not a JSON object" in verdict.why


def test_a_refused_attempt_keeps_the_state_and_stays_legal(tmp_path: Path) -> None:
    records = fixture_records()
    refused = {**deepcopy(records[5]), "event": "accept", "source": "GETJOB", "dest": None, "ok": False,
               "error": "MachineError(\"Can't trigger event accept from state GETJOB!\")"}
    records.insert(5, refused)
    report = replayed(tmp_path, renumber(records))
    assert report.verdict.status == "legal", report.verdict
    assert report.exit_code == 0


@pytest.mark.parametrize("keep", [1, 5, 9, 19])
def test_a_log_cut_at_a_record_boundary_is_truncated_where_it_stopped(tmp_path: Path, keep: int) -> None:
    records = fixture_records()
    report = replayed(tmp_path, records[:keep])
    verdict = report.verdict
    assert (verdict.status, verdict.seq, verdict.state) == ("truncated", keep, records[keep - 1]["dest"])
    assert verdict.time == records[keep - 1]["time"]
    assert (verdict.partial_line, verdict.exit_status, report.exit_code) == (False, 3, None)


def test_a_last_line_cut_short_is_truncated_not_illegal(tmp_path: Path) -> None:
    records = fixture_records()
    half = json.dumps(records[9], separators=(",", ":"))[:57]
    verdict = replayed(tmp_path, records[:9], tail=half).verdict
    assert (verdict.status, verdict.seq, verdict.state, verdict.line) == ("truncated", 9, "STAGEOUT", 10)
    assert verdict.partial_line
    assert "cut short" in verdict.why


def test_a_cut_line_that_is_not_last_is_illegal(tmp_path: Path) -> None:
    records = fixture_records()
    half = json.dumps(records[9], separators=(",", ":"))[:57]
    verdict = replayed(tmp_path, records[:9], tail=half + "\n").verdict
    assert (verdict.status, verdict.line) == ("illegal", 10)


def test_a_complete_last_record_without_its_newline_counts(tmp_path: Path) -> None:
    records = fixture_records()
    last = json.dumps(records[-1], separators=(",", ":"))
    assert replayed(tmp_path, records[:-1], tail=last).verdict.status == "legal"


def test_an_empty_log_is_truncated_in_init(tmp_path: Path) -> None:
    verdict = replayed(tmp_path, []).verdict
    assert (verdict.status, verdict.state, verdict.seq, verdict.time) == ("truncated", "INIT", 0, None)


def test_version_0_records_are_upgraded_before_the_rules_see_them() -> None:
    old = fixture_records("v0_multi_job")
    assert "v" not in old[0] and "from" in old[0]
    new, version = upgrade(old[0])
    assert version == 0
    assert (new["v"], new["source"], new["dest"], new["mono"]) == (1, "INIT", "QUEUEDATA", old[0]["time"])
    assert "from" not in new and "to" not in new
    assert upgrade(fixture_records()[0]) == (fixture_records()[0], 1)


def test_a_log_mixing_versions_replays_with_both_named(tmp_path: Path) -> None:
    records = fixture_records("v0_multi_job")[:10] + fixture_records()[10:]
    report = replayed(tmp_path, records)
    assert (report.verdict.status, report.versions) == ("legal", [0, 1])


def test_problems_and_check_record_keep_their_contract() -> None:
    records = fixture_records()
    assert problems(records) == []
    assert problems(records[:9]) == ["truncated: the log stops in STAGEOUT after 9 records"]
    broken = deepcopy(records)
    broken[7]["source"] = "GETJOB"
    assert problems(broken) == ["record 8: source 'GETJOB', but the previous record ended in STAGEIN"]
    assert check_record(records[0], 1, "INIT") is None
    assert check_record(records[1], 2, "INIT") == "source 'QUEUEDATA', but the previous record ended in INIT"
    assert problems(fixture_records("v0_multi_job"))[0].startswith("record 1: schema version None")


def test_checker_reports_the_terminal_state() -> None:
    checker = Checker()
    for record in fixture_records("sigterm_running"):
        assert checker.feed(record) is None
    assert (checker.complete, checker.state, checker.seq) == (True, "ABORTED", 10)


def many_jobs(path: Path, jobs: int) -> Path:
    """multi_job with its middle job repeated ``jobs`` times: legal, and as long as asked."""
    records = fixture_records()
    head, job, tail = records[:10], records[10:15], records[15:]
    step = records[15]["mono"] - records[10]["mono"]
    out = [*head]
    for n in range(jobs):
        out += [{**r, "mono": r["mono"] + n * step, "time": r["time"] + n * step,
                 "job_id": r["job_id"] and 1000 + n} for r in job]
    out += [{**r, "mono": r["mono"] + jobs * step, "time": r["time"] + jobs * step} for r in tail]
    return write_log(path, renumber(out))


def test_memory_does_not_grow_with_the_log(tmp_path: Path) -> None:
    peaks = []
    for jobs in (200, 4000):
        path = many_jobs(tmp_path / f"{jobs}.jsonl", jobs)
        tracemalloc.start()
        report = replay(path)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        assert (report.verdict.status, report.timeline.jobs) == ("legal", jobs + 2)
    assert peaks[1] < 1.5 * peaks[0] + 64 * 1024, peaks


def test_edge_verdicts_are_the_same_when_remembered() -> None:
    # the edge rules' verdicts are kept by (state, event, dest, evidence): a second look must agree with the first
    records = fixture_records()
    last_job_done = max(i for i, r in enumerate(records) if r["event"] == "job_done")
    record, state = records[last_job_done], records[last_job_done]["source"]
    seq = record["seq"]
    assert check_record(record, seq, state) is None
    flipped = deepcopy(record)
    refused = next(g for g in flipped["guards"] if g["allowed"] is False)
    refused["allowed"] = True  # the guard that ended the loop now allowed it: the edge taken disagrees
    first = check_record(flipped, seq, state)
    assert first is not None and check_record(flipped, seq, state) == first
    assert check_record(record, seq, state) is None
    odd = deepcopy(record)
    odd["guards"][0]["allowed"] = ["not", "hashable"]  # not a decision: malformed before any edge is judged
    assert check_record(odd, seq, state) == (
        "guard 1 of 3 ('black_hole'): field 'allowed' is an array (['not', 'hashable']), expected a boolean")


# Records the full rules accept or name, each odd in a way the common path does not vouch for.
ODD = {
    "time an integer": (_set(4, time=1767225600), None),
    "mono an integer": (_set(6, mono=1000), None),
    "job_id true": (_set(6, job_id=True), "field 'job_id' is a boolean (True), expected an integer or null"),
    "seq a float": (_set(5, seq=6.0), "field 'seq' is a number (6.0), expected an integer"),
    "error a number": (_set(5, error=5), "field 'error' is an integer (5), expected a string or null"),
    "guards an object": (_set(6, guards={}), "field 'guards' is an object ({}), expected an array"),
    "a guard without its name": (lambda records: records[4]["guards"][0].pop("guard"),
                                 "guard 1 of 3: field 'guard' is missing"),
    "reason a list": (_set(7, reason=[]), "field 'reason' is an array ([]), expected an object"),
    "source missing": (_remove_field(8, "source"), "field 'source' is missing"),
    # True == 1 and hash(True) == hash(1): a remembered (guard, True) must not vouch for (guard, 1)
    "allowed 1 on a remembered edge": (_guard(14, "black_hole", 1),  # type: ignore[arg-type]
                                       "guard 1 of 6 ('black_hole'): field 'allowed' is an integer (1), "
                                       "expected a boolean"),
    "allowed 0.0 where a guard refused": (_guard(19, "max_jobs", 0.0),  # type: ignore[arg-type]
                                          "guard 3 of 3 ('max_jobs'): field 'allowed' is a number (0.0), "
                                          "expected a boolean"),
    "72 guard decisions": (lambda records: records[4]["guards"].extend(deepcopy(records[4]["guards"]) * 23),
                           None),
    "time not finite": (_set(9, time=float("inf")),
                        "field 'time' is inf, not a clock reading (0 to 253402300799 seconds)"),
}


@pytest.mark.parametrize("case", sorted(ODD))
def test_remembered_verdicts_and_the_full_rules_agree(tmp_path: Path, case: str) -> None:
    # once a log's edges are remembered, its records are judged on a short path; any record that path
    # cannot vouch for goes through the full rules (the checker ``problems`` uses): both must agree
    edit, why = ODD[case]
    replay(TRANSLOG / "multi_job.jsonl")  # remember every edge of the log
    records = fixture_records()
    edit(records)
    report = replayed(tmp_path, records)
    assert problems(records) == ([] if why is None else [f"record {report.records + 1}: {why}"])
    assert (report.verdict.status, report.verdict.why if why else None) == (
        ("legal", None) if why is None else ("illegal", why)), report.verdict
