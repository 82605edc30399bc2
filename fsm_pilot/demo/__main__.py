"""The demo: the embedded dispatcher, three jobs, one pilot, a summary.

1. start ``fsm-pilot dispatcher`` on a free loopback port with a fresh database
   (the bundled example queue FSM_EXAMPLE; storage under ``demo-run/storage``);
2. submit three jobs: one writes an output, one fails, one sleeps until the
   demo sends it ``tobekilled``;
3. run one pilot (``fsm-pilot run -q FSM_EXAMPLE --url ...``); the queue's
   timefloor lets it take all three;
4. print each job's outcome as the server recorded it, stop the dispatcher.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from importlib import resources
from pathlib import Path
from typing import Any

import requests

from fsm_pilot.dispatcher.client import submit
from fsm_pilot.dispatcher.submitspec import to_wire

#: Short intervals so the demo takes seconds: heartbeat 1 s (the kill command rides on it).
FAST = ["--heartbeat-interval", "1", "--kill-grace", "1", "--getjob-wait", "0", "-v", "1"]


def start_dispatcher(root: Path) -> tuple[subprocess.Popen[str], str]:
    """Start the dispatcher; return it and its URL once it listens."""
    log = (root / "dispatcher.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "fsm_pilot", "dispatcher", "--db", str(root / "dispatcher.db"),
                             "--port", "0", "--storage-dir", str(root / "storage")],
                            stdout=subprocess.PIPE, stderr=log, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.startswith("listening on "):
        proc.kill()
        raise SystemExit(f"the dispatcher did not start: {line!r}; see {root / 'dispatcher.log'}")
    return proc, line.removeprefix("listening on ")


def v1(url: str, function: str, body: dict[str, Any]) -> Any:
    """One REST v1 call to the dispatcher; its data."""
    reply = requests.post(f"{url}/api/v1/{function}", json=body, timeout=10).json()
    if not reply.get("success"):
        raise SystemExit(f"{function} refused: {reply.get('message')}")
    return reply["data"]


def status(url: str, ids: list[int]) -> dict[int, str]:
    """The dispatcher's view of each job."""
    params = [("job_ids", str(i)) for i in ids]
    data = requests.get(f"{url}/api/v1/pilot/get_job_status", params=params, timeout=10,
                        headers={"Accept": "application/json"}).json()["data"]
    return {int(row["job_id"]): str(row["status"]) for row in data}


def kill_when_running(url: str, panda_id: int, pilot: subprocess.Popen[str]) -> None:
    """Wait (with a deadline) until the job runs, then send it tobekilled."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and pilot.poll() is None:
        if status(url, [panda_id]).get(panda_id) == "running":
            v1(url, "job/set_command", {"job_id": panda_id, "command": "tobekilled"})
            print(f"-> sent tobekilled to job {panda_id}", flush=True)
            return
        time.sleep(0.1)


def summary(root: Path, url: str, ids: list[int]) -> str:
    """One line per job: the server's state and the pilot's final report."""
    reports = {int(p.stem.rsplit("_", 1)[1]): json.loads(p.read_text())
               for p in root.glob("launch/Panda_Pilot_*/final_update_*.json")}
    states = status(url, ids)
    lines = []
    for panda_id in ids:
        report = reports.get(panda_id, {})
        files = ", ".join(sorted(json.loads(report.get("xml") or "{}")))
        lines.append(f"job {panda_id}: server says {states.get(panda_id)}; pilotErrorCode="
                     f"{report.get('pilotErrorCode')} transExitCode={report.get('transExitCode')}; stored: {files}")
    return "\n".join(lines)


def run_pilot(root: Path, url: str, ids: list[int]) -> int:
    """Run one pilot through the jobs, killing the third one from the server side."""
    cmd = [sys.executable, "-m", "fsm_pilot", "run", "-q", "FSM_EXAMPLE", "-j", "managed", "-t",
           "--url", url, *FAST]
    print("$", " ".join(cmd), flush=True)
    pilot = subprocess.Popen(cmd, cwd=root / "launch", text=True)
    kill_when_running(url, ids[2], pilot)
    return pilot.wait()


def main() -> int:
    """Run the whole demo; the pilot's exit code is the demo's."""
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "demo-run").absolute()
    shutil.rmtree(root, ignore_errors=True)
    (root / "launch").mkdir(parents=True)
    dispatcher, url = start_dispatcher(root)
    try:
        jobs = json.loads(resources.files("fsm_pilot.demo").joinpath("jobs.json").read_text())
        ids = [int(panda_id or 0) for panda_id, _, _ in submit(url, [to_wire(j, "FSM_EXAMPLE") for j in jobs]).jobs]
        print(f"dispatcher at {url}; submitted jobs {ids}", flush=True)
        code = run_pilot(root, url, ids)
        print(f"\npilot exit code: {code}\n{summary(root, url, ids)}")
    finally:
        dispatcher.send_signal(signal.SIGTERM)
        dispatcher.wait(30)
    print(f"stored files under {root / 'storage'}:")
    for path in sorted(p for p in (root / "storage").rglob("*") if p.is_file()):
        print("  ", path.relative_to(root))
    print(what_next(root, ids))
    return code


def _shown(path: Path) -> str:
    """``path`` relative to the current dir when it is below it (shorter to paste)."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def what_next(root: Path, ids: list[int]) -> str:
    """Ready-to-paste commands for the run just made: replay, highlighted diagram, the server's view."""
    beside = Path(sys.executable).parent / "fsm-pilot"
    tool = _shown(beside) if beside.exists() else f"{sys.executable} -m fsm_pilot"
    [pilot_dir] = sorted((root / "launch").glob("Panda_Pilot_*"))[-1:] or [root / "launch"]
    translog, db = _shown(pilot_dir / "transitions.jsonl"), _shown(root / "dispatcher.db")
    return "\n".join([
        "", "what next:",
        f"  transition log: {translog}",
        f"  pilot log:      {_shown(pilot_dir / 'pilot.log')}",
        f"  {tool} replay {translog}",
        f"  {tool} diagram --format mermaid --highlight {translog}",
        f"  {tool} dispatcher --db {db} --port 25443 &   # the demo's server again, with its jobs",
        f"  {tool} status --url http://127.0.0.1:25443 {' '.join(map(str, ids))}",
    ])


if __name__ == "__main__":
    sys.exit(main())
