"""A warning signal (SIGUSR1 with a known clock) wakes only the waits that act on it, once.

A child process installs the real handlers and waits on the pipes the pilot waits on:
the warning makes the notice pipe readable and leaves the stop pipe (stage-in and
stage-out copies, server retries wait on it) quiet; once drained the notice pipe blocks
again, so the payload watch sleeps instead of spinning; a later SIGTERM is the first stop
signal even though SIGUSR1 arrived before it.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

CHILD = """
import json, select, signal, sys
from fsm_pilot import signals
state = signals.install()
state.warning_signals = frozenset({signal.SIGUSR1})
print("ready", flush=True)
woken = bool(select.select([state.notice_fd], [], [], 30)[0])
stop_pipe = bool(select.select([state.wakeup_fd], [], [], 0)[0])
warning, new, first = state.take_warning(), state.has_new(), state.first
state.drain()
again = bool(select.select([state.notice_fd], [], [], 0)[0])
slept = state.sleep(0, warnings=True)
print(json.dumps([woken, stop_pipe, warning, new, first, again, slept]), flush=True)
sys.stdin.readline()
woken_by_term = bool(select.select([state.wakeup_fd], [], [], 30)[0])
print(json.dumps([woken_by_term, state.first, state.take_warning()]), flush=True)
"""


def test_a_warning_wakes_the_watch_once_and_never_a_copy() -> None:
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True, cwd=Path(__file__).parent.parent)
    assert child.stdin is not None and child.stdout is not None
    assert child.stdout.readline().strip() == "ready"
    child.send_signal(signal.SIGUSR1)
    woken, stop_pipe, warning, new, first, again, slept = json.loads(child.stdout.readline())
    assert (woken, stop_pipe, warning, new, first) == (True, False, signal.SIGUSR1, False, None)
    assert (again, slept) == (False, False)  # drained: the next wait blocks; the warning was taken
    child.send_signal(signal.SIGTERM)
    child.stdin.write("go\n")
    child.stdin.flush()
    out, _ = child.communicate(timeout=30)
    assert json.loads(out) == [True, signal.SIGTERM, None]
