"""A real XRootD storage element for the tests: Debian's xrootd-server on one loopback port.

One ``xrootd`` process serves root://, roots://, http://, https:// and davs://
(``xrd.port any`` with XrdHttp sharing the port), computes adler32 itself, and
refuses every client that is not on 127.0.0.1. TLS uses a self-signed
certificate whose CA dir the clients get as ``X509_CERT_DIR``. xrootd refuses
to run as root, so as root it runs as the ``xrootd`` user (setpriv drops uid,
gid and groups). It is started as a direct child and stopped by PID.

Needs Debian's xrootd-server, xrootd-client and gfal2 packages (.ci/run installs
them); :func:`missing` says in one line what is absent, for a skip.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

CONFIG = """all.export /
oss.localroot {d}/data
all.adminpath {d}/admin
all.pidpath {d}/run
xrd.homepath {d}/home
xrd.port any
xrd.protocol XrdHttp libXrdHttp.so
xrd.allow host localhost
xrootd.chksum adler32
xrd.tls {d}/tls/hostcert.pem {d}/tls/hostkey.pem
xrd.tlsca certdir {d}/tls/ca
"""
READY = re.compile(r"------ xrootd se@\S+:(\d+) initialization (completed|failed)")
TOOLS = ("xrootd", "xrdcp", "xrdfs", "gfal-copy", "gfal-sum", "openssl", "setpriv")
#: Client settings no test may run without: a dead or stalled server must fail fast, not hang for minutes.
CLIENT_ENV = {"XRD_CONNECTIONRETRY": "1", "XRD_REQUESTTIMEOUT": "10", "XRD_STREAMTIMEOUT": "10",
              "XRD_CONNECTIONWINDOW": "5", "GFAL_PYTHONBIN": "/usr/bin/python3"}


def missing() -> str | None:
    """Why no storage element can run here (one line), or None."""
    absent = [tool for tool in TOOLS if shutil.which(tool) is None]
    if absent:
        return (f"XRootD storage element not available ({', '.join(absent)} missing): "
                "apt-get install xrootd-server xrootd-client gfal2-util-scripts (see .ci/run)")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("xrootd")
        except KeyError:
            return "XRootD storage element not available: no 'xrootd' user (install xrootd-server)"
    return None


@dataclass
class StorageElement:
    """A running xrootd: its directory, port and process."""

    root: Path
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    stopped_with: list[int] = field(default_factory=list)

    @property
    def data(self) -> Path:
        """What root://127.0.0.1:PORT//x maps to: ``data/x``."""
        return self.root / "data"

    @property
    def ca_dir(self) -> Path:
        return self.root / "tls" / "ca"

    def url(self, scheme: str = "root") -> str:
        """The endpoint base URL for ``scheme`` (root and roots need the double slash before a path)."""
        return f"{scheme}://127.0.0.1:{self.port}" + ("/" if scheme in ("root", "roots") else "")

    def client_env(self) -> dict[str, str]:
        """Environment for clients of this SE: fail fast, trust its CA, find gfal2's python."""
        return {**CLIENT_ENV, "X509_CERT_DIR": str(self.ca_dir)}

    def stall(self) -> None:
        """Freeze the server (SIGSTOP): connections are accepted by the kernel, nothing answers."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        """SIGTERM (after SIGCONT, in case it is stalled) and wait: it ends in milliseconds."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _certificate(d: Path) -> None:
    """A self-signed certificate for localhost/127.0.0.1, and a hashed CA dir holding it."""
    tls = d / "tls"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                    "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-keyout", str(tls / "hostkey.pem"), "-out", str(tls / "hostcert.pem")],
                   check=True, capture_output=True)
    shutil.copy(tls / "hostcert.pem", tls / "ca" / "localhost.pem")
    subprocess.run(["openssl", "rehash", str(tls / "ca")], check=True, capture_output=True)
    (tls / "hostkey.pem").chmod(0o600)


def _give_to_xrootd(d: Path) -> list[str]:
    """As root: hand the tree to the xrootd user and return the setpriv prefix that becomes it."""
    if os.geteuid() != 0:
        return []
    user = pwd.getpwnam("xrootd")
    for top, dirs, files in os.walk(d):
        for name in [top, *(os.path.join(top, n) for n in dirs + files)]:
            os.chown(name, user.pw_uid, user.pw_gid)
    return ["setpriv", "--reuid=xrootd", "--regid=xrootd", "--clear-groups"]


def _await_ready(se: StorageElement, log: Path, timeout: float = 15.0) -> int:
    deadline = time.monotonic() + timeout
    assert se.proc is not None
    while time.monotonic() < deadline:
        found = READY.search(log.read_text(errors="replace")) if log.exists() else None
        if found:
            if found.group(2) == "failed":
                raise RuntimeError(f"xrootd failed to start: {log.read_text()[-2000:]}")
            return int(found.group(1))
        if se.proc.poll() is not None:
            raise RuntimeError(f"xrootd exited with {se.proc.returncode}: {log.read_text()[-2000:]}")
        time.sleep(0.01)
    raise RuntimeError(f"xrootd not ready within {timeout} s")


def start(base: Path) -> StorageElement:
    """Start a storage element in a fresh directory under ``base`` (made traversable for the xrootd user)."""
    base.mkdir(parents=True, exist_ok=True)
    d = Path(tempfile.mkdtemp(prefix="se-", dir=base))
    for directory in (base, d):
        directory.chmod(0o755)
    for sub in ("data", "admin", "run", "home", "tls/ca"):
        (d / sub).mkdir(parents=True)
    _certificate(d)
    (d / "xrootd.cfg").write_text(CONFIG.format(d=d))
    log = d / "xrootd.log"
    argv = [*_give_to_xrootd(d), "xrootd", "-c", str(d / "xrootd.cfg"), "-n", "se", "-l", f"={log}"]
    se = StorageElement(d)
    se.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        se.port = _await_ready(se, log)
    except Exception:
        se.stop()
        raise
    return se


def traversable_base() -> Path:
    """A directory whose every parent the xrootd user can traverse (pytest's tmp dirs are 0700 root)."""
    base = Path(tempfile.gettempdir()) / f"fsm-pilot-se-{os.getuid()}"
    base.mkdir(exist_ok=True)
    base.chmod(0o755)
    return base
