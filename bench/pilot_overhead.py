"""Pilot overhead against the embedded dispatcher, beside floors measured in the same run (not a test).

- per job, from outside: the wall time of a pilot draining N2 trivial jobs (`true`) minus that of one
  draining N1, divided by N2 - N1, beside the floor: the same four HTTP calls (getJob, starting,
  running, final update, with the bodies a pilot sent, so the server's work is the same) made by a
  bare requests.Session plus a fork/exec of `true`, measured the
  same way. Runs are interleaved (floor, pilot, floor, pilot) and repeated; medians are kept, and
  the ratio is the median of each repetition's ratio (the load of a shared machine cancels out).
- per state: the median time per job in each state from the transition logs of those runs, beside
  the floor of what the state physically needs (fork/exec of `true`, one HTTP call, a write+fsync
  of a small file, tar+gzip of the job's log files, adler32 of the tarball).
- start to first getJob, beside a bare interpreter importing the pilot's four dependencies.
- watching: the pilot's CPU share, RSS and threads while a payload sleeps, RSS beside that bare
  interpreter's.
- SIGTERM: signal to the final update recorded by the dispatcher, and to the pilot's exit.

Usage: python bench/pilot_overhead.py [--quick] [--record] [--repeat 5] [--jobs 10 30] [--watch 10]
``--record`` writes bench/results/pilot_overhead.json and the README's performance section.
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import results
from bench.floors import Floors, bare_interpreter, part_floors
from tests.pilotrun import Launch, wait_for
from tests.pilotserver import Dispatcher, job_spec

QUIET = ("--heartbeat-interval", "1800", "--getjob-wait", "0", "-v", "1", "--min-free-disk", "1000")
JOB_STATES = ("GETJOB", "VALIDATE", "STAGEIN", "RUNNING", "STAGEOUT")
#: What each state physically needs, named after the part floors (bench/floors.py).
STATE_FLOORS = {"GETJOB": ("HTTP call",), "VALIDATE": ("HTTP call",), "STAGEIN": (),
                "RUNNING": ("fork/exec true", "HTTP call"),
                "STAGEOUT": ("tar+gzip log", "adler32 log", "write+fsync", "write+fsync", "HTTP call")}


def pilot_cmd(launch: Launch, url: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "fsm_pilot", "run", "-q", "TEST_QUEUE", "-j", "managed", "-t", "-a",
            str(launch.dir), "--url", url, *QUIET, *extra]


class Bench:
    """One dispatcher, fresh launch dirs under ``root``."""

    def __init__(self, server: Dispatcher, root: Path) -> None:
        self.server, self.root, self.runs = server, root, 0
        self.floors = Floors(server.url)

    def launch(self) -> Launch:
        self.runs += 1
        launch = Launch(self.root / f"run{self.runs}")
        launch.dir.mkdir(parents=True)
        return launch

    def pilot(self, n: int) -> tuple[float, float, list[dict[str, Any]]]:
        """Wall seconds of a pilot draining ``n`` trivial jobs, spawn to first GETJOB, its records."""
        self.server.submit(*[job_spec("", transformation="true") for _ in range(n)])
        launch = self.launch()
        spawned, start = time.time(), time.perf_counter()
        subprocess.run(pilot_cmd(launch, self.server.url, "--timefloor", "600"), check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=launch.dir)
        wall = time.perf_counter() - start
        records = launch.records()
        assert sum(1 for r in records if r["source"] == "STAGEOUT") == n, "the pilot did not run every job"
        first = next(r["time"] for r in records if r["dest"] == "GETJOB")
        return wall, first - spawned, records

    def learn_bodies(self, records: list[dict[str, Any]]) -> None:
        """The floor sends what the pilot sent for its first job (from the dispatcher's history)."""
        panda_id = next(r["job_id"] for r in records if r["job_id"] is not None)
        for event, state, fields in self.server.query(
                "SELECT event, state, fields FROM job_history WHERE PandaID = ? ORDER BY id", panda_id):
            if event == "sent":
                self.floors.bodies["acquire"] = json.loads(fields)
            elif event == "update" and state in self.floors.bodies:
                self.floors.bodies[state] = json.loads(fields)

    def floor(self, n: int) -> float:
        self.server.submit(*[job_spec("", transformation="true") for _ in range(n)])
        return self.floors.jobs(n)


def per_state(records: list[dict[str, Any]]) -> dict[str, list[float]]:
    """Seconds in each job state, one sample per job (a state left and entered again counts once each)."""
    spent: dict[str, list[float]] = {state: [] for state in JOB_STATES}
    for record, following in zip(records, records[1:]):
        if record["dest"] in spent:
            spent[record["dest"]].append(following["mono"] - record["mono"])
    return spent


def outside_in(bench: Bench, small: int, large: int, repeat: int) -> dict[str, Any]:
    """Per-job seconds from outside, pilot and floor interleaved, ``repeat`` times."""
    pilots, floors, ratios, starts = [], [], [], []
    states: dict[str, list[float]] = {state: [] for state in JOB_STATES}
    cycles: list[float] = []
    bench.learn_bodies(bench.pilot(1)[2])  # and a warm-up
    for _ in range(repeat):
        floor_small = bench.floor(small)
        pilot_small, start, _ = bench.pilot(small)
        floor_large = bench.floor(large)
        pilot_large, _, records = bench.pilot(large)
        pilot = (pilot_large - pilot_small) / (large - small)
        floor = (floor_large - floor_small) / (large - small)
        pilots.append(pilot)
        floors.append(floor)
        ratios.append(pilot / floor)
        starts.append(start)
        for state, samples in per_state(records).items():
            states[state] += samples
        entries = [r["mono"] for r in records if r["dest"] == "GETJOB"]
        cycles += [b - a for a, b in zip(entries, entries[1:])]
    return {"per_job_ms": ms(statistics.median(pilots)), "floor_ms": ms(statistics.median(floors)),
            "ratio": round(statistics.median(ratios), 2), "cycle_ms": ms(statistics.median(cycles)),
            "start_ms": ms(statistics.median(starts)),
            "states_ms": {state: ms(statistics.median(samples)) for state, samples in states.items() if samples}}


def ms(seconds: float) -> float:
    return round(seconds * 1e3, 2)


def sleeping_pilot(bench: Bench, seconds: int) -> tuple[subprocess.Popen[bytes], int]:
    [panda_id] = bench.server.submit(job_spec(f"-c 'exec sleep {seconds}'"))
    launch = bench.launch()
    proc = subprocess.Popen(pilot_cmd(launch, bench.server.url, "--timefloor", "0"), cwd=launch.dir,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: bench.server.status(panda_id)[panda_id] == "running", what="payload running")
    return proc, panda_id


def watch_cost(bench: Bench, seconds: float) -> dict[str, float]:
    proc, _ = sleeping_pilot(bench, int(seconds) + 60)
    pilot = psutil.Process(proc.pid)
    time.sleep(0.5)  # past the first heartbeat's aftermath: what a long wait looks like
    cpu0, t0 = pilot.cpu_times(), time.monotonic()
    time.sleep(seconds)
    cpu1, t1 = pilot.cpu_times(), time.monotonic()
    used = (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)
    result = {"cpu_percent": round(100 * used / (t1 - t0), 3), "rss_mib": round(pilot.memory_info().rss / 2**20, 1),
              "threads": pilot.num_threads()}
    proc.send_signal(signal.SIGTERM)
    proc.wait(30)
    return result


def sigterm_times(bench: Bench) -> dict[str, float]:
    proc, panda_id = sleeping_pilot(bench, 300)
    sent_wall, sent = time.time(), time.perf_counter()
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(30)
    exited = time.perf_counter() - sent
    [(updated,)] = bench.server.query("SELECT time FROM job_history WHERE PandaID = ? AND state = 'failed'",
                                      panda_id)
    return {"sigterm_update_ms": ms(float(updated) - sent_wall), "sigterm_exit_ms": ms(exited), "exit_code": code}


def stored_log(server: Dispatcher) -> Path:
    """The newest job log tarball on the dispatcher's storage: the files a job's tarball really holds."""
    return max(server.storage.rglob("*.tgz"), key=lambda p: p.stat().st_mtime)


def measure(opts: argparse.Namespace) -> dict[str, Any]:
    small, large = opts.jobs
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        server = Dispatcher(root / "dispatcher").start()
        try:
            bench = Bench(server, root / "runs")
            jobs = outside_in(bench, small, large, opts.repeat)
            parts = {name: ms(s) for name, s in part_floors(bench.floors, stored_log(server)).items()}
            imports, bare_rss = bare_interpreter()
            watch = watch_cost(bench, opts.watch)
            sigterm = sigterm_times(bench) if not opts.quick else {}
        finally:
            server.stop()
    return {"jobs": [small, large], "repeat": opts.repeat, **jobs, "part_floors_ms": parts,
            "state_floors_ms": {state: round(sum(parts[p] for p in STATE_FLOORS[state]), 2) for state in JOB_STATES},
            "import_floor_ms": ms(imports), "bare_rss_mib": round(bare_rss, 1), **watch, **sigterm}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--jobs", type=int, nargs=2, default=None, metavar=("N1", "N2"))
    parser.add_argument("--repeat", type=int, default=None)
    parser.add_argument("--watch", type=float, default=None)
    parser.add_argument("--quick", action="store_true", help="a few seconds: fewer jobs and repeats, no SIGTERM")
    parser.add_argument("--record", action="store_true", help="write the results and the README section")
    opts = parser.parse_args()
    opts.jobs = opts.jobs or ([3, 9] if opts.quick else [10, 30])
    opts.repeat = opts.repeat or (3 if opts.quick else 5)
    opts.watch = opts.watch if opts.watch is not None else (1.0 if opts.quick else 10.0)
    found = measure(opts)
    print(results.pilot_table(found))
    print(json.dumps(found))
    if opts.record:
        results.record("pilot_overhead", found)
    return 0


if __name__ == "__main__":
    sys.exit(main())
