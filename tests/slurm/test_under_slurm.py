"""Pilots as a site runs them: examples/slurm/pilot.sbatch under a real Slurm 22.05, against the dispatcher.

N pilots drain M jobs (each run exactly once), and a pilot ended by Slurm (scancel, its --time limit)
reports its job inside KillWait, leaves no payload behind, and says why in its exit code (as Slurm records
it) and its transition log. Nothing is mocked: real daemons, real sbatch/scancel, real signals from
slurmstepd. The time-limited pilot is submitted first (a module fixture) and checked last: Slurm's limits
are minutes and slurmctld looks at them every 30 s, so its minute overlaps the other tests.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest

from tests.pilotrun import all_gone, wait_for
from tests.pilotserver import Dispatcher, job_spec
from tests.slurm.batch import Pilot, Site, logged_exit, marked, wait_ended

N_PILOTS, M_JOBS = 8, 200
#: Options every pilot here gets (as a site would put them in PILOT_ARGS): no proxy, small disk floor, no
#: 30 s wait after an empty getJob.
BASE_ARGS = "-t --min-free-disk 1000 --getjob-wait 0"
#: SIGTERM's PanDA error code and the pilot's exit code for it (128 + 15).
SIGTERM_ERROR, SIGTERM_EXIT = 1201, 143


@dataclass
class Stopped:
    """A pilot Slurm will stop mid-payload: its dispatcher, its one job, the payload's PIDs file."""

    server: Dispatcher
    panda_id: int
    pilot: Pilot
    pids: Path

    def payload(self) -> list[int] | None:
        found = [int(p) for p in self.pids.read_text().split()] if self.pids.exists() else []
        return found if len(found) == 2 else None


def _held_job(site: Site, name: str, root: Path, *sbatch_args: str, path: str = "/usr/bin:/bin",
              pilot_args: str = BASE_ARGS) -> Stopped:
    """A dispatcher with one job whose payload (and a background child) runs 300 s; a pilot submitted for it."""
    server = Dispatcher(root / "dispatcher").start()
    pids = root / "payload.pids"
    [panda_id] = server.submit(job_spec(f"-c 'sleep 300 & echo $! >> {pids}; echo $$ >> {pids}; wait'"))
    return Stopped(server, panda_id, site.submit(name, server.url, pilot_args, *sbatch_args, path=path), pids)


def _without_slurm_commands(where: Path) -> str:
    """A PATH with what the job script and the payload use, and no squeue."""
    where.mkdir()
    for tool in ("bash", "sleep", "mkdir", "cp", "tar", "gzip", "rm"):
        found = shutil.which(tool, path="/usr/bin:/bin")
        assert found is not None, tool
        (where / tool).symlink_to(found)
    return str(where)


@pytest.fixture(scope="module", autouse=True)
def time_limited(site: Site, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stopped]:
    """Submitted before the module's first test: --time=1 (one minute, Slurm's smallest), checked last.

    This pilot must not know its limit, or it would rightly stop its job before it: Slurm 22.05 sets no
    SLURM_JOB_END_TIME, and its PATH has no squeue to ask. So it is the pilot a limit takes by surprise.
    """
    root = tmp_path_factory.mktemp("time-limited")
    held = _held_job(site, "time-limited", root, "--time=1", path=_without_slurm_commands(root / "bin"))
    yield held
    held.server.stop()


#: A pilot that knows its clock (squeue on its PATH) and may run a job in a two-minute slot.
CLOCKED_ARGS = f"{BASE_ARGS} --timefloor 3600 --lifetime-margin 20"
GATED = "-c 'echo $$ > pid; while [ ! -e {gate} ]; do sleep 0.1; done; echo done > out.txt'"


@dataclass
class Gated:
    """A pilot whose first job waits on a gate file; a second job it would take if nothing stopped it."""

    server: Dispatcher
    first: int
    second: int
    gate: Path
    pilot: Pilot


def _gated(site: Site, name: str, root: Path, pilot_args: str, *sbatch_args: str) -> Gated:
    server = Dispatcher(root / "dispatcher").start()
    gate = root / "gate"
    first, second = server.submit(job_spec(GATED.format(gate=gate)), job_spec("-c 'echo two'"))
    return Gated(server, first, second, gate, site.submit(name, server.url, pilot_args, *sbatch_args))


@pytest.fixture(scope="module", autouse=True)
def warned(site: Site, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gated]:
    """Submitted at the start: Slurm sends the batch step SIGUSR1 90 s before its two-minute limit."""
    held = _gated(site, "warned", tmp_path_factory.mktemp("warned"), CLOCKED_ARGS, "--time=2",
                  "--signal=B:USR1@90")
    yield held
    held.server.stop()


