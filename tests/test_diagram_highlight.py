"""``--highlight LOG``: a real run's path drawn on the machine; SVG through Graphviz; clear errors."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fsm_pilot.diagram import LogError, Run, dot, fold, links, markdown, mermaid, seconds_text
from fsm_pilot.diagram_cli import read_run, render
from fsm_pilot.machine import STATES
from tests.pilotrun import job_def, make_launch, run_pilot

CLI = [sys.executable, "-m", "fsm_pilot.diagram_cli"]
VISITED = ["INIT", "QUEUEDATA", "CHECKS", "RECOVERY", "CLEANUP", "GETJOB", "VALIDATE", "STAGEIN", "RUNNING",
           "STAGEOUT", "EXIT"]


@pytest.fixture(scope="module")
def real_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The transition log of a real pilot that ran two jobs (one sleeps 0.3 s, one fails) and ended."""
    jobs = [job_def(1, "-c 'sleep 0.3; echo one > a.txt'", ("a.txt",)), job_def(2, "-c 'exit 3'", ("b.txt",))]
    launch = make_launch(tmp_path_factory.mktemp("highlight"), jobs, timefloor=10)
    result = run_pilot(launch)
    assert result.returncode == 0, result.stderr
    pilot_dir = launch.pilot_dir()
    assert pilot_dir is not None
    return pilot_dir / "transitions.jsonl"


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, check=False, env=env)


def test_a_real_run_is_folded_into_visits_and_times(real_log: Path) -> None:
    run = read_run(real_log)
    assert [s.name for s in STATES if run.visits.get(s.name)] == VISITED
    assert (run.visits["GETJOB"], run.visits["RUNNING"], run.visits["EXIT"]) == (3, 2, 1)
    assert run.seconds["RUNNING"] >= 0.3  # the first payload sleeps 0.3 s
    assert "INIT" not in run.seconds and "EXIT" not in run.seconds  # the log neither starts nor ends them
    assert (run.started, run.last, run.taken[("STAGEOUT", "GETJOB")]) == ("INIT", "EXIT", 2)


def test_mermaid_highlight_marks_visited_states_and_taken_links(real_log: Path) -> None:
    run = read_run(real_log)
    text = mermaid(run)
    assert text.startswith("flowchart TD\n")
    assert f"    class {','.join(VISITED)} visited\n" in text
    assert "    class ABORTING,FAILED,ABORTED unvisited\n" in text
    emitted = re.findall(r"^    (\w+)(?:\(\(\" \"\)\))? -->(?:\|\"[^\"]*\"\|)? (\w+)$", text, re.M)
    assert len(emitted) == len(links()) + 1 and emitted[0] == ("start_", "INIT")
    styled = re.search(r"^    linkStyle ([\d,]+) stroke:", text, re.M)
    assert styled is not None
    taken = {i for i, pair in enumerate(emitted) if pair in run.taken or pair == ("start_", "INIT")}
    assert {int(i) for i in styled.group(1).split(",")} == taken
    assert re.search(r'RUNNING\["RUNNING · [\d.]+ m?s, 2x<br>fsm_pilot/states/running\.py<br>', text)
    assert re.search(r'GETJOB -->\|"got_job · 2x"\| VALIDATE', text)


def test_dot_highlight_marks_visited_states_and_taken_edges(real_log: Path) -> None:
    run = read_run(real_log)
    text = dot(run)
    for s in STATES:
        line = next(x for x in text.splitlines() if x.strip().startswith(f"{s.name} [label="))
        assert ("penwidth=2.5" in line) == (s.name in VISITED), line
    assert re.search(r'RUNNING \[label="RUNNING · [\d.]+ m?s, 2x\\nfsm_pilot/states/running\.py', text)
    edge = next(x for x in text.splitlines() if x.startswith("    RUNNING -> STAGEOUT"))
    assert "payload_done · 2x" in edge and "penwidth=2.5" in edge
    assert "penwidth" not in next(x for x in text.splitlines() if x.startswith("    RUNNING -> ABORTING"))


def test_markdown_highlight_has_the_run_table(real_log: Path) -> None:
    page = markdown(read_run(real_log))
    assert re.search(r"^\| RUNNING \| 2 \| [\d.]+ m?s \|$", page, re.M)
    assert "```mermaid\nflowchart TD\n" in page and "ended in EXIT" in page


@pytest.mark.parametrize("fmt", ["markdown", "mermaid", "dot"])
def test_highlight_via_the_cli_is_deterministic(real_log: Path, fmt: str) -> None:
    runs = [_cli("--format", fmt, "--highlight", str(real_log)) for _ in range(2)]
    assert [r.returncode for r in runs] == [0, 0], runs[0].stderr
    assert runs[0].stdout == runs[1].stdout == render(fmt, read_run(real_log))


def _record(seq: int, source: str, dest: str | None, mono: float, ok: bool = True) -> dict[str, Any]:
    return {"v": 1, "seq": seq, "time": 1e9 + mono, "mono": mono, "event": "next", "source": source,
            "dest": dest, "ok": ok, "job_id": None}


