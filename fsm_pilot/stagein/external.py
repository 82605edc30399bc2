"""Command lines of the external copytools: xrdcp, gfal-copy and the Rucio client.

Each is used only when installed. Argv lists are built here and never pass
through a shell, so a URL or name cannot inject anything. The options are the
ones Pilot 3 uses (pilot/copytool/xrdcp.py, gfal.py, rucio.py), in long form:
the pilot verifies size and checksum itself afterwards whatever the tool did.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fsm_pilot.stagein.resolve import Replica

#: URL schemes each tool reads, as Pilot 3's ``allowed_schemas``.
XRDCP_SCHEMES = frozenset({"root", "roots"})
GFAL_SCHEMES = frozenset({"srm", "gsiftp", "https", "davs", "root"})


def _seconds(timeout: float) -> str:
    return str(max(1, int(timeout)))


def xrdcp_argv(executable: str, replica: Replica, dest: Path, timeout: float) -> list[str]:
    """``xrdcp --nopbar --force <url> <dest>`` (Pilot 3: ``xrdcp -np -f``)."""
    return [executable, "--nopbar", "--force", replica.url, str(dest)]


def gfal_argv(executable: str, replica: Replica, dest: Path, timeout: float) -> list[str]:
    """``gfal-copy --verbose --force --timeout <s> [--checksum <kind>:<value>] <url> file://<dest>``."""
    argv = [executable, "--verbose", "--force", "--timeout", _seconds(timeout)]
    checksum = replica.spec.checksum
    if checksum is not None:
        argv += ["--checksum", f"{checksum.kind}:{checksum.value}"]
    return [*argv, replica.url, f"file://{dest}"]


def rucio_argv(executable: str, replica: Replica, dest: Path, timeout: float) -> list[str]:
    """``rucio download`` of the DID from the chosen endpoint and URL into ``dest``'s directory.

    As Pilot 3's download call: one RSE, the known PFN, no scope subdirectory,
    the transfer timeout; Rucio names the file after the DID's name (the lfn).
    """
    return [
        executable, "download",
        "--dir", str(dest.parent), "--no-subdir",
        "--rses", replica.endpoint.name, "--pfn", replica.url,
        "--transfer-timeout", _seconds(timeout),
        f"{replica.scope}:{replica.lfn}",
    ]
