"""How the pilot reads the reply to a final update, in-process against the loopback stub (legacy dialect).

Refusals are never logged as sent: ``alreadydone`` settles the job (the
server has a report), an error StatusCode keeps it in the outbox, and
``tobekilled`` is a refusal for good unless getStatus shows the job in a
final state (then it was a pending kill sent back with an accepted report).
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

import pytest
import structlog

from fsm_pilot import config
from fsm_pilot.context import Context, JobRun, RunArgs
from fsm_pilot.job import job_identity
from fsm_pilot.outbox import deliver
from fsm_pilot.reporting import send_update
from fsm_pilot.signals import SignalState
from fsm_pilot.translog import TransitionLog
from tests.test_panda_client_stub import Canned, StubPanda, client_for, legacy_form, legacy_json, running_stub

Logs = list[MutableMapping[str, Any]]
UPDATEJOB = "/server/panda/updateJob"
GETSTATUS = "/server/panda/getStatus"


@pytest.fixture
def stub() -> Iterator[StubPanda]:
    with running_stub() as server:
        yield server


@pytest.fixture
def logs() -> Iterator[Logs]:
    with structlog.testing.capture_logs() as captured:
        yield captured


def job(tmp_path: Path, stub: StubPanda, attempt: object = "3") -> tuple[Context, JobRun]:
    args = RunArgs(queue="Q", workdir=tmp_path, launch_dir=tmp_path, url=stub.url, api="legacy")
    ctx = Context(args=args, env={}, log=structlog.get_logger("test"), translog=TransitionLog("t"),
                  signals=SignalState(), settings=config.resolve({"update_timeout": 10.0}, {}, {}), pilot_id="t",
                  pilot_dir=tmp_path, client=client_for(stub, api="legacy"))
    record: dict[str, object] = {"PandaID": "5", "logFile": "x.log.tgz", "attemptNr": attempt}
    run = JobRun(identity=job_identity(record), record=record, state="failed", final_pending=True)
    return ctx, run


def events(logs: Logs, name: str) -> Logs:
    return [entry for entry in logs if entry["event"] == name]


def test_an_accepted_final_update_is_sent(tmp_path: Path, stub: StubPanda, logs: Logs) -> None:
    stub.on(UPDATEJOB, legacy_json(StatusCode=0, command="NULL"))
    ctx, run = job(tmp_path, stub)
    assert send_update(ctx, run, "failed", final=True)
    [sent] = events(logs, "update sent")
    assert sent["ok"] is True and sent["attempt_nr"] == 3 and not events(logs, "final update refused")
    assert stub.requests_to(UPDATEJOB)[0].form()["attemptNr"] == "3"


def test_alreadydone_is_a_refusal_that_settles_the_job(
        tmp_path: Path, stub: StubPanda, logs: Logs) -> None:
    stub.on(UPDATEJOB, legacy_json(StatusCode=0, command="alreadydone"))
    ctx, run = job(tmp_path, stub)
    assert deliver(ctx, run, 10.0)  # nothing left to send
    [refused] = events(logs, "final update refused")
    assert refused["log_level"] == "warning" and refused["answer"] == "alreadydone"
    assert not events(logs, "update sent") and run.final_pending is False and run.refused is None
    assert ctx.outbox == []


def test_an_error_status_keeps_the_report_in_the_outbox(
        tmp_path: Path, stub: StubPanda, logs: Logs) -> None:
    stub.on(UPDATEJOB, legacy_json(StatusCode=30, errorDialog="database error"))
    ctx, run = job(tmp_path, stub)
    assert not deliver(ctx, run, 10.0)
    [refused] = events(logs, "final update refused")
    assert refused["log_level"] == "warning" and refused["status"] == 30 and "outbox" in refused["outcome"]
    assert ctx.outbox == [run] and run.final_pending and not run.stop_reporting


def test_tobekilled_for_a_job_the_server_does_not_hold_is_given_up_loudly(
        tmp_path: Path, stub: StubPanda, logs: Logs) -> None:
    stub.on(UPDATEJOB, legacy_json(StatusCode=0, command="tobekilled"))
    stub.on(GETSTATUS, legacy_form(StatusCode=0, status="sent", attemptNr="0"))
    ctx, run = job(tmp_path, stub)
    assert deliver(ctx, run, 10.0)  # settled: sending it again cannot help
    [refused] = events(logs, "final update refused")
    assert refused["log_level"] == "error" and refused["answer"] == "tobekilled"
    assert refused["server_state"] == "sent" and refused["attempt_nr"] == 3
    assert not events(logs, "update sent") and run.refused == "tobekilled" and ctx.outbox == []
    assert stub.count(UPDATEJOB) == 1
    report = (tmp_path / "final_update_5.json").read_text()
    assert '"fsm_pilot_refused": "tobekilled"' in report


def test_tobekilled_with_the_job_final_on_the_server_is_a_pending_kill_not_a_refusal(
        tmp_path: Path, stub: StubPanda, logs: Logs) -> None:
    stub.on(UPDATEJOB, legacy_json(StatusCode=0, command="tobekilled"))
    stub.on(GETSTATUS, legacy_form(StatusCode=0, status="failed", attemptNr="3"))
    ctx, run = job(tmp_path, stub)
    assert send_update(ctx, run, "failed", final=True)
    [sent] = events(logs, "update sent")
    assert sent["server_state"] == "failed" and not events(logs, "final update refused")
    assert not events(logs, "server command: kill the job")


def test_tobekilled_unconfirmed_stays_in_the_outbox(
        tmp_path: Path, stub: StubPanda, logs: Logs) -> None:
    stub.on(UPDATEJOB, legacy_json(StatusCode=0, command="tobekilled"))
    stub.on(GETSTATUS, Canned(403, "ERROR : method getStatus is forbidden", "text/plain"))
    ctx, run = job(tmp_path, stub)
    assert not deliver(ctx, run, 10.0)
    assert events(logs, "final update answered with a refusal, unconfirmed")
    assert ctx.outbox == [run] and run.refused is None and not run.stop_reporting


def test_a_refused_heartbeat_is_a_warning_not_sent(
        tmp_path: Path, stub: StubPanda, logs: Logs) -> None:
    stub.on(UPDATEJOB, legacy_json(StatusCode=30, errorDialog="database error"))
    ctx, run = job(tmp_path, stub)
    assert not send_update(ctx, run, "running")
    [refused] = events(logs, "update refused")
    assert refused["log_level"] == "warning" and refused["message"] == "database error"
    assert not events(logs, "update sent")


@pytest.mark.parametrize("attempt", ["two", "1.5", "9" * 30])
def test_an_attempt_nr_that_is_no_integer_is_left_out_of_the_report(
        tmp_path: Path, stub: StubPanda, attempt: str) -> None:
    stub.on(UPDATEJOB, legacy_json(StatusCode=0, command="NULL"))
    ctx, run = job(tmp_path, stub, attempt)
    assert run.identity.attempt_nr is None and "is not an integer" in str(run.identity.attempt_problem)
    assert send_update(ctx, run, "failed", final=True)
    assert "attemptNr" not in stub.requests_to(UPDATEJOB)[0].form()
    assert send_update(ctx, run, "running")
    assert "attemptNr" not in stub.requests_to(UPDATEJOB)[1].form()
