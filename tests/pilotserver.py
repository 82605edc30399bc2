"""The project's dispatcher as a real subprocess on 127.0.0.1, for tests that run pilots against it."""

from __future__ import annotations

import signal
import socket
import sqlite3
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from tests.dispatcher_helpers import wire
from tests.pilotrun import FIXTURES


def free_port() -> int:
    """A port nobody listens on right now (for a dispatcher that must come back on the same one)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Dispatcher:
    """A dispatcher process with its own database and storage dir under ``root``."""

    root: Path
    port: int = 0
    proc: subprocess.Popen[str] | None = None
    url: str = ""
    stderr: list[str] = field(default_factory=list)
    #: Served instead of the fixtures' TEST_QUEUE and the bundled file:// endpoint, when given.
    queuedata: Path | None = None
    storagedata: Path | None = None

    @property
    def db(self) -> Path:
        return self.root / "dispatcher.db"

    @property
    def storage(self) -> Path:
        return self.root / "storage"

    def start(self) -> Dispatcher:
        """Start (or restart) on ``port`` (0: any free one); return once it listens."""
        self.root.mkdir(parents=True, exist_ok=True)
        queuedata = self.queuedata or FIXTURES / "queuedata_TEST_QUEUE.json"
        cmd = [sys.executable, "-m", "fsm_pilot", "dispatcher", "--db", str(self.db), "--port", str(self.port),
               "--queuedata", str(queuedata), "--storage-dir", str(self.storage)]
        if self.storagedata is not None:
            cmd += ["--storagedata", str(self.storagedata)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if not line.startswith("listening on "):
            self.proc.kill()
            raise AssertionError(f"dispatcher did not start: {line!r}")
        self.url = line.removeprefix("listening on ")
        self.port = int(self.url.rsplit(":", 1)[1])
        return self

    def stop(self, signum: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signum)
            self.proc.wait(20)

    def v1(self, function: str, body: dict[str, Any]) -> Any:
        reply = requests.post(f"{self.url}/api/v1/{function}", json=body, timeout=10).json()
        assert reply["success"], reply
        return reply["data"]

    def submit(self, *jobs: dict[str, Any], queue: str = "TEST_QUEUE") -> list[int]:
        """Submit as ``fsm-pilot submit`` does (panda-server's encoding); the PandaIDs."""
        return [int(row[0]) for row in self.v1("job/submit", {"jobs": wire(jobs, queue)})]

    def status(self, *ids: int) -> dict[int, str]:
        params = [("job_ids", str(i)) for i in ids]
        data = requests.get(f"{self.url}/api/v1/pilot/get_job_status", params=params, timeout=10,
                            headers={"Accept": "application/json"}).json()["data"]
        return {int(row["job_id"]): str(row["status"]) for row in data}

    def query(self, sql: str, *args: object) -> list[tuple[Any, ...]]:
        """Read the dispatcher's database directly (WAL: readers never block the server)."""
        with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True) as conn:
            return conn.execute(sql, args).fetchall()


def job_spec(job_pars: str, outputs: tuple[str, ...] = (), transformation: str = "bash") -> dict[str, Any]:
    """A job to submit (the dispatcher fills in PandaID, log file, GUIDs, defaults)."""
    spec: dict[str, Any] = {"transformation": transformation, "jobPars": job_pars, "prodSourceLabel": "managed",
                            "scopeLog": "test"}
    if outputs:
        spec.update({"outFiles": ",".join(outputs), "scopeOut": ",".join("test" for _ in outputs)})
    return spec
