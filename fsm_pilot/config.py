"""Settings, resolved in one precedence order: CLI > environment > queuedata > defaults.

Each tunable is one row of :data:`OPTIONS`; the resolved value remembers
where it came from, and the pilot logs that, so an operator never has to
guess which of four places set a limit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fsm_pilot.errors import PilotError, PilotFailure


def _minutes(value: Any) -> float:
    return float(value) * 60.0


def _positive_or_none(value: Any) -> float | None:
    number = float(value)
    return number if number > 0 else None


@dataclass(frozen=True)
class Option:
    """A tunable: its environment variable, its queuedata key, its default."""

    name: str
    env: str
    default: float
    doc: str
    queuedata_key: str | None = None
    #: converts the queuedata value; None from it means "not set there".
    from_queuedata: Callable[[Any], float | None] = _positive_or_none
    #: the command-line flags (default: ``--<name with dashes>``).
    flags: tuple[str, ...] = ()
    #: how the queuedata column of the README shows it (default: the key).
    queuedata_doc: str = ""

    @property
    def cli(self) -> tuple[str, ...]:
        """The flags ``fsm-pilot run`` accepts for this setting."""
        return self.flags or ("--" + self.name.replace("_", "-"),)


OPTIONS: tuple[Option, ...] = (
    Option("lifetime", "FSM_PILOT_LIFETIME", 324000.0, "pilot walltime, s", "maxtime",
           flags=("-l", "--lifetime"), queuedata_doc="maxtime (s; 0 = not set)"),
    Option("timefloor", "FSM_PILOT_TIMEFLOOR", 0.0,
           "take another job while the pilot has run less than this, s (0 = one job)",
           "timefloor", _minutes, queuedata_doc="timefloor (minutes)"),
    Option("kill_grace", "FSM_PILOT_KILL_GRACE", 10.0, "SIGTERM to SIGKILL grace for the payload, s"),
    Option("signal_grace", "FSM_PILOT_SIGNAL_GRACE", 0.5,
           "grace for the payload when the pilot itself is told to stop, s"),
    Option("min_free_disk", "FSM_PILOT_MIN_FREE_DISK", 2e9, "free bytes needed before each job"),
    Option("heartbeat_interval", "FSM_PILOT_HEARTBEAT_INTERVAL", 1800.0,
           "seconds between running updates while a job is held (the server's debug command: 60)"),
    Option("getjob_requests", "FSM_PILOT_GETJOB_REQUESTS", 2.0,
           "getJob requests answered 'no jobs' before the pilot gives up", flags=("-v", "--getjobrequests")),
    Option("getjob_wait", "FSM_PILOT_GETJOB_WAIT", 30.0, "seconds between getJob requests answered 'no jobs'"),
    Option("getjob_failures", "FSM_PILOT_GETJOB_FAILURES", 5.0,
           "Harvester: job requests (worker_requestjob.json) left unanswered before the pilot gives up "
           "(PUSH: 12 when 5, as Pilot 3)", flags=("-x", "--getjobfailures")),
    Option("harvester_job_wait", "FSM_PILOT_HARVESTER_JOB_WAIT", 120.0,
           "Harvester: seconds each job request waits for pandaJobData.out (Pilot 3's 120)"),
    Option("max_jobs", "FSM_PILOT_MAX_JOBS", 0.0, "jobs per pilot (0 = no limit: the timefloor decides)"),
    Option("blackhole_jobs", "FSM_PILOT_BLACKHOLE_JOBS", 3.0,
           "stop (exit 75) after this many jobs in a row failed within --blackhole-seconds"),
    Option("blackhole_seconds", "FSM_PILOT_BLACKHOLE_SECONDS", 60.0, "a job failing sooner counts as failing fast"),
    Option("looping_limit", "FSM_PILOT_LOOPING_LIMIT", 7200.0,
           "seconds without any file in the job dir modified before the job counts as looping"),
    Option("check_interval", "FSM_PILOT_CHECK_INTERVAL", 60.0,
           "seconds between payload checks (memory, disk, work dir, stdout, outputs)"),
    Option("lifetime_margin", "FSM_PILOT_LIFETIME_MARGIN", 180.0,
           "the pilot stops a job this long before its lifetime ends (REACHEDMAXTIME)"),
    Option("stageout_rate", "FSM_PILOT_STAGEOUT_RATE", 10e6,
           "bytes/s the pilot counts on to store outputs when it must stop a job before its slot ends"),
    Option("max_stdout", "FSM_PILOT_MAX_STDOUT", float(2 * 1024**3), "payload stdout/stderr bytes (STDOUTTOOBIG)"),
    Option("max_output_size", "FSM_PILOT_MAX_OUTPUT_SIZE", float(500 * 1024**3),
           "bytes of one output file while running (OUTPUTFILETOOLARGE)"),
    Option("min_free_running", "FSM_PILOT_MIN_FREE_RUNNING", float(1024**3),
           "free bytes needed in the job dir's file system while the payload runs (NOLOCALSPACE)"),
    Option("copy_timeout", "FSM_PILOT_COPY_TIMEOUT", 300.0,
           "seconds one file copy may take, plus 1 s per MB of the file, at most 3 h (Pilot 3's transfer "
           "timeout); past it the copy's process tree is killed (STAGEINTIMEOUT)"),
    Option("recovery_budget", "FSM_PILOT_RECOVERY_BUDGET", 600.0,
           "seconds RECOVERY may spend finishing dead pilots' jobs"),
    Option("cleanup_age", "FSM_PILOT_CLEANUP_AGE", 12 * 3600.0,
           "CLEANUP removes other pilots' leftovers untouched this long, s (the seed's 12 h)"),
    Option("cleanup_stuck_age", "FSM_PILOT_CLEANUP_STUCK_AGE", 7 * 24 * 3600.0,
           "a job still starting/running/holding after this long, s, no longer keeps its pilot dir"),
    Option("stageout_timeout", "FSM_PILOT_STAGEOUT_TIMEOUT", 300.0,
           "seconds one stage-out copy may take, plus 1 s per MB of the file, at most 3 h (Pilot 3's 300)"),
    Option("stageout_attempts", "FSM_PILOT_STAGEOUT_ATTEMPTS", 2.0,
           "copies tried per copytool for a file after a timeout, a checksum mismatch or a generic failure"),
    Option("update_timeout", "FSM_PILOT_UPDATE_TIMEOUT", 300.0,
           "seconds a server call may take with its retries (the final update after a signal: 0.5)"),
)
OPTION_NAMES = frozenset(o.name for o in OPTIONS)


@dataclass(frozen=True)
class Resolved:
    """A setting's value and the layer it came from."""

    value: float
    source: str  # "cli", "env", "queuedata" or "default"


