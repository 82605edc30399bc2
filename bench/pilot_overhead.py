"""Pilot overhead against the embedded dispatcher, beside floors measured in the same run (not a test).

- per-job overhead: N trivial jobs (`true`) taken by one pilot; the pilot's time per job
  (GETJOB entry to the next GETJOB entry, from its transition log) minus the payload's
  own run time, beside the floor: the same HTTP calls (getJob, starting, running, final
  update) made by a bare requests.Session, plus a bare fork/exec of `true`.
- start to first getJob: spawn to the transition into GETJOB, beside a bare interpreter
  importing the pilot's four dependencies.
- watching: the pilot's CPU share, RSS and threads while a payload sleeps.
- SIGTERM: signal to the final update recorded by the dispatcher, and to the pilot's exit.

Usage: python bench/pilot_overhead.py [--jobs 20] [--watch 30]
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
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.pilotrun import Launch, wait_for
from tests.pilotserver import Dispatcher, job_spec

QUIET = ("--heartbeat-interval", "1800", "--getjob-wait", "0", "-v", "1", "--min-free-disk", "1000")


def pilot_cmd(launch: Launch, url: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "fsm_pilot", "run", "-q", "TEST_QUEUE", "-j", "managed", "-t", "-a",
            str(launch.dir), "--url", url, *QUIET, *extra]


def new_launch(root: Path) -> Launch:
    launch = Launch(root)
    launch.dir.mkdir(parents=True)
    return launch


def floor_per_job(server: Dispatcher, n: int) -> float:
    """Seconds per job for the same four HTTP calls and a fork/exec of `true`, with no pilot logic."""
    server.submit(*[job_spec("", transformation="true") for _ in range(n)])
    session = requests.Session()
    session.headers["Accept"] = "application/json"
    base = f"{server.url}/server/panda"
    start = time.perf_counter()
    for _ in range(n):
        job = session.post(f"{base}/getJob", data={"siteName": "TEST_QUEUE", "computingElement": "TEST_QUEUE",
                                                    "prodSourceLabel": "managed", "node": "bench"}).json()
        for state in ("starting", "running", "finished"):
            session.post(f"{base}/updateJob", data={"jobId": str(job["PandaID"]), "state": state,
                                                    "attemptNr": str(job["attemptNr"])}).raise_for_status()
        subprocess.run(["true"], check=True)
    return (time.perf_counter() - start) / n


def floor_imports() -> tuple[float, float]:
    """Seconds to import the four dependencies in a bare interpreter, and that interpreter's RSS (MB)."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import transitions, requests, psutil, structlog"], check=True)
    seconds = time.perf_counter() - start
    code = "import transitions, requests, psutil, structlog, sys; print(flush=True); sys.stdin.read()"
    bare = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert bare.stdout is not None and bare.stdin is not None
    bare.stdout.readline()
    rss = psutil.Process(bare.pid).memory_info().rss / 2**20
    bare.stdin.close()
    bare.wait(10)
    return seconds, rss


def pilot_per_job(server: Dispatcher, root: Path, n: int) -> tuple[float, list[float]]:
    """Start-to-first-GETJOB and the per-job overheads (payload time taken out) of one pilot."""
    server.submit(*[job_spec("", transformation="true") for _ in range(n)])
    launch = new_launch(root)
    spawned = time.time()
    subprocess.run(pilot_cmd(launch, server.url, "--timefloor", "600"), check=True, capture_output=True,
                   cwd=launch.dir)
    records = launch.records()
    entries = [r["time"] for r in records if r["dest"] == "GETJOB"]
    ran = [r["time"] for r in records if r["dest"] == "RUNNING"]
    left = [r["time"] for r in records if r["source"] == "RUNNING"]
    per_job = [b - a - (done - began) for a, b, began, done in zip(entries, entries[1:], ran, left)]
    return entries[0] - spawned, per_job


def sleeping_pilot(server: Dispatcher, root: Path, seconds: int) -> tuple[subprocess.Popen[bytes], int]:
    [panda_id] = server.submit(job_spec(f"-c 'exec sleep {seconds}'"))
    launch = new_launch(root)
    proc = subprocess.Popen(pilot_cmd(launch, server.url, "--timefloor", "0"), cwd=launch.dir,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: server.status(panda_id)[panda_id] == "running", what="payload running")
    return proc, panda_id


def watch_cost(server: Dispatcher, root: Path, seconds: float) -> dict[str, float]:
    proc, _ = sleeping_pilot(server, root, int(seconds) + 60)
    pilot = psutil.Process(proc.pid)
    cpu0, t0 = pilot.cpu_times(), time.monotonic()
    time.sleep(seconds)
    cpu1, t1 = pilot.cpu_times(), time.monotonic()
    used = (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)
    result = {"cpu_percent": 100 * used / (t1 - t0), "rss_mb": pilot.memory_info().rss / 2**20,
              "threads": float(pilot.num_threads())}
    proc.send_signal(signal.SIGTERM)
    proc.wait(30)
    return result


def sigterm_times(server: Dispatcher, root: Path) -> tuple[float, float, int]:
    proc, panda_id = sleeping_pilot(server, root, 300)
    sent_wall, sent = time.time(), time.perf_counter()
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(30)
    exited = time.perf_counter() - sent
    [(updated,)] = server.query("SELECT time FROM job_history WHERE PandaID = ? AND state = 'failed'", panda_id)
    return float(updated) - sent_wall, exited, code


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--watch", type=float, default=30.0)
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        server = Dispatcher(root / "dispatcher").start()
        try:
            floor = floor_per_job(server, opts.jobs)
            imports, bare_rss = floor_imports()
            start, per_job = pilot_per_job(server, root / "jobs", opts.jobs)
            watch = watch_cost(server, root / "watch", opts.watch)
            to_update, to_exit, code = sigterm_times(server, root / "sigterm")
        finally:
            server.stop()
    median = statistics.median(per_job)
    print(f"{'metric':46} {'fsm-pilot':>12} {'floor (same run)':>18}")
    print(f"{'per-job overhead, trivial payload (median)':46} {median * 1e3:10.1f}ms {floor * 1e3:16.1f}ms")
    print(f"{'start to first getJob':46} {start * 1e3:10.0f}ms {imports * 1e3:16.0f}ms (imports)")
    print(f"{'pilot CPU while a payload sleeps':46} {watch['cpu_percent']:11.3f}%")
    print(f"{'pilot RSS while watching':46} {watch['rss_mb']:9.1f}MB {bare_rss:15.1f}MB (bare imports)")
    print(f"{'pilot threads while watching':46} {int(watch['threads']):>12}")
    print(f"{'SIGTERM to final update at the server':46} {to_update * 1e3:10.0f}ms")
    print(f"{'SIGTERM to exit (exit code)':46} {to_exit * 1e3:10.0f}ms ({code})")
    print(json.dumps({"per_job_ms": median * 1e3, "floor_ms": floor * 1e3, "start_ms": start * 1e3,
                      "import_floor_ms": imports * 1e3, "bare_rss_mb": bare_rss, **watch,
                      "sigterm_update_ms": to_update * 1e3,
                      "sigterm_exit_ms": to_exit * 1e3, "exit_code": code, "pid": os.getpid()}))


if __name__ == "__main__":
    main()
