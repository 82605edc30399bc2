"""The limits a running job is held to, resolved once when its payload starts.

Each number comes from the job, the queue (queuedata and its ``params``
grace percentages) or the pilot's settings, with Pilot 3's defaults
(pilot/util/default.cfg, pilot/info/queuedata.py, pilot/user/atlas/memory.py,
pilot/util/monitoring.py, pilot/control/monitor.py). Resolving them in one
pure function keeps the checks free of lookups and lets the transition log
show exactly which threshold a job met.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fsm_pilot.job import Job

KIB = 1024
MIB = 1024**2
#: Pilot 3's sizes ("1 GB", "500 GB", 2097152 kB) are binary: human2bytes uses powers of 1024.
GIB = 1024**3

#: Pilot 3's fallback when queuedata has no maxwdir: 14336 MB of inputs + 2000 MB (parameters.py).
DEFAULT_MAXWDIR_MB = 14336 + 2000
#: Pilot 3's grace defaults, in percent, when queuedata params do not set them.
DEFAULT_RSS_GRACE_PCT = 100.0
DEFAULT_MAXWDIR_GRACE_PCT = 20.0
DEFAULT_WALLTIME_GRACE_PCT = 0.0


@dataclass(frozen=True)
class Intervals:
    """Seconds between runs of each periodic check (Pilot 3's default.cfg)."""

    memory: float = 60.0  #: memory_usage_verification_time
    looping: float = 900.0  #: looping_verification_time
    disk: float = 60.0  #: disk_space_verification_time (free space, work dir, stdout, outputs)
    workdir: float = 60.0
    stdout: float = 60.0
    outputs: float = 60.0


@dataclass(frozen=True)
class Limits:
    """What a running job may use; None disables a check."""

    memory_kb: int | None  #: payload tree PSS (RSS where PSS is unreadable) above this: PAYLOADEXCEEDMAXMEM
    workdir_bytes: int  #: job dir larger than this: USERDIRTOOLARGE
    stdout_bytes: int  #: a payload log larger than this: STDOUTTOOBIG
    output_file_bytes: int  #: an output this large or larger: OUTPUTFILETOOLARGE
    min_free_bytes: int  #: free space at or below this: NOLOCALSPACE
    job_walltime: float | None  #: payload seconds allowed (grace included): REACHEDMAXTIME
    lifetime_end: float  #: monotonic time the pilot must stop the job: REACHEDMAXTIME
    looping_limit: float | None  #: seconds without a file change in the job dir: LOOPINGJOB
    looping_start: float = 900.0  #: payload seconds before the first looping check
    fail_empty_outputs: bool = False  #: also fail a zero-size output while running (EMPTYOUTPUTFILE)
    intervals: Intervals = field(default_factory=Intervals)


def _number(value: object) -> float | None:
    """A queuedata number given as int, float or text; None when absent or not a number."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value) if math.isfinite(value) else None
    try:
        number = float(str(value).strip())
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def grace_factor(queuedata: Mapping[str, Any], name: str, default_pct: float) -> float:
    """``1 + params[name] / 100``: queuedata gives the grace in percent (queuedata.py set_pilot_*_grace)."""
    params = queuedata.get("params")
    raw = params.get(name) if isinstance(params, Mapping) else None
    pct = _number(raw)
    return 1.0 + (default_pct if pct is None or pct < 0 else pct) / 100.0


def _per_core(queuedata: Mapping[str, Any]) -> bool:
    """catchall ``per_core_attr`` (or ``=true``): maxrss and maxwdir are per core (ATLASPANDA-1609)."""
    for item in str(queuedata.get("catchall") or "").split(","):
        name, sep, value = item.strip().partition("=")
        if name == "per_core_attr":
            return not sep or value.strip().lower() in {"true", "yes", "1"}
    return False


def queue_mb(queuedata: Mapping[str, Any], key: str) -> float | None:
    """maxrss or maxwdir in MB for the whole queue slot; None when unset or 0."""
    value = _number(queuedata.get(key))
    if value is None or value <= 0:
        return None
    cores = _number(queuedata.get("corecount")) or 1.0
    return value * cores if _per_core(queuedata) and cores > 0 else value


def memory_limit_kb(job: Job, queuedata: Mapping[str, Any], *, push: bool = False) -> int | None:
    """PSS limit in kB: grace x maxrss scaled to the job's cores, else grace x minRamCount.

    maxrss covers the queue's ``corecount`` cores, so a job using fewer (or
    more) gets its share (atlas/memory.py get_ucore_scale_factor). Without
    maxrss, pull queues round minRamCount up to the next 1000 MB as Pilot 3
    does; push queues use it as given.
    """
    grace = grace_factor(queuedata, "pilot_rss_grace", DEFAULT_RSS_GRACE_PCT)
    maxrss = queue_mb(queuedata, "maxrss")
    if maxrss is not None:
        queue_cores = _number(queuedata.get("corecount")) or 0.0
        scale = job.core_count / queue_cores if queue_cores > 0 and job.core_count > 0 else 1.0
        return int(grace * int(maxrss * scale) * KIB)
    if job.min_ram_count > 0:
        minram = job.min_ram_count if push else math.ceil(job.min_ram_count / 1000) * 1000
        return int(grace * minram * KIB)
    return None


def workdir_limit_bytes(queuedata: Mapping[str, Any], default_mb: float = DEFAULT_MAXWDIR_MB) -> int:
    """maxwdir (MB) x the maxwdir grace (default 20 %, i.e. x 1.2)."""
    grace = grace_factor(queuedata, "pilot_maxwdir_grace", DEFAULT_MAXWDIR_GRACE_PCT)
    maxwdir = queue_mb(queuedata, "maxwdir") or default_mb
    return int(maxwdir * MIB * grace)


def job_walltime_limit(job: Job, queuedata: Mapping[str, Any]) -> float | None:
    """maxWalltime (else maxCpuCount) x the walltime grace; None when the job sets neither."""
    seconds = job.max_walltime or job.max_cpu_count
    if not seconds or seconds <= 0:
        return None
    return seconds * grace_factor(queuedata, "pilot_walltime_grace", DEFAULT_WALLTIME_GRACE_PCT)


def lifetime_end(pilot_started_mono: float, lifetime: float, margin: float = 180.0) -> float:
    """When the pilot must stop: ``margin`` before its lifetime ends (monitor.py, grace_time = 180 s).

    Pilot 3 applies the margin only once it has run for ``margin`` seconds,
    so a lifetime shorter than twice the margin ends at ``min(lifetime, margin)``
    at the earliest, never before the pilot started.
    """
    return pilot_started_mono + max(lifetime - margin, min(lifetime, margin))


def limits_for(job: Job, queuedata: Mapping[str, Any], *, lifetime: float, pilot_started_mono: float,
               looping_limit: float = 7200.0, looping_limit_min: float = 7200.0, looping_start: float = 900.0,
               push: bool = False, job_walltime_check: bool | None = None, lifetime_margin: float = 180.0,
               stdout_bytes: int = 2 * GIB, output_file_bytes: int = 500 * GIB, min_free_bytes: int = 1 * GIB,
               default_maxwdir_mb: float = DEFAULT_MAXWDIR_MB, fail_empty_outputs: bool = False,
               intervals: Intervals | None = None) -> Limits:
    """Resolve a job's limits; every default is Pilot 3's.

    ``lifetime`` is the pilot's walltime in seconds (queuedata maxtime or -l,
    as the settings resolved it). The looping limit is never below
    ``looping_limit_min`` (looping_limit_min_default) and is off when the job
    says ``loopingCheck=False``. The job's own walltime is enforced by default
    only in PUSH mode, as Pilot 3 does (queuehandling.get_timeinfo_from_job):
    in PULL mode maxWalltime is task metadata; ``job_walltime_check`` overrides.
    """
    check_walltime = push if job_walltime_check is None else job_walltime_check
    return Limits(
        memory_kb=memory_limit_kb(job, queuedata, push=push),
        workdir_bytes=workdir_limit_bytes(queuedata, default_maxwdir_mb),
        stdout_bytes=stdout_bytes,
        output_file_bytes=output_file_bytes,
        min_free_bytes=min_free_bytes,
        job_walltime=job_walltime_limit(job, queuedata) if check_walltime else None,
        lifetime_end=lifetime_end(pilot_started_mono, lifetime, lifetime_margin),
        looping_limit=max(looping_limit, looping_limit_min) if job.looping_check else None,
        looping_start=looping_start,
        fail_empty_outputs=fail_empty_outputs,
        intervals=intervals or Intervals(),
    )
