"""Signals are data: the handler records them, the driver acts on them.

The handler only stores the signal number; ``signal.set_wakeup_fd`` writes a
byte to a pipe that every blocking wait (the payload watch, a backoff sleep)
selects on, so a signal wakes whoever waits without threads. A *warning*
signal (SIGUSR1 once the pilot knows its clock: fsm_pilot.drain) stops
nothing: it is kept apart and only wakes the waits that act on it (the
payload watch, the getJob backoff) through a second pipe. No trigger is
ever fired from a handler: queued ``transitions`` machines drop events when a
callback raises, and a LockedMachine can deadlock inside a handler.
"""

from __future__ import annotations

import os
import select
import signal

TYPE_CHECKING = False  # typing itself costs ~10 ms to import: not before the handlers

if TYPE_CHECKING:  # no import cost at run time: this module is loaded before anything else
    from types import FrameType

#: The signals a batch system, a wrapper or a closed terminal uses to stop a pilot.
HANDLED = ("SIGHUP", "SIGINT", "SIGQUIT", "SIGBUS", "SIGUSR1", "SIGSEGV", "SIGTERM", "SIGXCPU")


class SignalState:
    """Signals received so far; ``wakeup_fd`` becomes readable when one arrives.

    A plain class, not a dataclass: importing dataclasses would widen the
    window in which a signal finds no handler yet.

    Python runs the handlers of signals that arrived together in signal-number
    order, not in arrival order (SIGHUP's before SIGTERM's). The C-level
    handler, though, writes each signal's number to the ``set_wakeup_fd`` pipe
    as it arrives; the handler reads that pipe, so ``first`` is the signal
    that really came first. Waits select on a second pipe the handler writes to.
    """

    def __init__(self) -> None:
        self.received: list[int] = []
        #: warning signals received (not stops), and how many of them the driver has acted on
        self.warnings: list[int] = []
        self._warned = 0
        #: the signals that are warnings now (set once the pilot knows how long its slot lasts)
        self.warning_signals: frozenset[int] = frozenset()
        self.wakeup_fd = -1
        self._write_fd = -1
        #: readable on any signal, warnings included (the payload watch waits on it)
        self.notice_fd = -1
        self._notice_write = -1
        self._order_fd = -1
        self._arrivals: list[int] = []
        self._handled = 0

    def handler(self, signum: int, frame: FrameType | None) -> None:
        """Record the signal (and the arrival order the C handler saw); wake whoever waits."""
        if self._order_fd >= 0:
            self._arrivals.extend(_read_all(self._order_fd))
        if signum in self.warning_signals:
            self.warnings.append(signum)
        else:
            self.received.append(signum)
            _poke(self.wakeup_fd, self._write_fd)
        _poke(self.notice_fd, self._notice_write)

    @property
    def first(self) -> int | None:
        """The first signal that arrived, which decides the job's error code and the exit code."""
        stops = set(self.received)
        arrived = [s for s in self._arrivals if s in stops]
        if arrived:
            return arrived[0]
        return self.received[0] if self.received else None

    def has_new(self) -> bool:
        """A signal arrived that the driver has not acted on yet."""
        return self._handled < len(self.received)

    def take_new(self) -> int | None:
        """A signal not yet acted on (each one once), or None."""
        if self._handled < len(self.received):
            self._handled = len(self.received)
            return self.received[-1]
        return None

    def take_warning(self) -> int | None:
        """A warning signal not yet acted on (each one once), or None."""
        if self._warned < len(self.warnings):
            self._warned = len(self.warnings)
            return self.warnings[-1]
        return None

    def drain(self) -> None:
        """Empty the wakeup pipes so later waits block again."""
        for fd in (self.wakeup_fd, self.notice_fd):
            if fd >= 0:
                _read_all(fd)

    def sleep(self, seconds: float, warnings: bool = False) -> bool:
        """Sleep unless a signal arrives (with ``warnings``, a warning too); True if woken by one."""
        if self.received[self._handled:] or (warnings and self.warnings[self._warned:]):
            return True
        fd = self.notice_fd if warnings else self.wakeup_fd
        if fd < 0:
            return False
        return bool(select.select([fd], [], [], max(0.0, seconds))[0])


_INSTALLED: list[SignalState] = []


def _poke(read_fd: int, write_fd: int) -> None:
    """One byte wakes a wait on ``read_fd``; none is added while one is unread, so the pipe never fills."""
    if write_fd >= 0 and not select.select([read_fd], [], [], 0)[0]:
        os.write(write_fd, b"\0")


def _read_all(fd: int) -> bytes:
    """Everything readable on a non-blocking pipe now."""
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 512)
        except BlockingIOError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def install() -> SignalState:
    """Install the handlers and the wakeup pipe once; return the state they record into.

    ``fsm-pilot run`` calls this before anything else (even before parsing its
    arguments), so a signal in the pilot's first milliseconds is recorded like
    any other instead of ending in a KeyboardInterrupt traceback; later calls
    return the same state, with whatever arrived early.
    """
    if _INSTALLED:
        return _INSTALLED[0]
    state = SignalState()
    _INSTALLED.append(state)
    state.wakeup_fd, state._write_fd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    state.notice_fd, state._notice_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    state._order_fd, order_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(order_write, warn_on_full_buffer=False)
    for name in HANDLED:
        signal.signal(getattr(signal, name), state.handler)
    return state


def settle() -> None:
    """Ignore the stop signals once the pilot's exit code is decided and everything is written.

    Python resets handlers to the default action while it shuts down, so a
    signal in those last milliseconds would kill the pilot and replace the
    code it decided with 128 + N. Ignored, it changes nothing.
    """
    for name in HANDLED:
        signal.signal(getattr(signal, name), signal.SIG_IGN)


def name_of(signum: int) -> str:
    """``SIGTERM`` for 15."""
    return signal.Signals(signum).name
