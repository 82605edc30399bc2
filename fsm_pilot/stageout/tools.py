"""The stage-out copytools, by the names queuedata ``acopytools`` gives them.

Names are Pilot 3's (``StagingClient.copytool_modules``): ``xrdcp``, ``gfal`` and
``gfalcopy`` (both gfal-copy), ``rucio``, and ``mv`` (a file:// endpoint, written
by the pilot itself; ``cp`` and ``symlink`` too, as at stage-in). Where the
Python bindings import (``XRootD`` for xrdcp, ``gfal2`` for gfal), they do the
work instead of the commands, in a child process all the same
(``bindings.py``); otherwise the commands must be on PATH.

Each tool is three steps, each a command line: ``put`` (the copy), ``query``
(the adler32 the storage element reports for the stored file) and ``remove``
(a bad replica). XRootD's copies (xrdcp ``--cksum adler32:source``, the bindings'
end-to-end mode) checksum the file as they send it and compare the server's
value themselves, so the pilot neither reads the file nor queries; the gfal2
bindings print the server's value after their copy, which saves the query.
"""

from __future__ import annotations

import functools
import importlib.util
import re
import shutil
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType
from urllib.parse import urlsplit

from fsm_pilot.errors import PilotError, PilotFailure


@dataclass(frozen=True)
class Upload:
    """One file to store: what a command line may need to name."""

    src: Path
    url: str
    endpoint: str
    scope: str
    lfn: str
    guid: str
    size: int
    #: The file's adler32 when known already (the copytool is then given it to check against).
    adler32: str | None = None


Argv = Callable[[Upload, float], "list[str]"]

#: ``adler32: <value> <file> <size>`` (xrdcp --cksum adler32:source), ``adler32 <value>`` (xrdfs, bindings).
_ADLER_LINE = re.compile(r"^adler32:? ([0-9a-fA-F]{1,8})(?: \S+ \d+)?\s*$", re.MULTILINE)
#: ``<url> <value>`` (gfal-sum).
_GFAL_SUM = re.compile(r"^\S+\s+([0-9a-fA-F]{1,8})\s*$", re.MULTILINE)
_BINDINGS = str(Path(__file__).with_name("bindings.py"))


def _seconds(timeout: float) -> str:
    return str(max(1, int(timeout)))


def _xrootd_host_path(url: str) -> tuple[str, str]:
    """``root://host:port//a/b`` -> (``root://host:port``, ``/a/b``), as xrdfs takes them."""
    split = urlsplit(url)
    return f"{split.scheme}://{split.netloc}", "/" + split.path.lstrip("/")


@dataclass(frozen=True)
class Uploader:
    """A copytool for stage-out: the commands it runs, the schemes it writes, how it reports checksums."""

    name: str
    label: str
    schemes: tuple[str, ...]
    #: Commands that must be on PATH (none for the bindings: they run with the pilot's interpreter).
    needs: tuple[str, ...]
    put: Argv | None
    query: Argv | None = None
    remove: Argv | None = None
    reports: re.Pattern[str] | None = None
    answers: re.Pattern[str] = _ADLER_LINE
    #: The copy checksums the file as it reads it (or is given the value), checks the stored file's against
    #: it, removes a bad one, and prints the value: the pilot reads nothing.
    reports_source: bool = False
    verifies_itself: bool = False

    @property
    def local(self) -> bool:
        """Written by the pilot itself (file:// endpoints): no child, no steps."""
        return self.put is None

    def reported(self, output: str, pattern: re.Pattern[str] | None) -> str | None:
        """The storage element's adler32 in a step's output (8 lowercase hex digits), if there."""
        found = pattern.findall(output) if pattern is not None else []
        return found[-1].lower().zfill(8) if found else None


def _xrdcp_put(up: Upload, timeout: float) -> list[str]:
    """``adler32:source``: xrdcp checksums the file as it sends it, compares the server's, prints the value.

    ``--posc``: a copy cut short leaves no partial replica; ``--rm-bad-cksum``: nor does a bad one.
    """
    checksum = f"adler32:{up.adler32}" if up.adler32 else "adler32:source"
    return ["xrdcp", "--nopbar", "--force", "--posc", "--cksum", checksum, "--rm-bad-cksum", str(up.src), up.url]


def _xrdfs(operation: str) -> Argv:
    def argv(up: Upload, timeout: float) -> list[str]:
        host, path = _xrootd_host_path(up.url)
        return ["xrdfs", host, *operation.split(), path]
    return argv


