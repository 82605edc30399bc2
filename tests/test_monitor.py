"""Monitoring checks and their scheduling, fed plain numbers and a fake clock."""

from __future__ import annotations

import dataclasses

import pytest

from fsm_pilot.errors import PilotError
from fsm_pilot.monitor import (
    Activity,
    DirSize,
    Intervals,
    Limits,
    Measurements,
    Schedule,
    check_disk,
    check_lifetime,
    check_looping,
    check_memory,
    check_output_sizes,
    check_stdout,
    check_walltime,
    check_workdir,
    due,
    due_checks,
    next_tick,
    run_due_checks,
)
from fsm_pilot.monitor.checks import ORDER
from fsm_pilot.monitor.usage import Sample
from fsm_pilot.payload import Usage

GIB = 1024**3
LIMITS = Limits(memory_kb=8_000_000, workdir_bytes=1000, stdout_bytes=2 * GIB, output_file_bytes=500 * GIB,
                min_free_bytes=GIB, job_walltime=3600.0, lifetime_end=10_000.0, looping_limit=7200.0)


def usage(pss: int | None, rss: int = 1) -> Usage:
    return Usage(rss_kb=rss, pss_kb=pss, nprocs=2, cpu_seconds=1.0)


def idle(seconds: float) -> Activity:
    return Activity(idle_seconds=seconds, newest_mtime=None, newest_path=None, complete=True)


# --- the checks at, below and above each threshold --------------------------------


@pytest.mark.parametrize(("pss", "broken"), [(7_999_999, False), (8_000_000, False), (8_000_001, True)])
def test_memory_kills_only_above_the_limit(pss: int, broken: bool) -> None:
    found = check_memory(usage(pss), LIMITS)
    assert (found is not None) == broken
    if found is not None:
        assert int(found.error) == 1235
        assert found.threshold == 8_000_000 and found.inputs["pss_kb"] == pss
        assert "8000001 kB > 8000000 kB" in found.diag


def test_memory_falls_back_to_rss_when_pss_is_unreadable() -> None:
    assert check_memory(usage(None, rss=8_000_000), LIMITS) is None
    found = check_memory(usage(None, rss=8_000_001), LIMITS)
    assert found is not None and "RSS" in found.diag


def test_memory_without_a_limit_never_kills() -> None:
    assert check_memory(usage(10**12), dataclasses.replace(LIMITS, memory_kb=None)) is None


@pytest.mark.parametrize(("seconds", "broken"), [(7199.0, False), (7200.0, False), (7200.5, True)])
def test_looping_after_the_limit_without_file_changes(seconds: float, broken: bool) -> None:
    found = check_looping(idle(seconds), LIMITS)
    assert (found is not None) == broken
    if found is not None:
        assert int(found.error) == 1150 and found.threshold == 7200.0


def test_looping_disabled() -> None:
    assert check_looping(idle(10**9), dataclasses.replace(LIMITS, looping_limit=None)) is None


@pytest.mark.parametrize(("size", "broken"), [(999, False), (1000, False), (1001, True)])
def test_workdir(size: int, broken: bool) -> None:
    found = check_workdir(DirSize(size, 3, complete=True), LIMITS)
    assert (found is not None) == broken
    if found is not None:
        assert int(found.error) == 1104


def test_workdir_walk_cut_short_says_more_than() -> None:
    found = check_workdir(DirSize(1500, 2, complete=False), LIMITS)
    assert found is not None and "more than 1500 B" in found.diag


@pytest.mark.parametrize(("size", "broken"), [(2 * GIB - 1, False), (2 * GIB, False), (2 * GIB + 1, True)])
def test_stdout(size: int, broken: bool) -> None:
    found = check_stdout({"payload.stderr": 5, "payload.stdout": size}, LIMITS)
    assert (found is not None) == broken
    if found is not None:
        assert int(found.error) == 1106 and "payload.stdout" in found.diag


def test_stdout_without_logs_yet() -> None:
    assert check_stdout({}, LIMITS) is None


@pytest.mark.parametrize(("size", "broken"), [(500 * GIB - 1, False), (500 * GIB, True), (500 * GIB + 1, True)])
def test_output_size(size: int, broken: bool) -> None:
    found = check_output_sizes({"a.root": 10, "b.root": size}, LIMITS)
    assert (found is not None) == broken
    if found is not None:
        assert int(found.error) == 1124 and "b.root" in found.diag


def test_empty_output_fails_only_when_enabled() -> None:
    assert check_output_sizes({"a.root": 0}, LIMITS) is None
    found = check_output_sizes({"a.root": 0}, dataclasses.replace(LIMITS, fail_empty_outputs=True))
    assert found is not None and found.error == PilotError.EMPTYOUTPUTFILE


@pytest.mark.parametrize(("free", "broken"), [(GIB + 1, False), (GIB, True), (GIB - 1, True)])
def test_disk(free: int, broken: bool) -> None:
    found = check_disk(free, LIMITS)
    assert (found is not None) == broken
    if found is not None:
        assert int(found.error) == 1098 and found.inputs == {"free_bytes": free}


@pytest.mark.parametrize(("seconds", "broken"), [(3599.9, False), (3600.0, True), (3601.0, True)])
def test_walltime_fires_at_the_deadline(seconds: float, broken: bool) -> None:
    found = check_walltime(seconds, LIMITS)
    assert (found is not None) == broken
    if found is not None:
        assert int(found.error) == 1213


