"""Guards: pure, named predicates over measured facts.

Steps measure (statvfs, the proxy file, clocks) into :class:`Facts`; guards
only decide, and every decision carries its evidence (inputs, threshold,
outcome, the error a refusal means) so the transition log can show why the
pilot took another job or stopped. Tests feed guards plain numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field

from fsm_pilot.errors import PilotError

GB = 1000**3


@dataclass(frozen=True)
class Facts:
    """What the pilot measured just before deciding whether to take a job."""

    elapsed: float  #: seconds since the pilot started
    free_bytes: int  #: free space in the pilot dir's file system
    lifetime_left: float  #: seconds until the slot ends (fsm_pilot.batchclock: the batch system, maxtime or -l)
    jobs_run: int  #: jobs taken so far by this pilot
    timefloor: float  #: queuedata timefloor, in seconds (0 = one job only)
    credential: str  #: configured credentials ("x509", "token", "x509+token"), "none", or "skipped" (-t)
    credential_seconds_left: float | None  #: the shortest-lived credential's; None: skipped, unusable, no expiry
    fast_failures: int = 0  #: jobs in a row that failed within ``Thresholds.blackhole_seconds``
    #: seconds left of each configured credential, by kind (the evidence behind the shortest)
    credential_lifetimes: Mapping[str, float | None] = field(default_factory=dict)
    #: why a configured credential cannot be used (its file, what is wrong), or None
    credential_problem: str | None = None


@dataclass(frozen=True)
class Thresholds:
    """Limits the guards compare against; defaults are Pilot 3's."""

    min_free_bytes: int = 2 * GB
    #: 72 h at start, less Pilot 3's 20 min grace.
    proxy_start_seconds: float = 72 * 3600 - 20 * 60
    #: before each later job: what a running job needs at least.
    proxy_job_seconds: float = 3600
    #: the pilot stops this long before its walltime ends (REACHEDMAXTIME grace).
    lifetime_margin_seconds: float = 180
    #: jobs per pilot; 0 = no limit (timefloor decides).
    max_jobs: int = 0
    #: this many jobs in a row failing within ``blackhole_seconds`` means the node eats jobs.
    blackhole_jobs: int = 3
    blackhole_seconds: float = 60


@dataclass(frozen=True)
class Decision:
    """One guard evaluation, as recorded in the transition log."""

    guard: str
    allowed: bool
    inputs: Mapping[str, object]
    threshold: object
    error: PilotError | None = None

    def as_record(self) -> dict[str, object]:
        """The decision as a JSON-ready dict."""
        record = asdict(self)
        record["inputs"] = dict(self.inputs)
        record["error"] = int(self.error) if self.error is not None else None
        return record


def disk_space(facts: Facts, limits: Thresholds) -> Decision:
    """Enough free disk for a new job (Pilot 3: 2 GB before each getJob)."""
    ok = facts.free_bytes >= limits.min_free_bytes
    return Decision("disk_space", ok, {"free_bytes": facts.free_bytes}, limits.min_free_bytes,
                    None if ok else PilotError.NOLOCALSPACE)


def _credential_inputs(facts: Facts) -> dict[str, object]:
    """The evidence: what is configured, the shortest lifetime, each lifetime, any problem."""
    inputs: dict[str, object] = {"credential": facts.credential, "seconds_left": facts.credential_seconds_left}
    if facts.credential_lifetimes:
        inputs["lifetimes"] = dict(facts.credential_lifetimes)
    if facts.credential_problem is not None:
        inputs["problem"] = facts.credential_problem
    return inputs


