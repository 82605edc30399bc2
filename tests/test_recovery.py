"""A pilot SIGKILLed in each job state; a new pilot in the same launch dir finishes the job.

The dying pilot is frozen at a named place with a failpoint (FSM_PILOT_FAILPOINT:
it SIGSTOPs itself there), then SIGKILLed, so each case dies exactly where it
says. The dispatcher must end with exactly one accepted final update per job,
and every output the payload produced must be in storage with its checksum.
"""

from __future__ import annotations

import json
import signal
import subprocess
import zlib
from pathlib import Path

import psutil
import pytest

from tests.pilotrun import Launch, wait_for
from tests.pilotserver import Dispatcher, job_spec
from tests.test_pilot_server import _launch, finish, pilot
from tests.test_pilot_stagein import _replica, _with_inputs

OUTPUTS = ("one.dat", "two.dat")


def _job(server: Dispatcher, gate: Path | None = None) -> int:
    files = {f"in{i}.dat": (1000, _replica(server, "test", f"in{i}.dat", bytes([i]) * 1000)) for i in (1, 2)}
    wait = f"while [ ! -e {gate} ]; do sleep 0.05; done; " if gate else ""
    body = f"{wait}cat in1.dat > one.dat; cat in2.dat in1.dat > two.dat"
    [panda_id] = server.submit(_with_inputs(job_spec(f"-c '{body}'", OUTPUTS), files))
    return panda_id


def _finals(server: Dispatcher, panda_id: int) -> list[dict[str, object]]:
    rows = server.query("SELECT fields FROM job_history WHERE PandaID = ? AND event = 'update' "
                        "AND outcome = 'accepted' AND state IN ('finished', 'failed')", panda_id)
    return [json.loads(r[0]) for r in rows]


def _stopped(proc: subprocess.Popen[str]) -> bool:
    try:
        return bool(psutil.Process(proc.pid).status() == psutil.STATUS_STOPPED)  # the stubs' status type needs 3.10
    except psutil.NoSuchProcess:
        return False


def _kill_at(launch: Launch, server: Dispatcher, failpoint: str) -> None:
    proc = pilot(launch, server.url, "--timefloor", "0", env={"FSM_PILOT_FAILPOINT": failpoint})
    wait_for(lambda: _stopped(proc) or proc.poll() is not None, what=f"the pilot frozen at {failpoint}")
    assert proc.poll() is None, proc.communicate()[1]
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=20)


def _payload_pid(launch: Launch, pilot_pid: int, panda_id: int) -> int | None:
    """The payload pid a pilot recorded in the job's state file, once the payload runs."""
    found = list(launch.dir.glob(f"Panda_Pilot_{pilot_pid}_*/PanDA_Pilot-{panda_id}/jobstate.json"))
    payload = json.loads(found[0].read_text()).get("payload") if found else None
    return int(payload["pid"]) if payload else None


def _check_outputs(server: Dispatcher, final: dict[str, object]) -> None:
    report = json.loads(str(final["job_output_report"]))
    assert set(OUTPUTS) <= set(report)
    for lfn in OUTPUTS:
        stored = server.storage / str(report[lfn]["surl"]).split(str(server.storage) + "/", 1)[1]
        assert f"{zlib.adler32(stored.read_bytes()) & 0xFFFFFFFF:08x}" == report[lfn]["adler32"]


