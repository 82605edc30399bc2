"""Shared pieces of the tests against the real XRootD storage element (no tests here)."""

from __future__ import annotations

import os
import pwd
import subprocess
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from fsm_pilot.errors import PilotError
from fsm_pilot.stagein.failures import Direction, classify
from fsm_pilot.transfer.toolenv import tool_environment
from tests.xrootd_se import StorageElement

#: XrdCl timeouts small enough that a stalled server fails a copy within seconds.
FAST_XRD = {"XRD_REQUESTTIMEOUT": "3", "XRD_STREAMTIMEOUT": "3", "XRD_CONNECTIONWINDOW": "3",
            "XRD_CONNECTIONRETRY": "1", "XRD_TIMEOUTRESOLUTION": "1"}


def adler32(data: bytes) -> str:
    return f"{zlib.adler32(data) & 0xFFFFFFFF:08x}"


def put(se: StorageElement, path: str, data: bytes, *, readable: bool = True) -> Path:
    """A file written behind the server's back at ``path`` below its root; unreadable to it if asked."""
    target = se.data / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    for parent in [p for p in target.parents if p.is_relative_to(se.data)]:
        parent.chmod(0o755)
    target.write_bytes(data)
    if readable and os.geteuid() == 0:
        user = pwd.getpwnam("xrootd")
        os.chown(target, user.pw_uid, user.pw_gid)
    target.chmod(0o644 if readable else 0o600)
    return target


@dataclass(frozen=True)
class ToolResult:
    """What a real tool did: its exit code, its output, and the PanDA code that output stands for."""

    code: int
    output: str
    error: PilotError


def run_tool(se: StorageElement, tool: str, *argv: str, direction: Direction = "in",
             env: Mapping[str, str] | None = None, timeout: float = 120) -> ToolResult:
    """Run a real client against ``se`` in the environment the pilot gives its copytools, and classify it."""
    base = {**os.environ, "X509_CERT_DIR": str(se.ca_dir), **(env or {})}
    proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False,
                          env=tool_environment(argv, base), stdin=subprocess.DEVNULL)
    output = proc.stdout + proc.stderr
    return ToolResult(proc.returncode, output, classify(tool, proc.returncode, output, direction))
