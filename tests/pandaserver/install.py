"""What the panda-server cases need on the machine: Debian packages, a user, and panda-server in its own venv.

apt: PostgreSQL 15 with pg_cron and pg_partman (the schema creates both extensions), and apache2-dev only
because pip builds mod_wsgi, which panda-server requires even when no Apache serves it. pip:
``panda-server[postgres]==1.0.4`` (pinned) into a venv cached in ~/.cache/fsm-pilot across runs and clones;
a venv is used only once the install into it completed (a marker file), so an interrupted install is redone.
The package's build hook chowns files to user ``atlpan``, group ``zp``: both are created first.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

PANDA_SERVER = "panda-server[postgres]==1.0.4"
APT_PACKAGES = ("postgresql", "postgresql-15-cron", "postgresql-15-partman", "apache2-dev", "openssl", "procps")
#: What the stack runs: postgres 15's own binaries, the extensions' libraries, the tools it calls.
NEEDED_FILES = ("/usr/lib/postgresql/15/bin/postgres", "/usr/lib/postgresql/15/lib/pg_cron.so",
                "/usr/lib/postgresql/15/lib/pg_partman_bgw.so", "/usr/bin/apxs", "/usr/bin/openssl",
                "/usr/bin/pgrep", "/usr/bin/psql")


def cannot_run() -> str | None:
    """Why the stack cannot be set up on this machine (one line), or None."""
    if sys.platform != "linux":
        return f"needs Linux (this is {sys.platform})"
    if os.geteuid() != 0:
        return "needs root (apt-get, a postgres cluster run as the postgres user)"
    if shutil.which("apt-get") is None and not all(Path(f).exists() for f in NEEDED_FILES):
        return "needs apt-get (Debian/Ubuntu) to install PostgreSQL 15, pg_cron, pg_partman"
    if shutil.which("setpriv") is None:
        return "needs setpriv (util-linux)"
    return None


def apt_install() -> None:
    """Install the Debian packages unless everything they provide is already there."""
    if all(Path(f).exists() for f in NEEDED_FILES):
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    lock = ["-o", "DPkg::Lock::Timeout=600"]  # other jobs on the machine may hold the dpkg lock for a while
    subprocess.run(["apt-get", *lock, "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", *lock, "install", "-y", "-qq", "--no-install-recommends", *APT_PACKAGES],
                   check=True, env=env)


def panda_user() -> None:
    """User atlpan in group zp, which panda-server's build hook chowns its files to."""
    if subprocess.run(["getent", "group", "zp"], capture_output=True, check=False).returncode != 0:
        subprocess.run(["groupadd", "zp"], check=True)
    if subprocess.run(["getent", "passwd", "atlpan"], capture_output=True, check=False).returncode != 0:
        subprocess.run(["useradd", "-g", "zp", "-M", "-s", "/usr/sbin/nologin", "atlpan"], check=True)


def cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "fsm-pilot"


def panda_venv() -> Path:
    """panda-server 1.0.4 in its own venv (reused when complete); returns the venv dir."""
    venv = cache_dir() / "panda-server-1.0.4"
    marker = venv / ".fsm-pilot-complete"
    if marker.exists() and usable(venv):
        return venv
    shutil.rmtree(venv, ignore_errors=True)
    venv.parent.mkdir(parents=True, exist_ok=True)
    python = shutil.which("python3") or sys.executable
    subprocess.run([python, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, PANDA_SERVER], check=True)
    marker.write_text(PANDA_SERVER + "\n")
    return venv


def usable(venv: Path) -> bool:
    """The cached venv still imports panda-server (its base python may have been removed or replaced)."""
    probe = subprocess.run([str(venv / "bin" / "python"), "-c", "import pandaserver.taskbuffer.JobSpec"],
                           capture_output=True, check=False)
    return probe.returncode == 0