@pytest.fixture(scope="module", autouse=True)
def budgeted(site: Site, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stopped]:
    """Submitted at the start: a payload of 300 s in a two-minute slot whose last 60 s the pilot keeps."""
    root = tmp_path_factory.mktemp("budgeted")
    held = _held_job(site, "budgeted", root, "--time=2", pilot_args=f"{BASE_ARGS} --lifetime-margin 60")
    yield held
    held.server.stop()


def _final_update(server: Dispatcher, panda_id: int) -> tuple[float, dict[str, object]]:
    """When the server accepted the job's final update (its own clock), and the fields sent."""
    rows = server.query("SELECT time, fields FROM job_history WHERE PandaID = ? AND event = 'update' AND "
                        "outcome = 'accepted' AND state IN ('finished', 'failed') ORDER BY id", panda_id)
    assert len(rows) == 1, rows
    return float(rows[0][0]), json.loads(rows[0][1])


def _check_stopped(held: Stopped, signalled: float, slurm_state: str) -> float:
    """Reported inside KillWait after ``signalled``, payload gone, exit code and log saying SIGTERM; the latency."""
    pilot = held.pilot
    info = pilot.slurm()
    assert (info["JobState"], info["ExitCode"]) == (slurm_state, f"{SIGTERM_EXIT}:0"), pilot.describe()
    records = pilot.records()
    assert (records[-1]["dest"], records[-1]["reason"]["signal"]) == ("ABORTED", 15), records[-1]
    assert logged_exit(records) == SIGTERM_EXIT
    reported, fields = _final_update(held.server, held.panda_id)
    state = held.server.status(held.panda_id)[held.panda_id]
    assert (state, fields["pilot_error_code"]) == ("failed", SIGTERM_ERROR), fields
    flight = str(fields["pilot_log"])  # the flight record: the last transitions, then the log's tail
    assert "RUNNING -abort-> ABORTING" in flight and "received SIGTERM" in flight, flight
    latency = reported - signalled
    # Slurm's own deadline: SIGKILL comes KillWait seconds after SIGTERM; a later update would never be sent
    assert latency < pilot.cluster.kill_wait, f"final update {latency:.2f} s after the signal"
    assert all_gone(held.payload() or [])
    assert marked(pilot.mark) == [], "a process of the pilot job outlived it"
    return latency


def test_scancel_mid_payload_reports_the_job_inside_killwait(site: Site, tmp_path: Path) -> None:
    held = _held_job(site, "scancelled", tmp_path)
    try:
        payload = wait_for(held.payload, timeout=60, what=f"the payload to start\n{held.pilot.describe()}")
        wait_for(lambda: held.server.status(held.panda_id)[held.panda_id] == "running", what="job running")
        signalled = time.time()
        site.cluster.client("scancel", str(held.pilot.job_id))
        wait_ended([held.pilot], timeout=site.cluster.kill_wait + 30)
        latency = _check_stopped(held, signalled, "CANCELLED")
        assert all_gone(payload)
        print(f"scancel -> final update on the server: {latency:.3f} s")
    finally:
        held.server.stop()


def _check_pilot(pilot: Pilot) -> list[int]:
    """Slurm's exit code for the pilot is the one its transition log implies; the jobs it took."""
    info = pilot.slurm()
    code = logged_exit(pilot.records())
    assert (info["JobState"], info["ExitCode"]) == ("COMPLETED" if code == 0 else "FAILED", f"{code}:0"), \
        pilot.describe()
    return pilot.job_ids()


def test_n_pilots_drain_m_jobs_each_exactly_once(site: Site, tmp_path: Path) -> None:
    server = Dispatcher(tmp_path / "dispatcher").start()
    try:
        ids = server.submit(*[job_spec(f"-c 'echo {n}'") for n in range(M_JOBS)])
        started = time.monotonic()
        pilots = [site.submit(f"drain-{i}", server.url, f"{BASE_ARGS} --timefloor 3600") for i in range(N_PILOTS)]
        wait_ended(pilots, timeout=600)
        took = time.monotonic() - started
        taken = [panda_id for pilot in pilots for panda_id in _check_pilot(pilot)]
        assert sorted(taken) == sorted(ids), "each job taken by exactly one pilot"
        sent = Counter(row[0] for row in server.query("SELECT PandaID FROM job_history WHERE event = 'sent'"))
        assert sent == Counter(ids), "each job handed out exactly once"
        assert set(server.status(*ids).values()) == {"finished"}
        finals = Counter(row[0] for row in server.query(
            "SELECT PandaID FROM job_history WHERE event = 'update' AND outcome = 'accepted' "
            "AND state IN ('finished', 'failed')"))
        assert finals == Counter(ids), "each job's final state reported once and accepted"
        assert all(marked(p.mark) == [] for p in pilots), "a process of a pilot job outlived it"
        print(f"{N_PILOTS} pilots x {M_JOBS} jobs under Slurm: {took:.1f} s, jobs per pilot "
              f"{sorted(Counter(len(p.job_ids()) for p in pilots).elements())}")
    finally:
        server.stop()


