"""Payload monitoring checks: pure comparisons of measured facts with the job's limits.

Like the guards, every check yields its evidence (a :class:`Decision`: inputs,
threshold, error) so the transition log shows why a payload was killed or
kept. The RUNNING step runs one pass per tick: ``due_checks`` says what to
measure, ``run_due_checks`` judges it, and ``next_tick`` says how long to
sleep until the next check is due, so the pilot never polls. Comparisons are
Pilot 3's (pilot/util/monitoring.py, loopingjob.py, atlas/memory.py,
control/monitor.py); the two deadlines fire when they are reached.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fsm_pilot.errors import PilotError
from fsm_pilot.guards import Decision
from fsm_pilot.monitor.limits import Limits
from fsm_pilot.monitor.measure import (
    DISK,
    LIFETIME,
    LOOPING,
    MEMORY,
    OUTPUTS,
    STDOUT,
    WALLTIME,
    WORKDIR,
    Activity,
    DirSize,
    Measurements,
)
from fsm_pilot.payload.process import Usage

#: The order of a pass: time limits first (the pilot must stop anyway), then Pilot 3's order.
ORDER = (LIFETIME, WALLTIME, MEMORY, LOOPING, STDOUT, DISK, WORKDIR, OUTPUTS)
#: Periodic checks and the Intervals field giving their period.
PERIODIC = {MEMORY: "memory", LOOPING: "looping", STDOUT: "stdout", DISK: "disk", WORKDIR: "workdir",
            OUTPUTS: "outputs"}

Judged = tuple[Decision, str]  #: the evidence and, for a violation, the diagnostic


@dataclass(frozen=True)
class Violation:
    """A limit the payload broke: the job fails with ``error`` and its tree is killed."""

    check: str
    error: PilotError
    diag: str
    inputs: Mapping[str, object]
    threshold: object

    def as_decision(self) -> Decision:
        """The violation as transition-log evidence."""
        return Decision(self.check, False, self.inputs, self.threshold, self.error)


def _judge(check: str, ok: bool, inputs: Mapping[str, object], threshold: object, *,
           error: PilotError, diag: str) -> Judged:
    return Decision(check, ok, inputs, threshold, None if ok else error), "" if ok else diag[:500]


def _violation(judged: Judged) -> Violation | None:
    decision, diag = judged
    if decision.allowed or decision.error is None:
        return None
    return Violation(decision.guard, decision.error, diag, decision.inputs, decision.threshold)


def _memory(usage: Usage, limits: Limits) -> Judged:
    kind, used = ("PSS", usage.pss_kb) if usage.pss_kb is not None else ("RSS", usage.rss_kb)
    inputs = {"pss_kb": usage.pss_kb, "rss_kb": usage.rss_kb, "nprocs": usage.nprocs}
    ok = limits.memory_kb is None or used <= limits.memory_kb
    return _judge(MEMORY, ok, inputs, limits.memory_kb, error=PilotError.PAYLOADEXCEEDMAXMEM,
                  diag=f"payload exceeded the memory limit: {kind} {used} kB > {limits.memory_kb} kB")


def _looping(found: Activity, limits: Limits) -> Judged:
    inputs = {"idle_seconds": round(found.idle_seconds, 3), "newest_mtime": found.newest_mtime,
              "newest_path": found.newest_path}
    ok = limits.looping_limit is None or found.idle_seconds <= limits.looping_limit
    return _judge(LOOPING, ok, inputs, limits.looping_limit, error=PilotError.LOOPINGJOB,
                  diag=f"payload looping: no file in the job dir changed for {found.idle_seconds:.0f} s "
                       f"(limit {limits.looping_limit} s)")


def _workdir(size: DirSize, limits: Limits) -> Judged:
    inputs = {"size_bytes": size.size_bytes, "files": size.files, "complete": size.complete}
    ok = size.size_bytes <= limits.workdir_bytes
    more = "" if size.complete else "more than "
    return _judge(WORKDIR, ok, inputs, limits.workdir_bytes, error=PilotError.USERDIRTOOLARGE,
                  diag=f"work directory too large: {more}{size.size_bytes} B > {limits.workdir_bytes} B")


def _largest(sizes: Mapping[str, int]) -> tuple[str | None, int]:
    name = max(sizes, key=lambda key: sizes[key], default=None)
    return name, (sizes[name] if name is not None else 0)


def _stdout(sizes: Mapping[str, int], limits: Limits) -> Judged:
    name, largest = _largest(sizes)
    ok = largest <= limits.stdout_bytes
    return _judge(STDOUT, ok, {"sizes": dict(sizes)}, limits.stdout_bytes, error=PilotError.STDOUTTOOBIG,
                  diag=f"payload log {name} too big: {largest} B > {limits.stdout_bytes} B")


def _outputs(sizes: Mapping[str, int], limits: Limits) -> Judged:
    inputs = {"sizes": dict(sizes)}
    name, largest = _largest(sizes)
    if largest >= limits.output_file_bytes:
        return _judge(OUTPUTS, False, inputs, limits.output_file_bytes, error=PilotError.OUTPUTFILETOOLARGE,
                      diag=f"output file {name} too large: {largest} B >= {limits.output_file_bytes} B")
    empty = sorted(lfn for lfn, size in sizes.items() if size == 0)
    ok = not (limits.fail_empty_outputs and empty)
    return _judge(OUTPUTS, ok, inputs, limits.output_file_bytes, error=PilotError.EMPTYOUTPUTFILE,
                  diag=f"zero size output file: {empty[0] if empty else ''}")


def _disk(free_bytes: int, limits: Limits) -> Judged:
    ok = free_bytes > limits.min_free_bytes
    return _judge(DISK, ok, {"free_bytes": free_bytes}, limits.min_free_bytes, error=PilotError.NOLOCALSPACE,
                  diag=f"too little space left on local disk: {free_bytes} B (need > {limits.min_free_bytes} B)")


def _walltime(payload_seconds: float, limits: Limits) -> Judged:
    ok = limits.job_walltime is None or payload_seconds < limits.job_walltime
    return _judge(WALLTIME, ok, {"payload_seconds": round(payload_seconds, 3)}, limits.job_walltime,
                  error=PilotError.REACHEDMAXTIME,
                  diag=f"job reached its walltime: {payload_seconds:.0f} s >= {limits.job_walltime} s "
                       "(maxWalltime x pilot_walltime_grace)")


def _lifetime(now: float, limits: Limits) -> Judged:
    left = limits.lifetime_end - now
    return _judge(LIFETIME, left > 0, {"seconds_left": round(left, 3)}, 0, error=PilotError.REACHEDMAXTIME,
                  diag="the pilot reached its maximum time (its slot's end less the reserve for stage-out "
                       "and the final update)")


def check_memory(usage: Usage, limits: Limits) -> Violation | None:
    """PSS of the payload tree (RSS where PSS is unreadable) above the limit: PAYLOADEXCEEDMAXMEM."""
    return _violation(_memory(usage, limits))


def check_looping(found: Activity, limits: Limits) -> Violation | None:
    """No file in the job dir changed for longer than the looping limit: LOOPINGJOB."""
    return _violation(_looping(found, limits))


def check_workdir(size: DirSize, limits: Limits) -> Violation | None:
    """Job dir larger than maxwdir x grace: USERDIRTOOLARGE."""
    return _violation(_workdir(size, limits))


def check_stdout(sizes: Mapping[str, int], limits: Limits) -> Violation | None:
    """A payload log larger than 2 GiB: STDOUTTOOBIG."""
    return _violation(_stdout(sizes, limits))


def check_output_sizes(sizes: Mapping[str, int], limits: Limits) -> Violation | None:
    """An output of 500 GiB or more: OUTPUTFILETOOLARGE (an empty one: EMPTYOUTPUTFILE, if enabled)."""
    return _violation(_outputs(sizes, limits))


def check_disk(free_bytes: int, limits: Limits) -> Violation | None:
    """Free space in the job dir's file system at or below 1 GiB: NOLOCALSPACE."""
    return _violation(_disk(free_bytes, limits))


