"""limits_for: a job's limits from the job, the queuedata (and its grace params) and the settings."""

from __future__ import annotations

from typing import Any

import pytest

from fsm_pilot.job import Job, parse_job
from fsm_pilot.monitor import Intervals, Limits, limits_for
from fsm_pilot.monitor.limits import grace_factor, lifetime_end

MIB, GIB = 1024**2, 1024**3
QUEUE: dict[str, Any] = {"nickname": "Q", "maxrss": 4000, "maxwdir": 20000, "corecount": 1, "catchall": "",
                         "params": {}}


def job(**fields: object) -> Job:
    return parse_job({"PandaID": 7, "transformation": "run.sh", **fields})


def limits(the_job: Job | None = None, queue: dict[str, Any] | None = None, **kwargs: Any) -> Limits:
    return limits_for(the_job or job(), QUEUE if queue is None else queue,
                      lifetime=kwargs.pop("lifetime", 324000.0), pilot_started_mono=100.0, **kwargs)


def test_pilot3_defaults() -> None:
    found = limits()
    assert found.memory_kb == 2 * 4000 * 1024  # maxrss x 2 (pilot_rss_grace default 100 %)
    assert found.workdir_bytes == int(20000 * MIB * 1.2)  # maxwdir x 1.2 (pilot_maxwdir_grace default 20 %)
    assert found.stdout_bytes == 2 * GIB and found.output_file_bytes == 500 * GIB
    assert found.min_free_bytes == GIB
    assert found.looping_limit == 7200 and found.looping_start == 900
    assert found.lifetime_end == 100.0 + 324000 - 180
    assert found.job_walltime is None  # PULL: maxWalltime is not the batch limit
    assert found.intervals == Intervals(memory=60, looping=900, disk=60, workdir=60, stdout=60, outputs=60)
    assert found.fail_empty_outputs is False


@pytest.mark.parametrize(("params", "rss_factor", "wdir_factor"), [
    ({"pilot_rss_grace": 50}, 1.5, 1.2),
    ({"pilot_rss_grace": "0", "pilot_maxwdir_grace": "0"}, 1.0, 1.0),
    ({"pilot_maxwdir_grace": 100}, 2.0, 2.0),
    ({"pilot_rss_grace": "junk", "pilot_maxwdir_grace": None}, 2.0, 1.2),  # unusable: the default
])
def test_grace_params_are_percentages(params: dict[str, object], rss_factor: float, wdir_factor: float) -> None:
    found = limits(queue={**QUEUE, "params": params})
    assert found.memory_kb == int(rss_factor * 4000 * 1024)
    assert found.workdir_bytes == int(20000 * MIB * wdir_factor)


def test_grace_without_params() -> None:
    assert grace_factor({}, "pilot_walltime_grace", 0.0) == 1.0
    assert grace_factor({"params": None}, "pilot_rss_grace", 100.0) == 2.0


def test_memory_share_of_a_multicore_queue() -> None:
    queue = {**QUEUE, "maxrss": "16000", "corecount": "8"}
    assert limits(job(coreCount=1), queue).memory_kb == 2 * 2000 * 1024
    assert limits(job(coreCount=8), queue).memory_kb == 2 * 16000 * 1024


def test_per_core_queue_values() -> None:
    queue = {**QUEUE, "maxrss": 2000, "maxwdir": 10000, "corecount": 8, "catchall": "x=1,per_core_attr"}
    found = limits(job(coreCount=8), queue)
    assert found.memory_kb == 2 * 16000 * 1024 and found.workdir_bytes == int(80000 * MIB * 1.2)
    assert limits(job(coreCount=8), {**queue, "catchall": "per_core_attr=false"}).memory_kb == 2 * 2000 * 1024


@pytest.mark.parametrize(("push", "expected_mb"), [(False, 3000), (True, 2500)])
def test_memory_from_min_ram_count_without_maxrss(push: bool, expected_mb: int) -> None:
    found = limits(job(minRamCount=2500), {**QUEUE, "maxrss": 0}, push=push)
    assert found.memory_kb == 2 * expected_mb * 1024  # pull queues round up to 1000 MB


@pytest.mark.parametrize("maxrss", [0, None, "", "NULL"])
def test_no_memory_limit_without_maxrss_or_min_ram(maxrss: object) -> None:
    assert limits(job(), {**QUEUE, "maxrss": maxrss}).memory_kb is None


@pytest.mark.parametrize("maxwdir", [0, None, "oops"])
def test_workdir_default_without_maxwdir(maxwdir: object) -> None:
    assert limits(queue={**QUEUE, "maxwdir": maxwdir}).workdir_bytes == int((14336 + 2000) * MIB * 1.2)


def test_looping_disabled_by_the_job() -> None:
    assert limits(job(loopingCheck="False")).looping_limit is None
    assert limits(job(loopingCheck="True")).looping_limit == 7200


def test_looping_limit_has_pilot3s_floor() -> None:
    assert limits(looping_limit=600).looping_limit == 7200
    assert limits(looping_limit=600, looping_limit_min=0).looping_limit == 600
    assert limits(looping_limit=10800).looping_limit == 10800


@pytest.mark.parametrize(("fields", "params", "expected"), [
    ({"maxWalltime": 3600}, {}, 3600.0),
    ({"maxWalltime": "3600"}, {"pilot_walltime_grace": 10}, 3960.0),
    ({"maxCpuCount": 1800}, {}, 1800.0),  # no maxWalltime: the CPU limit stands in
    ({"maxWalltime": 3600, "maxCpuCount": 1800}, {}, 3600.0),
    ({"maxWalltime": 0}, {}, None),
    ({}, {}, None),
])
def test_job_walltime_in_push_mode(fields: dict[str, object], params: dict[str, object],
                                   expected: float | None) -> None:
    found = limits(job(**fields), {**QUEUE, "params": params}, push=True)
    assert found.job_walltime == (pytest.approx(expected) if expected is not None else None)


def test_job_walltime_check_can_be_forced() -> None:
    assert limits(job(maxWalltime=60), job_walltime_check=True).job_walltime == 60.0
    assert limits(job(maxWalltime=60), push=True, job_walltime_check=False).job_walltime is None


@pytest.mark.parametrize(("lifetime", "end_after"), [(3600, 3420), (300, 180), (100, 100), (0, 0)])
def test_lifetime_end_keeps_pilot3s_margin(lifetime: float, end_after: float) -> None:
    assert lifetime_end(100.0, lifetime) == 100.0 + end_after
    assert limits(lifetime=lifetime).lifetime_end == 100.0 + end_after


def test_every_number_is_configurable() -> None:
    found = limits(stdout_bytes=5, output_file_bytes=6, min_free_bytes=7, looping_start=8, lifetime_margin=60,
                   lifetime=1000, default_maxwdir_mb=1, fail_empty_outputs=True, intervals=Intervals(memory=1))
    assert (found.stdout_bytes, found.output_file_bytes, found.min_free_bytes) == (5, 6, 7)
    assert found.looping_start == 8 and found.lifetime_end == 100.0 + 940 and found.fail_empty_outputs
    assert found.intervals.memory == 1 and found.intervals.disk == 60
    assert limits(queue={**QUEUE, "maxwdir": 0}, default_maxwdir_mb=1).workdir_bytes == int(MIB * 1.2)
