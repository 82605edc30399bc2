"""Every limit the pilot enforces, triggered by a real payload; the whole tree dies each time.

Each payload also starts a child that ignores SIGTERM, so a limit's kill has
to go through SIGKILL; the test then checks that no process of the tree is
left. Limits and check intervals are made small with the pilot's own options.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from fsm_pilot.replay import problems
from tests.pilotrun import all_gone, job_def, make_launch, run_pilot, wait_for

#: A child that survives SIGTERM, recorded in pids.txt, then the test's own payload body.
STUBBORN = "(trap '' TERM; exec sleep 300) & echo $! >> $PILOT_HOME/pids.txt; echo $$ >> $PILOT_HOME/pids.txt; "
FAST = ("--check-interval", "0.1", "--kill-grace", "0.3")

@dataclass(frozen=True)
class Limit:
    """A limit to cross: the payload body, queuedata overrides, pilot options, job fields, the error code."""

    name: str
    body: str
    queue: dict[str, Any]
    extra: tuple[str, ...]
    fields: dict[str, str]
    code: int


CASES = [Limit(*case) for case in [
    # name, payload body, queuedata overrides, extra args, extra job fields, expected pilotErrorCode
    ("looping", "sleep 300", {}, ("--looping-limit", "1"), {}, 1150),
    ("memory", "exec python3 -c 'b = bytearray(300 * 2**20); b[::4096] = b\"x\" * len(b[::4096]); "
               "import time; time.sleep(300)'", {"maxrss": 120}, (), {}, 1235),
    ("workdir", "head -c 3000000 /dev/zero > big.bin; sleep 300", {"maxwdir": 1}, (), {}, 1104),
    ("stdout", "head -c 300000 /dev/zero; sleep 300", {}, ("--max-stdout", "100000"), {}, 1106),
    ("output", "head -c 300000 /dev/zero > out.bin; sleep 300", {}, ("--max-output-size", "100000"),
     {"outFiles": "out.bin,job.1.log.tgz", "scopeOut": "test"}, 1124),
    ("disk", "sleep 300", {}, ("--min-free-running", str(10**18)), {}, 1098),
    ("walltime", "sleep 300", {}, ("--harvester-submit-mode", "PUSH"), {"maxWalltime": "1"}, 1213),
    ("lifetime", "sleep 300", {"maxtime": 0}, ("-l", "3", "--lifetime-margin", "1"), {}, 1213),
]]


def _pids(launch_dir: Path) -> list[int]:
    """The pids the payload recorded in the pilot dir (its job dir is gone after the job)."""
    found = sorted(launch_dir.glob("Panda_Pilot_*/pids.txt"))
    return [int(x) for x in found[0].read_text().split()] if found else []



@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_limit_kills_the_tree_and_fails_the_job(tmp_path: Path, case: Limit) -> None:
    job = {**job_def(1, f"-c {json.dumps(STUBBORN + case.body)}"), **case.fields}
    launch = make_launch(tmp_path, [job], **case.queue)
    result = run_pilot(launch, *FAST, *case.extra, "--timefloor", "0")
    code = case.code
    assert result.returncode == 0, result.stderr
    report = launch.reports()[1]
    assert (report["state"], report["pilotErrorCode"]) == ("failed", code), report["pilotErrorDiag"]
    assert "job.1.log.tgz" in json.loads(report["xml"])  # the log is kept whatever killed the job
    records = launch.records()
    assert problems(records) == []
    killed = next(r for r in records if r["source"] == "RUNNING")
    assert (killed["event"], killed["reason"]["error"]) == ("payload_done", code)
    pids = _pids(launch.dir)
    assert len(pids) == 2, "the payload should have recorded itself and its stubborn child"
    wait_for(lambda: all_gone(pids), timeout=5, what=f"the {case.name} payload tree gone")


def test_usage_is_measured_and_reported(tmp_path: Path) -> None:
    body = ("python3 -c 'b = bytearray(80 * 2**20); b[::4096] = b\"x\" * len(b[::4096]); "
            "open(\"w.bin\", \"wb\").write(bytes(4 * 2**20)); import time; time.sleep(1.5)'")
    launch = make_launch(tmp_path, [job_def(1, f"-c {json.dumps(body)}")])
    result = run_pilot(launch, "--check-interval", "0.2", "--timefloor", "0")
    assert result.returncode == 0, result.stderr
    report = launch.reports()[1]
    assert report["state"] == "finished"
    assert report["maxRSS"] >= 80 * 1024  # kB
    assert report["totWCHAR"] >= 4 * 2**20
    assert "actualCoreCount=" in report["jobMetrics"]
    assert report["cpuConsumptionTime"] >= 0
    values = [int(x) for x in report["pilotTiming"].split("|")]
    names = ("getjob", "stagein", "payload", "stageout", "initial_setup", "setup")
    assert len(values) == len(names)
    timing = dict(zip(names, values))
    assert timing["payload"] >= 1
