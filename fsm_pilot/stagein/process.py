"""Copytools that run as child processes: own session, killable tree, output to the stage-in log.

A copy reads shared storage, and a read from a hung mount, a dead server or a
FIFO blocks the reading process inside the kernel. With no threads, a copy
done in the pilot's own process would block the pilot too: no deadline, no
signal handling. So every copy that reads bytes runs in a child started by the
payload module; the pilot waits on the child's pidfd and the signal wakeup fd
together, and on a deadline or a signal kills the child's whole tree.
"""

from __future__ import annotations

import os
import shlex
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from fsm_pilot.errors import PilotError, PilotFailure
from fsm_pilot.payload import Payload, WaitResult, descendants, kill_tree, start_payload, wait_payload
from fsm_pilot.stagein.failures import Direction, tool_failure
from fsm_pilot.stagein.toolenv import tool_environment

if TYPE_CHECKING:
    from fsm_pilot.stagein.resolve import Replica

__all__ = ["ArgvBuilder", "CommandTool", "Finished", "ToolRun", "start_tool", "tool_failure"]

#: Builds a tool's argv from (its executable's path, the replica, the destination file, the timeout in s).
ArgvBuilder = Callable[[str, "Replica", Path, float], list[str]]

#: How much of the end of a tool's output is searched for a known error.
_TAIL_BYTES = 16384


def _read_tail(path: Path, offset: int) -> str:
    """What the tool wrote after ``offset`` (its own header excluded), at most the last 16 kB."""
    try:
        with path.open("rb") as log:
            end = log.seek(0, os.SEEK_END)
            log.seek(max(offset, end - _TAIL_BYTES))
            return log.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


def _log_header(log_path: Path, tool: str, argv: Sequence[str]) -> int:
    """Append a line naming the command; returns where the tool's own output will start."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    try:
        with log_path.open("a", encoding="utf-8") as log:
            log.write(f"--- {stamp} {tool}: {shlex.join(argv)}\n")
            return log.tell()
    except OSError as exc:
        raise PilotFailure(PilotError.STAGEINFAILED, f"cannot write the stage-in log {log_path}: {exc}") from exc


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
class ToolRun:
    """A copytool running as a child process, its output appended to the stage-in log."""

    tool: str
    payload: Payload
    log_path: Path
    offset: int
    #: "in" or "out": which PanDA codes a failure maps to (GETADMISMATCH or PUTADMISMATCH, ...).
    direction: Direction = "in"

    def wait(self, wakeup_fd: int | None, timeout: float) -> WaitResult:
        """Until the tool exits, the wakeup fd is readable, or ``timeout`` passes."""
        return wait_payload(self.payload, wakeup_fd, timeout)

    def stop(self, grace: float, wakeup_fd: int | None = None) -> None:
        """Kill whatever of the tool's tree still runs, then release its pidfd; safe to repeat."""
        if self.payload.popen.poll() is None or descendants(self.payload):
            kill_tree(self.payload, grace, wakeup_fd)
        self.payload.close()

    def result(self) -> None:
        """Raise the failure the tool's exit status and output stand for, if it failed."""
        code = self.payload.returncode
        if code != 0:
            raise tool_failure(self.tool, code, _read_tail(self.log_path, self.offset), self.direction)


def start_tool(tool: str, argv: Sequence[str], cwd: Path, log_path: Path, *, direction: Direction = "in",
               env: Mapping[str, str] | None = None) -> ToolRun:
    """Start ``argv`` (never through a shell) in its own session.

    Its environment is ``env`` (default: the pilot's), less secrets, plus the
    client defaults of :mod:`fsm_pilot.stagein.toolenv`.
    """
    offset = _log_header(log_path, tool, argv)
    try:
        payload = start_payload(argv, cwd, log_path, log_path, tool_environment(argv, env))
    except PilotFailure as exc:
        failed = PilotError.STAGEINFAILED if direction == "in" else PilotError.STAGEOUTFAILED
        raise PilotFailure(failed, f"{tool}: {exc.diag}") from exc
    return ToolRun(tool, payload, log_path, offset, direction)


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
