"""The copytool interface, and the copytools a queue may name in ``acopytools``.

A copytool copies one replica to one destination path. ``start`` returns a
``Transfer`` that the caller waits on with a deadline and the signal wakeup fd,
and stops (killing the copy's whole process tree) when it must not go on.

Names follow Pilot 3 (``StagingClient.copytool_modules``): ``rucio``, ``gfal``
and ``gfalcopy`` (both gfal-copy), ``xrdcp``, ``mv``; plus ``cp`` and
``symlink``, the two other copy types of Pilot 3's ``mv`` module, and
``xrootd`` and ``gfal2``, the Python bindings (bindings.py), which also stand
in for xrdcp and gfal-copy where the command is missing and the module imports. A name that
neither pilot knows is UNKNOWNCOPYTOOL; a Pilot 3 copytool not built here, or
a command that is not installed, is NOTIMPLEMENTED.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType
from typing import Protocol

from fsm_pilot.errors import PilotError, PilotFailure
from fsm_pilot.payload import WaitResult
from fsm_pilot.stagein.bindings import BindingTool
from fsm_pilot.stagein.external import GFAL_SCHEMES, XRDCP_SCHEMES, gfal_argv, rucio_argv, xrdcp_argv
from fsm_pilot.stagein.local import LOCAL_SCHEMES, LinkTool, cp_argv
from fsm_pilot.stagein.process import CommandTool
from fsm_pilot.stagein.resolve import Replica


class Transfer(Protocol):
    """One copy in flight."""

    def wait(self, wakeup_fd: int | None, timeout: float) -> WaitResult:
        """Block until the copy ends ("exited"), ``wakeup_fd`` is readable ("woken") or ``timeout`` passes."""
        ...

    def stop(self, grace: float, wakeup_fd: int | None = None) -> None:
        """Kill what still runs of the copy (SIGTERM, ``grace``, SIGKILL) and release it; safe to repeat."""
        ...

    def result(self) -> None:
        """After "exited": raise the PilotFailure the copy ended with, if any."""
        ...


class Copytool(Protocol):
    """Copies one replica to a local path."""

    @property
    def name(self) -> str:
        """The name queuedata uses."""
        ...

    @property
    def schemes(self) -> frozenset[str] | None:
        """The URL schemes it reads (None: any)."""
        ...

    def available(self) -> bool:
        """Whether it can run on this node."""
        ...

    def start(self, replica: Replica, dest: Path, *, log_path: Path, timeout: float) -> Transfer:
        """Begin copying ``replica`` to ``dest``, output to ``log_path``; ``timeout`` is the caller's deadline."""
        ...


_GFAL = CommandTool("gfal", "gfal-copy", GFAL_SCHEMES, gfal_argv)

COPYTOOLS: Mapping[str, Copytool] = MappingProxyType({
    "cp": CommandTool("cp", "cp", LOCAL_SCHEMES, cp_argv),
    "mv": LinkTool("mv"),
    "symlink": LinkTool("symlink"),
    "xrdcp": CommandTool("xrdcp", "xrdcp", XRDCP_SCHEMES, xrdcp_argv),
    "gfal": _GFAL,
    "gfalcopy": replace(_GFAL, name="gfalcopy"),
    "rucio": CommandTool("rucio", "rucio", None, rucio_argv),
    "xrootd": BindingTool("xrootd", "XRootD", XRDCP_SCHEMES),
    "gfal2": BindingTool("gfal2", "gfal2", GFAL_SCHEMES),
})
#: Where a command is not installed, the binding that does the same (Pilot 3 names only the commands).
_BINDINGS = {"xrdcp": "xrootd", "gfal": "gfal2", "gfalcopy": "gfal2"}

#: Pilot 3 copytools not built here: a queue naming one is configured for Pilot 3, not wrong.
_PILOT3_ONLY = frozenset({"objectstore", "s3", "gs", "lsm"})


def get_copytool(name: str) -> Copytool:
    """The named copytool, ready to run on this node, or why not."""
    tool = COPYTOOLS.get(name)
    if tool is None:
        if name in _PILOT3_ONLY:
            raise PilotFailure(PilotError.NOTIMPLEMENTED, f"copytool {name!r} is not supported by fsm-pilot yet")
        raise PilotFailure(
            PilotError.UNKNOWNCOPYTOOL, f"unknown copytool {name!r} (known: {', '.join(sorted(COPYTOOLS))})"
        )
    if not tool.available():
        binding = COPYTOOLS.get(_BINDINGS.get(name, ""))
        if binding is not None and binding.available():
            return binding
        executable = getattr(tool, "executable", name)
        raise PilotFailure(PilotError.NOTIMPLEMENTED, f"{executable} is not installed on this node")
    return tool


def check_scheme(tool: Copytool, replica: Replica) -> None:
    """Refuse a replica whose URL scheme the copytool cannot read (Pilot 3: NOSTORAGEPROTOCOL)."""
    if tool.schemes is not None and replica.scheme not in tool.schemes:
        raise PilotFailure(
            PilotError.NOSTORAGEPROTOCOL,
            f"copytool {tool.name} cannot read {replica.url} (it reads {', '.join(sorted(tool.schemes))})",
        )
