"""jobPars splitting speed, beside floors measured in the same run (not a test).

For each shape of input, about 10 MB of it: our splitter (fsm_pilot.wordsplit)
in MB/s, beside ``str.split()`` on the same text (a floor: no quoting rules at
all) and ``shlex.split`` on a 300 kB prefix (what the pilot used before; it
is super-linear, so larger inputs take minutes). Each figure is the best of
three runs; the words are checked against shlex's on the small prefix.

Usage: python bench/split_jobpars.py [--mb 10] [--record]
``--record`` writes bench/results/split_jobpars.json and the README's performance section.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import results
from fsm_pilot.command import MAX_JOB_PARS_BYTES
from fsm_pilot.wordsplit import split

#: Repeated units: real-looking jobPars, then shapes that stress one rule each.
SHAPES = {
    "plain options": "--inputEVNTFile=EVNT.12345._000001.pool.root.1 ",
    "athena-like": "--preExec 'from AthenaCommon import X; X.y=\"z\"' --maxEvents=10 \"a b\\\"c\" ",
    "one-letter words": "a ",
    "empty quotes": "'' ",
    "quoted letters": "'x'y ",
    "escaped double": '"\\a" ',
    "escapes": "\\a",
}
SHLEX_BYTES = 300_000
REPEAT = 3


def best(run: Callable[[], object], repeat: int = REPEAT) -> float:
    """The shortest of ``repeat`` wall-clock runs, in seconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def text_of(unit: str, size: int) -> str:
    """``unit`` repeated to ``size`` characters, cut at a unit boundary."""
    return unit * max(1, size // len(unit))


def one_long_word(size: int) -> str:
    """A single quoted word: the shape that made shlex quadratic."""
    return "'" + "x" * (size - 2) + "'"


def shape_speeds(name: str, text: str) -> dict[str, Any]:
    """MB/s of ours, of ``str.split`` (the floor) and of ``shlex.split`` on a prefix, for one shape."""
    small = text[:SHLEX_BYTES] if name != "one long word" else one_long_word(SHLEX_BYTES)
    assert split(small) == shlex.split(small), name
    ours = len(text) / best(lambda: split(text)) / 1e6
    floor = len(text) / best(text.split) / 1e6
    old = len(small) / best(lambda: shlex.split(small), repeat=1) / 1e6
    return {"name": name, "mb_per_s": round(ours, 2), "floor_mb_per_s": round(floor, 2),
            "shlex_mb_per_s": round(old, 3)}


def at_limit() -> dict[str, Any]:
    """The slowest shape at the jobPars size limit: our time on it and ``str.split``'s on the same text."""
    texts = {name: text_of(unit, MAX_JOB_PARS_BYTES) for name, unit in SHAPES.items()}
    texts["one long word"] = one_long_word(MAX_JOB_PARS_BYTES)
    times = {name: best(lambda text=text: split(text)) for name, text in texts.items()}  # type: ignore[misc]
    shape = max(times, key=lambda name: times[name])
    floor = best(texts[shape].split)
    return {"bytes": MAX_JOB_PARS_BYTES, "shape": shape, "ms": round(times[shape] * 1000, 2),
            "floor_ms": round(floor * 1000, 3)}


def measure(mb: float) -> dict[str, Any]:
    """Every shape at ``mb`` MB, then the worst case at the size limit."""
    size = int(mb * 1_000_000)
    inputs = {name: text_of(unit, size) for name, unit in SHAPES.items()}
    inputs["one long word"] = one_long_word(size)
    print(f"{'shape':18} {'ours MB/s':>10} {'str.split':>10} {'ratio':>6} {'shlex':>8}   (shlex on "
          f"{SHLEX_BYTES // 1000} kB; ratio: our time over str.split's)")
    shapes = []
    for name, text in inputs.items():
        row = shape_speeds(name, text)
        shapes.append(row)
        print(f"{name:18} {row['mb_per_s']:10.1f} {row['floor_mb_per_s']:10.1f} "
              f"{row['floor_mb_per_s'] / row['mb_per_s']:6.1f} {row['shlex_mb_per_s']:8.2f}")
    limit = at_limit()
    print(f"slowest shape at the {MAX_JOB_PARS_BYTES} byte jobPars limit ({limit['shape']}): {limit['ms']:.0f} ms "
          f"(str.split {limit['floor_ms']:.1f} ms)")
    return {"mb": mb, "repeat": REPEAT, "shlex_kb": SHLEX_BYTES // 1000, "shapes": shapes, "limit": limit}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=10.0, help="size of each input in MB (default 10)")
    parser.add_argument("--record", action="store_true", help="write the results and the README section")
    opts = parser.parse_args()
    found = measure(opts.mb)
    if opts.record:
        results.record("split_jobpars", found)


if __name__ == "__main__":
    main()