def _from_env(option: Option, env: Mapping[str, str]) -> float | None:
    raw = env.get(option.env)
    if raw is None or raw.strip() == "":
        return None
    try:
        return float(raw)
    except ValueError:
        raise PilotFailure(PilotError.GENERALERROR,
                           f"environment variable {option.env}={raw!r} is not a number") from None


def _from_queuedata(option: Option, queuedata: Mapping[str, Any]) -> float | None:
    key = option.queuedata_key
    if key is None or queuedata.get(key) in (None, ""):
        return None
    try:
        return option.from_queuedata(queuedata[key])
    except (TypeError, ValueError):
        raise PilotFailure(PilotError.QUEUEDATANOTOK,
                           f"queuedata {key}={queuedata[key]!r} is not a number") from None


def resolve(cli: Mapping[str, float | None], env: Mapping[str, str],
            queuedata: Mapping[str, Any]) -> dict[str, Resolved]:
    """Every option's value, first found in CLI, environment, queuedata, default."""
    result = {}
    for option in OPTIONS:
        layers = (
            ("cli", cli.get(option.name)),
            ("env", _from_env(option, env)),
            ("queuedata", _from_queuedata(option, queuedata)),
            ("default", option.default),
        )
        source, value = next((s, v) for s, v in layers if v is not None)
        result[option.name] = Resolved(float(value), source)
    return result


def precedence_markdown() -> str:
    """The options table for the README."""
    rows = ["| setting | CLI | environment | queuedata | default | meaning |", "|---|---|---|---|---|---|"]
    for o in OPTIONS:
        flags = ", ".join(f"`{f}`" for f in o.cli)
        default = int(o.default) if o.default.is_integer() else o.default
        queuedata = o.queuedata_doc or o.queuedata_key or ""
        rows.append(f"| {o.name} | {flags} | `{o.env}` | {queuedata} | {default} | {o.doc} |")
    return "\n".join(rows) + "\n"