def proxy_lifetime(facts: Facts, limits: Thresholds) -> Decision:
    """Every configured credential is usable for the next job (skipped with -t).

    Each is checked: the server may be handed either, so a valid proxy does not rescue an expired
    token, nor the other way round. The proxy must outlive Pilot 3's thresholds (72 h before the
    first job, 1 h before the next); a token only must not have expired, since tokens are short-lived
    by design and renewed in place (Harvester rewrites the file), which a proxy never is.
    """
    first = facts.jobs_run == 0
    threshold = limits.proxy_start_seconds if first else limits.proxy_job_seconds
    inputs = _credential_inputs(facts)
    if facts.credential == "skipped":
        return Decision("proxy_lifetime", True, inputs, threshold)
    if facts.credential == "none" or facts.credential_problem is not None:
        return Decision("proxy_lifetime", False, inputs, threshold, PilotError.NOPROXY)
    token_left = facts.credential_lifetimes.get("token")
    if token_left is not None and token_left <= 0:
        return Decision("proxy_lifetime", False, inputs, threshold, PilotError.CERTIFICATEHASEXPIRED)
    lifetimes = facts.credential_lifetimes
    left = lifetimes.get("x509") if lifetimes else facts.credential_seconds_left
    if left is None:  # no proxy (a token alone, not expired), or a token without expiry
        return Decision("proxy_lifetime", True, inputs, threshold)
    if left <= 0:
        return Decision("proxy_lifetime", False, inputs, threshold, PilotError.CERTIFICATEHASEXPIRED)
    ok = left >= threshold
    return Decision("proxy_lifetime", ok, inputs, threshold, None if ok else PilotError.PROXYTOOSHORT)


def pilot_lifetime(facts: Facts, limits: Thresholds) -> Decision:
    """Time is left for a job before the pilot must stop (normal end, not an error)."""
    ok = facts.lifetime_left > limits.lifetime_margin_seconds
    return Decision("pilot_lifetime", ok, {"lifetime_left": round(facts.lifetime_left, 3)},
                    limits.lifetime_margin_seconds)


def timefloor(facts: Facts, limits: Thresholds) -> Decision:
    """Take another job only while the pilot has run less than the queue's timefloor."""
    inputs = {"elapsed": round(facts.elapsed, 3), "jobs_run": facts.jobs_run}
    ok = facts.jobs_run == 0 or facts.elapsed < facts.timefloor
    return Decision("timefloor", ok, inputs, facts.timefloor)


def max_jobs(facts: Facts, limits: Thresholds) -> Decision:
    """No more than ``--max-jobs`` jobs per pilot (0 = no limit)."""
    ok = limits.max_jobs <= 0 or facts.jobs_run < limits.max_jobs
    return Decision("max_jobs", ok, {"jobs_run": facts.jobs_run}, limits.max_jobs)


def black_hole(facts: Facts, limits: Thresholds) -> Decision:
    """Stop when jobs keep failing fast in a row: the node, not the jobs, is broken (exit 75)."""
    ok = facts.fast_failures < limits.blackhole_jobs
    return Decision("black_hole", ok, {"fast_failures": facts.fast_failures},
                    {"jobs": limits.blackhole_jobs, "seconds": limits.blackhole_seconds},
                    None if ok else PilotError.BLACKHOLE)


Guard = Callable[[Facts, Thresholds], Decision]

#: Every guard the machine may name, by name.
GUARDS: dict[str, Guard] = {
    "disk_space": disk_space,
    "proxy_lifetime": proxy_lifetime,
    "pilot_lifetime": pilot_lifetime,
    "timefloor": timefloor,
    "max_jobs": max_jobs,
    "black_hole": black_hole,
}

#: The error a refusal means (None: a normal end, exit 0), for the operator documentation.
GUARD_ERRORS: dict[str, str] = {
    "disk_space": "NOLOCALSPACE (69)",
    "proxy_lifetime": "NOPROXY / CERTIFICATEHASEXPIRED (68), PROXYTOOSHORT (80)",
    "pilot_lifetime": "none: a normal end (0)",
    "timefloor": "none: a normal end (0)",
    "max_jobs": "none: a normal end (0)",
    "black_hole": "BLACKHOLE (75)",
}

#: Where each guard's threshold comes from, for the operator documentation.
GUARD_SOURCES: dict[str, str] = {
    "disk_space": "2 GB free in the pilot dir (Pilot 3's getJob minimum)",
    "proxy_lifetime": "the proxy: 72 h - 20 min before the first job, 1 h before later ones; the token: "
                      "not expired (renewed in place); skipped with -t",
    "pilot_lifetime": "the slot's time left (the batch system's clock, else queuedata maxtime or -l) "
                      "above 180 s (--lifetime-margin)",
    "timefloor": "queuedata timefloor (minutes); 0 = one job only",
    "max_jobs": "--max-jobs (0 = no limit)",
    "black_hole": "--blackhole-jobs jobs in a row failing within --blackhole-seconds (3 within 60 s)",
}
