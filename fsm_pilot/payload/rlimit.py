"""The payload's RLIMIT_AS, set without giving up vfork where the pilot can.

A ``preexec_fn`` would set the limit in the child, but it forces fork where
CPython otherwise uses vfork: 1.7 ms more per payload start, measured. So the
pilot lowers its own limit around the spawn and the child inherits it:

- with CAP_SYS_RESOURCE (a root pilot) soft and hard are lowered, and raised
  back after the spawn: the payload has both from its first instruction;
- without it the hard limit could never be raised back, so only the soft one
  is lowered and the hard one is set on the child with prlimit once it runs
  (``pin``). Until then it could raise its soft limit: whatever it allocates in
  that first instant, prlimit lowers the limit under it again.
- When the pilot's own address space is within a factor 2 of the limit it
  cannot lower its own: the child sets both itself (``preexec``, fork).
"""

from __future__ import annotations

import contextlib
import functools
import os
import resource
import subprocess
from collections.abc import Callable, Iterator

from fsm_pilot.errors import PilotError, PilotFailure

#: The capability to raise a hard limit (capability(7)): its bit in /proc/self/status' CapEff.
CAP_SYS_RESOURCE = 24


@functools.lru_cache(maxsize=1)
def can_raise_hard_limits() -> bool:
    """Whether this process may raise a hard limit again (CAP_SYS_RESOURCE in effect); read once."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            caps = next((line.split()[1] for line in status if line.startswith("CapEff:")), "0")
        return bool(int(caps, 16) >> CAP_SYS_RESOURCE & 1)
    except (OSError, ValueError, IndexError):
        return False


def limits(rlimit_as: int) -> tuple[int, int]:
    """(soft, hard) for the payload: ``rlimit_as``, capped at the pilot's own hard limit."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    value = rlimit_as if hard == resource.RLIM_INFINITY else min(rlimit_as, hard)
    return value, value


def preexec(rlimit_as: int | None) -> Callable[[], None] | None:
    """The preexec_fn setting both limits in the child (fork), for when ``inherit`` yields False.

    preexec_fn is unsafe only in multi-threaded parents; the pilot runs no threads.
    """
    if rlimit_as is None:
        return None
    wanted = limits(rlimit_as)

    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, wanted)

    return apply


def _own_address_space() -> int:
    """The pilot's virtual size in bytes (0 if /proc cannot say)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


@contextlib.contextmanager
def inherit(rlimit_as: int | None) -> Iterator[bool]:
    """Lower the pilot's own limit while the payload is spawned inside; restore it after.

    Yields False, changing nothing, when there is no limit or the pilot's own
    address space is within a factor 2 of it (its allocations in between are a few kB).
    """
    fast = rlimit_as is not None and hasattr(resource, "prlimit") and 2 * _own_address_space() < rlimit_as
    if not fast or rlimit_as is None:
        yield False
        return
    own = resource.getrlimit(resource.RLIMIT_AS)
    soft, hard = limits(rlimit_as)
    resource.setrlimit(resource.RLIMIT_AS, (soft, hard if can_raise_hard_limits() else own[1]))
    try:
        yield True
    finally:
        resource.setrlimit(resource.RLIMIT_AS, own)


def pin(popen: subprocess.Popen[bytes], rlimit_as: int) -> None:
    """Set both limits on the spawned child (it may not have inherited the hard one), as preexec would."""
    try:
        resource.prlimit(popen.pid, resource.RLIMIT_AS, limits(rlimit_as))
    except ProcessLookupError:
        pass  # the payload already exited: nothing left to limit
    except OSError as exc:
        popen.kill()
        popen.wait()
        raise PilotFailure(PilotError.PAYLOADEXECUTIONFAILURE,
                           f"cannot set RLIMIT_AS={rlimit_as} on the payload: {exc}") from exc