def check_walltime(payload_seconds: float, limits: Limits) -> Violation | None:
    """The payload ran for its walltime (grace included): REACHEDMAXTIME, as Pilot 3 reports it."""
    return _violation(_walltime(payload_seconds, limits))


def check_lifetime(now: float, limits: Limits) -> Violation | None:
    """The pilot's lifetime (less its margin) is over at monotonic ``now``: REACHEDMAXTIME."""
    return _violation(_lifetime(now, limits))


@dataclass
class Schedule:
    """When each periodic check last ran (monotonic s); a job's payload starts it at ``started``."""

    limits: Limits
    started: float
    last_run: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for check in PERIODIC:
            self.last_run.setdefault(check, self.started)


def due(now: float, last_run: float, interval: float | None) -> bool:
    """A periodic check is due once ``interval`` seconds passed since it last ran (None: never)."""
    return interval is not None and now - last_run >= interval


def due_at(check: str, schedule: Schedule) -> float | None:
    """The monotonic time ``check`` is next due; None when it is disabled."""
    limits = schedule.limits
    if check == LIFETIME:
        return limits.lifetime_end
    if check == WALLTIME:
        return None if limits.job_walltime is None else schedule.started + limits.job_walltime
    if check == LOOPING and limits.looping_limit is None:
        return None
    at = schedule.last_run[check] + float(getattr(limits.intervals, PERIODIC[check]))
    return max(at, schedule.started + limits.looping_start) if check == LOOPING else at


