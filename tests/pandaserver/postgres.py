"""A private PostgreSQL 15 cluster for panda-server: initdb in a scratch dir, 127.0.0.1 only, stopped by PID.

The system's cluster is never touched. The postmaster is a direct child (started through ``setpriv`` as the
``postgres`` user, which execs, so the child's PID is the postmaster's), and it is stopped the way
``pg_ctl stop -m immediate`` does it: SIGQUIT to that PID. Durability is switched off: the cluster lives for
one CI run.
"""

from __future__ import annotations

import json
import os
import pwd
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PG_BIN = Path("/usr/lib/postgresql/15/bin")
#: panda-database's init_step.sql creates the pg_cron and pg_partman extensions; both need preloading.
CONFIG = """
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = '{sock}'
cluster_name = '{name}'
shared_preload_libraries = 'pg_cron, pg_partman_bgw'
cron.database_name = 'postgres'
password_encryption = md5
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
log_min_messages = warning
"""
HBA = """local all all trust
host all all 127.0.0.1/32 md5
"""


def as_postgres() -> list[str]:
    """The prefix that runs a command as the ``postgres`` user (PostgreSQL refuses to run as root)."""
    return ["setpriv", "--reuid=postgres", "--regid=postgres", "--clear-groups", "--"]


@dataclass
class Cluster:
    """One cluster under ``root`` on ``port``; ``name`` marks its processes' titles (postgres: NAME: ...)."""

    root: Path
    port: int
    name: str
    proc: subprocess.Popen[bytes] | None = None

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def sock(self) -> Path:
        return self.root / "sock"

    @property
    def log(self) -> Path:
        return self.root / "postgres.log"

    def init(self) -> None:
        """initdb as the postgres user, then our settings: loopback, own socket dir, the two extensions."""
        user = pwd.getpwnam("postgres")
        for directory in (self.root, self.data, self.sock):
            directory.mkdir(parents=True, exist_ok=True)
            os.chown(directory, user.pw_uid, user.pw_gid)
        self.root.chmod(0o755)
        self.sock.chmod(0o755)
        subprocess.run([*as_postgres(), str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres",
                        "--encoding=UTF8", "--locale=C.UTF-8", "--auth-local=trust", "--auth-host=md5"],
                       check=True, capture_output=True)
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(CONFIG.format(port=self.port, sock=self.sock, name=self.name))
        (self.data / "pg_hba.conf").write_text(HBA)

    def start(self, timeout: float = 60.0) -> None:
        """Start the postmaster as our child; return once it accepts connections."""
        log = os.open(self.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            self.proc = subprocess.Popen([*as_postgres(), str(PG_BIN / "postgres"), "-D", str(self.data)],
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        finally:
            os.close(log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"postgres exited with {self.proc.returncode}: {self.log.read_text()[-2000:]}")
            ready = subprocess.run([str(PG_BIN / "pg_isready"), "-q", "-h", str(self.sock), "-p", str(self.port),
                                    "-U", "postgres"],
                                   check=False)
            if ready.returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError(f"postgres not ready within {timeout} s: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        """SIGQUIT to the postmaster (pg_ctl's immediate mode); SIGKILL if it is still there after 30 s."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGQUIT)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def psql_argv(self, database: str = "panda_db") -> list[str]:
        """psql as the superuser over this cluster's own socket: stops at the first error, reads no ~/.psqlrc."""
        return ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", str(self.sock), "-p", str(self.port),
                "-U", "postgres", "-d", database]

    def run_sql(self, sql: str, database: str = "panda_db") -> None:
        """Run SQL text (fed on stdin) and fail with psql's own message."""
        done = subprocess.run(self.psql_argv(database), input=sql, text=True, capture_output=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"psql failed ({done.returncode}): {done.stderr.strip()[-2000:]}")

    def rows(self, sql: str, *, database: str = "panda_db") -> list[dict[str, Any]]:
        """The rows of one SELECT as dicts (psql hands them over as one JSON array)."""
        wrapped = f"SELECT coalesce(json_agg(row_to_json(q)), '[]'::json) FROM ({sql}) AS q"
        done = subprocess.run([*self.psql_argv(database), "-A", "-t", "-c", wrapped], text=True,
                              capture_output=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"psql failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
        found: list[dict[str, Any]] = json.loads(done.stdout)
        return found
