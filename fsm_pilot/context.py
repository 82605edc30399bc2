"""The pilot's explicit state data, handed to every step (gen_statem's "Data").

Steps read and update it; nothing lives in globals or environment variables.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fsm_pilot.errors import PilotError
from fsm_pilot.exitcodes import Reason

if TYPE_CHECKING:
    from structlog.typing import FilteringBoundLogger

    from fsm_pilot.batchclock import Clock
    from fsm_pilot.config import Resolved
    from fsm_pilot.guards import Decision, Facts, Thresholds
    from fsm_pilot.job import Job, JobIdentity
    from fsm_pilot.signals import SignalState
    from fsm_pilot.translog import TransitionLog

#: Trigger names a step may return, with the reason for it.
Outcome = tuple[str, Reason]


@dataclass(frozen=True)
class RunArgs:
    """What the command line said, after parsing (the CLI layer of the settings)."""

    queue: str
    workdir: Path
    launch_dir: Path
    job_label: str = "ptest"
    url: str | None = None
    api: str = "auto"
    push: bool = False
    capath: str | None = None
    cacert: str | None = None
    resource_type: str = ""
    job_type: str = ""
    working_group: str = ""
    #: where URL transformations may be downloaded from (-g/--baseurls, PANDA_BASE_URLS)
    base_urls: tuple[str, ...] = ()
    #: ARC/NorduGrid: write output.list here (--output-dir)
    output_dir: Path | None = None
    queuedata_url: str | None = None
    storagedata_url: str | None = None
    job_file: Path | None = None
    #: PandaIDs of the jobs taken, one per line, for the wrapper (--jobid-file)
    jobid_file: Path | None = None
    #: a file whose presence drains the pilot, besides ``stop_agent`` in the launch dir (--drain-file)
    drain_file: Path | None = None
    harvester_workdir: Path | None = None
    #: Pilot 3's Harvester options: a data dir for pandaJobData.out; the other two only switch the mode on
    harvester_datadir: Path | None = None
    harvester_eventstatusdump: str = ""
    harvester_workerattributes: str = ""
    no_proxy_check: bool = False
    no_cvmfs_check: bool = False
    no_server_update: bool = False
    debug: bool = False
    version_tag: str = "PR"
    settings: dict[str, float | None] = field(default_factory=dict)
    ignored: dict[str, Any] = field(default_factory=dict)


@dataclass
class JobRun:
    """A job the pilot holds, from GETJOB until its final report is written."""

    identity: JobIdentity
    record: dict[str, object]
    job: Job | None = None
    workdir: Path | None = None
    state: str = "starting"
    error: PilotError | None = None
    diag: str = ""
    trans_exit_code: int | None = None
    rejected: bool = False
    start_time: float = field(default_factory=time.time)
    end_time: float | None = None
    timings: dict[str, float] = field(default_factory=dict)
    xml: dict[str, dict[str, object]] = field(default_factory=dict)
    argv: list[str] = field(default_factory=list)
    cpu_seconds: float = 0.0
    reported: bool = False
    #: the server said alreadydone/badattemptnr: send nothing more for this job
    stop_reporting: bool = False
    #: the final update could not be delivered (kept in the final report file)
    final_pending: bool = False
    #: the server's answer when it refused the final update for good (kept in the final report file)
    refused: str | None = None
    #: the server asked to kill the job (tobekilled)
    kill_requested: bool = False
    #: the server said nocleanup: keep the job dir after the job
    keep_workdir: bool = False
    #: the payload's resource usage (a monitor UsageAccumulator), once it ran
    usage: Any = None
    #: monotonic time of the last update sent for this job (heartbeats are due from it)
    last_update: float = field(default_factory=time.monotonic)
    #: the payload's identity while it may run: pid, start ticks, session, mark, boot id (for recovery)
    payload_identity: dict[str, int | str] | None = None
    #: the final update's fields once decided (kept until delivered: the outbox)
    final_fields: dict[str, object] | None = None
    #: outbox retries: attempts so far and when the next one is due (monotonic)
    retries: int = 0
    next_retry: float = 0.0
    #: sizes of pilot.log and the transition log when the job was taken: its part of each (fsm_pilot.joblogs)
    log_start: tuple[int, int] | None = None

    @property
    def panda_id(self) -> int:
        """The job's PandaID."""
        return self.identity.panda_id

    def fail(self, error: PilotError, diag: str) -> None:
        """Mark the job failed; PanDA wants only the first error, so later ones are ignored."""
        self.state = "failed"
        if self.error is None:
            self.error = error
            self.diag = diag[:500]


@dataclass
class Context:
    """Everything the steps share: settings, clocks, queue, node, the held job."""

    args: RunArgs
    env: dict[str, str]
    log: FilteringBoundLogger
    translog: TransitionLog
    signals: SignalState
    settings: dict[str, Resolved]
    pilot_id: str
    start_wall: float = field(default_factory=time.time)
    start_mono: float = field(default_factory=time.monotonic)
    pilot_dir: Path | None = None
    queuedata: dict[str, Any] = field(default_factory=dict)
    storagedata: dict[str, Any] = field(default_factory=dict)
    node: Any = None
    rlimit_as: int | None = None
    thresholds: Thresholds | None = None
    facts: Facts | None = None
    decisions: list[Decision] = field(default_factory=list)
    job: JobRun | None = None
    jobs_run: list[int] = field(default_factory=list)
    #: jobs in a row that failed fast (the black-hole guard's fact)
    fast_failures: int = 0
    #: the machine's current state (the driver keeps it; steps persist it with the job)
    state: str = "INIT"
    #: jobs whose final update is not delivered yet, retried with backoff while the pilot lives
    outbox: list[JobRun] = field(default_factory=list)
    taken: set[int] = field(default_factory=set)
    #: the trigger and reason that brought the pilot into its current state
    arrived_by: Outcome | None = None
    #: the PanDA server client; None without --url
    client: Any = None
    #: the pilot dir's lock file, held (flock) for the pilot's whole life
    lock: Any = None
    #: seconds between heartbeats now (the server's debug command shortens it)
    heartbeat_interval: float | None = None
    #: when the job slot ends (fsm_pilot.batchclock), once QUEUEDATA resolved it
    clock: Clock | None = None
    #: why the pilot takes no more jobs ("SIGUSR1", "drain file <path>"), once it was asked to
    drain: str | None = None
    #: pilot.log's size when the first job was taken (the head every job's log tarball includes), and
    #: where the last job's tarball stopped reading it (the next job's part starts there): fsm_pilot.joblogs
    log_head: int | None = None
    log_cut: int | None = None

    def setting(self, name: str) -> float:
        """A resolved setting's value."""
        return self.settings[name].value

    def elapsed(self) -> float:
        """Seconds since the pilot started (monotonic)."""
        return time.monotonic() - self.start_mono

    def lifetime(self) -> float:
        """The pilot's walltime in seconds from its start: the batch clock's, else the lifetime setting."""
        if self.clock is not None:
            return self.clock.end_mono - self.start_mono
        return self.setting("lifetime")
