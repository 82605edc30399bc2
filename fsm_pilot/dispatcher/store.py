"""The dispatcher's state in one SQLite file: queues, storage endpoints, jobs, history, workers.

WAL mode with ``synchronous=NORMAL``: a commit is appended to the write-ahead log
before it returns, and the log is only fsynced at checkpoints. A crash of the process
(SIGKILL, an exception) loses nothing committed, because the appended log pages are in
the operating system's page cache and the next open replays them; only a crash of the
whole machine or a power cut can lose the last commits. Every request commits before it
is answered, so whatever a pilot was told survives a killed dispatcher.

Every state change is a ``BEGIN IMMEDIATE`` transaction: the write lock is taken before
the rows are read, so the read-check-write of a claim or an update is atomic against
any other connection, in this process or another one sharing the file. A job is
therefore handed to exactly one pilot: the claim selects ``activated`` jobs and flips
them to ``sent`` while no other writer can run (no ``RETURNING`` needed, so any SQLite
3 works).

A job left ``sent`` past the policy's timeout is re-queued or failed (``expiry``) inside
the transaction of whatever touches jobs next (a claim, an update, a command) and by
``expire``, which status calls and the server loop run; every time comes from
``self.clock``, so a test can move time instead of waiting for it.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fsm_pilot.dispatcher import expiry, jobstate

_SCHEMA = """
CREATE TABLE IF NOT EXISTS queues (
    nickname TEXT PRIMARY KEY, queuedata TEXT NOT NULL, updated REAL NOT NULL);
CREATE TABLE IF NOT EXISTS storage_endpoints (
    name TEXT PRIMARY KEY, definition TEXT NOT NULL, updated REAL NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
    PandaID INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL,
    status TEXT NOT NULL,
    definition TEXT NOT NULL,          -- the job as served, JSON, PanDA field names
    attempt INTEGER NOT NULL,
    priority INTEGER NOT NULL,
    command TEXT,                      -- pending command(s) for the pilot, comma-joined
    pilot TEXT,                        -- who holds it: the getJob node, then the pilotID
    created REAL NOT NULL, dispatched REAL, modified REAL NOT NULL, ended REAL,
    debug INTEGER NOT NULL DEFAULT 0); -- debug mode (specialHandling): every answer starts with "debug"
CREATE INDEX IF NOT EXISTS jobs_ready ON jobs (queue, status, priority DESC, PandaID);
CREATE INDEX IF NOT EXISTS jobs_sent ON jobs (status, dispatched);
CREATE TABLE IF NOT EXISTS job_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    PandaID INTEGER NOT NULL,
    time REAL NOT NULL,
    event TEXT NOT NULL,               -- submitted, sent, update, command, expired
    state TEXT,                        -- the state reported (or set)
    outcome TEXT NOT NULL,             -- accepted, stale, unknown_job, already_final, requeued, ...
    answer TEXT,                       -- the command the pilot was given
    fields TEXT NOT NULL);             -- every field of the request, JSON
CREATE INDEX IF NOT EXISTS job_history_job ON job_history (PandaID, id);
CREATE TABLE IF NOT EXISTS workers (
    harvester_id TEXT NOT NULL, worker_id TEXT NOT NULL, status TEXT NOT NULL,
    node_id TEXT, updated REAL NOT NULL, PRIMARY KEY (harvester_id, worker_id));