@pytest.mark.parametrize(("failpoint", "state", "code"), [
    ("stagein_file", "failed", 1200),
    ("stageout_start", "finished", 0),
    ("stageout_file:1", "finished", 0),
    ("stageout_file:2", "finished", 0),
    ("final_update", "finished", 0),
])
def test_pilot_killed_at_a_failpoint_is_recovered(tmp_path: Path, dispatcher: Dispatcher, failpoint: str,
                                                  state: str, code: int) -> None:
    panda_id = _job(dispatcher)
    launch = _launch(tmp_path / "p")
    _kill_at(launch, dispatcher, failpoint)
    assert _finals(dispatcher, panda_id) == []
    code_, err = finish(pilot(launch, dispatcher.url, "--timefloor", "0"))
    assert code_ == 82, err  # nothing new to run: the recovered job is not a new job
    finals = _finals(dispatcher, panda_id)
    assert len(finals) == 1, finals
    assert (dispatcher.status(panda_id)[panda_id], finals[0]["pilot_error_code"]) == (state, code)
    if state == "finished":
        _check_outputs(dispatcher, finals[0])
    # the second pilot's RECOVERY transition (dirs are named by PID, which may wrap: no order to rely on)
    recoveries = [json.loads(r)["reason"]["text"] for log in launch.dir.glob("Panda_Pilot_*/transitions.jsonl")
                  for r in log.read_text().splitlines() if '"source":"RECOVERY"' in r]
    assert any(f"{panda_id}: {state}" in text for text in recoveries), recoveries


def test_pilot_killed_while_running_is_recovered_and_a_live_pilot_is_left_alone(
        tmp_path: Path, dispatcher: Dispatcher) -> None:
    gate = tmp_path / "gate"
    dead_job = _job(dispatcher, gate)
    launch = _launch(tmp_path / "p")
    dying = pilot(launch, dispatcher.url, "--timefloor", "0")
    orphan = wait_for(lambda: _payload_pid(launch, dying.pid, dead_job), what="first payload running")
    dying.send_signal(signal.SIGKILL)
    dying.communicate(timeout=20)
    assert psutil.pid_exists(orphan)  # the dead pilot's payload outlives it
    live_job = _job(dispatcher, tmp_path / "gate-live")
    live = pilot(launch, dispatcher.url, "--timefloor", "0")  # takes the second job and keeps running it

    wait_for(lambda: _payload_pid(launch, live.pid, live_job), what="the live pilot's payload running")
    live_dir = next(p for p in launch.dir.glob("Panda_Pilot_*") if p.name.split("_")[2] == str(live.pid))
    before = sorted(str(p) for p in live_dir.rglob("*"))
    code, err = finish(pilot(launch, dispatcher.url, "--timefloor", "0"))
    assert code == 82, err
    assert [f["pilot_error_code"] for f in _finals(dispatcher, dead_job)] == [1200]
    assert sorted(str(p) for p in live_dir.rglob("*")) == before
    assert dispatcher.status(live_job)[live_job] == "running"
    (tmp_path / "gate-live").touch()
    code, err = finish(live)
    assert code == 0, err
    assert [f["pilot_error_code"] for f in _finals(dispatcher, live_job)] == [0]
    wait_for(lambda: not psutil.pid_exists(orphan) or psutil.Process(orphan).status() == psutil.STATUS_ZOMBIE,
             what="the dead pilot's payload killed by recovery")


def _queued(launch: Launch, panda_id: int) -> bool:
    """The job's final update is decided and not delivered (it sits in the outbox)."""
    found = list(launch.dir.glob(f"Panda_Pilot_*/PanDA_Pilot-{panda_id}/jobstate.json"))
    state = json.loads(found[0].read_text()) if found else {}
    return state.get("final") is not None and not state.get("done")


def _push(server: Dispatcher, launch: Launch, count: int) -> list[dict[str, object]]:
    """Claim jobs from the dispatcher as Harvester does and pre-place them for the pilot (PUSH mode)."""
    import requests

    jobs = [requests.post(f"{server.url}/server/panda/getJob", headers={"Accept": "application/json"},
                          data={"siteName": "TEST_QUEUE", "computingElement": "TEST_QUEUE", "node": "harvester"},
                          timeout=10).json() for _ in range(count)]
    (launch.dir / "pandaJobData.out").write_text(json.dumps({str(j["PandaID"]): j for j in jobs}))
    return jobs


