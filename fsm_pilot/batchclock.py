"""The batch system's clock: when the job slot ends, read from the batch system where it says so.

A pilot loses its job if the batch system kills it before the final update, so
the time left is taken from whoever does the killing, first found:

* Slurm: ``SLURM_JOB_END_TIME`` (epoch; Slurm 23.02+ sets it; 22.05 does not: its
  libslurmfull has no such variable), else ``squeue -h -j $SLURM_JOB_ID -o %L``
  (time left, ``[days-]hours:minutes:seconds``), run once with a 5 s timeout;
* HTCondor: the job ad ``$_CONDOR_JOB_AD``: ``BatchRuntime`` (s, set by HTCondor-CE),
  else ``MaxWallTimeMins`` or ``maxWallTime`` (minutes), counted from
  ``JobCurrentStartDate`` (else ``JobStartDate``, else the pilot's start);
* PBS/Torque: ``PBS_WALLTIME`` (s), counted from the pilot's start.

Read once at start and again on a warning signal (SIGUSR1), never per tick: a
subprocess per heartbeat would cost more than the pilot does. Without any of
these the pilot's lifetime (queuedata maxtime or -l) is the clock.
"""

from __future__ import annotations

import math
import re
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

#: squeue answers from slurmctld's memory; past this the pilot goes on with its own lifetime.
SQUEUE_TIMEOUT = 5.0
_SLURM_LEFT = re.compile(r"^(?:(\d+)-)?(?:(\d+):)?(\d+):(\d+)$")
#: HTCondor job-ad attributes giving the slot's walltime, with their unit in seconds.
CONDOR_LIMITS = (("BatchRuntime", 1.0), ("MaxWallTimeMins", 60.0), ("maxWallTime", 60.0))
CONDOR_STARTS = ("JobCurrentStartDate", "JobStartDate")

Runner = Callable[[list[str], float], str]


@dataclass(frozen=True)
class Reading:
    """What a batch system said: the slot's end (epoch seconds) and where that came from."""

    end_wall: float
    source: str  #: e.g. "slurm: SLURM_JOB_END_TIME", "slurm: squeue %L", "htcondor: BatchRuntime"


def parse_slurm_left(text: str) -> float | None:
    """Seconds in squeue's ``%L``: ``59:58``, ``1:00:00``, ``2-03:04:05``; None for UNLIMITED/INVALID/junk."""
    match = _SLURM_LEFT.match(text.strip())
    if match is None:
        return None
    days, hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    return float(((days * 24 + hours) * 60 + minutes) * 60 + seconds)


def _number(text: str | None) -> float | None:
    try:
        value = float(str(text).strip().strip('"'))
    except ValueError:
        return None
    return value if value > 0 and math.isfinite(value) else None


def run_command(argv: list[str], timeout: float) -> str:
    """A command's stdout ("" if it cannot run, fails or times out)."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout if done.returncode == 0 else ""


def _slurm(env: Mapping[str, str], now: float, run: Runner) -> Reading | None:
    end = _number(env.get("SLURM_JOB_END_TIME"))
    if end is not None:
        return Reading(end, "slurm: SLURM_JOB_END_TIME")
    job_id = env.get("SLURM_JOB_ID", "").strip()
    if not job_id.isdigit():
        return None
    lines = run(["squeue", "-h", "-j", job_id, "-o", "%L"], SQUEUE_TIMEOUT).strip().splitlines()
    left = parse_slurm_left(lines[0]) if lines else None
    return Reading(now + left, f"slurm: squeue -j {job_id} %L = {lines[0].strip()}") if left is not None else None


def read_job_ad(path: Path) -> dict[str, str]:
    """``Name = value`` lines of an HTCondor job ad, names lower-cased (ClassAd names are case-blind)."""
    ad: dict[str, str] = {}
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ad
    for line in text.splitlines():
        name, sep, value = line.partition("=")
        if sep:
            ad[name.strip().lower()] = value.strip()
    return ad


def _condor(env: Mapping[str, str], started: float) -> Reading | None:
    path = env.get("_CONDOR_JOB_AD")
    if not path:
        return None
    ad = read_job_ad(Path(path))
    start = next((v for v in (_number(ad.get(k.lower())) for k in CONDOR_STARTS) if v is not None), started)
    for name, unit in CONDOR_LIMITS:
        limit = _number(ad.get(name.lower()))
        if limit is not None:
            return Reading(start + limit * unit, f"htcondor: {name} = {ad[name.lower()]} in $_CONDOR_JOB_AD")
    return None


def _pbs(env: Mapping[str, str], started: float) -> Reading | None:
    walltime = _number(env.get("PBS_WALLTIME"))
    return Reading(started + walltime, f"pbs: PBS_WALLTIME = {walltime:g}") if walltime is not None else None


def read(env: Mapping[str, str], started: float, now: float | None = None,
         run: Runner = run_command) -> Reading | None:
    """The batch system's end of this job slot, or None where no batch system says."""
    now = time.time() if now is None else now
    return _slurm(env, now, run) or _condor(env, started) or _pbs(env, started)


@dataclass(frozen=True)
class Clock:
    """The pilot's clock: the monotonic time its slot ends, and the source that said so."""

    end_mono: float
    source: str
    known: bool  #: False when only the built-in default lifetime says (no batch system, no maxtime, no -l)

    def left(self, now: float | None = None) -> float:
        """Seconds until the slot ends."""
        return self.end_mono - (time.monotonic() if now is None else now)


def resolve(batch: Reading | None, lifetime: float, lifetime_source: str, start_mono: float,
            start_wall: float) -> Clock:
    """The earlier of the batch system's end and an explicit lifetime (maxtime, -l); else the default one."""
    own = Clock(start_mono + lifetime, f"lifetime {lifetime:g} s ({lifetime_source})", lifetime_source != "default")
    if batch is None:
        return own
    theirs = Clock(start_mono + (batch.end_wall - start_wall), batch.source, True)
    return own if own.known and own.end_mono < theirs.end_mono else theirs
