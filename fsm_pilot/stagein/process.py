"""Copytools that run as child processes: own session, killable tree, output to the transfer log.

A copy reads shared storage, and a read from a hung mount, a dead server or a
FIFO blocks the reading process inside the kernel. With no threads, a copy
done in the pilot's own process would block the pilot too: no deadline, no
signal handling. So every copy that reads bytes runs in a child started by the
payload module; the pilot waits on the child's pidfd and the signal wakeup fd
together, and on a deadline or a signal kills the child's whole tree.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from fsm_pilot.errors import PilotError, PilotFailure
from fsm_pilot.payload import WaitResult
from fsm_pilot.stagein.failures import Direction, tool_failure
from fsm_pilot.transfer.child import Child, start_child

if TYPE_CHECKING:
    from fsm_pilot.stagein.resolve import Replica

__all__ = ["ArgvBuilder", "CommandTool", "Finished", "ToolRun", "start_tool", "tool_failure"]

#: Builds a tool's argv from (its executable's path, the replica, the destination file, the timeout in s).
ArgvBuilder = Callable[[str, "Replica", Path, float], list[str]]

class Finished:
    """A copy done in the pilot's own process (a symlink): nothing to wait for or to kill."""

    def wait(self, wakeup_fd: int | None, timeout: float) -> WaitResult:
        """It is over already."""
        return "exited"

    def stop(self, grace: float, wakeup_fd: int | None = None) -> None:
        """Nothing runs."""

    def result(self) -> None:
        """It succeeded: a failure would have been raised when it was done."""


@dataclass
class ToolRun(Child):
    """A copytool running as a child process (fsm_pilot.transfer.child), its output in the transfer log."""

    #: "in" or "out": which PanDA codes a failure maps to (GETADMISMATCH or PUTADMISMATCH, ...).
    direction: Direction = "in"

    @property
    def tool(self) -> str:
        return self.name

    def result(self) -> None:
        """Raise the failure the tool's exit status and output stand for, if it failed."""
        code = self.payload.returncode
        if code != 0:
            raise tool_failure(self.tool, code, self.output(), self.direction)


def start_tool(tool: str, argv: Sequence[str], cwd: Path, log_path: Path, *, direction: Direction = "in",
               env: Mapping[str, str] | None = None) -> ToolRun:
    """Start ``argv`` (never through a shell) in its own session, as :func:`start_child` does."""
    failed = PilotError.STAGEINFAILED if direction == "in" else PilotError.STAGEOUTFAILED
    child = start_child(tool, argv, cwd, log_path, error=failed, env=env)
    return ToolRun(child.name, child.payload, child.log_path, child.offset, direction)


@dataclass(frozen=True)
class CommandTool:
    """A copytool that runs a command: ``executable`` found on PATH, argv from ``build``."""

    name: str
    executable: str
    schemes: frozenset[str] | None
    build: ArgvBuilder

    def available(self) -> bool:
        """Whether the command is installed on this node."""
        return shutil.which(self.executable) is not None

    def start(self, replica: Replica, dest: Path, *, log_path: Path, timeout: float) -> ToolRun:
        """Start copying ``replica`` to ``dest``; the caller waits, and stops it when done."""
        path = shutil.which(self.executable)
        if path is None:
            raise PilotFailure(PilotError.NOTIMPLEMENTED, f"{self.executable} is not installed on this node")
        return start_tool(self.name, self.build(path, replica, dest, timeout), dest.parent, log_path)