def _gfal_put(up: Upload, timeout: float) -> list[str]:
    return ["gfal-copy", "--verbose", "--force", "--timeout", _seconds(timeout), up.src.as_uri(), up.url]


def _bindings(library: str, operation: str) -> Argv:
    def argv(up: Upload, timeout: float) -> list[str]:
        source = [str(up.src)] if operation == "put" else []
        known = ["--adler32", up.adler32] if operation == "put" and up.adler32 else []
        return [sys.executable, _BINDINGS, library, operation, *source, up.url, _seconds(timeout), *known]
    return argv


def _rucio_put(up: Upload, timeout: float) -> list[str]:
    """As Pilot 3's upload call: one RSE, the scope, the GUID, no registration (PanDA registers)."""
    return ["rucio", "upload", "--rse", up.endpoint, "--scope", up.scope, "--name", up.lfn, "--guid", up.guid,
            "--pfn", up.url, "--no-register", "--transfer-timeout", _seconds(timeout), str(up.src)]


_XROOT = ("root", "roots")
_GFAL = ("srm", "gsiftp", "https", "davs", "root")  # Pilot 3's gfal allowed_schemas, in its order
XRDCP = Uploader("xrdcp", "xrdcp", _XROOT, ("xrdcp", "xrdfs"), _xrdcp_put, _xrdfs("query checksum"),
                 _xrdfs("rm"), reports=_ADLER_LINE, reports_source=True)
XROOTD_BINDINGS = Uploader("xrdcp", "XRootD bindings", _XROOT, (), _bindings("xrootd", "put"),
                           _bindings("xrootd", "checksum"), _bindings("xrootd", "remove"), reports=_ADLER_LINE,
                           reports_source=True)
GFAL_COPY = Uploader("gfal", "gfal-copy", _GFAL, ("gfal-copy", "gfal-sum", "gfal-rm"), _gfal_put,
                     lambda up, t: ["gfal-sum", up.url, "ADLER32"], lambda up, t: ["gfal-rm", up.url],
                     answers=_GFAL_SUM)
GFAL2_BINDINGS = Uploader("gfal", "gfal2 bindings", _GFAL, (), _bindings("gfal2", "put"),
                          _bindings("gfal2", "checksum"), _bindings("gfal2", "remove"), reports=_ADLER_LINE)
RUCIO = Uploader("rucio", "rucio upload", ("root", "davs", "https", "srm", "gsiftp"), ("rucio",), _rucio_put,
                 verifies_itself=True)
LOCAL = Uploader("mv", "file copy", ("file",), (), None)

#: Pilot 3 copytools not built here: a queue naming one is configured for Pilot 3, not wrong.
_PILOT3_ONLY = frozenset({"objectstore", "s3", "gs", "lsm"})


@functools.cache
def importable(module: str) -> bool:
    """Whether this interpreter finds ``module`` (looked up, not imported: only the child imports it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _by_name(bindings: bool) -> Mapping[str, Uploader]:
    xrootd = XROOTD_BINDINGS if bindings and importable("XRootD") else XRDCP
    gfal = GFAL2_BINDINGS if bindings and importable("gfal2") else GFAL_COPY
    return MappingProxyType({
        "xrdcp": xrootd, "gfal": gfal, "gfalcopy": replace(gfal, name="gfalcopy"),
        "rucio": RUCIO, "mv": LOCAL, "cp": replace(LOCAL, name="cp"), "symlink": replace(LOCAL, name="symlink"),
    })


def uploader(name: str, *, bindings: bool = True) -> Uploader:
    """The named copytool, ready to run here (the bindings first, unless ``bindings`` is False), or why not."""
    tool = _by_name(bindings).get(name)
    if tool is None:
        if name in _PILOT3_ONLY:
            raise PilotFailure(PilotError.NOTIMPLEMENTED, f"copytool {name!r} is not supported by fsm-pilot yet")
        raise PilotFailure(PilotError.UNKNOWNCOPYTOOL, f"unknown copytool {name!r} (known: xrdcp, gfal, gfalcopy, "
                                                       "rucio, mv, cp, symlink)")
    missing = [command for command in tool.needs if shutil.which(command) is None]
    if missing:
        raise PilotFailure(PilotError.NOTIMPLEMENTED, f"copytool {name}: {', '.join(missing)} not installed here")
    return tool
