"""Jobs handed out but never reported on (a lost getJob reply): re-queued with attemptNr+1, or failed.

Over real loopback HTTP in both dialects. A test never bets on how long a step takes:
it waits for a condition with a deadline, and whatever must not expire meanwhile is
made safe by the job's state (an ``activated`` job never expires) or by restarting the
dispatcher on the same file with the default (30 min) timeout.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs

import pytest

from fsm_pilot.dispatcher.expiry import Policy
from fsm_pilot.dispatcher.store import JobStatus, Store, Update
from tests.dispatcher_helpers import TEST_QUEUE, Dispatcher, history, job, job_row, queue_args, running

T = TypeVar("T")
TINY = ("--sent-timeout", "0.5")


def wait_for(probe: Callable[[], T | None], what: str, timeout: float = 30.0) -> T:
    """Poll until ``probe`` returns something; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        got = probe()
        if got is not None:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@dataclass(frozen=True)
class Dialect:
    """What a pilot does, in one dialect: take a job, report on it, ask for statuses."""

    name: str

    def take(self, disp: Dispatcher) -> dict[str, Any] | None:
        if self.name == "legacy":
            got: dict[str, Any] = disp.legacy("getJob", {"siteName": TEST_QUEUE, "node": "n1"}).json()
            return None if got["StatusCode"] == 20 else got
        body = disp.v1("pilot/acquire_jobs", {"site_name": TEST_QUEUE, "node": "n1"}).json()
        return body["data"]["jobs"][0] if body["success"] else None

    def report(self, disp: Dispatcher, panda_id: int, state: str, attempt: int) -> str:
        """The command the pilot is answered with."""
        if self.name == "legacy":
            fields = {"jobId": str(panda_id), "state": state, "attemptNr": str(attempt), "transExitCode": "0"}
            got = disp.legacy("updateJob", fields).json()
            assert got["StatusCode"] == 0, got
            return str(got["command"])
        body = disp.v1("pilot/update_job", {"job_id": panda_id, "job_status": state, "attempt_nr": attempt,
                                            "trans_exit_code": 0}).json()
        assert body["success"] is True, body
        return str(body["data"]["command"])

    def status(self, disp: Dispatcher, panda_id: int) -> tuple[str, int]:
        """(status, attemptNr) as the dialect's status call answers."""
        if self.name == "legacy":
            resp = disp.legacy("getStatus", {"ids": str(panda_id)})
            got = {k: v[0] for k, v in parse_qs(resp.text).items()}
            return got["status"], int(got["attemptNr"])
        body = disp.v1("pilot/get_job_status", method="GET", params={"job_ids": [panda_id]},
                       headers={"Accept": "application/json"}).json()
        (row,) = body["data"]
        return row["status"], row["attempt_number"]


DIALECTS = [Dialect("legacy"), Dialect("v1")]


