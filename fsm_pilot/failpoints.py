"""Failpoints: named places where a test can freeze the pilot to kill it there, deterministically.

``FSM_PILOT_FAILPOINT=<name>[:<n>]`` makes the pilot stop itself with SIGSTOP the
n-th time (default: first) it passes ``failpoint(<name>)``; the test sees the
process stopped, SIGKILLs it, and checks what a later pilot recovers. Unset,
a failpoint is one dict lookup. (etcd and FreeBSD use the same idea.)
``FSM_PILOT_FAILPOINT_ACTION=raise`` makes it raise instead: a crash inside a step.
"""

from __future__ import annotations

import os
import signal

_ENV = "FSM_PILOT_FAILPOINT"
_passed: dict[str, int] = {}


def failpoint(name: str) -> None:
    """Stop here if a test asked for this point (and this pass)."""
    wanted = os.environ.get(_ENV)
    if not wanted:
        return
    target, _, nth = wanted.partition(":")
    if target != name:
        return
    _passed[name] = _passed.get(name, 0) + 1
    if _passed[name] != int(nth or 1):
        return
    if os.environ.get(f"{_ENV}_ACTION") == "raise":
        raise RuntimeError(f"failpoint {name}: a crash asked for by a test")
    os.kill(os.getpid(), signal.SIGSTOP)
