"""The first signal is the one that arrived first, even when Python runs the handlers late.

CPython runs the Python-level handlers of signals that arrived while the main
thread was busy in C code in signal-number order: SIGHUP (1) before SIGTERM
(15), whatever the order they came in. A pilot told SIGTERM, then SIGHUP while
it was still busy, must keep SIGTERM's codes (1201, exit 143). The child
below is busy in one long C call (PBKDF2) while the test sends TERM, waits
until the kernel has delivered it, then sends HUP.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

from tests.pilotrun import wait_for

CHILD = """
import hashlib, json, sys
from fsm_pilot import signals
state = signals.install()
print("ready", flush=True)
sys.stdin.readline()
hashlib.pbkdf2_hmac("sha256", b"x", b"y", 3_000_000)  # one C call: no Python handler runs inside it
print(json.dumps([state.first, state.received]), flush=True)
"""


def _delivered(pid: int, signum: int) -> bool:
    """The kernel no longer holds ``signum`` pending for ``pid``: its C-level handler has run."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    pending = int(fields["SigPnd"], 16) | int(fields["ShdPnd"], 16)
    return not pending & (1 << (signum - 1))


def test_first_is_the_arrival_order_not_the_signal_number() -> None:
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True, cwd=Path(__file__).parent.parent)
    assert child.stdin is not None and child.stdout is not None
    assert child.stdout.readline().strip() == "ready"
    child.stdin.write("go\n")
    child.stdin.flush()
    child.send_signal(signal.SIGTERM)
    wait_for(lambda: _delivered(child.pid, signal.SIGTERM), timeout=10, what="SIGTERM delivered")
    child.send_signal(signal.SIGHUP)
    out, _ = child.communicate(timeout=60)
    first, received = json.loads(out)
    assert first == signal.SIGTERM, out
    assert sorted(received) == sorted([signal.SIGTERM, signal.SIGHUP]), out
