"""Dispatcher throughput: getJob + final updateJob pairs per second with N concurrent pilots.

Starts a fresh dispatcher subprocess (port 0, temporary database), submits the jobs,
then runs N pilots, each with its own ``requests.Session`` (one kept-alive connection),
each looping legacy ``getJob`` -> ``updateJob state=finished`` until no job is left.
The floor is the same clients making the same number of requests to the trivial
``GET /api/v1/system/is_alive`` (two requests per "pair"): what the HTTP stack and the
client cost without any job logic or database work.

    python bench/dispatcher_throughput.py [--pilots 20] [--jobs 6000] [--mode process|thread] [--rounds 3] [--record]

``--record`` writes bench/results/dispatcher_throughput.json and the README's performance section.

Not a test: it prints numbers. Target on a 2-core machine: >= 1000 pairs/s with 20 pilots.
"""

from __future__ import annotations

import argparse
import multiprocessing
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import results
from fsm_pilot.dispatcher.jobwire import encode
from fsm_pilot.dispatcher.submitspec import to_wire

QUEUE = "TEST_QUEUE"
QUEUEDATA = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "queuedata_TEST_QUEUE.json"
JSON = {"Accept": "application/json"}
GET_FIELDS = {"siteName": "TEST_QUEUE", "computingElement": "TEST_QUEUE", "prodSourceLabel": "managed",
              "diskSpace": "10000", "node": "bench", "mem": "2000", "cpu": "2000"}


def pilot_pairs(url: str, start: Any, out: Any) -> None:
    """One pilot: take and finish jobs until the dispatcher has none left."""
    session = requests.Session()
    session.get(f"{url}/api/v1/system/is_alive", timeout=30)  # connect before the clock starts
    start.wait()
    pairs = 0
    while True:
        job = session.post(f"{url}/server/panda/getJob", data=GET_FIELDS, headers=JSON, timeout=30).json()
        if job["StatusCode"] != 0:
            break
        fields = {"jobId": str(job["PandaID"]), "state": "finished", "attemptNr": str(job["attemptNr"]),
                  "transExitCode": "0", "pilotErrorCode": "0", "node": "bench"}
        reply = session.post(f"{url}/server/panda/updateJob", data=fields, headers=JSON, timeout=30).json()
        assert reply["StatusCode"] == 0 and reply["command"] == "NULL", reply
        pairs += 1
    out.put((pairs, time.perf_counter()))


def pilot_floor(url: str, start: Any, out: Any, pairs: int) -> None:
    """The floor: the same number of round trips to the trivial endpoint."""
    session = requests.Session()
    session.get(f"{url}/api/v1/system/is_alive", timeout=30)
    start.wait()
    for _ in range(pairs):
        session.get(f"{url}/api/v1/system/is_alive", headers=JSON, timeout=30)
        session.get(f"{url}/api/v1/system/is_alive", headers=JSON, timeout=30)
    out.put((pairs, time.perf_counter()))


def run_clients(mode: str, n: int, target: Callable[..., None], *args: Any) -> tuple[int, float]:
    """Start n clients, release them together, return (pairs, seconds until the last one ended)."""
    if mode == "process":
        ctx = multiprocessing.get_context("fork")
        start: Any = ctx.Barrier(n + 1)
        out: Any = ctx.Queue()
        workers: list[Any] = [ctx.Process(target=target, args=(*args[:1], start, out, *args[1:])) for _ in range(n)]
    else:
        import queue

        start, out = threading.Barrier(n + 1), queue.Queue()
        workers = [threading.Thread(target=target, args=(*args[:1], start, out, *args[1:])) for _ in range(n)]
    for w in workers:
        w.start()
    start.wait()
    t0 = time.perf_counter()
    results = [out.get(timeout=600) for _ in range(n)]
    for w in workers:
        w.join()
    return sum(p for p, _ in results), max(t for _, t in results) - t0


@contextmanager
def dispatcher(tmp: str) -> Iterator[str]:
    """A fresh dispatcher subprocess on 127.0.0.1; its base URL."""
    cmd = [sys.executable, "-m", "fsm_pilot.dispatcher", "dispatcher", "--db", f"{tmp}/bench.db",
           "--port", "0", "--queuedata", str(QUEUEDATA)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("listening on "):
            raise SystemExit(f"dispatcher did not start: {line!r}")
        yield line.split()[-1]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def submit_all(url: str, count: int) -> None:
    for first in range(0, count, 5000):
        jobs = [to_wire({"transformation": "echo", "jobPars": f"job {i}", "jobName": f"bench.{i}"}, QUEUE)
                for i in range(first, min(count, first + 5000))]
        reply = requests.post(f"{url}/api/v1/job/submit", json={"jobs": encode(jobs)}, timeout=120).json()
        assert reply["success"], reply


def one_round(args: argparse.Namespace) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp, dispatcher(tmp) as url:
        submit_all(url, args.jobs)
        pairs, secs = run_clients(args.mode, args.pilots, pilot_pairs, url)
        assert pairs == args.jobs, f"{pairs} pairs for {args.jobs} jobs"
        per_client = max(1, args.jobs // args.pilots)
        fpairs, fsecs = run_clients(args.mode, args.pilots, pilot_floor, url, per_client)
    return pairs / secs, fpairs / fsecs


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """``args.rounds`` rounds, each a fresh dispatcher; medians, and each round's rates."""
    rates = [one_round(args) for _ in range(args.rounds)]
    med, fmed = statistics.median(r for r, _ in rates), statistics.median(f for _, f in rates)
    return {"pilots": args.pilots, "mode": args.mode, "jobs": args.jobs, "rounds": args.rounds,
            "pairs_per_s": round(med, 1), "floor_pairs_per_s": round(fmed, 1), "ratio": round(fmed / med, 2),
            "per_round": [[round(r, 1), round(f, 1)] for r, f in rates]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pilots", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=6000)
    parser.add_argument("--mode", choices=("process", "thread"), default="process")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--record", action="store_true", help="write the results and the README section")
    args = parser.parse_args()
    found = measure(args)
    print(f"{args.pilots} pilots ({args.mode}es), {args.jobs} jobs, {args.rounds} rounds")
    print(f"{'round':>5} {'pairs/s':>10} {'floor pairs/s':>14} {'ratio':>6}   (ratio: time per pair over the floor's)")
    for i, (rate, floor) in enumerate(found["per_round"], 1):
        print(f"{i:>5} {rate:>10.0f} {floor:>14.0f} {floor / rate:>6.2f}")
    print(f"median {found['pairs_per_s']:>9.0f} {found['floor_pairs_per_s']:>14.0f} {found['ratio']:>6.2f}   "
          f"(target >= 1000 pairs/s)")
    if args.record:
        results.record("dispatcher_throughput", found)
    return 0


if __name__ == "__main__":
    sys.exit(main())
