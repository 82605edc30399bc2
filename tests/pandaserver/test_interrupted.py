"""Jobs stopped from outside (the server's kill command, the batch system's signals, a dead pilot), as panda-server
1.0.4 records them once its adder ran."""

from __future__ import annotations

import json
import signal
import time
from typing import Any

import pytest

from tests.pandaserver.cases import Case, sleeper, token_pids
from tests.pilotrun import wait_for

FINAL = ("finished", "failed")


def finals(case: Case, panda_id: int) -> list[dict[str, Any]]:
    return [u for u in case.updates(panda_id) if u["body"].get("job_status") in FINAL]


def test_tobekilled(case: Case) -> None:
    [panda_id] = case.submit(sleeper(case.token))
    launch = case.launch()
    pilot = case.start_pilot(launch, "--heartbeat-interval", "1")
    case.wait_active(panda_id, "running", pilot)
    answer = case.set_command(panda_id, "tobekilled")
    assert answer["success"], answer
    assert pilot.wait(60) == 0

    case.finalize(panda_id)
    job = case.archived(panda_id)
    assert (job["jobstatus"], job["piloterrorcode"]) == ("cancelled", 1144), job
    assert job["commandtopilot"] == "tobekilled"
    assert len(finals(case, panda_id)) == 1


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_sigterm_final_update_before_exit(case: Case, tls: bool) -> None:
    [panda_id] = case.submit(sleeper(case.token))
    launch = case.launch()
    pilot = case.start_pilot(launch, tls=tls)
    case.wait_active(panda_id, "running", pilot)
    signalled = time.time()
    pilot.send_signal(signal.SIGTERM)
    assert pilot.wait(30) == 143
    exited = time.time()

    [final] = finals(case, panda_id)  # delivered, once, and answered before the pilot was gone
    assert final["listener"] == ("https" if tls else "http")
    assert signalled < final["end"] < exited
    assert json.loads(str(final["reply"]))["success"]
    assert final["body"]["pilot_error_code"] == 1201
    assert case.active_status(panda_id) == "holding"  # where a final report waits for the adder

    case.finalize(panda_id)
    job = case.archived(panda_id)
    assert (job["jobstatus"], job["piloterrorcode"]) == ("failed", 1201), job
    [pilot_log] = [row for row in case.pandalog(panda_id) if row["type"] == "pilotLog"]  # the flight record
    assert "RUNNING -abort-> ABORTING" in pilot_log["message"] and "received SIGTERM" in pilot_log["message"]
    case.dir.joinpath("latency.json").write_text(json.dumps(
        {"tls": tls, "signal_to_reply_s": round(float(final["end"]) - signalled, 4),
         "server_s": round(float(final["end"]) - float(final["start"]), 4)}))


def test_sigkilled_pilot_recovered_by_the_next(case: Case) -> None:
    [panda_id] = case.submit(sleeper(case.token))
    launch = case.launch()
    first = case.start_pilot(launch)
    case.wait_active(panda_id, "running", first)
    wait_for(lambda: any((p / f"PanDA_Pilot-{panda_id}" / "jobstate.json").exists()
                         for p in launch.glob("Panda_Pilot_*")), 30, "the job's state on disk")
    first.send_signal(signal.SIGKILL)
    first.wait(30)
    assert finals(case, panda_id) == []  # the dead pilot sent nothing

    second = case.run_pilot(launch)
    assert second.returncode == 82, second.stderr[-3000:]  # recovered the job, then found none to run
    wait_for(lambda: not token_pids(case.token), 30, "the orphaned payload killed by the recovery")

    case.finalize(panda_id)
    job = case.archived(panda_id)
    assert (job["jobstatus"], job["piloterrorcode"]) == ("failed", 1200), job
    assert len(finals(case, panda_id)) == 1
    assert not case.rows(f"SELECT pandaid FROM doma_panda.jobsactive4 WHERE pandaid = {panda_id}")
    third = case.run_pilot(launch)  # the same launch dir: the recovered job is settled, not sent again
    assert third.returncode == 82, third.stderr[-3000:]
    assert len(finals(case, panda_id)) == 1
