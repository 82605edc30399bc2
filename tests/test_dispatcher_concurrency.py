"""20 pilots racing for 200 jobs: each job handed out exactly once, every report recorded."""

from __future__ import annotations

import sqlite3
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import requests

from tests.dispatcher_helpers import TEST_QUEUE, Dispatcher, job, queue_args, running

PILOTS, JOBS = 20, 200


def pilot(disp: Dispatcher, index: int, start: threading.Barrier, taken: list[int], errors: list[str]) -> None:
    """Half the pilots speak legacy, half v1; each takes jobs until none is left."""
    session = requests.Session()
    name = f"pilot-{index}"
    start.wait()
    try:
        while True:
            if index % 2:
                got: Any = disp.legacy("getJob", {"siteName": TEST_QUEUE, "node": name}, session=session).json()
                if got["StatusCode"] == 20:
                    return
                panda_id = got["PandaID"]
            else:
                body = disp.v1("pilot/acquire_jobs", {"site_name": TEST_QUEUE, "node": name}, session=session).json()
                if not body["success"]:
                    return
                panda_id = body["data"]["jobs"][0]["PandaID"]
            taken.append(panda_id)
            for state in ("running", "finished"):
                reply = disp.legacy("updateJob", {"jobId": str(panda_id), "state": state, "pilotID": name},
                                    session=session).json()
                if reply != {"StatusCode": 0, "command": "NULL"}:
                    errors.append(f"{name} {panda_id} {state}: {reply}")
    except Exception as exc:  # collected, so the main thread reports it
        errors.append(f"{name}: {exc!r}")


def test_twenty_pilots_race_for_two_hundred_jobs(tmp_path: Path) -> None:
    with running(tmp_path, *queue_args()) as disp:
        ids = disp.submit([job(i) for i in range(JOBS)])
        start = threading.Barrier(PILOTS)
        taken: list[int] = []
        errors: list[str] = []
        threads = [threading.Thread(target=pilot, args=(disp, i, start, taken, errors)) for i in range(PILOTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not any(t.is_alive() for t in threads) and errors == []
    assert sorted(taken) == sorted(ids) and len(set(taken)) == JOBS
    con = sqlite3.connect(tmp_path / "dispatcher.db")
    statuses = Counter(s for (s,) in con.execute("SELECT status FROM jobs"))
    events = Counter((e, s) for e, s in con.execute("SELECT event, state FROM job_history"))
    con.close()
    assert statuses == {"finished": JOBS}
    assert events == {("submitted", "activated"): JOBS, ("sent", "sent"): JOBS, ("update", "running"): JOBS,
                      ("update", "finished"): JOBS}