def requeued(dialect: Dialect, disp: Dispatcher, panda_id: int, attempt: int) -> tuple[str, int] | None:
    """A probe: the job waits in the queue again, as this attempt."""
    got = dialect.status(disp, panda_id)
    return got if got == ("activated", attempt) else None


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)
def test_a_job_whose_getjob_reply_was_lost_is_handed_out_again_with_the_next_attempt(
        tmp_path: Path, dialect: Dialect) -> None:
    with running(tmp_path, *queue_args(), *TINY, "--max-attempts", "2") as disp:
        (panda_id,) = disp.submit([job(1)])
        first = dialect.take(disp)
        assert first is not None and (first["PandaID"], first["attemptNr"]) == (panda_id, 0)
        # the reply is "lost": this pilot never reports; after the timeout the job is served again
        again = wait_for(lambda: dialect.take(disp), "the job to be handed out again")
        assert (again["PandaID"], again["attemptNr"]) == (panda_id, 1)
        assert dialect.take(disp) is None  # attempt 1 is out (or failed, being the last): never handed twice
        events = [(e["event"], e["state"], e["outcome"]) for e in history(disp.db, panda_id)]
        assert events[:4] == [("submitted", "activated", "accepted"), ("sent", "sent", "accepted"),
                              ("expired", "activated", "requeued"), ("sent", "sent", "accepted")]
        assert "attemptNr 1" in history(disp.db, panda_id)[2]["fields"]["reason"]


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)
def test_the_old_attempt_is_refused_and_the_new_one_accepted(tmp_path: Path, dialect: Dialect) -> None:
    db = tmp_path / "d.db"
    with running(tmp_path, *queue_args(), *TINY, db=db) as disp:
        (panda_id,) = disp.submit([job(1)])
        assert dialect.take(disp) is not None
        wait_for(lambda: requeued(dialect, disp, panda_id, 1), "the job to be re-queued as attempt 1")
        # the old attempt's heartbeat while the job waits in the queue: refused
        assert dialect.report(disp, panda_id, "running", 0) == "tobekilled"
    with running(tmp_path, *queue_args(), db=db) as disp:  # default timeout: nothing expires from here on
        new = dialect.take(disp)
        assert new is not None and (new["PandaID"], new["attemptNr"]) == (panda_id, 1)
        assert dialect.report(disp, panda_id, "finished", 0) == "tobekilled"
        assert job_row(db, panda_id)[:3] == ("sent", TEST_QUEUE, 1)  # type: ignore[index]
        assert history(db, panda_id)[-1]["outcome"] == "bad_attempt"
        assert dialect.report(disp, panda_id, "finished", 1) == "NULL"
        assert dialect.status(disp, panda_id) == ("finished", 1)


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)
def test_a_job_out_of_attempts_fails_with_the_reason(tmp_path: Path, dialect: Dialect) -> None:
    with running(tmp_path, *queue_args(), *TINY, "--max-attempts", "2") as disp:
        (panda_id,) = disp.submit([job(1)])
        assert dialect.take(disp) is not None
        wait_for(lambda: dialect.take(disp), "the job to be handed out again")
        wait_for(lambda: dialect.status(disp, panda_id) == ("failed", 1) or None, "the job to fail")
        assert dialect.take(disp) is None
        assert dialect.report(disp, panda_id, "finished", 1) == "alreadydone"
        expired = [e for e in history(disp.db, panda_id) if e["event"] == "expired"]
        assert [(e["state"], e["outcome"]) for e in expired] == [("activated", "requeued"), ("failed", "failed")]
        assert "limit of 2 attempts" in expired[-1]["fields"]["reason"]


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)
def test_a_job_that_reported_starting_is_not_requeued(tmp_path: Path, dialect: Dialect) -> None:
    db = tmp_path / "d.db"
    with running(tmp_path, *queue_args(), db=db) as disp:
        started, lost = disp.submit([job(1), job(2)])
        assert dialect.take(disp)["PandaID"] == started  # type: ignore[index]
        assert dialect.report(disp, started, "starting", 0) == "NULL"
        assert dialect.take(disp)["PandaID"] == lost  # type: ignore[index]
    with running(tmp_path, *queue_args(), *TINY, db=db) as disp:
        # both were handed out before the restart; only the one never reported on goes back
        wait_for(lambda: requeued(dialect, disp, lost, 1), "the unreported job to be re-queued")
        assert dialect.status(disp, started) == ("starting", 0)
        again = dialect.take(disp)
        assert again is not None and (again["PandaID"], again["attemptNr"]) == (lost, 1)
        assert dialect.report(disp, started, "running", 0) == "NULL"


def test_the_server_loop_expires_jobs_without_any_request(tmp_path: Path) -> None:
    with running(tmp_path, *queue_args(), *TINY) as disp:
        (panda_id,) = disp.submit([job(1)])
        assert DIALECTS[0].take(disp) is not None
        def row_if_requeued() -> tuple[Any, ...] | None:
            row = job_row(disp.db, panda_id)
            return row if row is not None and row[0] == "activated" else None

        row = wait_for(row_if_requeued, "the loop to re-queue the job")  # read from the file: no request made
        assert (row[2], row[4]) == (1, None)


