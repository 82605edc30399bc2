"""A quick run of the benchmarks that fails on a regression, for CI (a few seconds; not a test).

Every bound is a ratio to a floor measured in the same run, never an absolute time, and
generous (about twice the goal): a shared or slow CI machine scales pilot and floor alike,
a regression in the pilot does not.

- per job from outside (3 vs 9 trivial jobs, 3 repetitions) over the HTTP calls + fork/exec floor
- RSS while a payload sleeps over a bare interpreter importing the four dependencies
- replay of a 50,000-line log over reading + JSON-decoding the same file

Usage: python bench/check.py   (exit 1 and the failing ratios on a regression)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.pilot_overhead import measure
from bench.replay_throughput import measure_replay

#: name: (what it is, the goal, the bound that fails the check)
BOUNDS = {
    "per_job": ("per-job cost from outside / its floor", 3.0, 6.0),
    "rss": ("RSS while watching / bare interpreter with the dependencies", 1.0, 1.25),
    "replay": ("replay / read + JSON-decode", 1.5, 3.0),
}


def main() -> int:
    opts = argparse.Namespace(jobs=[3, 9], repeat=3, watch=1.0, quick=True)
    pilot = measure(opts)
    replay = measure_replay(50_000, verbose=False)
    ratios = {"per_job": pilot["ratio"], "rss": pilot["rss_mib"] / pilot["bare_rss_mib"], "replay": replay["ratio"]}
    failed = False
    for name, ratio in ratios.items():
        what, goal, bound = BOUNDS[name]
        bad = ratio > bound
        failed |= bad
        print(f"{'FAIL' if bad else 'ok':4} {what}: {ratio:.2f}x (goal {goal}x, fails above {bound}x)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
