"""Replay throughput and memory on a long legal log, beside a floor measured in the same run (not a test).

The log is synthetic but legal and shaped like a real one: the setup states,
then jobs in a loop (got_job, accept, staged_in, payload_done, job_done with
the six guards' evidence), the last job's job_done refused by max_jobs, so
records have the pilot's sizes (about 330 to 1100 bytes).

- floor: read the same file line by line and json-decode each line, no checks.
- replay: ``fsm_pilot.replay.replay`` (decode, upgrade, check, timeline), no output.
- replay + text: the same with the text report written to /dev/null.

Each is run ``--repeat`` times, interleaved; the medians are reported, and the
ratio is the median of each round's replay / floor.

Memory: peak RSS growth over the RSS before each run (sampled every 5 ms by another process), and
the peak of Python allocations under tracemalloc for replay (a separate run).

Usage: python bench/replay_throughput.py [--lines 1000000] [--repeat 3] [--keep] [--record]
``--record`` writes bench/results/replay_throughput.json and the README's performance section.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import results
from fsm_pilot.replay import replay
from fsm_pilot.replay_cli import TextRenderer

PILOT = "wn042.example.org:48213:1767225600"
SETUP = ("INIT", "QUEUEDATA", "CHECKS", "RECOVERY", "CLEANUP", "GETJOB")
JOB = (("got_job", "GETJOB", "VALIDATE"), ("accept", "VALIDATE", "STAGEIN"), ("staged_in", "STAGEIN", "RUNNING"),
       ("payload_done", "RUNNING", "STAGEOUT"))


def _guard(name: str, inputs: dict[str, Any], threshold: object, allowed: bool = True) -> dict[str, Any]:
    return {"guard": name, "allowed": allowed, "inputs": inputs, "threshold": threshold, "error": None}


def _next_job_guards(jobs_run: int, elapsed: float, last: bool) -> list[dict[str, Any]]:
    guards = [_guard("black_hole", {"fast_failures": 0}, {"jobs": 3, "seconds": 60.0}),
              _guard("timefloor", {"elapsed": round(elapsed, 3), "jobs_run": jobs_run}, 10**9),
              _guard("max_jobs", {"jobs_run": jobs_run}, 0 if not last else jobs_run, allowed=not last)]
    if not last:
        guards += [_guard("disk_space", {"free_bytes": 85342343168}, 2000000000),
                   _guard("proxy_lifetime", {"credential": "x509", "seconds_left": 250000.0}, 3600),
                   _guard("pilot_lifetime", {"lifetime_left": round(10**9 - elapsed, 3)}, 180.0)]
    return guards


def records(jobs: int) -> Iterator[dict[str, Any]]:
    """A legal log: setup, ``jobs`` jobs, the loop ended by max_jobs (5 + 5 * jobs records)."""
    t0, seq = 1767225600.0, 0

    def record(event: str, source: str, dest: str, job_id: int | None, *, text: str,
               guards: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        nonlocal seq
        seq += 1
        return {"v": 1, "seq": seq, "time": t0 + seq * 0.5, "mono": 1000.0 + seq * 0.5, "pilot_id": PILOT,
                "job_id": job_id, "event": event, "source": source, "dest": dest, "guards": guards or [],
                "reason": {"text": text, "error": None, "error_name": None, "signal": None}, "ok": True,
                "error": None}

    for source, dest in zip(SETUP[:-2], SETUP[1:-1]):
        yield record("next", source, dest, None, text=f"{source.lower()} done")
    yield record("next", "CLEANUP", "GETJOB", None, text="ready for the first job",
                 guards=_next_job_guards(0, 2.0, False)[3:])
    for n in range(1, jobs + 1):
        panda_id = 6_000_000_000 + n
        for event, source, dest in JOB:
            yield record(event, source, dest, panda_id, text=f"job {panda_id}: {event} from the server")
        last = n == jobs
        yield record("job_done", "STAGEOUT", "EXIT" if last else "GETJOB", None, text=f"job {panda_id} finished",
                     guards=_next_job_guards(n, seq * 0.5, last))


def write_log(path: Path, lines: int) -> int:
    jobs = max(1, (lines - 5) // 5)
    with open(path, "w", encoding="utf-8") as f:
        for record in records(jobs):
            f.write(json.dumps(record, separators=(",", ":")) + "\n")
    return 5 + 5 * jobs


def floor(path: Path) -> object:
    """Read and decode every line as replay does, nothing else: what any streaming reader pays."""
    decode = json.JSONDecoder().decode
    count = 0
    with open(path, "rb") as f:
        for line in f:
            decode(line.decode())
            count += 1
    return count


def replay_text(path: Path) -> object:
    with open(os.devnull, "w", encoding="utf-8") as sink:
        renderer = TextRenderer(sink, str(path))
        renderer.begin()
        report = replay(path, renderer)
        renderer.end(report)
    return report


#: Samples the RSS of the process named by argv[1] every 5 ms until stdin closes, then prints the peak.
SAMPLER = """
import sys, threading, psutil
proc, done, peak = psutil.Process(int(sys.argv[1])), threading.Event(), 0
threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
print("ready", flush=True)
while not done.wait(0.005):
    peak = max(peak, proc.memory_info().rss)
