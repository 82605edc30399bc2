"""Each guard at, below and above its threshold, from plain numbers."""

from __future__ import annotations

from dataclasses import replace

import pytest

from fsm_pilot.errors import PilotError
from fsm_pilot.guards import (
    Facts,
    Thresholds,
    black_hole,
    disk_space,
    max_jobs,
    pilot_lifetime,
    proxy_lifetime,
    timefloor,
)

LIMITS = Thresholds(min_free_bytes=1000, proxy_start_seconds=7200, proxy_job_seconds=3600,
                    lifetime_margin_seconds=180)
BASE = Facts(elapsed=100.0, free_bytes=5000, lifetime_left=5000.0, jobs_run=0, timefloor=600.0,
             credential="x509", credential_seconds_left=10_000.0)


@pytest.mark.parametrize(("free", "allowed"), [(999, False), (1000, True), (1001, True)])
def test_disk_space(free: int, allowed: bool) -> None:
    decision = disk_space(replace(BASE, free_bytes=free), LIMITS)
    assert decision.allowed is allowed
    assert decision.error == (None if allowed else PilotError.NOLOCALSPACE)
    assert (decision.inputs, decision.threshold) == ({"free_bytes": free}, 1000)


@pytest.mark.parametrize(("jobs_run", "left", "allowed"), [
    (0, 7199.0, False), (0, 7200.0, True), (0, 7201.0, True),
    (1, 3599.0, False), (1, 3600.0, True), (1, 3601.0, True),
])
def test_proxy_lifetime_threshold_depends_on_first_job(jobs_run: int, left: float, allowed: bool) -> None:
    decision = proxy_lifetime(replace(BASE, jobs_run=jobs_run, credential_seconds_left=left), LIMITS)
    assert decision.allowed is allowed
    assert decision.error == (None if allowed else PilotError.PROXYTOOSHORT)
    assert decision.threshold == (7200 if jobs_run == 0 else 3600)


@pytest.mark.parametrize(("credential", "left", "allowed", "error"), [
    ("skipped", None, True, None),
    ("none", None, False, PilotError.NOPROXY),
    ("token", None, True, None),
    ("x509", 0.0, False, PilotError.CERTIFICATEHASEXPIRED),
    ("x509", -5.0, False, PilotError.CERTIFICATEHASEXPIRED),
])
def test_proxy_lifetime_special_cases(credential: str, left: float | None, allowed: bool,
                                      error: PilotError | None) -> None:
    decision = proxy_lifetime(replace(BASE, credential=credential, credential_seconds_left=left), LIMITS)
    assert (decision.allowed, decision.error) == (allowed, error)


def test_proxy_lifetime_evidence_names_each_credential_and_the_problem() -> None:
    both = replace(BASE, credential="x509+token", credential_seconds_left=-60.0,
                   credential_lifetimes={"x509": 90_000.0, "token": -60.0})
    decision = proxy_lifetime(both, LIMITS)
    assert (decision.allowed, decision.error) == (False, PilotError.CERTIFICATEHASEXPIRED)
    assert decision.inputs["lifetimes"] == {"x509": 90_000.0, "token": -60.0}
    broken = replace(both, credential_seconds_left=None, credential_lifetimes={},
                     credential_problem="token file /auth/t does not exist: ...")
    decision = proxy_lifetime(broken, LIMITS)
    assert (decision.allowed, decision.error) == (False, PilotError.NOPROXY)
    assert decision.inputs["problem"] == "token file /auth/t does not exist: ..."
    assert proxy_lifetime(replace(broken, credential="skipped"), LIMITS).allowed is True


@pytest.mark.parametrize(("lifetimes", "allowed", "error"), [
    ({"token": 600.0}, True, None),  # short-lived but valid: renewed in place, not a proxy
    ({"x509": 90_000.0, "token": 600.0}, True, None),
    ({"x509": 600.0, "token": 90_000.0}, False, PilotError.PROXYTOOSHORT),  # the proxy's thresholds
    ({"x509": 90_000.0, "token": 0.0}, False, PilotError.CERTIFICATEHASEXPIRED),
])
def test_a_token_only_needs_to_be_unexpired(lifetimes: dict[str, float], allowed: bool,
                                            error: PilotError | None) -> None:
    facts = replace(BASE, credential="+".join(sorted(lifetimes)), credential_seconds_left=min(lifetimes.values()),
                    credential_lifetimes=lifetimes)
    decision = proxy_lifetime(facts, LIMITS)
    assert (decision.allowed, decision.error) == (allowed, error)


@pytest.mark.parametrize(("left", "allowed"), [(179.0, False), (180.0, False), (181.0, True)])
def test_pilot_lifetime(left: float, allowed: bool) -> None:
    decision = pilot_lifetime(replace(BASE, lifetime_left=left), LIMITS)
    assert (decision.allowed, decision.error) == (allowed, None)


@pytest.mark.parametrize(("elapsed", "allowed"), [(599.0, True), (600.0, False), (601.0, False)])
def test_timefloor_after_a_job(elapsed: float, allowed: bool) -> None:
    assert timefloor(replace(BASE, jobs_run=1, elapsed=elapsed), LIMITS).allowed is allowed


def test_timefloor_never_refuses_the_first_job_and_zero_means_one_job() -> None:
    assert timefloor(replace(BASE, jobs_run=0, timefloor=0.0, elapsed=50.0), LIMITS).allowed
    assert not timefloor(replace(BASE, jobs_run=1, timefloor=0.0, elapsed=0.001), LIMITS).allowed


def test_decision_record_is_json_ready() -> None:
    record = disk_space(replace(BASE, free_bytes=1), LIMITS).as_record()
    assert record == {"guard": "disk_space", "allowed": False, "inputs": {"free_bytes": 1},
                      "threshold": 1000, "error": 1098}


@pytest.mark.parametrize(("jobs_run", "limit", "allowed"), [(1, 2, True), (2, 2, False), (3, 2, False),
                                                             (50, 0, True)])
def test_max_jobs(jobs_run: int, limit: int, allowed: bool) -> None:
    decision = max_jobs(replace(BASE, jobs_run=jobs_run), replace(LIMITS, max_jobs=limit))
    assert (decision.allowed, decision.error) == (allowed, None)


@pytest.mark.parametrize(("failures", "allowed"), [(2, True), (3, False), (4, False)])
def test_black_hole(failures: int, allowed: bool) -> None:
    decision = black_hole(replace(BASE, fast_failures=failures), LIMITS)
    assert decision.allowed is allowed
    assert decision.error == (None if allowed else PilotError.BLACKHOLE)
