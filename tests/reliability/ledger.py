"""Invariant bookkeeping: every check is counted, every violation kept with its seed.

A campaign test runs many trials; it records each invariant check here instead of
asserting at the first failure, so one run reports every violation it saw, and
``report.py`` can count runs and violations per invariant for ``docs/reliability.md``.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from tests.reliability.scale import RESULTS_ENV, SCALE, replay_hint

_SHOWN = 12


@dataclass
class Ledger:
    """Runs, checks and violations of one campaign class in one test."""

    klass: str
    test: str
    seed: int
    invariants: tuple[str, ...]
    runs: int = 0
    checks: Counter[str] = field(default_factory=Counter)
    violations: dict[str, list[str]] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.time)
    written: bool = False

    def run(self) -> None:
        """One more trial (a pilot run, a fuzzed example, a kill...)."""
        self.runs += 1

    def check(self, invariant: str, ok: bool, detail: str = "") -> bool:
        """Count one check of ``invariant``; keep ``detail`` when it failed."""
        if invariant not in self.invariants:
            raise KeyError(f"{self.klass}: undeclared invariant {invariant!r}")
        self.checks[invariant] += 1
        if not ok:
            self.violations.setdefault(invariant, []).append(detail)
        return ok

    def count(self) -> int:
        return sum(len(v) for v in self.violations.values())

    def record(self, complete: bool) -> dict[str, Any]:
        return {"class": self.klass, "test": self.test, "seed": self.seed, "scale": SCALE, "runs": self.runs,
                "checks": {k: self.checks[k] for k in self.invariants},
                "violations": {k: len(self.violations.get(k, [])) for k in self.invariants},
                "examples": {k: v[:3] for k, v in self.violations.items()}, "facts": self.facts,
                "complete": complete, "started": self.started, "seconds": round(time.time() - self.started, 1)}

    def write(self, complete: bool) -> None:
        """Append this ledger to the results file, once (report.py reads it)."""
        path = os.environ.get(RESULTS_ENV)
        if path and not self.written:
            with open(path, "a", encoding="utf-8") as out:
                out.write(json.dumps(self.record(complete), default=str) + "\n")
        self.written = True

    def finish(self) -> None:
        """Write the results, then fail naming every violated invariant, its examples and the seed."""
        self.write(complete=True)
        if not self.violations:
            return
        lines = [f"{self.klass}: {self.count()} violation(s) in {self.runs} run(s) ({replay_hint(self.seed)})"]
        for invariant, details in self.violations.items():
            lines.append(f"  {invariant}: {len(details)}")
            lines += [f"    - {d[:600]}" for d in details[:_SHOWN]]
        raise AssertionError("\n".join(lines))