def _pilot_log(pilot: Pilot) -> str:
    found = list(pilot.launch.glob("Panda_Pilot_*/pilot.log"))
    return found[0].read_text(errors="replace") if found else ""


def _check_drained(held: Gated, why: str) -> None:
    """The first job finished and reported, the second never handed out, exit 0 with the drain as reason."""
    info = held.pilot.slurm()
    assert (info["JobState"], info["ExitCode"]) == ("COMPLETED", "0:0"), held.pilot.describe()
    records = held.pilot.records()
    last = records[-1]
    assert (last["event"], last["dest"], last["reason"]["text"]) == ("drain", "EXIT", f"drained: {why}"), last
    assert logged_exit(records) == 0
    assert held.server.status(held.first, held.second) == {held.first: "finished", held.second: "activated"}
    assert held.pilot.job_ids() == [held.first]
    assert marked(held.pilot.mark) == []


def test_the_warning_signal_lets_the_job_finish_and_the_pilot_takes_no_more(warned: Gated) -> None:
    """--signal=B:USR1@90: the pilot (the batch step, by exec) takes it as a warning, not a stop."""
    pilot = warned.pilot
    wait_for(lambda: "warning signal: no more jobs" in _pilot_log(pilot), timeout=120,
             what=f"Slurm's USR1 acted on\n{pilot.describe()}")
    assert pilot.state() == "RUNNING" and "squeue" in _pilot_log(pilot)  # the clock read from Slurm, again
    warned.gate.touch()
    wait_ended([pilot], timeout=60)
    _check_drained(warned, "SIGUSR1")


def test_a_drain_file_lets_the_job_finish_and_the_pilot_takes_no_more(site: Site, tmp_path: Path) -> None:
    held = _gated(site, "drain-file", tmp_path, CLOCKED_ARGS, "--time=10")
    try:
        wait_for(lambda: next(held.pilot.launch.glob("Panda_Pilot_*/PanDA_Pilot-*/pid"), None), timeout=60,
                 what=f"the payload to start\n{held.pilot.describe()}")
        (held.pilot.launch / "stop_agent").touch()
        held.gate.touch()
        wait_ended([held.pilot], timeout=60)
        _check_drained(held, f"drain file {held.pilot.launch / 'stop_agent'}")
    finally:
        held.server.stop()


def test_the_time_left_in_the_slot_stops_the_payload_before_slurm_does(budgeted: Stopped) -> None:
    """Slot 120 s (the pilot asks squeue), margin 60 s: the payload is stopped ~60 s in, REACHEDMAXTIME (1213),
    the job reported and the pilot gone before the limit; Slurm records a plain exit 0."""
    pilot = budgeted.pilot
    wait_ended([pilot], timeout=120 + 30)
    info = pilot.slurm()
    assert (info["JobState"], info["ExitCode"]) == ("COMPLETED", "0:0"), pilot.describe()
    reported, fields = _final_update(budgeted.server, budgeted.panda_id)
    assert fields["pilot_error_code"] == 1213, fields
    assert "RUNNING -payload_done-> STAGEOUT" in str(fields["pilot_log"]), fields  # the flight record
    started = datetime.strptime(info["StartTime"], "%Y-%m-%dT%H:%M:%S").timestamp()
    assert reported < started + 120, f"reported {reported - started:.1f} s into a 120 s slot"
    assert logged_exit(pilot.records()) == 0
    assert all_gone(budgeted.payload() or [])
    assert marked(pilot.mark) == []
    print(f"payload stopped by the time budget; final update {reported - started:.1f} s into the 120 s slot")


def _time_limit_hit(pilot: Pilot) -> float:
    """When slurmctld found the job past its limit and ended it (its log, millisecond stamps, local time)."""
    log = (pilot.cluster.base / "log" / "slurmctld.log").read_text(errors="replace")
    found = re.search(rf"^\[(\S+)\] Time limit exhausted for JobId={pilot.job_id}$", log, re.MULTILINE)
    assert found, pilot.describe()
    return datetime.strptime(found.group(1), "%Y-%m-%dT%H:%M:%S.%f").timestamp()


def test_a_pilot_at_its_time_limit_reports_the_job_inside_killwait(time_limited: Stopped) -> None:
    wait_for(time_limited.payload, timeout=60, what="the payload to start")
    # one minute, then up to 30 s until slurmctld's next time-limit check, then KillWait
    wait_ended([time_limited.pilot], timeout=60 + 30 + time_limited.pilot.cluster.kill_wait + 30)
    latency = _check_stopped(time_limited, _time_limit_hit(time_limited.pilot), "TIMEOUT")
    print(f"time limit -> final update on the server: {latency:.3f} s")