@pytest.mark.parametrize("args", [("--sent-timeout", "0"), ("--sent-timeout", "nan"), ("--max-attempts", "0")])
def test_bad_expiry_options_stop_start_up(tmp_path: Path, args: tuple[str, str]) -> None:
    import subprocess

    from tests.dispatcher_helpers import ROOT, module_cmd

    cmd = module_cmd("dispatcher", "--db", str(tmp_path / "d.db"), "--port", "0", *args)
    done = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 2 and args[0] in done.stderr


# --- the store with a clock the test moves: exact boundaries, no waiting ------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def store_with_a_job(tmp_path: Path, **policy: Any) -> tuple[Store, Clock, int]:
    clock = Clock()
    store = Store(tmp_path / "s.db", Policy(**policy), clock=clock)
    (job,) = store.submit([(TEST_QUEUE, "activated", lambda _: {"attemptNr": 0, "jobName": "j"})])
    return store, clock, int(job["PandaID"])


def take(store: Store) -> list[tuple[int, int]]:
    return [(j["PandaID"], j["attemptNr"]) for j in store.claim([TEST_QUEUE], 5, "n1", {})]


def test_store_expires_exactly_at_the_timeout(tmp_path: Path) -> None:
    store, clock, panda_id = store_with_a_job(tmp_path, sent_timeout=60)
    assert take(store) == [(panda_id, 0)]
    clock.now += 59.999
    assert store.expire() == 0 and take(store) == []
    clock.now += 0.001
    assert take(store) == [(panda_id, 1)]  # the claim itself expired attempt 0 first
    assert store.statuses([panda_id]) == [JobStatus(panda_id, "sent", 1)]


def test_store_refuses_the_old_attempt_and_takes_the_new_one(tmp_path: Path) -> None:
    store, clock, panda_id = store_with_a_job(tmp_path, sent_timeout=60)
    take(store)
    clock.now += 60
    old = store.update(Update(panda_id, "starting", 0, None, {}))  # late: the job went back first
    assert (old.status, old.command, old.outcome) == (None, "tobekilled", "bad_attempt")
    assert store.statuses([panda_id]) == [JobStatus(panda_id, "activated", 1)]
    assert take(store) == [(panda_id, 1)]
    new = store.update(Update(panda_id, "finished", 1, "p2", {}))
    assert (new.status, new.command, new.outcome) == ("finished", "NULL", "accepted")
    clock.now += 3600
    assert store.expire() == 0 and store.statuses([panda_id]) == [JobStatus(panda_id, "finished", 1)]


def test_store_fails_a_job_out_of_attempts_and_leaves_reported_ones_alone(tmp_path: Path) -> None:
    store, clock, lost = store_with_a_job(tmp_path, sent_timeout=60, max_attempts=1)
    started = int(store.submit([(TEST_QUEUE, "activated", lambda _: {"attemptNr": 0, "jobName": "k"})])[0]["PandaID"])
    assert take(store) == [(lost, 0), (started, 0)]
    store.update(Update(started, "starting", 0, None, {}))
    assert store.set_command(lost, "debug")[0]
    clock.now += 60
    assert store.set_command(lost, "debug") == (False, f"no active job with PandaID={lost}")
    assert store.statuses([lost, started]) == [JobStatus(lost, "failed", 0), JobStatus(started, "starting", 0)]
    expired = store.history(lost)[-1]
    assert (expired["event"], expired["state"], expired["outcome"]) == ("expired", "failed", "failed")
    assert expired["fields"]["reason"] == ("no report from the pilot within 60 s of handing out attemptNr 0: "
                                           "failed, attemptNr 1 would reach the limit of 1 attempts")


def test_policy_checks_and_check_interval() -> None:
    assert Policy().problems() == [] and Policy().check_interval == 5.0
    assert Policy(0.5).check_interval == 0.125
    assert [p.split()[0] for p in Policy(float("inf"), 0).problems()] == ["--sent-timeout", "--max-attempts"]
