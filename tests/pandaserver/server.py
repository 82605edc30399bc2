"""panda-server 1.0.4 itself: its config files, the WSGI process (plain and TLS) and runs of its adder.

Everything panda-server reads lives under one PANDA_HOME in the scratch dir, and its processes get that dir's
``home`` as HOME, so no ``/etc/panda`` or ``~/etc/panda`` of the machine can leak in. Each process runs in its
own session and is stopped by its PID (its process group: the adder forks workers), then checked gone.
"""

from __future__ import annotations

import configparser
import contextlib
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

#: The caller every request is made by (what GridSite would take from a production proxy). The VO is the
#: FQAN's first part; "atlas" hits a PostgreSQL bug in panda-server 1.0.4 (getSerialNumber), so it is "local".
DN = "/DC=test/DC=fsm-pilot/CN=fsm-pilot CI"
FQAN = "/local/Role=production"
VO = "local"
WSGI = Path(__file__).parent / "wsgi_local.py"
CENTRAL_HOST = re.compile(r"[A-Za-z0-9.-]+\.cern\.ch")


def server_settings(home: Path, db_port: int, db_password: str) -> dict[str, str]:
    """The [server] keys changed from the template: our database, dirs under PANDA_HOME, no token auth."""
    return {
        "backend": "postgres", "dbhost": "127.0.0.1", "dbport": str(db_port), "dbuser": "panda",
        "dbpasswd": db_password, "dbname": "panda_db", "nDBConnection": "4",
        "logdir": str(home / "log"), "cache_dir": str(home / "cache"), "keyDir": str(home / "keys"),
        "auth_config": str(home / "auth"), "home_dir_cwd": str(home / "home"), "token_authType": "None",
        "certdir": str(home / "keys"), "token_cache_config": str(home / "token_cache_config.json"),
        "setupper_plugins": f"{VO}:pandaserver.dataservice.setupper_dummy_plugin:SetupperDummyPlugin",
        "adder_plugins": f"{VO}:pandaserver.dataservice.adder_dummy_plugin:AdderDummyPlugin",
    }


def logger_settings(home: Path, http_port: int) -> dict[str, str]:
    """[logger]: files under PANDA_HOME; the monitoring messages the template sends to CERN hosts go to our
    own server instead (they end up in the exchange record as 404s on /logger/...)."""
    return {"logdir": str(home / "log"), "loghost": "127.0.0.1", "monport-apache": str(http_port),
            "loghost_new": "127.0.0.1", "monport-apache_new": str(http_port)}


def localised(parser: configparser.ConfigParser) -> None:
    """Every host name the templates carry (CERN's mail relay, proxies, aliases) becomes 127.0.0.1."""
    for section in parser.sections():
        for key, value in parser.items(section):
            if CENTRAL_HOST.search(value):
                parser.set(section, key, CENTRAL_HOST.sub("127.0.0.1", value))


def write_config(venv: Path, home: Path, db_port: int, db_password: str, http_port: int) -> None:
    """panda_server.cfg and panda_common.cfg: the install's .rpmnew templates with our values."""
    etc = home / "etc" / "panda"
    for sub in (etc, home / "log", home / "cache", home / "keys", home / "auth", home / "home"):
        sub.mkdir(parents=True, exist_ok=True)
    for name, section, values in (
        ("panda_server.cfg", "server", server_settings(home, db_port, db_password)),
        ("panda_common.cfg", "logger", logger_settings(home, http_port)),
    ):
        parser = configparser.ConfigParser(interpolation=None)
        parser.optionxform = str  # type: ignore[assignment,method-assign]  # panda's keys are case-sensitive
        parser.read(venv / "etc" / "panda" / f"{name}.rpmnew")
        for key, value in values.items():
            parser.set(section, key, value)
        localised(parser)
        with (etc / name).open("w") as out:
            parser.write(out)


