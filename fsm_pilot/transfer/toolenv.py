"""The environment a copytool runs with: the pilot's, less its secrets, plus defaults a site has not set.

XrdCl (xrdcp, the XRootD bindings, gfal2's root:// plugin) waits 120 s for a
connection and tries 5 times, so a dead endpoint hangs a copy for about ten
minutes, and a request to a server that accepted the connection but stalled
waits 1800 s. Pilot 3 sets none of these (it only honours a site's
XRD_LOGFILE), so such a copy runs into its transfer timeout. Here a dead
endpoint fails in about XRD_CONNECTIONWINDOW seconds with its own error
(UNREACHABLENETWORK), and a stalled request in XRD_REQUESTTIMEOUT seconds
("Operation expired", STAGEINTIMEOUT); the pilot's own kill timer still bounds
every copy. A value the site set always wins.

Debian's and EL's ``gfal-*`` scripts pick the first ``python``/``python3`` on
PATH that can import gfal2 and fall back to ``/usr/bin/python``, which modern
systems lack: with a pyenv or a venv first on PATH every gfal-copy fails
("exec: /usr/bin/python: not found"). When the gfal-copy on PATH is the
system's and the system Python can import gfal2 and gfal2_util (checked once),
GFAL_PYTHONBIN points the script at it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from functools import lru_cache

from fsm_pilot.payload.environment import payload_environment

#: XrdCl settings applied when unset: seconds per connection attempt, attempts, seconds per request.
XRD_DEFAULTS: Mapping[str, str] = {
    "XRD_CONNECTIONWINDOW": "10",
    "XRD_CONNECTIONRETRY": "2",
    "XRD_REQUESTTIMEOUT": "120",
    "XRD_STREAMTIMEOUT": "60",
}
SYSTEM_PYTHON = "/usr/bin/python3"
_SYSTEM_BIN = "/usr/bin"
_PROBE_TIMEOUT = 10.0


@lru_cache(maxsize=4)
def _imports_gfal2(python: str) -> bool:
    """Whether ``python`` can import what the gfal-* scripts need (run once per interpreter)."""
    try:
        probe = subprocess.run([python, "-c", "import gfal2, gfal2_util"], stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=_PROBE_TIMEOUT,
                               check=False)
    except (OSError, subprocess.SubprocessError):
        return False
    return probe.returncode == 0


def gfal_python(env: Mapping[str, str], executable: str) -> str | None:
    """The GFAL_PYTHONBIN to add for ``executable`` (a gfal-* command), or None to leave the env alone."""
    if env.get("GFAL_PYTHONBIN") or not os.path.basename(executable).startswith("gfal-"):
        return None
    found = shutil.which(executable, path=env.get("PATH", os.defpath))
    if found is None or os.path.dirname(os.path.realpath(found)) != _SYSTEM_BIN:
        return None
    return SYSTEM_PYTHON if _imports_gfal2(SYSTEM_PYTHON) else None


def tool_environment(argv: Sequence[str], base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for running ``argv``: ``base`` (default the pilot's) less secrets, plus defaults."""
    env = payload_environment(os.environ if base is None else base)[0]
    for name, value in XRD_DEFAULTS.items():
        if not env.get(name):
            env[name] = value
    python = gfal_python(env, argv[0]) if argv else None
    if python is not None:
        env["GFAL_PYTHONBIN"] = python
    return env
