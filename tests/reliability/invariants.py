"""The invariants every pilot run in the campaign must keep, checked from the outside.

- its exit code is a row of the documented table (``fsm-pilot exit-codes``), a signal's
  death counting as the shell's 128 + N;
- no traceback in its stderr or in any ``pilot.log`` it wrote;
- every transition log replays clean (``fsm-pilot replay LOG`` exits 0; a pilot the test
  SIGKILLed may leave a truncated log, exit 3, and nothing worse).
"""

from __future__ import annotations

import functools
import re
import subprocess
import sys
from collections.abc import Collection
from pathlib import Path

from tests.reliability.ledger import Ledger
from tests.reliability.sandbox import Proc

PILOT_INVARIANTS = ("exit_code_documented", "no_traceback", "translog_replays")
_TRUNCATED = 3


@functools.lru_cache(maxsize=1)
def documented_exit_codes() -> frozenset[int]:
    """The codes in ``fsm-pilot exit-codes`` (read from the command, so new rows count at once)."""
    table = subprocess.run([sys.executable, "-m", "fsm_pilot", "exit-codes"], capture_output=True, text=True,
                           check=True, timeout=60).stdout
    return frozenset(int(code) for code in re.findall(r"^\|\s*(\d+)\s*\|", table, re.MULTILINE))


def shell_code(returncode: int) -> int:
    """What a shell reports: a death by signal N is 128 + N."""
    return 128 - returncode if returncode < 0 else returncode


def replay(log: Path) -> tuple[int, str]:
    """``fsm-pilot replay LOG``: its exit code and the end of what it said."""
    done = subprocess.run([sys.executable, "-m", "fsm_pilot", "replay", str(log)], capture_output=True,
                          text=True, timeout=120, check=False)
    return done.returncode, " ".join((done.stdout + done.stderr).split())[-300:]


def pilot_dir(launch_dir: Path, proc: Proc) -> Path | None:
    """The pilot dir ``proc`` made (named after the pid it sees itself as)."""
    found = sorted(launch_dir.glob(f"Panda_Pilot_{proc.inner_pid}_*"))
    return found[-1] if found else None


def _tail(text: str, size: int = 400) -> str:
    return " ".join(text.split())[-size:]


def check_exit(ledger: Ledger, proc: Proc, label: str) -> int:
    """Exit code documented, stderr without a traceback; returns the shell exit code."""
    assert proc.returncode is not None, f"{label}: still running"
    code = shell_code(proc.returncode)
    err = proc.stderr()
    ledger.check("exit_code_documented", code in documented_exit_codes(),
                 f"{label}: exit {code} is not in `fsm-pilot exit-codes`; stderr: {_tail(err)}")
    ledger.check("no_traceback", "Traceback" not in err, f"{label}: traceback in stderr: {_tail(err, 800)}")
    return code


def check_launch(ledger: Ledger, launch_dir: Path, label: str, killed: Collection[Path] = ()) -> None:
    """Every pilot dir under ``launch_dir``: no traceback in pilot.log, transition log replays clean."""
    for directory in sorted(launch_dir.glob("Panda_Pilot_*")):
        log = directory / "pilot.log"
        text = log.read_text(errors="replace") if log.exists() else ""
        where = text.find("Traceback")
        shown = _tail(text[max(0, where - 400):where + 600])
        ledger.check("no_traceback", where < 0, f"{label}: traceback in {directory.name}/pilot.log: {shown}")
        translog = directory / "transitions.jsonl"
        if not translog.exists():
            ledger.check("translog_replays", directory in killed, f"{label}: {directory.name} has no transitions.jsonl")
            continue
        code, said = replay(translog)
        allowed = (0, _TRUNCATED) if directory in killed else (0,)
        ledger.check("translog_replays", code in allowed, f"{label}: replay of {directory.name} exit {code}: {said}")


def check_pilot(ledger: Ledger, proc: Proc, launch_dir: Path, label: str) -> int:
    """Both checks for a pilot alone in its launch dir."""
    code = check_exit(ledger, proc, label)
    check_launch(ledger, launch_dir, label)
    return code