"""


#: Builds a submitted job's definition once its PandaID is known.
Builder = Callable[[int], dict[str, Any]]
#: panda-server's commandToPilot column holds 250 characters.
COMMAND_LIMIT = 250


@dataclass(frozen=True)
class Update:
    """One state report, in either dialect."""

    panda_id: int
    state: str
    attempt: int | None
    pilot: str | None
    fields: Mapping[str, Any]


@dataclass(frozen=True)
class JobStatus:
    panda_id: int
    status: str
    attempt: int


class Store:
    """One connection, used by one thread (the server loop)."""

    def __init__(self, path: Path, policy: expiry.Policy | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.policy = policy or expiry.Policy()
        self.clock = clock
        self.db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA busy_timeout=10000")
        self.db.executescript(_SCHEMA)
        columns = {row[1] for row in self.db.execute("PRAGMA table_info(jobs)")}
        if "debug" not in columns:  # a database from before debug mode was kept
            self.db.execute("ALTER TABLE jobs ADD COLUMN debug INTEGER NOT NULL DEFAULT 0")

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A transaction holding the write lock from its first statement."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def _history(self, panda_id: int, event: str, *, state: str | None, outcome: str, answer: str | None,
                 fields: Mapping[str, Any]) -> None:
        self.db.execute(
            "INSERT INTO job_history (PandaID, time, event, state, outcome, answer, fields) VALUES (?,?,?,?,?,?,?)",
            (panda_id, self.clock(), event, state, outcome, answer, json.dumps(fields, default=str)),
        )

    # --- queues and storage --------------------------------------------------------------------

    def put_queues(self, queues: Mapping[str, Mapping[str, Any]]) -> None:
        now = self.clock()
        with self._write() as db:
            db.executemany("INSERT OR REPLACE INTO queues VALUES (?,?,?)",
                           [(name, json.dumps(q), now) for name, q in queues.items()])

    def put_endpoints(self, endpoints: Mapping[str, Mapping[str, Any]]) -> None:
        now = self.clock()
        with self._write() as db:
            db.executemany("INSERT OR REPLACE INTO storage_endpoints VALUES (?,?,?)",
                           [(name, json.dumps(e), now) for name, e in endpoints.items()])

    def queues(self) -> dict[str, dict[str, Any]]:
        rows = self.db.execute("SELECT nickname, queuedata FROM queues ORDER BY nickname")
        return {name: json.loads(data) for name, data in rows}

    def endpoints(self) -> dict[str, dict[str, Any]]:
        rows = self.db.execute("SELECT name, definition FROM storage_endpoints ORDER BY name")
        return {name: json.loads(data) for name, data in rows}

    # --- jobs ----------------------------------------------------------------------------------

    def submit(self, jobs: Iterable[tuple[str, str, Builder]]) -> list[dict[str, Any]]:
        """Store new jobs in one transaction: (queue, status, a builder of the definition from the PandaID).

        Only ``activated`` jobs are handed out. Returns the definitions as stored, in order.
        """
        stored: list[dict[str, Any]] = []
        now = self.clock()
        with self._write() as db:
            for queue, status, build in jobs:
                cur = db.execute(
                    "INSERT INTO jobs (queue, status, definition, attempt, priority, created, modified)"
                    " VALUES (?,?,?,?,?,?,?)", (queue, status, "{}", 0, 0, now, now))
                panda_id = int(cur.lastrowid or 0)
                spec = {**build(panda_id), "PandaID": panda_id}
                attempt = spec["attemptNr"] if isinstance(spec.get("attemptNr"), int) else 0
                db.execute("UPDATE jobs SET definition=?, attempt=?, priority=?, debug=? WHERE PandaID=?",
                           (json.dumps(spec), attempt, _priority(spec), spec.get("debug") == "True", panda_id))
                self._history(panda_id, "submitted", state=status, outcome="accepted", answer=None,
                              fields=spec)
                stored.append(spec)
        return stored

    def claim(self, queues: list[str], count: int, pilot: str, fields: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Hand up to ``count`` waiting jobs of these queues to one pilot, best priority first."""
        if not queues or count < 1:
            return []
        marks = ",".join("?" * len(queues))
        now = self.clock()
        with self._write() as db:
            self._expire(now)
            rows = db.execute(
                f"SELECT PandaID, definition FROM jobs WHERE queue IN ({marks}) AND status=?"
                " ORDER BY priority DESC, PandaID LIMIT ?",
                (*queues, jobstate.ACTIVATED, count),
            ).fetchall()
            for panda_id, _ in rows:
                db.execute("UPDATE jobs SET status=?, pilot=?, dispatched=?, modified=? WHERE PandaID=?",
                           (jobstate.SENT, pilot, now, now, panda_id))
                self._history(panda_id, "sent", state=jobstate.SENT, outcome="accepted", answer=None, fields=fields)
        return [json.loads(definition) for _, definition in rows]

    def update(self, upd: Update) -> jobstate.Decision:
        """Check and apply one state report; every report is recorded, applied or not."""
        with self._write() as db:
            self._expire(self.clock())
            row = db.execute("SELECT status, attempt, command, debug FROM jobs WHERE PandaID=?",
                             (upd.panda_id,)).fetchone()
            held = jobstate.Held(row[0], row[1], row[2], bool(row[3])) if row else None
            decision = jobstate.decide(held, upd.state, upd.attempt)
            if decision.status is not None:
                now = self.clock()
                ended = now if decision.status in jobstate.FINAL else None
                db.execute(
                    "UPDATE jobs SET status=?, modified=?, ended=COALESCE(?, ended), pilot=COALESCE(?, pilot)"
                    " WHERE PandaID=?",
                    (decision.status, now, ended, upd.pilot, upd.panda_id),
                )
            self._history(upd.panda_id, "update", state=upd.state, outcome=decision.outcome, answer=decision.command,
                          fields=upd.fields)
        return decision

    def set_command(self, panda_id: int, command: str) -> tuple[bool, str]:
        """Set the command the job's next update reply carries, as panda-server's send_command_to_job.

        The command replaces any pending one, except ``tobekilled``, which stays; a job
        that has ended cannot be given one; at most 250 characters (its column's size).
        """
        if len(command) > COMMAND_LIMIT:
            return False, f"command string too long. must be less than {COMMAND_LIMIT} chars"
        with self._write() as db:
            self._expire(self.clock())
            row = db.execute("SELECT status, command FROM jobs WHERE PandaID=?", (panda_id,)).fetchone()
            if row is None or row[0] in jobstate.FINAL:
                return False, f"no active job with PandaID={panda_id}"
            if row[1] == jobstate.KILL:
                return False, "job is being killed"
            db.execute("UPDATE jobs SET command=?, modified=? WHERE PandaID=?", (command, self.clock(), panda_id))
            self._history(panda_id, "command", state=None, outcome="accepted", answer=command,
                          fields={"command": command})
        return True, "command received"

    def statuses(self, ids: Iterable[int]) -> list[JobStatus | None]:
        self.expire()
        out: list[JobStatus | None] = []
        for panda_id in ids:
            row = self.db.execute("SELECT status, attempt FROM jobs WHERE PandaID=?", (panda_id,)).fetchone()
            out.append(JobStatus(panda_id, row[0], row[1]) if row else None)
        return out

    # --- expiry of jobs handed out but never reported on ----------------------------------------

    def _overdue(self, now: float) -> list[tuple[int, int, float, str | None, str]]:
        """Jobs ``sent`` at least the timeout ago (an index range scan: usually empty)."""
        rows = self.db.execute(
            "SELECT PandaID, attempt, dispatched, pilot, definition FROM jobs WHERE status=? AND dispatched<=?"
            " ORDER BY PandaID", (jobstate.SENT, now - self.policy.sent_timeout))
        return list(rows)

    def _expire(self, now: float) -> int:
        """Re-queue or fail every overdue job; the caller holds the write lock. How many."""
        overdue = self._overdue(now)
        for panda_id, attempt, dispatched, pilot, definition in overdue:
            why = expiry.verdict(self.policy, attempt)
            if why.attempt is None:
                self.db.execute("UPDATE jobs SET status=?, modified=?, ended=? WHERE PandaID=?",
                                (jobstate.FAILED, now, now, panda_id))
            else:
                spec = json.loads(definition)
                spec["attemptNr"] = why.attempt
                self.db.execute(
                    "UPDATE jobs SET status=?, attempt=?, definition=?, pilot=NULL, dispatched=NULL, modified=?"
                    " WHERE PandaID=?", (jobstate.ACTIVATED, why.attempt, json.dumps(spec), now, panda_id))
            self._history(panda_id, "expired", state=why.status, outcome=why.outcome, answer=None,
                          fields=expiry.record(self.policy, attempt, dispatched, pilot, why))
        return len(overdue)

    def expire(self) -> int:
        """Expire overdue jobs now; takes the write lock only when there is one. How many."""
        if not self._overdue(self.clock()):
            return 0
        with self._write():
            return self._expire(self.clock())

    def worker_status(self, harvester_id: str, worker_id: str, status: str, node_id: str | None) -> None:
        with self._write() as db:
            db.execute("INSERT OR REPLACE INTO workers VALUES (?,?,?,?,?)",
                       (harvester_id, worker_id, status, node_id, self.clock()))

    def history(self, panda_id: int) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT event, state, outcome, answer, fields FROM job_history WHERE PandaID=? ORDER BY id",
            (panda_id,),
        )
        return [{"event": e, "state": s, "outcome": o, "answer": a, "fields": json.loads(f)}
                for e, s, o, a, f in rows]


def _priority(spec: Mapping[str, Any]) -> int:
    value = spec.get("currentPriority")
    return value if isinstance(value, int) else 0
