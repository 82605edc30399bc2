"""The dispatcher's pure parts: update decisions, served job definitions, v1 validation."""

from __future__ import annotations

import json
from typing import Any

import pytest

from fsm_pilot.dispatcher import jobspec, restv1
from fsm_pilot.dispatcher.jobstate import Held, decide
from fsm_pilot.dispatcher.jobwire import WireJob
from fsm_pilot.dispatcher.v1params import Refused, validate
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
        (Held("running", 0, None, debug=True), "running", None, ("running", "debug", "accepted")),
        (Held("running", 0, "tobekilled", debug=True), "running", 0, ("running", "debug,tobekilled", "accepted")),
        (Held("running", 0, "tobekilled"), "failed", 0, ("failed", "tobekilled", "accepted")),
        (Held("sent", 0, None), "finished", None, ("finished", "NULL", "accepted")),
    ],
)
def test_decide(held: Held | None, state: str, attempt: int | None, expected: tuple[Any, ...]) -> None:
    decision = decide(held, state, attempt)
    assert (decision.status, decision.command, decision.outcome) == expected


def _served(**columns: Any) -> dict[str, Any]:
    files = columns.pop("files", [])
    job = jobspec.stored(WireJob({"jobDefinitionID": 7, "computingSite": "TEST_QUEUE", **columns}, files))
    return jobspec.serve(jobspec.numbered(job, 42, 42), QUEUEDATA)


def test_serve_builds_the_definition_as_panda_server_does() -> None:
    log = {"type": "log", "lfn": "j1.log.tgz", "GUID": "g-log", "scope": "test", "dataset": "ds"}
    spec = _served(transformation="echo", jobName="j1", coreCount="4", taskID="77", files=[log])
    assert list(spec)[:8] == ["PandaID", "prodSourceLabel", "swRelease", "homepackage", "transformation", "jobName",
                              "jobDefinitionID", "cloud"]
    assert spec["PandaID"] == 42 and spec["coreCount"] == 4 and spec["taskID"] == 77 and spec["jobsetID"] == "NULL"
    assert (spec["logFile"], spec["logGUID"], spec["outFiles"], spec["scopeLog"]) == (
        "j1.log.tgz", "g-log", "j1.log.tgz", "test")
    assert spec["ddmEndPointOut"] == "LOCAL_DISK" and spec["jobPars"] == " " and spec["attemptNr"] == 0
    assert spec["ioIntensity"] is None and spec["resource_type"] == "Undefined" and spec["currentPriority"] == 0


def test_serve_aligns_inputs_and_outputs_by_position() -> None:
    files = [{"type": "input", "lfn": "a", "fsize": "5", "md5sum": "m1", "scope": "s"},
             {"type": "input", "lfn": "a", "fsize": 5},  # the same input twice is served once
             {"type": "input", "lfn": "b", "fsize": 7, "checksum": "ad:01", "dispatchDBlockToken": "dst:LOCAL_DISK"},
             {"type": "output", "lfn": "o.$PANDAID", "destinationDBlockToken": "ddd:LOCAL_DISK,x"},
             {"type": "log", "lfn": "l.tgz"}]
    spec = _served(transformation="x", prodSourceLabel="managed", files=files)
    assert (spec["inFiles"], spec["fsize"], spec["checksum"], spec["scopeIn"]) == ("a,b", "5,7", "m1,ad:01", "s,NULL")
    assert spec["ddmEndPointIn"] == "LOCAL_DISK,LOCAL_DISK" and spec["outFiles"] == "o.00042,l.tgz"
    assert spec["destinationDBlockToken"] == "dst:LOCAL_DISK,NULL" and spec["scopeOut"] == "NULL"


def test_analysis_jobs_are_numbered_and_flags_come_from_special_handling() -> None:
    spec = _served(transformation="x", prodSourceLabel="user", jobDefinitionID=None, specialHandling="dm,lc,ej",
                   jobParameters="a b", jobName="n.$ORIGINPANDAID")
    assert (spec["jobDefinitionID"], spec["jobsetID"], spec["jobName"]) == (42, 42, "n.42")
    assert spec["debug"] == "True" and spec["loopingCheck"] is False and spec["jobPars"] == "YSBi"


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        ({"coreCount": "four"}, "coreCount must be an integer"),
        ({"attemptNr": True}, "attemptNr must be an integer"),
        ({"jobDefinitionID": None}, "jobDefinitionID is required"),
    ],
)
def test_stored_refuses_what_panda_server_could_not_insert(columns: dict[str, Any], message: str) -> None:
    with pytest.raises(jobspec.SpecError, match=message):
        jobspec.stored(WireJob({"jobDefinitionID": 1, **columns}, []))


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"job_id": "1", "job_status": "running"}, "Type error: 'job_id' must be of type int, got str."),
        ({"job_id": None, "job_status": "running"}, "Type error: 'job_id' must be of type int, got NoneType."),
        ({"job_status": "running"}, "Argument error: missing a required argument: 'job_id'"),
        ({"job_id": 1, "job_status": "running", "colour": "red"},
         "Argument error: got an unexpected keyword argument 'colour'"),
        ({"job_id": 1, "job_status": "running", "max_rss": "big"}, "'max_rss' must be of type int or float"),
    ],
)
def test_v1_validation_messages(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(Refused) as info:
        validate(restv1.UPDATE, "POST", raw)
    assert message in str(info.value)


def test_v1_get_parameters_are_cast_like_panda_server() -> None:
    checked = validate(restv1.UPDATE, "POST", {"job_id": True, "job_status": "running", "max_rss": 1.5})
    assert checked["max_rss"] == 1.5 and checked["timeout"] == 60  # a bool is an int to isinstance
    assert validate(restv1.STATUS, "GET", {"job_ids": "7.0"})["job_ids"] == [7]
    with pytest.raises(Refused, match=r"'job_ids' with value .* could not be casted to type List from list"):
        validate(restv1.STATUS, "GET", {"job_ids": ["1", "x1"]})
    with pytest.raises(Refused, match=r"^expecting GET, received POST$"):
        validate(restv1.STATUS, "POST", {"job_ids": [1]})
