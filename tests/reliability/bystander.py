"""A process the pilot did not start: it writes every signal it gets to a file, and ends by itself.

``python bystander.py RECORD [SECONDS]``: the first line of RECORD is ``ready <pid>``,
then one line per signal received. SIGKILL cannot be recorded, so the kill-scope
probes also check the bystander is still alive after the pilot is gone. It exits
after SECONDS (default 300) so that nothing outlives a test run even outside a
sandbox.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from types import FrameType

#: Signals a handler cannot or should not take (SIGCHLD and friends are not sent by anyone).
_SKIP = {signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD, signal.SIGWINCH, signal.SIGURG}


def main(argv: list[str]) -> int:
    record = os.open(argv[1], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    life = float(argv[2]) if len(argv) > 2 else 300.0

    def note(signum: int, frame: FrameType | None) -> None:
        os.write(record, f"{signum}\n".encode())

    for signum in signal.valid_signals() - _SKIP:
        try:
            signal.signal(signum, note)
        except (OSError, ValueError):  # RT signals the runtime keeps for itself
            continue
    os.write(record, f"ready {os.getpid()}\n".encode())
    deadline = time.monotonic() + life
    while time.monotonic() < deadline:
        time.sleep(0.2)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
