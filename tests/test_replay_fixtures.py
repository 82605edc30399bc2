"""Recorded runs of the real pilot must keep replaying legally against the declared machine.

The logs in tests/fixtures/translog were written by real pilots (make_fixtures.py
runs them). A change to the machine that makes one of them illegal breaks
either old logs' post-mortems or the pilot's behaviour; if it is intended,
the recordings are regenerated and committed with the change (Temporal
replays recorded workflow histories against new code the same way).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fsm_pilot.replay import replay
from fsm_pilot.timeline import JobSummary, Observer

TRANSLOG = Path(__file__).parent / "fixtures" / "translog"
REGENERATE = ("a recorded run is now illegal: if the machine change is intended, regenerate with "
              "`python tests/fixtures/translog/make_fixtures.py` and commit the new fixtures")

# fixture -> (verdict, the state it ends in, the pilot's exit code, the schema versions, jobs)
EXPECTED: dict[str, tuple[str, str, int | None, list[int], int]] = {
    "multi_job": ("legal", "EXIT", 0, [1], 3),
    "v0_multi_job": ("legal", "EXIT", 0, [0], 3),
    "first_job_refused": ("legal", "EXIT", 69, [1], 0),
    "sigterm_running": ("legal", "ABORTED", 143, [1], 1),
    "server_kill": ("legal", "EXIT", 0, [1], 1),
    "recovery_dead_pilot": ("truncated", "STAGEOUT", None, [1], 1),
    "recovery_rescuer": ("legal", "EXIT", 82, [1], 0),
}


class Jobs(Observer):
    def __init__(self) -> None:
        self.jobs: list[JobSummary] = []

    def job(self, item: JobSummary) -> None:
        self.jobs.append(item)


def test_every_fixture_has_an_expectation() -> None:
    assert sorted(p.stem for p in TRANSLOG.glob("*.jsonl")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_recorded_run_replays_legally(name: str) -> None:
    status, state, code, versions, jobs = EXPECTED[name]
    report = replay(TRANSLOG / f"{name}.jsonl")
    verdict = report.verdict
    where = f"{name}.jsonl, seq {verdict.seq} (line {verdict.line})"
    assert verdict.status == status, f"{where}: {verdict.why}\n{REGENERATE}"
    assert (verdict.state, report.exit_code) == (state, code), f"{name}.jsonl ends differently now\n{REGENERATE}"
    assert (report.versions, report.timeline.jobs) == (versions, jobs)


def test_a_job_killed_by_the_server_is_recorded_as_such() -> None:
    observer = Jobs()
    replay(TRANSLOG / "server_kill.jsonl", observer)
    [job] = observer.jobs
    assert job.complete and job.states["RUNNING"] > 0
    report = replay(TRANSLOG / "server_kill.jsonl")
    assert report.timeline.loop_end is not None and report.timeline.loop_end["refused"] == ["timefloor"]


def test_the_dead_pilot_stopped_in_stageout_and_the_next_one_recovered_its_job() -> None:
    observer = Jobs()
    dead = replay(TRANSLOG / "recovery_dead_pilot.jsonl", observer)
    [job] = observer.jobs
    assert not job.complete and job.last_seq == dead.verdict.seq == 9
    rescuer = replay(TRANSLOG / "recovery_rescuer.jsonl")
    assert rescuer.timeline.seconds["RECOVERY"] > 0
    assert rescuer.terminal is not None and rescuer.terminal["reason"]["error_name"] == "NOJOBSINPANDA"


def test_the_job_loop_ends_on_the_recorded_guard_decision() -> None:
    loop_end = replay(TRANSLOG / "multi_job.jsonl").timeline.loop_end
    assert loop_end is not None and (loop_end["seq"], loop_end["refused"]) == (20, ["max_jobs"])
    refused = replay(TRANSLOG / "first_job_refused.jsonl").timeline.loop_end
    assert refused is not None and (refused["source"], refused["refused"]) == ("CLEANUP", ["disk_space"])
