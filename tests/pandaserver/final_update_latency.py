"""How long the final update after SIGTERM takes against the real panda-server: the data to size
STOPPING_UPDATE_SECONDS (fsm_pilot/reporting.py) from.

Each run submits a sleeper job, starts a real pilot, waits until the server holds the job ``running``, sends
SIGTERM and times: the final update call as the pilot measured it (connect, TLS handshake, request, reply:
what STOPPING_UPDATE_SECONDS bounds), signal to reply, the server's own time on the request, signal to exit.
Configurations: plain HTTP and TLS on loopback, and TLS through delay_proxy at given round-trip times. Every
request is a new connection (wsgiref answers HTTP/1.0), as a pilot's final update is at a real server
whose keep-alive (600 s) ran out long before (heartbeats are 1800 s apart).

The pilots run with the budget raised to ``--budget`` (default 30 s), so a slow update is measured rather
than cut off; ``--shipped-runs N`` adds N runs per TLS configuration with the shipped budget, to show
what it delivers. Run by ``python -m tests.pandaserver measure [options]``; writes JSON and a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import secrets
import signal
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.pandaserver.cases import Case, sleeper
from tests.pandaserver.server import read_line, stop_group
from tests.pandaserver.stack import Stack

#: Runs the pilot with the stop-time update budget replaced; fails loudly if the names it patches are gone.
BUDGET_ENTRY = (
    "import sys, fsm_pilot.reporting as r, fsm_pilot.finish as f, fsm_pilot.states.aborting as a\n"
    "for m, n in ((r, 'STOPPING_UPDATE_SECONDS'), (f, 'FINAL_UPDATE_SECONDS'), (a, 'FINAL_UPDATE_SECONDS')):\n"
    "    assert hasattr(m, n), (m.__name__, n)\n"
    "    setattr(m, n, {budget})\n"
    "from fsm_pilot.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def timestamp(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def final_update(launch: Path) -> dict[str, Any]:
    """The pilot's own record of its final update: delivered or not, the call's seconds, when it ended."""
    for log in launch.glob("Panda_Pilot_*/pilot.log"):
        for line in reversed(log.read_text().splitlines()):
            event = json.loads(line)
            if event.get("event") == "update sent" and event.get("state") in ("failed", "finished"):
                return {"delivered": True, "call_s": event["seconds"], "done": timestamp(event["timestamp"])}
            if event.get("event") == "update not delivered" and event.get("final"):
                return {"delivered": False, "done": timestamp(event["timestamp"])}
    return {"delivered": False}


def one_run(stack: Stack, root: Path, url: str, tls: bool, budget: float | None) -> dict[str, Any]:
    case = Case(stack, root / secrets.token_hex(4), f"fsmci-{secrets.token_hex(6)}")
    case.dir.mkdir(parents=True)
    case.record_start = stack.server.record.stat().st_size
    [panda_id] = case.submit(sleeper(case.token))
    launch = case.launch()
    entry = ("-m", "fsm_pilot") if budget is None else ("-c", BUDGET_ENTRY.format(budget=budget))
    pilot = case.start_pilot(launch, tls=tls, url=url, entry=entry)
    try:
        case.wait_active(panda_id, "running", pilot)
        signalled = time.time()
        pilot.send_signal(signal.SIGTERM)
        code = pilot.wait(120)
        exited = time.time()
    finally:
        case.cleanup()
    result = {"exit": code, "signal_to_exit_s": exited - signalled, **final_update(launch)}
    if "done" in result:
        result["signal_to_reply_s"] = result.pop("done") - signalled
    finals = [u for u in case.updates(panda_id) if u["body"].get("job_status") in ("failed", "finished")]
    if finals:
        result["server_s"] = finals[-1]["end"] - finals[-1]["start"]
    return result


def start_proxy(target_port: int, rtt_ms: float) -> tuple[subprocess.Popen[bytes], int]:
    proc = subprocess.Popen([sys.executable, "-m", "tests.pandaserver.delay_proxy", str(target_port), str(rtt_ms)],
                            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, start_new_session=True)
    assert proc.stdout is not None
    line = read_line(proc.stdout, 30)
    if not line.startswith(b"listening "):
        stop_group(proc)
        raise RuntimeError(f"delay proxy did not start: {line!r}")
    return proc, int(line.split()[1])


def configuration(stack: Stack, root: Path, rtt_ms: float | None, runs: int,
                  budget: float | None) -> list[dict[str, Any]]:
    """``runs`` runs over plain HTTP (rtt None) or TLS at ``rtt_ms`` through the delay proxy (0: direct)."""
    server = stack.server
    if rtt_ms is None:
        return [one_run(stack, root, server.url, False, budget) for _ in range(runs)]
    if rtt_ms == 0:
        return [one_run(stack, root, server.tls_url, True, budget) for _ in range(runs)]
    proxy, port = start_proxy(server.https_port, rtt_ms)
    try:
        return [one_run(stack, root, f"https://127.0.0.1:{port}", True, budget) for _ in range(runs)]
    finally:
        stop_group(proxy)


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]  # nearest rank
    return {"n": len(ordered), "min": ordered[0], "median": statistics.median(ordered), "p90": p90,
            "max": ordered[-1]}


def table(results: dict[str, list[dict[str, Any]]]) -> str:
    lines = ["| configuration | runs | delivered | final update call, ms (min / median / p90 / max) | "
             "signal to reply, ms (median / max) | server, ms (median) | signal to exit, ms (median) |",
             "|---|---:|---:|---|---|---:|---:|"]
    for name, runs in results.items():
        done = [r for r in runs if r["delivered"]]
        call = summary([r["call_s"] * 1000 for r in done]) if done else None
        reply = summary([r["signal_to_reply_s"] * 1000 for r in done]) if done else None
        server = [r["server_s"] * 1000 for r in runs if "server_s" in r]
        calls = f"{call['min']:.0f} / {call['median']:.0f} / {call['p90']:.0f} / {call['max']:.0f}" if call else "-"
        replies = f"{reply['median']:.0f} / {reply['max']:.0f}" if reply else "-"
        lines.append(f"| {name} | {len(runs)} | {len(done)} | {calls} | {replies} | "
                     f"{statistics.median(server) if server else float('nan'):.0f} | "
                     f"{statistics.median(r['signal_to_exit_s'] * 1000 for r in runs):.0f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.pandaserver measure")
    parser.add_argument("--stack", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True, help="directory for final_update_latency.{json,md}")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--rtt-ms", default="20,100,250", help="round-trip times emulated in front of TLS")
    parser.add_argument("--budget", type=float, default=30.0)
    parser.add_argument("--shipped-runs", type=int, default=5)
    ns = parser.parse_args(argv)
    stack = Stack.load(ns.stack)
    root = stack.scratch / "measure"
    rtts = [float(x) for x in ns.rtt_ms.split(",") if x]
    results: dict[str, list[dict[str, Any]]] = {}
    results["http, loopback"] = configuration(stack, root, None, ns.runs, ns.budget)
    for rtt in [0.0, *rtts]:
        name = "TLS, loopback" if rtt == 0 else f"TLS, RTT {rtt:.0f} ms"
        results[name] = configuration(stack, root, rtt, ns.runs, ns.budget)
        if ns.shipped_runs:
            results[f"{name}, shipped budget"] = configuration(stack, root, rtt, ns.shipped_runs, None)
    ns.out.mkdir(parents=True, exist_ok=True)
    (ns.out / "final_update_latency.json").write_text(json.dumps(results, indent=1))
    text = table(results)
    (ns.out / "final_update_latency.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
