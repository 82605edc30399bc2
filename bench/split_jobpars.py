"""jobPars splitting speed, beside floors measured in the same run (not a test).

For each shape of input, about 10 MB of it: our splitter (fsm_pilot.wordsplit)
in MB/s, beside ``str.split()`` on the same text (a floor: no quoting rules at
all) and ``shlex.split`` on a 300 kB prefix (what the pilot used before; it
is super-linear, so larger inputs take minutes). Each figure is the best of
three runs; the words are checked against shlex's on the small prefix.

Usage: python bench/split_jobpars.py [--mb 10]
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
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


def best(run: Callable[[], object], repeat: int = 3) -> float:
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=10.0, help="size of each input in MB (default 10)")
    size = int(parser.parse_args().mb * 1_000_000)
    print(f"{'shape':18} {'ours MB/s':>10} {'str.split':>10} {'shlex':>8}   (shlex on {SHLEX_BYTES // 1000} kB)")
    inputs = {name: text_of(unit, size) for name, unit in SHAPES.items()}
    inputs["one long word"] = one_long_word(size)
    for name, text in inputs.items():
        small = text[:SHLEX_BYTES] if name != "one long word" else one_long_word(SHLEX_BYTES)
        assert split(small) == shlex.split(small), name
        ours = len(text) / best(lambda text=text: split(text)) / 1e6  # type: ignore[misc]
        floor = len(text) / best(lambda text=text: text.split()) / 1e6  # type: ignore[misc]
        old = len(small) / best(lambda small=small: shlex.split(small), repeat=1) / 1e6  # type: ignore[misc]
        print(f"{name:18} {ours:10.1f} {floor:10.1f} {old:8.2f}")
    at_limit = [text_of(unit, MAX_JOB_PARS_BYTES) for unit in SHAPES.values()] + [one_long_word(MAX_JOB_PARS_BYTES)]
    worst = max(best(lambda text=text: split(text)) for text in at_limit)  # type: ignore[misc]
    print(f"slowest shape at the {MAX_JOB_PARS_BYTES} byte jobPars limit: {worst * 1000:.0f} ms")


if __name__ == "__main__":
    main()
