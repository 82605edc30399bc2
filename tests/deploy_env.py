"""A bare worker node for the deployment tests: the tarball, a stdlib-only python3, the production wrapper.

The node's python3 is a ``venv --without-pip`` of a real CPython: only its
standard library, as on an EL9 node (`import requests` fails there; the tests
check that). The wrapper is the unmodified one from ../shared/third_party; its
one hard-coded HTTPS call to a central PanDA host is sent to 127.0.0.1 port 1
(refused at once) by a ``.curlrc`` in ``CURL_HOME``: nothing leaves this machine.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures"
#: The unmodified production wrapper (copied from ../shared/third_party; its sha256 is checked by test_dist).
WRAPPER = Path(__file__).parent / "third_party" / "pilot-wrapper" / "runpilot2-wrapper.sh"
WRAPPER_SHA256 = "27391914a58be66ca6df70b4d7b92fc5777907c3a0f5001528fe7889e27c1f7c"
PYENV = Path.home() / ".pyenv" / "versions"
SUPPORTED = ("3.9", "3.10", "3.11", "3.12", "3.13")
#: Minor versions that must be found (CI sets "3.9 3.13": the oldest and newest must really be tested).
REQUIRED = tuple(os.environ.get("FSM_PILOT_REQUIRE_PYTHONS", "").split())
#: The wrapper's update to the central server goes here instead: nothing listens on port 1.
CURLRC = "connect-to = pandaserver.cern.ch:25443:127.0.0.1:1\n"


def interpreters() -> dict[str, Path]:
    """The CPython of each supported minor version found on this machine (pyenv's, else the running one)."""
    found: dict[str, Path] = {}
    for minor in SUPPORTED:
        candidates = sorted(PYENV.glob(f"{minor}.*/bin/python{minor}"))
        if candidates:
            found[minor] = candidates[-1]
    running = f"{sys.version_info[0]}.{sys.version_info[1]}"
    if running not in found:
        base = Path(sys.base_prefix) / "bin" / f"python{running}"
        found[running] = base if base.exists() else Path(sys.executable)
    return found


def bare_python(interpreter: Path, where: Path) -> Path:
    """A bin dir whose python3 has only the standard library (a venv without pip or site-packages)."""
    subprocess.run([str(interpreter), "-m", "venv", "--without-pip", str(where)], check=True)
    return where / "bin"


def build_tarball(output: Path) -> Path:
    """``deploy/build_tarball.py`` into ``output`` (wheels cached in build/wheels)."""
    subprocess.run([sys.executable, str(ROOT / "deploy" / "build_tarball.py"), "--output", str(output)],
                   check=True, stdout=subprocess.DEVNULL)
    return output


def wrapper_queuedata() -> str:
    """The test queue's queuedata as the wrapper needs it: pretty-printed, ``container_options`` on its own line."""
    queuedata = json.loads((FIXTURES / "queuedata_TEST_QUEUE.json").read_text())
    queuedata["container_options"] = ""
    return json.dumps(queuedata, indent=2) + "\n"


@dataclass
class Node:
    """A launch dir on a bare node: the env the wrapper gets (``env -i`` plus PATH, HOME, CURL_HOME)."""

    root: Path
    bin_dir: Path

    @property
    def launch(self) -> Path:
        return self.root / "launch"

    def env(self, **extra: str) -> dict[str, str]:
        return {"PATH": f"{self.bin_dir}:/usr/bin:/bin", "HOME": str(self.root), "CURL_HOME": str(self.root),
                "LANG": "C.UTF-8", **extra}

    def wrapper_cmd(self, *args: str, piloturl: str = "local") -> list[str]:
        """The wrapper's command line on a plain node (WRAPPER.md), then ``args`` as a factory adds them."""
        return ["bash", str(WRAPPER), "-q", "TEST_QUEUE", "--piloturl", piloturl, "--localpy", "-t",
                "--container", "--mute", *args]


def make_node(root: Path, interpreter: Path, tarball: Path | None) -> Node:
    """A node: its stdlib-only python3, a launch dir with queuedata.json and (if given) pilot3.tar.gz."""
    root.mkdir(parents=True, exist_ok=True)
    node = Node(root, bare_python(interpreter, root / "python"))
    node.launch.mkdir()
    (root / ".curlrc").write_text(CURLRC)
    (node.launch / "queuedata.json").write_text(wrapper_queuedata())
    if tarball is not None:
        (node.launch / "pilot3.tar.gz").write_bytes(tarball.read_bytes())
    return node


def pilot_exit_status(wrapper_stdout: str) -> int | None:
    """The pilot's exit code as the wrapper logged it ("Pilot exit status: N")."""
    found = re.search(r"Pilot exit status: (\d+)", wrapper_stdout)
    return int(found.group(1)) if found else None