def due_checks(now: float, schedule: Schedule) -> tuple[str, ...]:
    """The checks to measure and run at ``now``, in pass order."""
    return tuple(check for check in ORDER if (at := due_at(check, schedule)) is not None and now >= at)


def next_tick(now: float, schedule: Schedule) -> float | None:
    """Seconds to sleep until the next check is due (0 if one is due now); None if none ever is."""
    times = [at for check in ORDER if (at := due_at(check, schedule)) is not None]
    return max(0.0, min(times) - now) if times else None


_MEASURED: dict[str, tuple[str, Callable[[Any, Limits], Judged]]] = {
    MEMORY: ("sample", lambda sample, limits: _memory(sample.usage, limits)),
    LOOPING: ("activity", _looping),
    STDOUT: ("logs", _stdout),
    DISK: ("free_bytes", _disk),
    WORKDIR: ("workdir", _workdir),
    OUTPUTS: ("outputs", _outputs),
}


def _evaluate(check: str, now: float, schedule: Schedule, measured: Measurements) -> Judged:
    if check == LIFETIME:
        return _lifetime(now, schedule.limits)
    if check == WALLTIME:
        return _walltime(now - schedule.started, schedule.limits)
    attribute, judge = _MEASURED[check]
    value = getattr(measured, attribute)
    if value is None:  # not measured: recorded, and not retried before its next interval
        return Decision(check, True, {"measured": False, "error": measured.errors.get(check)}, None), ""
    return judge(value, schedule.limits)


def run_due_checks(now: float, schedule: Schedule, measured: Measurements) -> tuple[Violation | None,
                                                                                  tuple[Decision, ...]]:
    """One pass at monotonic ``now``: run every due check on ``measured``, stop at the first violation.

    Marks each periodic check it ran in ``schedule``; returns the violation (or
    None) and the evidence of every check run, for the transition log.
    """
    evidence: list[Decision] = []
    for check in due_checks(now, schedule):
        judged = _evaluate(check, now, schedule, measured)
        if check in schedule.last_run:
            schedule.last_run[check] = now
        evidence.append(judged[0])
        found = _violation(judged)
        if found is not None:
            return found, tuple(evidence)
    return None, tuple(evidence)
