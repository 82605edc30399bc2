"""Real pilots against the real dispatcher over loopback HTTP, in both dialects."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fsm_pilot.replay import problems
from tests.pilotrun import Launch, make_launch, started, wait_for
from tests.pilotserver import Dispatcher, free_port, job_spec

FAST = ("--heartbeat-interval", "0.5", "--kill-grace", "0.5", "--getjob-wait", "0", "-v", "1",
        "--min-free-disk", "1000")


def pilot(launch: Launch, url: str, *extra: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """A pilot pulling from ``url`` with short intervals (no pre-placed job, queuedata from the server)."""
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("FSM_PILOT_")}, **(env or {})}
    cmd = [sys.executable, "-m", "fsm_pilot", "run", "-q", "TEST_QUEUE", "-j", "managed", "-t", "-a",
           str(launch.dir), "--url", url, *FAST, *extra]
    return started(subprocess.Popen(cmd, cwd=launch.dir, env=env, text=True, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE))


def finish(proc: subprocess.Popen[str], timeout: float = 60) -> tuple[int, str]:
    _, err = proc.communicate(timeout=timeout)
    return proc.returncode, err


def _launch(root: Path) -> Launch:
    launch = Launch(root)
    launch.dir.mkdir(parents=True)
    return launch


def _states(server: Dispatcher, panda_id: int) -> list[str]:
    rows = server.query("SELECT state FROM job_history WHERE PandaID = ? AND event = 'update' "
                        "AND outcome = 'accepted' ORDER BY id", panda_id)
    return [r[0] for r in rows]


@pytest.mark.parametrize("api", ["v1", "legacy", "auto"])
def test_job_from_the_server_is_run_and_reported_in_each_dialect(
        tmp_path: Path, dispatcher: Dispatcher, api: str) -> None:
    [panda_id] = dispatcher.submit(job_spec("-c 'echo $PandaID > out.txt'", ("out.txt",)))
    launch = _launch(tmp_path / "pilot")
    code, err = finish(pilot(launch, dispatcher.url, "--api", api, "--timefloor", "0"))
    assert code == 0, err
    assert dispatcher.status(panda_id) == {panda_id: "finished"}
    assert _states(dispatcher, panda_id) == ["starting", "running", "finished"]
    [(fields,)] = dispatcher.query("SELECT fields FROM job_history WHERE PandaID = ? AND state = 'finished'",
                                   panda_id)
    final = json.loads(fields)
    xml_key = "xml" if api == "legacy" else "job_output_report"
    report = json.loads(final[xml_key])
    stored = dispatcher.storage / report["out.txt"]["surl"].split(str(dispatcher.storage) + "/", 1)[1]
    assert stored.read_text() == f"{panda_id}\n"
    assert problems(launch.records()) == []


def test_no_jobs_exits_82_and_unreachable_server_exits_79(tmp_path: Path, dispatcher: Dispatcher) -> None:
    code, err = finish(pilot(_launch(tmp_path / "a"), dispatcher.url))
    assert code == 82, err
    closed = f"http://127.0.0.1:{free_port()}"
    launch = _launch(tmp_path / "b")
    local = make_launch(tmp_path / "c")  # queuedata from files: only getJob needs the server
    for name in ("queuedata.json", "storagedata.json"):
        (launch.dir / name).write_text((local.dir / name).read_text())
    code, err = finish(pilot(launch, closed, "--update-timeout", "1"))
    assert code == 79, err
    assert launch.records()[-1]["reason"]["error"] == 1318


def test_tobekilled_mid_run_kills_the_payload_and_fails_the_job_1144(
        tmp_path: Path, dispatcher: Dispatcher) -> None:
    [panda_id] = dispatcher.submit(job_spec("-c 'sleep 300'"))
    proc = pilot(_launch(tmp_path / "p"), dispatcher.url)
    wait_for(lambda: dispatcher.status(panda_id)[panda_id] == "running", what="job running")
    dispatcher.v1("job/set_command", {"job_id": panda_id, "command": "tobekilled"})
    code, err = finish(proc)
    assert code == 0, err
    assert dispatcher.status(panda_id) == {panda_id: "failed"}
    [(fields,)] = dispatcher.query("SELECT fields FROM job_history WHERE PandaID = ? AND state = 'failed'",
                                   panda_id)
    assert json.loads(fields)["pilot_error_code"] == 1144


def test_heartbeats_arrive_at_the_configured_interval(tmp_path: Path, dispatcher: Dispatcher) -> None:
    launch = _launch(tmp_path / "p")
    gate = tmp_path / "release"
    [panda_id] = dispatcher.submit(job_spec(f"-c 'while [ ! -e {gate} ]; do sleep 0.05; done'"))
    proc = pilot(launch, dispatcher.url, "--timefloor", "0")
    wait_for(lambda: _states(dispatcher, panda_id).count("running") >= 3, what="three running updates")
    gate.touch()
    code, err = finish(proc)
    assert code == 0, err
    assert _states(dispatcher, panda_id)[-1] == "finished"


def _running_fields(server: Dispatcher, panda_id: int) -> list[dict[str, Any]]:
    rows = server.query("SELECT fields FROM job_history WHERE PandaID = ? AND event = 'update' AND state = 'running'"
                        " ORDER BY id", panda_id)
    return [json.loads(r[0]) for r in rows]


def test_running_heartbeats_carry_memory_io_and_cpu_as_measured(tmp_path: Path, dispatcher: Dispatcher) -> None:
    """As Pilot 3's do (its memory monitor's figures ride on every update): the monitoring pages show them."""
    gate = tmp_path / "release"
    busy = "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done"  # some CPU, in the payload itself
    [panda_id] = dispatcher.submit(job_spec(
        f"-c 'head -c 3000000 /dev/zero > big.dat; {busy}; while [ ! -e {gate} ]; do sleep 0.05; done'"))
    proc = pilot(_launch(tmp_path / "p"), dispatcher.url, "--timefloor", "0", env={"FSM_PILOT_CHECK_INTERVAL": "0.2"})

    def measured() -> bool:
        return any(f.get("tot_wchar", 0) >= 3_000_000 and f.get("cpu_consumption_time", 0) >= 1
                   for f in _running_fields(dispatcher, panda_id))

    wait_for(measured, what="a running heartbeat with the payload's writes and CPU time")
    gate.touch()
    code, err = finish(proc)
    assert code == 0, err
    beat = next(f for f in _running_fields(dispatcher, panda_id) if f.get("tot_wchar", 0) >= 3_000_000)
    for name in ("max_rss", "avg_rss", "max_vmem", "avg_pss", "tot_rchar", "job_metrics"):
        assert name in beat, name
    assert isinstance(beat["cpu_consumption_time"], int) and isinstance(beat["max_rss"], int)
    assert beat["max_rss"] > 0 and "actualCoreCount=" in str(beat["job_metrics"])


def test_sigterm_reports_the_job_failed_1201_before_exiting(tmp_path: Path, dispatcher: Dispatcher) -> None:
    [panda_id] = dispatcher.submit(job_spec("-c 'sleep 300'"))
    proc = pilot(_launch(tmp_path / "p"), dispatcher.url)
    wait_for(lambda: dispatcher.status(panda_id)[panda_id] == "running", what="job running")
    proc.send_signal(signal.SIGTERM)
    code, err = finish(proc)
    assert code == 143, err
    [(fields,)] = dispatcher.query("SELECT fields FROM job_history WHERE PandaID = ? AND state = 'failed'",
                                   panda_id)
    assert json.loads(fields)["pilot_error_code"] == 1201


def test_dispatcher_killed_and_restarted_mid_run_loses_nothing(tmp_path: Path) -> None:
    server = Dispatcher(tmp_path / "dispatcher", port=free_port()).start()
    gate = tmp_path / "release"
    [panda_id] = server.submit(job_spec(f"-c 'while [ ! -e {gate} ]; do sleep 0.05; done; echo ok > o.txt'",
                                        ("o.txt",)))
    launch = _launch(tmp_path / "p")
    proc = pilot(launch, server.url, "--timefloor", "0", "--heartbeat-interval", "600")
    wait_for(lambda: server.status(panda_id)[panda_id] == "running", what="job running")
    server.stop(signal.SIGKILL)
    server.start()  # same port, same database
    assert server.status(panda_id) == {panda_id: "running"}
    gate.touch()
    code, err = finish(proc)
    server.stop()
    assert code == 0, err
    assert server.query("SELECT status FROM jobs WHERE PandaID = ?", panda_id) == [("finished",)]
    assert launch.reports()[panda_id]["fsm_pilot_pending"] is False


def test_twenty_pilots_race_for_two_hundred_jobs(tmp_path: Path, dispatcher: Dispatcher) -> None:
    ids = dispatcher.submit(*[job_spec("", transformation="true") for _ in range(200)])
    # no heartbeat in between: on a loaded machine a stage-out can outlast FAST's 0.5 s and add a "running"
    procs = [pilot(_launch(tmp_path / f"p{i}"), dispatcher.url, "--timefloor", "600", "--heartbeat-interval", "600")
             for i in range(20)]
    results = [finish(p, timeout=300) for p in procs]
    assert all(code in {0, 82} for code, _ in results), results
    assert set(dispatcher.status(*ids).values()) == {"finished"}
    run_by = [int(line) for i in range(20) if (tmp_path / f"p{i}/launch/pandaIDs.out").exists()
              for line in (tmp_path / f"p{i}/launch/pandaIDs.out").read_text().split()]
    assert sorted(run_by) == sorted(ids)  # each job run exactly once
    sent = dispatcher.query("SELECT PandaID, COUNT(*) FROM job_history WHERE event = 'sent' GROUP BY PandaID")
    assert sorted(sent) == [(i, 1) for i in sorted(ids)]
    for panda_id in ids[:: 20]:
        assert _states(dispatcher, panda_id) == ["starting", "running", "finished"]
