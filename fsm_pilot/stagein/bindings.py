"""Copytools through the XRootD and gfal2 Python bindings, where the pilot's interpreter can import them.

Each copy runs child/bindings_copy.py by path with the pilot's own interpreter
(``sys.executable``), in its own killable session like the copy commands: a
read blocked inside the library blocks that child, never the pilot. The child
prints the library's error and exits as xrdcp or gfal-copy would, so
:mod:`fsm_pilot.stagein.failures` maps both the same way.

``xrootd`` and ``gfal2`` are fsm-pilot's names (Pilot 3 has no bindings
copytools). A queue naming ``xrdcp`` or ``gfal``/``gfalcopy`` gets the bindings
when the command is not installed but the module imports: e.g. the pip
``xrootd`` wheel has the Python client and no xrdcp. Debian's python3-xrootd
and python3-gfal2 import only under the system Python (/usr/bin/python3), so a
pilot that wants them runs under it or a venv made from it with
``--system-site-packages``.
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from fsm_pilot.stagein.process import ToolRun, start_tool

if TYPE_CHECKING:
    from fsm_pilot.stagein.resolve import Replica

SCRIPT = Path(__file__).parent / "child" / "bindings_copy.py"


@dataclass(frozen=True)
class BindingTool:
    """A copytool whose copy is one call into a Python binding (``module``), run in a child process."""

    name: str
    module: str
    schemes: frozenset[str] | None

    @property
    def executable(self) -> str:
        """What must be there to use it, for the diag when it is not."""
        return f"the {self.module} Python module (for {sys.executable})"

    def available(self) -> bool:
        """Whether the pilot's interpreter can import the binding (looked up, not imported)."""
        try:
            return importlib.util.find_spec(self.module) is not None
        except (ImportError, ValueError):
            return False

    def start(self, replica: Replica, dest: Path, *, log_path: Path, timeout: float) -> ToolRun:
        """Start the child copying ``replica`` to ``dest``, checked against the catalog adler32 when known."""
        argv = [sys.executable, str(SCRIPT), self.name, replica.url, str(dest), str(max(1, int(timeout)))]
        checksum = replica.spec.checksum
        if checksum is not None and checksum.kind == "adler32":
            argv.append(checksum.value)
        return start_tool(self.name, argv, dest.parent, log_path)
