"""Pilot overhead, measured against a floor taken in the same run (not a test).

- per-job overhead: N trivial jobs (`true`) pre-placed for one pilot; the time the
  pilot spends per job (GETJOB entry to the next GETJOB entry, from its transition
  log) beside the floor: a bare fork/exec of `true` with nothing around it.
- start to first GETJOB: process spawn to the transition into GETJOB, beside the floor
  of a bare `python -c "import transitions, requests, psutil, structlog"`.
- watching: the pilot's CPU share and RSS while a payload sleeps.
- SIGTERM: signal to the final report on disk, and to the pilot's exit.

Usage: python bench/pilot_overhead.py [--jobs 20] [--watch 10]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.pilotrun import Launch, job_def, make_launch, pilot_cmd, wait_for


def floor_fork_exec(n: int) -> float:
    """Seconds per bare fork/exec of `true`."""
    start = time.perf_counter()
    for _ in range(n):
        subprocess.run(["true"], check=True)
    return (time.perf_counter() - start) / n


def floor_imports() -> float:
    """Seconds for a bare interpreter to import the pilot's four dependencies."""
    code = "import transitions, requests, psutil, structlog"
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - start


def run_jobs(root: Path, n: int) -> tuple[float, list[float]]:
    """Start-to-GETJOB and per-job seconds for one pilot running n trivial jobs."""
    launch = make_launch(root, [job_def(i, "", transformation="true") for i in range(1, n + 1)], timefloor=60)
    spawned = time.time()
    subprocess.run(pilot_cmd(launch), cwd=launch.dir, check=True, capture_output=True)
    records = launch.records()
    entries = [r["time"] for r in records if r["dest"] == "GETJOB"]
    ends = [r["time"] for r in records if r["dest"] in ("GETJOB", "EXIT")][1:]
    return entries[0] - spawned, [b - a for a, b in zip(entries, ends, strict=False)][:n]


def _sleeping_pilot(root: Path, seconds: int) -> tuple[Launch, subprocess.Popen[bytes]]:
    launch = make_launch(root, [job_def(1, f"-c 'touch started; exec sleep {seconds}'")])
    proc = subprocess.Popen(pilot_cmd(launch), cwd=launch.dir, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    wait_for(lambda: launch.pilot_dir() and list(launch.pilot_dir().glob("PanDA_Pilot-1/started")),  # type: ignore[union-attr]
             what="payload started")
    return launch, proc


def watch_cost(root: Path, seconds: float) -> dict[str, float]:
    """CPU share, RSS and threads of a pilot whose payload sleeps."""
    _, proc = _sleeping_pilot(root, int(seconds) + 30)
    pilot = psutil.Process(proc.pid)
    cpu0, t0 = pilot.cpu_times(), time.monotonic()
    time.sleep(seconds)
    cpu1, t1 = pilot.cpu_times(), time.monotonic()
    used = (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)
    result = {"cpu_percent": 100 * used / (t1 - t0), "rss_mb": pilot.memory_info().rss / 2**20,
              "threads": pilot.num_threads()}
    proc.send_signal(signal.SIGTERM)
    proc.wait(30)
    return result


def sigterm_times(root: Path) -> tuple[float, float, int]:
    """Seconds from SIGTERM to the final report on disk and to exit; the exit code."""
    launch, proc = _sleeping_pilot(root, 300)
    pilot_dir = launch.pilot_dir()
    assert pilot_dir is not None
    report = pilot_dir / "final_update_1.json"
    sent = time.perf_counter()
    proc.send_signal(signal.SIGTERM)
    while not report.exists() and proc.poll() is None:
        time.sleep(0.001)
    reported = time.perf_counter()
    code = proc.wait(30)
    return reported - sent, time.perf_counter() - sent, code


def main() -> None:
    """Measure and print everything beside its floor."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--watch", type=float, default=10.0)
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        fork = floor_fork_exec(50)
        imports = floor_imports()
        start, per_job = run_jobs(root / "jobs", opts.jobs)
        watch = watch_cost(root / "watch", opts.watch)
        to_report, to_exit, code = sigterm_times(root / "sigterm")
    median = statistics.median(per_job)
    print(f"{'metric':44} {'fsm-pilot':>12} {'floor (same run)':>18}")
    print(f"{'per-job time, trivial payload (median)':44} {median * 1e3:10.1f}ms {fork * 1e3:16.1f}ms")
    print(f"{'per-job overhead = time - floor':44} {(median - fork) * 1e3:10.1f}ms {'':>18}")
    print(f"{'start to first GETJOB':44} {start * 1e3:10.0f}ms {imports * 1e3:16.0f}ms (imports)")
    print(f"{'pilot CPU while payload sleeps':44} {watch['cpu_percent']:11.3f}% {'':>18}")
    print(f"{'pilot RSS / threads while watching':44} {watch['rss_mb']:9.1f}MB {int(watch['threads']):>6} thread(s)")
    print(f"{'SIGTERM to final report on disk':44} {to_report * 1e3:10.0f}ms")
    print(f"{'SIGTERM to exit (exit code)':44} {to_exit * 1e3:10.0f}ms ({code})")
    print(json.dumps({"per_job_ms": median * 1e3, "floor_ms": fork * 1e3, "start_ms": start * 1e3,
                      "import_floor_ms": imports * 1e3, **watch, "sigterm_report_ms": to_report * 1e3,
                      "sigterm_exit_ms": to_exit * 1e3, "exit_code": code, "pid": os.getpid()}))


if __name__ == "__main__":
    main()
