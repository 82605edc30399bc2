"""Campaign sizes and seeds, chosen by the environment so a failing run can be replayed.

``FSM_RELIABILITY_SCALE``: ``small`` (default; CI) or ``full`` (``make reliability``).
``FSM_RELIABILITY_SEED``: the seed every test uses; unset, each test draws its own and
prints it in every assertion message and in the results.
"""

from __future__ import annotations

import os
import random

SCALE = os.environ.get("FSM_RELIABILITY_SCALE", "small").strip().lower() or "small"
if SCALE not in ("small", "full"):
    raise SystemExit(f"FSM_RELIABILITY_SCALE must be small or full, not {SCALE!r}")
#: Where each test appends its results (JSON lines) for report.py; unset: nowhere.
RESULTS_ENV = "FSM_RELIABILITY_RESULTS"


def size(small: int, full: int) -> int:
    """The count for this scale."""
    return full if SCALE == "full" else small


def seconds(small: float, full: float) -> float:
    """A deadline for this scale (a bound on waiting, never a pass/fail threshold)."""
    return full if SCALE == "full" else small


def new_seed() -> int:
    """The replay seed from the environment, else a fresh one."""
    fixed = os.environ.get("FSM_RELIABILITY_SEED", "").strip()
    return int(fixed) if fixed else random.SystemRandom().randrange(1, 2**31)


def replay_hint(seed: int) -> str:
    return f"seed {seed}; replay with FSM_RELIABILITY_SEED={seed} FSM_RELIABILITY_SCALE={SCALE}"
