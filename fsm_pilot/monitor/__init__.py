"""Payload monitoring for the RUNNING step: limits, measurements, checks and usage accounting.

One pass per tick and no threads: ``due_checks`` names what to measure,
``measure`` measures only that, ``run_due_checks`` judges it against the job's
``Limits`` and ``next_tick`` says how long the step may sleep.
"""

from fsm_pilot.monitor.checks import (
    Schedule,
    Violation,
    check_disk,
    check_lifetime,
    check_looping,
    check_memory,
    check_output_sizes,
    check_stdout,
    check_walltime,
    check_workdir,
    due,
    due_at,
    due_checks,
    next_tick,
    run_due_checks,
)
from fsm_pilot.monitor.limits import Intervals, Limits, limits_for
from fsm_pilot.monitor.measure import Activity, DirSize, Measurements, Target, measure, target_for
from fsm_pilot.monitor.usage import Sample, UsageAccumulator, cpu_fields, job_metrics, sample_tree

__all__ = [
    "Activity",
    "DirSize",
    "Intervals",
    "Limits",
    "Measurements",
    "Sample",
    "Schedule",
    "Target",
    "UsageAccumulator",
    "Violation",
    "check_disk",
    "check_lifetime",
    "check_looping",
    "check_memory",
    "check_output_sizes",
    "check_stdout",
    "check_walltime",
    "check_workdir",
    "cpu_fields",
    "due",
    "due_at",
    "due_checks",
    "job_metrics",
    "limits_for",
    "measure",
    "next_tick",
    "run_due_checks",
    "sample_tree",
    "target_for",
]
