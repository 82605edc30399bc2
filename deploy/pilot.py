"""pilot3/pilot.py: fsm-pilot as the production wrapper launches a pilot.

The wrapper runs ``python3 pilot3/pilot.py -q QUEUE -i PR -j LABEL ...`` with
the node's own python3 and nothing installed, so everything the pilot imports
comes from this directory: fsm_pilot itself and ``vendor/`` (deploy/vendor.lock).
The vendored paths go before site-packages: a node's own, older copy of a
dependency must not be picked up. This file must still parse on any python3,
so that a too-old one gets a clear message instead of a SyntaxError.
"""

import os
import platform
import sys

MINIMUM = (3, 9)
#: Pilot 3's "general error": the pilot cannot run here at all.
GENERAL_ERROR = 65

if sys.version_info < MINIMUM:
    sys.stderr.write("fsm-pilot needs Python " + ".".join(map(str, MINIMUM)) + " or newer; this is "
                     + platform.python_version() + " (" + sys.executable + ")\n")
    sys.exit(GENERAL_ERROR)

HERE = os.path.dirname(os.path.abspath(__file__))


def vendor_paths(here: str, machine: str, libc: str) -> list[str]:
    """fsm_pilot's directory, the pure-Python dependencies, and psutil's build for this node if there is one.

    psutil's wheels are manylinux (glibc) builds; on musl, or a machine with no
    wheel, psutil is left out and the pilot measures from /proc instead.
    """
    paths = [here, os.path.join(here, "vendor", "lib")]
    psutil_dir = os.path.join(here, "vendor", "psutil-" + machine)
    if libc == "glibc" and os.path.isdir(psutil_dir):
        paths.append(psutil_dir)
    return paths


def libc() -> str:
    """``glibc`` on a glibc node, else ``""`` (musl has no such confstr; libc_ver() would read the binary)."""
    try:
        found = os.confstr("CS_GNU_LIBC_VERSION") or ""
    except (ValueError, OSError):
        return ""
    return found.split()[0] if found else ""


def main() -> int:
    """Put the vendored code first on sys.path, then run fsm-pilot's ``run`` with the wrapper's arguments."""
    sys.path[:0] = vendor_paths(HERE, platform.machine(), libc())
    try:
        from fsm_pilot.cli import main as fsm_pilot_main
    except KeyboardInterrupt:  # SIGINT before the pilot's handlers exist: nothing was done yet
        return 130
    jobids = os.path.join(HERE, "pandaIDs.out")  # the wrapper reads it from here
    return fsm_pilot_main(["run", "--jobid-file", jobids, *sys.argv[1:]])


if __name__ == "__main__":
    sys.exit(main())
