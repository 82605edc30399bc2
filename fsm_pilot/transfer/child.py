"""One copytool step (copy, checksum query, removal) as a child process.

A transfer to or from a storage element can hang in the kernel or in a client
library for minutes (a dead endpoint, a stalled server). With no threads, a
copy done in the pilot's own process would hang the pilot with it. So every
step runs as a child started like a payload: own session, the pilot's
environment less its secrets, stdout and stderr appended to a transfer log in
the job dir (it goes into the log tarball). The caller waits on the child's
pidfd and the signal wakeup fd together, and on a deadline or a signal kills
the child's whole tree. It leaves judging the output to the caller (stage-in's
``ToolRun`` builds on it). Every child gets the copytools' environment
(:func:`fsm_pilot.transfer.toolenv.tool_environment`): secrets withheld, the
XrdCl fast-fail defaults a site has not set, GFAL_PYTHONBIN for the system gfal.
"""

from __future__ import annotations

import os
import re
import shlex
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from fsm_pilot.errors import PilotError, PilotFailure
from fsm_pilot.payload import Payload, WaitResult, descendants, kill_tree, start_payload, wait_payload
from fsm_pilot.transfer.toolenv import tool_environment

#: How much of the end of a step's output is kept for parsing and for the diag.
_TAIL_BYTES = 16384
#: How much of a tool's output a diag quotes (PanDA keeps 500 characters of pilotErrorDiag).
_DIAG_CHARS = 300
_UNPRINTABLE = re.compile(r"[^\x20-\x7e]+")


def shown(output: str) -> str:
    """The end of a tool's output on one printable line, short enough for a diag."""
    text = " ".join(_UNPRINTABLE.sub(" ", output).split())
    return text if len(text) <= _DIAG_CHARS else "..." + text[-_DIAG_CHARS:]


def _header(log_path: Path, name: str, argv: Sequence[str], error: PilotError) -> int:
    """Append a line naming the command; returns where the child's own output starts."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    try:
        with log_path.open("a", encoding="utf-8") as log:
            log.write(f"--- {stamp} {name}: {shlex.join(argv)}\n")
            return log.tell()
    except OSError as exc:
        raise PilotFailure(error, f"cannot write the transfer log {log_path}: {exc}") from exc


@dataclass
class Child:
    """A running step: wait on it, stop it (its whole tree), then read what it wrote."""

    name: str
    payload: Payload
    log_path: Path
    offset: int

    def wait(self, wakeup_fd: int | None, timeout: float) -> WaitResult:
        """Until the child exits ("exited"), the wakeup fd is readable ("woken") or ``timeout`` passes."""
        return wait_payload(self.payload, wakeup_fd, timeout)

    def stop(self, grace: float, wakeup_fd: int | None = None) -> None:
        """Kill whatever of the child's tree still runs and release its pidfd; safe to repeat."""
        if self.payload.popen.poll() is None or descendants(self.payload):
            kill_tree(self.payload, grace, wakeup_fd)
        self.payload.close()

    @property
    def returncode(self) -> int | None:
        """The exit status once it ended (negative: killed by that signal)."""
        return self.payload.returncode

    def output(self) -> str:
        """What the child wrote (at most the last 16 kB), without the header line."""
        try:
            with self.log_path.open("rb") as log:
                end = log.seek(0, os.SEEK_END)
                log.seek(max(self.offset, end - _TAIL_BYTES))
                return log.read().decode("utf-8", errors="replace")
        except OSError:
            return ""


def start_child(name: str, argv: Sequence[str], cwd: Path, log_path: Path, *, error: PilotError,
                env: Mapping[str, str] | None = None) -> Child:
    """Start ``argv`` (never through a shell) in its own session; a failure to start is ``error``."""
    offset = _header(log_path, name, argv, error)
    try:
        payload = start_payload(argv, cwd, log_path, log_path, tool_environment(argv, env))
    except PilotFailure as exc:
        raise PilotFailure(error, f"{name}: {exc.diag}") from exc
    return Child(name, payload, log_path, offset)