print(peak, flush=True)
"""


def measure(run: Callable[[], object]) -> tuple[float, int, object]:
    """Seconds, and peak RSS growth (bytes) over the RSS before, sampled every 5 ms.

    The sampler is another process: a thread here would take the GIL 200 times a second,
    which slowed replay by a third and the floor by a twentieth (a bench artefact, not replay's cost).
    """
    proc = psutil.Process()
    sampler = subprocess.Popen([sys.executable, "-c", SAMPLER, str(os.getpid())], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
    assert sampler.stdin is not None and sampler.stdout is not None
    sampler.stdout.readline()
    before = proc.memory_info().rss
    start = time.perf_counter()
    result = run()
    seconds = time.perf_counter() - start
    after = proc.memory_info().rss
    sampler.stdin.close()
    peak = int(sampler.stdout.readline())
    sampler.wait()
    return seconds, max(peak, after) - before, result


def _rounds(path: Path, lines: int, repeat: int, verbose: bool) -> dict[str, Any]:
    """``repeat`` rounds of floor, replay, replay + text (interleaved: a load change hits all three alike)."""
    runs = (("floor", "floor (read + json.loads)", lambda: floor(path)), ("replay", "replay", lambda: replay(path)),
            ("text", "replay + text report", lambda: replay_text(path)))
    seen: dict[str, list[float]] = {}
    for _ in range(repeat):
        for key, label, run in runs:
            seconds, grown, result = measure(run)
            status = getattr(getattr(result, "verdict", None), "status", "legal")
            assert status == "legal", result
            seen.setdefault(f"{key}_s", []).append(seconds)
            seen.setdefault(f"{key}_rss_mb", []).append(grown / 1e6)
            if verbose:
                print(f"{label:<27} {seconds:6.2f} s  {lines / seconds:>10,.0f} lines/s  "
                      f"peak RSS +{grown / 1e6:.1f} MB")
    found = {name: round(statistics.median(values), 3 if name.endswith("_s") else 1) for name, values in seen.items()}
    found["ratio"] = round(statistics.median(r / f for r, f in zip(seen["replay_s"], seen["floor_s"])), 2)
    return found


def measure_replay(lines: int, keep: bool = False, verbose: bool = True, repeat: int = 1) -> dict[str, Any]:
    """Write a ``lines``-line log, then time the floor, replay and replay + text on it, medians of ``repeat``."""
    fd, name = tempfile.mkstemp(prefix="replay-bench-", suffix=".jsonl")
    os.close(fd)
    path = Path(name)
    found: dict[str, Any] = {"repeat": repeat}
    try:
        start = time.perf_counter()
        found["lines"] = write_log(path, lines)
        found["megabytes"] = round(path.stat().st_size / 1e6, 1)
        if verbose:
            print(f"log: {found['lines']} lines, {found['megabytes']:.0f} MB, written in "
                  f"{time.perf_counter() - start:.1f} s")
        found.update(_rounds(path, found["lines"], repeat, verbose))
        tracemalloc.start()
        replay(path)
        found["tracemalloc_peak_kb"] = round(tracemalloc.get_traced_memory()[1] / 1e3)
        tracemalloc.stop()
    finally:
        if keep:
            print(f"kept {path}")
        else:
            path.unlink()
    return found


def main() -> int:
    cli = argparse.ArgumentParser(description="replay throughput and memory on a long legal log")
    cli.add_argument("--lines", type=int, default=1_000_000)
    cli.add_argument("--repeat", type=int, default=3, help="rounds; the medians are reported (default 3)")
    cli.add_argument("--keep", action="store_true", help="keep the generated log and print its path")
    cli.add_argument("--record", action="store_true", help="write the results and the README section")
    ns = cli.parse_args()
    found = measure_replay(ns.lines, ns.keep, repeat=ns.repeat)
    print(f"replay / floor: {found['ratio']:.2f}x (median of {ns.repeat}); under tracemalloc: peak Python allocations "
          f"{found['tracemalloc_peak_kb']} kB")
    if ns.record:
        results.record("replay_throughput", found)
    return 0


if __name__ == "__main__":
    sys.exit(main())
