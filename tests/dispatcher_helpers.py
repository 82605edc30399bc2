"""Helpers for tests that run the dispatcher as a real subprocess on loopback."""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

FIXTURES = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).parent.parent
TEST_QUEUE = "TEST_QUEUE"
JSON = {"Accept": "application/json"}


def module_cmd(*args: str) -> list[str]:
    """``python -m fsm_pilot.dispatcher ARGS`` (until ``fsm-pilot`` has the subcommands)."""
    return [sys.executable, "-m", "fsm_pilot.dispatcher", *args]


def _read_line(proc: subprocess.Popen[bytes], deadline: float, stderr: Path) -> str:
    """The first stdout line, or a failure naming what the process said instead."""
    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    buf = b""
    while b"\n" not in buf:
        left = deadline - time.monotonic()
        if left <= 0 or not sel.select(timeout=left):
            raise AssertionError(f"dispatcher printed no 'listening' line in time (got {buf!r})")
        chunk = os.read(proc.stdout.fileno(), 4096)
        if not chunk:
            code = proc.wait()
            raise AssertionError(f"dispatcher exited ({code}) before listening: {stderr.read_text()}")
        buf += chunk
    sel.close()
    return buf.split(b"\n", 1)[0].decode()


class Dispatcher:
    """One dispatcher process on 127.0.0.1, port chosen by the OS."""

    def __init__(self, db: Path, extra: Sequence[str] = ()) -> None:
        self.db = db
        self.extra = list(extra)
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.stderr = db.parent / f"{db.name}.stderr"

    def start(self, timeout: float = 20.0) -> Dispatcher:
        cmd = module_cmd("dispatcher", "--db", str(self.db), "--host", "127.0.0.1", "--port", "0", *self.extra)
        with self.stderr.open("ab") as err:  # a file, not a pipe: a chatty server must never block on it
            self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, cwd=ROOT)
        line = _read_line(self.proc, time.monotonic() + timeout, self.stderr)
        assert line.startswith("listening on http://127.0.0.1:"), line
        self.url = line.removeprefix("listening on ")
        return self

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM and wait; the exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=timeout)
        self._drain()
        return code

    def kill(self) -> None:
        """SIGKILL: nothing gets a chance to clean up."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=20)
        self._drain()

    def _drain(self) -> None:
        assert self.proc is not None
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    # --- calls -------------------------------------------------------------------------------

    def legacy(self, method: str, fields: Mapping[str, Any], accept_json: bool = True,
               session: requests.Session | None = None) -> requests.Response:
        call = session.post if session is not None else requests.post
        return call(f"{self.url}/server/panda/{method}", data=dict(fields), headers=JSON if accept_json else {},
                    timeout=30)

    def v1(self, path: str, body: Mapping[str, Any] | None = None, method: str = "POST",
           session: requests.Session | None = None, **kwargs: Any) -> requests.Response:
        caller = session if session is not None else requests
        if body is not None:
            kwargs["json"] = dict(body)
        return caller.request(method, f"{self.url}/api/v1/{path}", timeout=30, **kwargs)

    def submit(self, jobs: Sequence[Mapping[str, Any]]) -> list[int]:
        """Submit as ``fsm-pilot submit`` does (panda-server's encoding); the PandaIDs."""
        resp = self.v1("job/submit", {"jobs": wire(jobs)})
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["success"] is True, body
        return [int(row[0]) for row in body["data"]]


@contextmanager
def running(tmp: Path, *extra: str, db: Path | None = None) -> Iterator[Dispatcher]:
    """A started dispatcher; afterwards stopped with SIGTERM, checked to exit 0 without an internal error."""
    disp = Dispatcher(db or tmp / "dispatcher.db", extra).start()
    try:
        yield disp
    finally:
        if disp.proc is not None and disp.proc.poll() is None:
            assert disp.stop() == 0
    assert "Traceback" not in disp.stderr.read_text(), "the dispatcher hit an internal error"


def queue_args() -> list[str]:
    return ["--queuedata", str(FIXTURES / "queuedata_TEST_QUEUE.json")]


def wire(jobs: Sequence[Mapping[str, Any]], queue: str = TEST_QUEUE) -> str:
    """The ``jobs`` string for these job definitions, for ``queue`` unless one names its computingSite."""
    from fsm_pilot.dispatcher.jobwire import encode
    from fsm_pilot.dispatcher.submitspec import to_wire

    return encode([to_wire(j, None if j.get("computingSite") else queue) for j in jobs])


def job(n: int = 0, **fields: Any) -> dict[str, Any]:
    """A trivial job definition with PanDA field names."""
    spec: dict[str, Any] = {"transformation": "echo", "jobPars": f"hello {n}", "jobName": f"test.job.{n}"}
    spec.update(fields)
    return spec


def history(db: Path, panda_id: int) -> list[dict[str, Any]]:
    """The job's recorded history, read straight from the SQLite file."""
    import sqlite3

    con = sqlite3.connect(db)
    try:
        rows = con.execute("SELECT event, state, outcome, answer, fields FROM job_history WHERE PandaID=? ORDER BY id",
                           (panda_id,)).fetchall()
    finally:
        con.close()
    return [{"event": e, "state": s, "outcome": o, "answer": a, "fields": json.loads(f)} for e, s, o, a, f in rows]


def job_row(db: Path, panda_id: int) -> tuple[Any, ...] | None:
    import sqlite3

    con = sqlite3.connect(db)
    try:
        row: tuple[Any, ...] | None = con.execute(
            "SELECT status, queue, attempt, command, pilot FROM jobs WHERE PandaID=?", (panda_id,)).fetchone()
    finally:
        con.close()
    return row


def status_of(db: Path, panda_id: int) -> str | None:
    row = job_row(db, panda_id)
    return None if row is None else str(row[0])
