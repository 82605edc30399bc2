"""Resource-usage accounting over a job: what the final updateJob reports.

Pilot 3 takes these numbers from prmon (pilot/user/atlas/utilities.py
get_memory_monitor_info): memory maxima and averages in kB (maxRSS, avgPSS,
...), I/O totals as the largest tree-wide sum of /proc/<pid>/io seen (totRCHAR,
...), and I/O rates as that total over the elapsed time (prmon iomon's "Avg").
The pilot samples the same sources itself on its monitoring ticks: no extra
process, no thread. Averages are weighted by time because ticks are not evenly
spaced (the pilot sleeps until the next due check).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from fsm_pilot import procinfo
from fsm_pilot.payload.process import Payload, Usage, descendants, measure_tree
from fsm_pilot.payload.subreaper import ProcStat

#: PanDA's jobMetrics column holds 500 characters.
MAX_JOB_METRICS = 500
#: Pilot 3 drops a CPU time above this as unrealistic (control/job.py get_cpu_consumption_time).
MAX_CPU_SECONDS = 10**9
IO_KEYS = ("rchar", "wchar", "read_bytes", "write_bytes")
#: updateJob names of the I/O totals and rates, per /proc/<pid>/io counter.
_IO_FIELDS = {"rchar": "RCHAR", "wchar": "WCHAR", "read_bytes": "RBYTES", "write_bytes": "WBYTES"}
_FINAL_STATES = frozenset({"finished", "failed", "holding"})


@dataclass(frozen=True)
class Sample:
    """One look at the payload tree: memory in kB, I/O counters in bytes."""

    mono: float  #: monotonic time of the sample
    usage: Usage  #: RSS, PSS, process count and CPU (measure_tree)
    vmem_kb: int
    swap_kb: int | None  #: None where /proc/<pid>/status is unreadable
    io: Mapping[str, int]  #: rchar, wchar, read_bytes, write_bytes summed over the tree


def _swap_kb(pid: int) -> int | None:
    """VmSwap from /proc/<pid>/status (the same number memory_full_info sums from smaps)."""
    try:
        with open(f"/proc/{pid}/status", "rb") as handle:
            for line in handle:
                if line.startswith(b"VmSwap:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return 0  # kernel threads and exiting processes have no VmSwap line


def _io(pid: int) -> dict[str, int]:
    """/proc/<pid>/io counters; empty when unreadable (another uid, or gone)."""
    counters: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/io", "rb") as handle:
            for line in handle:
                name, _, value = line.decode().partition(":")
                if name in IO_KEYS:
                    counters[name] = int(value)
    except (OSError, ValueError):
        return {}
    return counters


def _extras(procs: Iterable[ProcStat]) -> tuple[int, int | None, dict[str, int]]:
    """Virtual memory and swap (kB) and I/O (bytes) summed over ``procs``."""
    vmem, swap, swap_ok = 0, 0, True
    io = dict.fromkeys(IO_KEYS, 0)
    for proc in procs:
        vmem += (procinfo.vms(proc.pid) or 0) // 1024
        proc_swap = _swap_kb(proc.pid)
        swap_ok = swap_ok and proc_swap is not None
        swap += proc_swap or 0
        for key, value in _io(proc.pid).items():
            io[key] += value
    return vmem, swap if swap_ok else None, io


def sample_tree(payload: Payload, mono: float) -> Sample:
    """Sample the live tree: measure_tree for RSS/PSS/CPU, then VMEM, swap and I/O."""
    usage = measure_tree(payload)
    vmem, swap, io = _extras(descendants(payload))
    return Sample(mono, usage, vmem, swap, io)


@dataclass
class Series:
    """Maximum and time-weighted mean (trapezoids) of one quantity sampled at uneven times."""

    peak: float = 0.0
    area: float = 0.0
    first: float | None = None
    last: tuple[float, float] | None = None  #: (time, value)

    def add(self, when: float, value: float) -> None:
        """Record ``value`` at ``when`` (monotonic seconds, non-decreasing)."""
        if self.last is None:
            self.first, self.peak = when, value
        else:
            then, previous = self.last
            self.area += (value + previous) / 2 * max(0.0, when - then)
            self.peak = max(self.peak, value)
        self.last = (when, value)

    def mean(self) -> float | None:
        """The time-weighted mean; the only value when all samples share one time."""
        if self.last is None or self.first is None:
            return None
        span = self.last[0] - self.first
        return self.area / span if span > 0 else self.last[1]


def _value(sample: Sample, name: str) -> int | None:
    values = {"RSS": sample.usage.rss_kb, "PSS": sample.usage.pss_kb, "VMEM": sample.vmem_kb,
              "SWAP": sample.swap_kb}
    return values[name]


@dataclass
class UsageAccumulator:
    """Everything measured about one job's payload, folded sample by sample."""

    started: float  #: payload start, monotonic (rates are per second since then)
    memory: dict[str, Series] = field(default_factory=lambda: {k: Series() for k in ("RSS", "PSS", "VMEM", "SWAP")})
    io: dict[str, int] = field(default_factory=dict)  #: largest tree-wide sum seen per counter
    cpu_seconds: float = 0.0  #: largest tree CPU seen (or the caller's final figure)
    max_workdir_bytes: int = 0
    last_mono: float | None = None
    samples: int = 0

    def add(self, sample: Sample) -> None:
        """Fold one sample in; the I/O and CPU maxima survive processes that exit."""
        for name, series in self.memory.items():
            value = _value(sample, name)
            if value is not None:
                series.add(sample.mono, value)
        for key, value in sample.io.items():
            self.io[key] = max(self.io.get(key, 0), value)
        self.cpu_seconds = max(self.cpu_seconds, sample.usage.cpu_seconds)
        self.last_mono = sample.mono if self.last_mono is None else max(self.last_mono, sample.mono)
        self.samples += 1

    def note_cpu(self, seconds: float) -> None:
        """A CPU figure measured another way (e.g. the reaped payload's rusage); the larger wins."""
        self.cpu_seconds = max(self.cpu_seconds, seconds)

    def note_workdir(self, size_bytes: int) -> None:
        """A measured job-dir size; the largest is reported as workDirSize."""
        self.max_workdir_bytes = max(self.max_workdir_bytes, size_bytes)

    def elapsed(self) -> float:
        """Seconds from the payload's start to the last sample."""
        return 0.0 if self.last_mono is None else max(0.0, self.last_mono - self.started)

    def update_fields(self) -> dict[str, int]:
        """maxRSS ... avgPSS (kB), totRCHAR ... (bytes), rateRCHAR ... (bytes/s), as measured.

        A quantity never measured is left out rather than sent as a made-up number.
        """
        fields: dict[str, int] = {}
        for name, series in self.memory.items():
            mean = series.mean()
            if mean is not None:
                fields[f"max{name}"] = int(series.peak)
                fields[f"avg{name}"] = round(mean)
        elapsed = self.elapsed()
        for key, suffix in _IO_FIELDS.items():
            if key in self.io:
                fields[f"tot{suffix}"] = self.io[key]
                if elapsed > 0:
                    fields[f"rate{suffix}"] = round(self.io[key] / elapsed)
        return fields