def test_walltime_unset() -> None:
    assert check_walltime(10**9, dataclasses.replace(LIMITS, job_walltime=None)) is None


@pytest.mark.parametrize(("now", "broken"), [(9999.0, False), (10_000.0, True), (10_001.0, True)])
def test_lifetime(now: float, broken: bool) -> None:
    found = check_lifetime(now, LIMITS)
    assert (found is not None) == broken
    if found is not None:
        assert found.error == PilotError.REACHEDMAXTIME and found.as_decision().as_record()["error"] == 1213


# --- scheduling with a fake clock ---------------------------------------------------------


def test_due() -> None:
    assert not due(159.9, 100.0, 60.0)
    assert due(160.0, 100.0, 60.0) and due(500.0, 100.0, 60.0)
    assert not due(10**9, 0.0, None)


def schedule(started: float = 1000.0, **changes: object) -> Schedule:
    """A schedule started at ``started`` with LIMITS (lifetime 20000 s away) changed by ``changes``."""
    fields: dict[str, object] = {"lifetime_end": started + 20_000, **changes}
    return Schedule(dataclasses.replace(LIMITS, **fields), started)  # type: ignore[arg-type]


def test_nothing_is_due_at_start_and_the_first_tick_is_a_minute_away() -> None:
    plan = schedule()
    assert due_checks(1000.0, plan) == ()
    assert next_tick(1000.0, plan) == 60.0
    assert next_tick(1030.0, plan) == 30.0
    assert set(due_checks(1060.0, plan)) == {"memory", "stdout", "disk", "workdir", "output_sizes"}


def test_looping_first_runs_after_its_start_then_every_interval() -> None:
    plan = schedule(intervals=Intervals(looping=900.0), looping_start=1500.0)
    assert "looping" not in due_checks(1000.0 + 1499, plan)
    assert "looping" in due_checks(1000.0 + 1500, plan)
    plan.last_run["looping"] = 2500.0
    assert "looping" not in due_checks(3399.0, plan) and "looping" in due_checks(3400.0, plan)


def test_deadlines_wake_the_step_exactly() -> None:
    plan = schedule(job_walltime=30.0)
    assert next_tick(1000.0, plan) == 30.0
    assert due_checks(1030.0, plan) == ("walltime",)
    plan = schedule(lifetime_end=1010.0)
    assert next_tick(1000.0, plan) == 10.0 and due_checks(1010.0, plan) == ("lifetime",)


def test_disabled_checks_are_never_scheduled() -> None:
    plan = schedule(looping_limit=None, job_walltime=None, intervals=Intervals(
        memory=10**9, looping=1.0, disk=10**9, workdir=10**9, stdout=10**9, outputs=10**9))
    assert next_tick(1000.0, plan) == 20_000.0  # only the lifetime is left
    assert "looping" not in due_checks(1000.0 + 10**6, plan)


def test_next_tick_never_negative_when_overdue() -> None:
    assert next_tick(5000.0, schedule()) == 0.0


def measured(**facts: object) -> Measurements:
    defaults: dict[str, object] = {
        "sample": Sample(0.0, usage(100), vmem_kb=200, swap_kb=0, io={}),
        "workdir": DirSize(10, 1, complete=True), "logs": {"payload.stdout": 1}, "outputs": {}, "free_bytes": 2 * GIB}
    return Measurements(**{**defaults, **facts})  # type: ignore[arg-type]


def test_a_pass_runs_due_checks_records_evidence_and_reschedules() -> None:
    plan = schedule()
    violation, evidence = run_due_checks(1060.0, plan, measured())
    assert violation is None
    assert [d.guard for d in evidence] == [c for c in ORDER if c in plan.last_run and c != "looping"]
    assert all(d.allowed for d in evidence)
    assert all(plan.last_run[d.guard] == 1060.0 for d in evidence)
    assert due_checks(1061.0, plan) == () and next_tick(1061.0, plan) == 59.0


def test_a_pass_stops_at_the_first_violation() -> None:
    plan = schedule()
    violation, evidence = run_due_checks(1060.0, plan, measured(free_bytes=5, workdir=DirSize(10**6, 1, True)))
    assert violation is not None and violation.check == "disk" and violation.error == PilotError.NOLOCALSPACE
    assert evidence[-1] == violation.as_decision()
    assert "workdir" not in [d.guard for d in evidence]  # after the first violation nothing else runs
    assert plan.last_run["workdir"] == 1000.0


def test_lifetime_comes_first_in_a_pass() -> None:
    plan = schedule(lifetime_end=1060.0)
    violation, evidence = run_due_checks(1060.0, plan, measured(sample=Sample(0, usage(10**9), 0, 0, {})))
    assert violation is not None and violation.check == "lifetime" and len(evidence) == 1


def test_a_due_check_without_its_measurement_is_recorded_and_not_retried_at_once() -> None:
    plan = schedule()
    facts = Measurements(sample=None, logs={}, outputs={}, workdir=DirSize(0, 0, True), errors={"disk": "statvfs"})
    violation, evidence = run_due_checks(1060.0, plan, facts)
    assert violation is None
    unmeasured = {d.guard: d.inputs for d in evidence if d.inputs.get("measured") is False}
    assert unmeasured == {"memory": {"measured": False, "error": None},
                          "disk": {"measured": False, "error": "statvfs"}}
    assert next_tick(1060.0, plan) == 60.0
