"""The dispatcher's pure parts: update decisions, command queueing, job completion, validation."""

from __future__ import annotations

import json
from typing import Any

import pytest

from fsm_pilot.dispatcher import jobspec, jobstate, restv1
from fsm_pilot.dispatcher.encoding import BadRequest
from fsm_pilot.dispatcher.jobstate import Held, decide
from tests.dispatcher_helpers import FIXTURES

QUEUEDATA = json.loads((FIXTURES / "queuedata_TEST_QUEUE.json").read_text())


@pytest.mark.parametrize(
    ("held", "state", "attempt", "expected"),
    [
        (None, "running", None, (None, "tobekilled", "unknown_job")),
        (Held("activated", 0, None), "running", None, (None, "tobekilled", "not_dispatched")),
        (Held("running", 1, None), "running", 2, (None, "tobekilled", "bad_attempt")),
        (Held("activated", 1, None), "running", 0, (None, "tobekilled", "bad_attempt")),  # re-queued
        (Held("finished", 0, None), "running", None, (None, "alreadydone", "already_final")),
        (Held("failed", 0, None), "failed", None, (None, "alreadydone", "already_final")),
        (Held("running", 0, None), "bogus", None, (None, None, "invalid_state")),
        (Held("sent", 0, None), "starting", 0, ("starting", "NULL", "accepted")),
        (Held("running", 0, None), "starting", None, (None, "NULL", "stale")),
        (Held("holding", 0, None), "running", None, (None, "NULL", "stale")),
        (Held("running", 0, "tobekilled"), "failed", 0, ("failed", "tobekilled", "accepted")),
        (Held("sent", 0, None), "finished", None, ("finished", "NULL", "accepted")),
    ],
)
def test_decide(held: Held | None, state: str, attempt: int | None, expected: tuple[Any, ...]) -> None:
    decision = decide(held, state, attempt)
    assert (decision.status, decision.command, decision.outcome) == expected


def test_commands_queue_in_order_each_once() -> None:
    assert jobstate.merge_commands(None, "debug") == "debug"
    assert jobstate.merge_commands("debug", "tobekilled") == "debug,tobekilled"
    assert jobstate.merge_commands("debug,tobekilled", "debug") == "debug,tobekilled"


def test_complete_fills_panda_server_defaults_and_types() -> None:
    spec = jobspec.complete({"transformation": "echo", "coreCount": "4", "taskID": "77", "jobName": "j1"},
                            "TEST_QUEUE", QUEUEDATA)
    assert spec["coreCount"] == 4 and spec["taskID"] == 77 and spec["jobsetID"] == "NULL"
    assert spec["logFile"] == "j1.job.log.tgz" and spec["outFiles"] == "j1.job.log.tgz"
    assert spec["fileDestinationSE"] == "TEST_QUEUE" and spec["destinationSE"] == "TEST_QUEUE"
    assert spec["ddmEndPointOut"] == "LOCAL_DISK"
    assert spec["ioIntensity"] is None and spec["resource_type"] == "Undefined"


def test_complete_keeps_outputs_aligned_with_the_log_last() -> None:
    spec = jobspec.complete({"transformation": "x", "jobName": "j", "outFiles": "a.txt,b.txt"}, "Q", QUEUEDATA)
    assert spec["outFiles"] == "a.txt,b.txt,j.job.log.tgz"
    for name in ("destinationDblock", "realDatasets", "fileDestinationSE", "destinationDBlockToken",
                 "dispatchDBlockTokenForOut", "ddmEndPointOut"):
        assert len(spec[name].split(",")) == 3, name
    assert spec["scopeOut"] == "test,test"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({}, "transformation is required"),
        ({"transformation": "x", "coreCount": "four"}, "coreCount must be an integer"),
        ({"transformation": "x", "jobPars": {"a": 1}}, "must be a string, number, boolean or null"),
        ({"transformation": "x", "attemptNr": True}, "attemptNr must be an integer"),
    ],
)
def test_complete_refuses_what_cannot_be_a_job(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(jobspec.SpecError, match=message):
        jobspec.complete(raw, "Q", QUEUEDATA)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"job_id": "1", "job_status": "running"}, "Type error: 'job_id' must be of type int, got str."),
        ({"job_id": True, "job_status": "running"}, "Type error: 'job_id' must be of type int, got bool."),
        ({"job_status": "running"}, "missing required parameter(s): job_id"),
        ({"job_id": 1, "job_status": "running", "colour": "red"}, "unexpected parameter 'colour'"),
        ({"job_id": 1, "job_status": "running", "max_rss": "big"}, "'max_rss' must be of type int or float"),
    ],
)
def test_v1_validation_messages(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(BadRequest) as info:
        restv1.validate(restv1.UPDATE, raw, is_get=False)
    assert message in str(info.value)


def test_v1_get_parameters_are_cast_like_panda_server() -> None:
    checked = restv1.validate(restv1.UPDATE, {"job_id": 1, "job_status": "running", "max_rss": 1.5}, is_get=False)
    assert checked["max_rss"] == 1.5
    with pytest.raises(BadRequest, match="could not be casted to type int"):
        restv1._cast_query("job_ids", "x1", restv1.INT)