def cpu_fields(cpu_seconds: float, cpu_model: str = "") -> dict[str, object]:
    """cpuConsumptionTime (whole s), cpuConsumptionUnit (``s+<model>``), cpuConversionFactor.

    Pilot 3 sends the unit as ``s+<cpu model>`` and a conversion factor of 1.0,
    and leaves the time out when it is not positive or above 10**9 s.
    """
    fields: dict[str, object] = {"cpuConsumptionUnit": f"s+{cpu_model}" if cpu_model else "s",
                                 "cpuConversionFactor": 1.0}
    seconds = round(cpu_seconds)
    if 0 < seconds <= MAX_CPU_SECONDS:
        fields["cpuConsumptionTime"] = seconds
    return fields


def _entries(acc: UsageAccumulator, state: str, n_events: int, n_events_w: int,
             input_bytes: int | None) -> list[tuple[str, object]]:
    """jobMetrics entries Pilot 3 derives from measurements, in its order (atlas/jobmetrics.py)."""
    entries: list[tuple[str, object]] = []
    elapsed = acc.elapsed()
    if acc.cpu_seconds > 0 and elapsed > 0:
        entries.append(("actualCoreCount", max(1, round(acc.cpu_seconds / elapsed))))
    if n_events > 0:
        entries.append(("nEvents", n_events))
    if n_events_w > 0:
        entries.append(("nEventsW", n_events_w))
    if state in _FINAL_STATES and acc.max_workdir_bytes > 0:
        entries.append(("workDirSize", acc.max_workdir_bytes))
    if input_bytes and "read_bytes" in acc.io:
        entries.append(("readbyterate", f"{acc.io['read_bytes'] / input_bytes:.2f}"))
    return entries


def format_job_metrics(entries: Iterable[tuple[str, object]], limit: int = MAX_JOB_METRICS) -> str:
    """Space-separated ``k=v``; whole entries are dropped from the end until it fits ``limit``."""
    parts = [f"{key}={value}" for key, value in entries if value != ""]
    while parts and len(" ".join(parts)) > limit:
        parts.pop()
    return " ".join(parts)


def job_metrics(acc: UsageAccumulator, *, state: str, n_events: int = 0, n_events_w: int = 0,
                input_bytes: int | None = None, extra: Mapping[str, object] | None = None) -> str:
    """The jobMetrics string: actualCoreCount (CPU s / wall s), nEvents, nEventsW, workDirSize
    (bytes, final states only), readbyterate (totRBYTES / input bytes), then ``extra``.

    coreCount is not an entry: Pilot 3 sends it as its own updateJob field.
    """
    entries = _entries(acc, state, n_events, n_events_w, input_bytes)
    return format_job_metrics([*entries, *(extra or {}).items()])