def test_fold_counts_time_between_entering_and_leaving_a_state() -> None:
    records = [_record(1, "INIT", "QUEUEDATA", 10.0), _record(2, "QUEUEDATA", None, 11.0, ok=False),
               _record(3, "QUEUEDATA", "CHECKS", 12.5), _record(4, "CHECKS", "FAILED", 12.75)]
    run = fold(enumerate(records, start=1))
    assert run.visits == {"INIT": 1, "QUEUEDATA": 1, "CHECKS": 1, "FAILED": 1}
    assert run.seconds == {"QUEUEDATA": 2.5, "CHECKS": 0.25}  # a refused attempt does not leave the state
    assert (run.records, run.last, run.label("QUEUEDATA"), run.label("INIT")) == (4, "FAILED", "QUEUEDATA · 2.5 s, 1x",
                                                                                   "INIT · 1x")


def test_fold_draws_a_slice_with_gaps_without_inventing_times() -> None:
    records = [_record(1, "GETJOB", "VALIDATE", 5.0), _record(2, "STAGEOUT", "GETJOB", 9.0)]
    run = fold(enumerate(records, start=1))
    assert run.visits == {"GETJOB": 2, "VALIDATE": 1, "STAGEOUT": 1}
    assert run.seconds == {} and run.started == "GETJOB"
    assert "linkStyle 7,14 " in mermaid(run)  # no start arrow: this log did not start in INIT


def test_durations_read_well() -> None:
    assert [seconds_text(s) for s in (0.0004, 0.3125, 12.34, 7250.4)] == ["0 ms", "312 ms", "12.3 s", "7250 s"]
    assert Run(visits={"RUNNING": 3}, seconds={"RUNNING": 12.3}).label("RUNNING") == "RUNNING · 12.3 s, 3x"


@pytest.mark.parametrize(("lines", "why"), [
    ([], "the log is empty"),
    (["{not json"], "line 1: not JSON"),
    (["[1, 2]"], "line 1: not a JSON object"),
    ([json.dumps({**_record(1, "INIT", "QUEUEDATA", 1.0), "v": 9})], "line 1: schema version 9"),
    ([json.dumps(_record(1, "INIT", "RUNNING", 1.0))], "line 1: INIT -> RUNNING is not an edge"),
    ([json.dumps(_record(1, "INIT", "QUEUEDATA", 5.0)), "", json.dumps(_record(2, "QUEUEDATA", "CHECKS", 1.0))],
     "line 3: the monotonic clock went back"),
    ([json.dumps(_record(1, "INIT", None, 1.0, ok=False))], "no transition was taken"),
])
def test_a_bad_highlight_log_is_refused_with_a_reason(tmp_path: Path, lines: list[str], why: str) -> None:
    log = tmp_path / "transitions.jsonl"
    log.write_text("".join(line + "\n" for line in lines))
    with pytest.raises(LogError, match=re.escape(why)):
        read_run(log)
    result = _cli("--highlight", str(log))
    assert result.returncode == 2 and result.stdout == ""
    assert f"--highlight {log}: " in result.stderr and why in result.stderr
    assert "Traceback" not in result.stderr


def test_a_missing_highlight_log_is_exit_2(tmp_path: Path) -> None:
    result = _cli("--format", "dot", "--highlight", str(tmp_path / "nope.jsonl"))
    assert result.returncode == 2 and "cannot read it: No such file or directory" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed (apt-get install graphviz)")
def test_svg_is_drawn_by_graphviz(real_log: Path, tmp_path: Path) -> None:
    result = _cli("--format", "svg", "--highlight", str(real_log))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("<?xml") and "<svg" in result.stdout
    assert all(f">{s.name}" in result.stdout for s in STATES)
    assert "RUNNING · " in result.stdout
    assert _cli("-o", str(tmp_path / "m.svg")).returncode == 0  # the suffix picks the format
    assert (tmp_path / "m.svg").read_text(encoding="utf-8") == render("svg")


def test_svg_without_graphviz_says_so_and_exits_3(tmp_path: Path) -> None:
    no_dot = {"PATH": str(tmp_path)}  # an empty dir: no dot on it
    result = _cli("--format", "svg", env=no_dot)
    assert result.returncode == 3 and result.stdout == ""
    assert "Graphviz's `dot` is not on PATH" in result.stderr and "apt-get install graphviz" in result.stderr
    assert "Traceback" not in result.stderr
    out = tmp_path / "out"
    result = _cli("--write-all", str(out), env=no_dot)
    assert result.returncode == 3 and "pilot.svg not written" in result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["pilot.dot", "pilot.md", "pilot.mmd"]
    assert (out / "pilot.dot").read_text(encoding="utf-8") == render("dot")


def test_write_all_and_format_do_not_mix(tmp_path: Path) -> None:
    result = _cli("--write-all", str(tmp_path), "--format", "dot")
    assert result.returncode == 2 and "drop --format" in result.stderr