def test_final_update_waits_in_the_outbox_while_the_server_is_down(tmp_path: Path) -> None:
    from tests.pilotserver import free_port

    server = Dispatcher(tmp_path / "dispatcher", port=free_port()).start()
    gates = [tmp_path / "gate-a", tmp_path / "gate-b"]
    try:
        first, second = _job(server, gates[0]), _job(server, gates[1])
        launch = _launch(tmp_path / "p")
        _push(server, launch, 2)
        proc = pilot(launch, server.url, "--timefloor", "10", "--update-timeout", "1", "--heartbeat-interval",
                     "0.2", "--harvester-submit-mode", "PUSH")
        wait_for(lambda: _payload_pid(launch, proc.pid, first), what="first payload running")
        server.stop(signal.SIGKILL)
        gates[0].touch()
        wait_for(lambda: _queued(launch, first), what="the first final update in the outbox")
        server.start()  # back, on the same port and database, while the second job runs
        wait_for(lambda: len(_finals(server, first)) == 1, what="the outbox delivering at a heartbeat")
        gates[1].touch()
        code, err = finish(proc)
        assert code == 0, err
        for panda_id in (first, second):
            finals = _finals(server, panda_id)
            assert [f["pilot_error_code"] for f in finals] == [0]
            _check_outputs(server, finals[0])
    finally:
        server.stop()


def test_final_update_undelivered_at_exit_is_sent_by_the_next_pilot(tmp_path: Path) -> None:
    from tests.pilotserver import free_port

    server = Dispatcher(tmp_path / "dispatcher", port=free_port()).start()
    try:
        gate = tmp_path / "gate"
        panda_id = _job(server, gate)
        launch = _launch(tmp_path / "p")
        proc = pilot(launch, server.url, "--timefloor", "0", "--update-timeout", "1")
        wait_for(lambda: _payload_pid(launch, proc.pid, panda_id), what="payload running")
        server.stop(signal.SIGKILL)
        gate.touch()
        code, err = finish(proc)
        assert code == 0, err  # the job ran; its outcome waits on disk
        assert _queued(launch, panda_id)
        server.start()
        code, err = finish(pilot(launch, server.url, "--timefloor", "0"))
        assert code == 82, err
        finals = _finals(server, panda_id)
        assert [f["pilot_error_code"] for f in finals] == [0]
        _check_outputs(server, finals[0])
    finally:
        server.stop()


def test_sigkill_right_after_sigterm_leaves_the_signal_outcome_for_the_next_pilot(
        tmp_path: Path, dispatcher: Dispatcher) -> None:
    panda_id = _job(dispatcher, tmp_path / "never")
    launch = _launch(tmp_path / "p")
    proc = pilot(launch, dispatcher.url, "--timefloor", "0", env={"FSM_PILOT_FAILPOINT": "aborting"})
    wait_for(lambda: _payload_pid(launch, proc.pid, panda_id), what="payload running")
    proc.send_signal(signal.SIGTERM)
    wait_for(lambda: _stopped(proc), what="the pilot frozen in ABORTING, outcome recorded")
    proc.send_signal(signal.SIGKILL)  # as a batch system does when its grace runs out
    proc.communicate(timeout=20)
    assert _finals(dispatcher, panda_id) == []
    code, err = finish(pilot(launch, dispatcher.url, "--timefloor", "0"))
    assert code == 82, err
    assert [f["pilot_error_code"] for f in _finals(dispatcher, panda_id)] == [1201]


def test_sigterm_with_the_server_down_leaves_the_outcome_for_the_next_pilot(tmp_path: Path) -> None:
    from tests.pilotserver import free_port

    server = Dispatcher(tmp_path / "dispatcher", port=free_port()).start()
    try:
        panda_id = _job(server, tmp_path / "never")
        launch = _launch(tmp_path / "p")
        proc = pilot(launch, server.url, "--timefloor", "0")
        wait_for(lambda: _payload_pid(launch, proc.pid, panda_id), what="payload running")
        server.stop(signal.SIGKILL)
        proc.send_signal(signal.SIGTERM)
        code, err = finish(proc)
        assert code == 143, err
        assert _queued(launch, panda_id)  # decided (1201) and kept, not lost
        server.start()
        code, err = finish(pilot(launch, server.url, "--timefloor", "0"))
        assert code == 82, err
        assert [f["pilot_error_code"] for f in _finals(server, panda_id)] == [1201]
    finally:
        server.stop()
