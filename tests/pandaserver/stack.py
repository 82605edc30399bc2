"""The whole stack the CI cases run against: PostgreSQL, the schema, one queue, panda-server, storage.

``Stack.up`` builds it in a scratch dir; ``Stack.down`` tears it down by PID whatever state it is in; the
driver (``python -m tests.pandaserver``) writes ``stack.json`` and the pytest run reads it back
(``Stack.load``) to find URLs, the database, the storage dir and panda-server's python.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from tests.pandaserver import schema
from tests.pandaserver.postgres import Cluster
from tests.pandaserver.server import PandaServer, write_config

QUEUE = "FSM_CI"
STORAGE = "CI_DISK"
DB_PASSWORD = "fsm-pilot-ci"  # a throwaway cluster reachable on 127.0.0.1 only


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def queuedata() -> dict[str, Any]:
    """The queue as CRIC would publish it: the server brokers on it, the pilot reads the same JSON.

    Its storage is one file:// endpoint (``storagedata``) for inputs, outputs and logs; ``cp`` keeps an input
    in place. timefloor 0: one job per pilot unless a case asks for more.
    """
    return {
        "nickname": QUEUE, "name": QUEUE, "panda_resource": QUEUE, "atlas_site": "FSM_CI_SITE",
        "site": "FSM_CI_SITE", "cloud": "WORLD", "state": "ACTIVE", "status": "online", "type": "production",
        "resource_type": "grid", "timefloor": 0, "maxwdir": 20000, "maxrss": 4000, "maxtime": 3600,
        "corecount": 1, "catchall": "", "params": {}, "container_type": "", "is_cvmfs": False,
        "ddm": STORAGE, "acopytools": {"pr": ["cp"], "pw": ["cp"], "pl": ["cp"]}, "copytools": {"cp": {"setup": ""}},
        "astorages": {"pr": [STORAGE], "pw": [STORAGE], "pl": [STORAGE]},
        "direct_access_lan": False, "direct_access_wan": False,
    }


def storagedata(path: Path) -> dict[str, Any]:
    """CRIC's ddmendpoints for the queue's one endpoint, a deterministic file:// store under ``path``."""
    protocol = [{"endpoint": "file://localhost", "path": str(path), "flavour": "POSIX"}]
    return {STORAGE: {"name": STORAGE, "id": 1, "state": "ACTIVE", "site": "FSM_CI_SITE", "type": "DATADISK",
                      "token": "", "is_deterministic": True, "rprotocols": {}, "resource": {},
                      "arprotocols": {"write_lan": protocol, "read_lan": protocol}}}


@dataclass
class Stack:
    """Where everything is; the processes are only set in the driver that started them."""

    scratch: Path
    cluster: Cluster
    server: PandaServer

    @property
    def storage(self) -> Path:
        return self.scratch / "storage"

    @property
    def queuedata_file(self) -> Path:
        return self.scratch / "queuedata.json"

    @property
    def storagedata_file(self) -> Path:
        return self.scratch / "storagedata.json"

    @classmethod
    def create(cls, scratch: Path, venv: Path) -> Stack:
        cluster = Cluster(scratch / "pg", free_port(), f"fsmpilot-ci-{scratch.name}")
        server = PandaServer(venv, scratch / "panda", free_port(), free_port())
        return cls(scratch, cluster, server)

    def up(self, timings: dict[str, float]) -> None:
        """Database, schema, queue, config, server; each step's seconds go into ``timings``."""
        mark = time.monotonic()

        def lap(name: str) -> None:
            nonlocal mark
            timings[name] = round(time.monotonic() - mark, 2)
            mark = time.monotonic()

        self.cluster.init()
        self.cluster.start()
        lap("postgres")
        schema.load(self.cluster, DB_PASSWORD)
        schema.add_queue(self.cluster, queuedata())
        lap("schema")
        self.storage.mkdir(parents=True, exist_ok=True)
        self.queuedata_file.write_text(json.dumps(queuedata()))
        self.storagedata_file.write_text(json.dumps(storagedata(self.storage)))
        write_config(self.server.venv, self.server.home, self.cluster.port, DB_PASSWORD, self.server.http_port)
        self.server.start()
        self.check_alive()
        lap("panda_server")

    def check_alive(self) -> None:
        """The v1 API answers over both listeners (TLS verified against our certificate)."""
        for url, verify in ((self.server.url, True), (self.server.tls_url, str(self.server.cacert))):
            reply = requests.get(f"{url}/api/v1/system/is_alive", headers={"Accept": "application/json"},
                                 timeout=30, verify=verify)
            if reply.status_code != 200 or not reply.json().get("success"):
                raise RuntimeError(f"{url}/api/v1/system/is_alive answered {reply.status_code}: {reply.text[:300]}")

    def down(self) -> list[str]:
        """Stop the server, any adder, then postgres; return what is still alive (should be nothing)."""
        self.server.stop()
        self.cluster.stop()
        left = [f"process group {g}" for g in self.server.leftovers()]
        left += [f"pid {p}" for p in titled(self.cluster.name)]
        return left

    def save(self, path: Path) -> None:
        path.write_text(json.dumps({
            "scratch": str(self.scratch), "venv": str(self.server.venv), "home": str(self.server.home),
            "http_port": self.server.http_port, "https_port": self.server.https_port,
            "db_root": str(self.cluster.root), "db_port": self.cluster.port, "db_name": self.cluster.name}))

    @classmethod
    def load(cls, path: Path) -> Stack:
        d = json.loads(path.read_text())
        return cls(Path(d["scratch"]), Cluster(Path(d["db_root"]), d["db_port"], d["db_name"]),
                   PandaServer(Path(d["venv"]), Path(d["home"]), d["http_port"], d["https_port"]))


def titled(name: str) -> list[int]:
    """PIDs of processes whose title names our cluster (postgres: NAME: ...): none once it is stopped."""
    found = subprocess.run(["pgrep", "-f", f"postgres: {name}:"], capture_output=True, text=True, check=False)
    return [int(p) for p in found.stdout.split()]