def panda_env(home: Path, url: str) -> dict[str, str]:
    """The environment of every panda-server process: our config, no guessing of a central host."""
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "TZ")}
    return {**keep, "PANDA_HOME": str(home), "HOME": str(home / "home"), "PANDA_BEHIND_REAL_LB": "1",
            "PANDA_URL": f"{url}/server/panda", "PANDA_URL_SSL": f"{url}/server/panda",
            "PANDACACHE_URL": f"{url}/server/panda", "PYTHONDONTWRITEBYTECODE": "1"}


def certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1/localhost (the TLS listener's; the pilot gets it as --cacert)."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                    "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    key.chmod(0o600)
    return cert, key


def stop_group(proc: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """SIGTERM to the process group of a child we started in its own session, SIGKILL after ``grace``."""
    pgid = proc.pid
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and group_alive(pgid):
        proc.poll()
        time.sleep(0.05)
    if group_alive(pgid):
        os.killpg(pgid, signal.SIGKILL)
    proc.wait()


def group_alive(pgid: int) -> bool:
    """Some process (not a zombie of ours) is still in the group."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (FileNotFoundError, ProcessLookupError, IndexError):
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                return True
    return False


@dataclass
class PandaServer:
    """The running server: its URLs, its certificate, the record of every exchange."""

    venv: Path
    home: Path
    http_port: int
    https_port: int
    proc: subprocess.Popen[bytes] | None = None
    groups: list[int] = field(default_factory=list)

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def tls_url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    @property
    def record(self) -> Path:
        return self.home / "exchanges.jsonl"

    @property
    def cacert(self) -> Path:
        return self.home / "tls" / "cert.pem"

    @property
    def env(self) -> dict[str, str]:
        return panda_env(self.home, self.url)

    def start(self, timeout: float = 120.0) -> None:
        """Start the WSGI process; return once it says it listens (importing the app takes 5-10 s)."""
        cert, key = certificate(self.home / "tls")
        log = self.home / "log" / "wsgi.stderr"
        with log.open("ab") as err:
            self.proc = subprocess.Popen(
                [str(self.python), str(WSGI), str(self.record), str(cert), str(key), DN, FQAN,
                 str(self.http_port), str(self.https_port)],
                stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL, env=self.env, cwd=self.home,
                start_new_session=True)
        self.groups.append(self.proc.pid)
        assert self.proc.stdout is not None
        line = read_line(self.proc.stdout, timeout)
        if not line.startswith(b"listening "):
            raise RuntimeError(f"panda-server did not start ({line!r}): {log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc is not None:
            stop_group(self.proc)

    def leftovers(self) -> list[int]:
        """Process groups we started that still hold a live process."""
        return [g for g in self.groups if group_alive(g)]

    def run_adder(self, done: Callable[[], bool], timeout: float = 120.0) -> float:
        """Run panda-server's adder until ``done()`` (job_output_report drained), then stop it; its seconds.

        add_main never exits on its own (it loops for ~8 min); arguments: grace period 0 s, 2 workers.
        """
        started = time.monotonic()
        log = self.home / "log" / "adder.stderr"
        with log.open("ab") as err:
            proc = subprocess.Popen([str(self.python), "-m", "pandaserver.daemons.scripts.add_main", "0", "2"],
                                    stdout=err, stderr=err, stdin=subprocess.DEVNULL, env=self.env,
                                    cwd=self.home, start_new_session=True)
        self.groups.append(proc.pid)
        try:
            while not done():
                if proc.poll() is not None:
                    raise RuntimeError(f"the adder exited with {proc.returncode}: {log.read_text()[-3000:]}")
                if time.monotonic() - started > timeout:
                    raise AssertionError(f"the adder did not drain job_output_report within {timeout} s")
                time.sleep(0.2)
        finally:
            stop_group(proc)
        return time.monotonic() - started


def read_line(stream: object, timeout: float) -> bytes:
    """One line from a child's stdout pipe, or b"" at the deadline (the child may hang importing)."""
    import selectors

    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)  # type: ignore[arg-type]
        if not selector.select(timeout):
            return b""
    line: bytes = stream.readline()  # type: ignore[attr-defined]
    return line
