"""``fsm-pilot replay`` on the command line: exit statuses, the JSON document, the Mermaid gantt chart."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fsm_pilot.replay_cli import main
from tests.test_replay import TRANSLOG, fixture_records, many_jobs, write_log

MULTI = str(TRANSLOG / "multi_job.jsonl")
TASK = re.compile(r"^    [A-Z]+( [0-9.]+s| \(the log ends here\))? :(crit, )?(milestone, )?s(\d+), (\d{13}), (\d{13})$")


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fsm_pilot.replay_cli", *args], capture_output=True, text=True,
                          timeout=60, check=False)


def _illegal(tmp_path: Path) -> str:
    records = fixture_records()
    records[7]["source"] = "GETJOB"
    return str(write_log(tmp_path / "illegal.jsonl", records))


def _truncated(tmp_path: Path) -> str:
    return str(write_log(tmp_path / "cut.jsonl", fixture_records()[:9], tail='{"v":1,"seq":10,"ti'))


def test_exit_statuses_of_the_command(tmp_path: Path) -> None:
    legal, illegal, cut = cli(MULTI), cli(_illegal(tmp_path)), cli(_truncated(tmp_path))
    assert (legal.returncode, illegal.returncode, cut.returncode) == (0, 1, 3), (legal, illegal, cut)
    assert "verdict: legal and complete (20 records, schema v1)" in legal.stdout
    assert "verdict: ILLEGAL at seq 8 (line 8): source 'GETJOB'" in illegal.stdout
    assert "verdict: TRUNCATED in STAGEOUT after seq 9" in cut.stdout and "cut short" in cut.stdout
    assert not any("Traceback" in p.stderr for p in (legal, illegal, cut))


@pytest.mark.parametrize("args", [["/nonexistent/transitions.jsonl"], ["DIR"], ["--format", "xml", MULTI], [],
                                  ["--json", "--format", "mermaid-gantt", MULTI]])
def test_bad_usage_and_unreadable_files_exit_2_with_a_message(tmp_path: Path, args: list[str]) -> None:
    result = cli(*[str(tmp_path) if a == "DIR" else a for a in args])
    assert result.returncode == 2, result
    assert result.stderr.strip() and "Traceback" not in result.stderr
    assert result.stdout == ""


def test_text_report_shows_the_timeline(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([MULTI]) == 0
    out = capsys.readouterr().out
    assert "job_done: STAGEOUT -> EXIT (refused by max_jobs)" in out
    assert re.search(r"job 102: seq 11-15, [0-9.]+ s \(VALIDATE [0-9.]+, .*STAGEOUT [0-9.]+\) -> job 102 failed "
                     r"\[PAYLOADEXECUTIONFAILURE 1305\]", out)
    assert "  max_jobs        REFUSED  {\"jobs_run\": 3} vs 3" in out
    assert "terminal: EXIT at seq 20" in out and "exit code: 0" in out


def _json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code = main(list(args))
    return code, json.loads(capsys.readouterr().out)


def test_json_is_one_document_with_stable_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, legal = _json(capsys, "--json", MULTI)
    assert code == 0 and list(legal) == ["log", "transitions", "jobs", "summary", "verdict"]
    assert len(legal["transitions"]) == 20
    assert [j["job_id"] for j in legal["jobs"]] == [101, 102, 103]
    assert legal["summary"]["exit_code"] == 0
    assert legal["summary"]["terminal"]["state"] == "EXIT"
    assert legal["summary"]["loop_end"]["refused"] == ["max_jobs"]
    assert legal["verdict"]["status"] == "legal"
    for args, status in (([_illegal(tmp_path)], 1), ([_truncated(tmp_path)], 3)):
        code, other = _json(capsys, "--format", "json", *args)
        assert code == status and list(other) == list(legal)
        for key in ("summary", "verdict"):
            assert list(other[key]) == list(legal[key])
        assert list(other["transitions"][0]) == list(legal["transitions"][0])
        assert other["verdict"]["exit_status"] == status


def test_gantt_is_deterministic_with_a_section_per_job(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--format", "mermaid-gantt", MULTI]) == 0
    first = capsys.readouterr().out
    assert main(["--format", "mermaid-gantt", MULTI]) == 0
    assert capsys.readouterr().out == first
    lines = first.splitlines()
    assert lines[:4] == ["gantt", "    title fsm-pilot " + fixture_records()[0]["pilot_id"], "    dateFormat x",
                         "    axisFormat %H:%M:%S"]
    sections = [line.strip() for line in lines if line.strip().startswith("section")]
    assert sections == ["section pilot", "section job 101", "section job 102", "section job 103"]
    body = [line for line in lines
            if not line.strip().startswith(("section", "gantt", "title", "dateFormat", "axisFormat", "%%"))]
    tasks = [TASK.match(line) for line in body]
    assert all(tasks), [line for line in body if not TASK.match(line)]
    ids = [m.group(4) for m in tasks if m]
    assert sorted(ids, key=int) == [str(n) for n in range(1, 21)]  # every state entered, once
    assert all(int(m.group(5)) <= int(m.group(6)) for m in tasks if m)
    assert lines[-1] == "%% verdict: legal at seq 20: legal and complete, exit code 0"


def test_gantt_of_a_truncated_log_marks_where_it_ends(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--format", "mermaid-gantt", str(TRANSLOG / "recovery_dead_pilot.jsonl")]) == 3
    out = capsys.readouterr().out
    assert "    section job 1\n" in out
    assert re.search(r"^    STAGEOUT \(the log ends here\) :crit, milestone, s9, ", out, re.MULTILINE)


def test_version_0_log_replays_from_the_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(TRANSLOG / "v0_multi_job.jsonl")]) == 0
    assert "verdict: legal and complete (20 records, schema v0)" in capsys.readouterr().out


def test_a_reader_that_goes_away_ends_replay_quietly(tmp_path: Path) -> None:
    log = many_jobs(tmp_path / "long.jsonl", 2000)  # far more output than a pipe holds
    proc = subprocess.Popen([sys.executable, "-m", "fsm_pilot.replay_cli", str(log)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline().startswith("replay of ")
    proc.stdout.close()
    assert proc.wait(timeout=60) == 141
    assert "Traceback" not in proc.stderr.read()
    proc.stderr.close()


def test_the_subcommand_plugs_into_a_parent_parser(capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    from fsm_pilot.replay_cli import add_replay_parser

    top = argparse.ArgumentParser(prog="fsm-pilot")
    add_replay_parser(top.add_subparsers(dest="command", required=True))
    ns = top.parse_args(["replay", "--json", str(TRANSLOG / "sigterm_running.jsonl")])
    assert ns.func(ns) == 0
    assert json.loads(capsys.readouterr().out)["summary"]["exit_code"] == 143


def test_svg_gantt_draws_a_bar_per_state_and_is_deterministic() -> None:
    import subprocess
    import sys
    import xml.etree.ElementTree as ET
    from pathlib import Path

    log = Path(__file__).parent / "fixtures" / "translog" / "multi_job.jsonl"
    runs = [subprocess.run([sys.executable, "-m", "fsm_pilot", "replay", str(log), "--format", "svg"],
                           capture_output=True, text=True, check=False) for _ in range(2)]
    assert runs[0].returncode == 0 and runs[0].stdout == runs[1].stdout
    root = ET.fromstring(runs[0].stdout)
    titles = [t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}title")]
    assert sum(t.startswith("RUNNING:") for t in titles) == 3
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert "pilot" in texts and any((t or "").startswith("legal") for t in texts)
