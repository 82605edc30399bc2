"""Helpers for tests that run the real pilot as a subprocess on real files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures"
QUEUE = "TEST_QUEUE"


def all_gone(pids: list[int]) -> bool:
    """Every pid has exited (a zombie waiting for its reaper counts as gone)."""
    import psutil

    def dead(pid: int) -> bool:
        try:
            return bool(psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)  # the stubs' status type needs 3.10
        except psutil.NoSuchProcess:
            return True
    return all(dead(p) for p in pids)


def wait_for(condition: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    """Poll ``condition`` until it returns something truthy; fail loudly at the deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def job_def(panda_id: int, job_pars: str, outputs: tuple[str, ...] = (), transformation: str = "bash",
            **extra: str) -> dict[str, str]:
    """A PanDA job definition (strings, as the server sends them) writing ``outputs``."""
    log = f"job.{panda_id}.log.tgz"
    fields = {
        "PandaID": str(panda_id), "jobsetID": "1", "taskID": "77", "attemptNr": "1", "StatusCode": "0",
        "prodSourceLabel": "managed", "jobName": f"test.{panda_id}", "transformation": transformation,
        "jobPars": job_pars, "inFiles": "", "outFiles": ",".join((*outputs, log)), "logFile": log,
        "logGUID": f"00000000-0000-4000-8000-{panda_id:012d}", "scopeOut": ",".join("test" for _ in outputs),
        "scopeLog": "test", "realDatasets": ",".join("ds" for _ in (*outputs, log)),
        "ddmEndPointOut": ",".join("LOCAL_DISK" for _ in (*outputs, log)), "coreCount": "1",
        "maxCpuCount": "0", "maxDiskCount": "0", "minRamCount": "0", "swRelease": "NULL",
    }
    fields.update(extra)
    return fields


@dataclass
class Launch:
    """A launch dir with queuedata, storage endpoints and (optionally) pre-placed jobs."""

    root: Path

    @property
    def dir(self) -> Path:
        return self.root / "launch"

    @property
    def storage(self) -> Path:
        return self.root / "storage"

    def pilot_dir(self) -> Path | None:
        found = sorted(self.dir.glob("Panda_Pilot_*"))
        return found[0] if found else None

    def records(self) -> list[dict[str, Any]]:
        pilot_dir = self.pilot_dir()
        path = pilot_dir / "transitions.jsonl" if pilot_dir else None
        if path is None or not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def reports(self) -> dict[int, dict[str, Any]]:
        pilot_dir = self.pilot_dir()
        if pilot_dir is None:
            return {}
        return {int(p.stem.rsplit("_", 1)[1]): json.loads(p.read_text())
                for p in pilot_dir.glob("final_update_*.json")}

    def in_state(self, state: str) -> bool:
        records = self.records()
        return bool(records) and records[-1]["dest"] == state


def make_launch(root: Path, jobs: list[dict[str, str]] | None = None, **queue: Any) -> Launch:
    """Queuedata (the fixture, with ``queue`` overrides), storage under ``root``, jobs as Harvester JSON."""
    launch = Launch(root)
    launch.dir.mkdir(parents=True)
    launch.storage.mkdir()
    qd = json.loads((FIXTURES / "queuedata_TEST_QUEUE.json").read_text())
    qd.update(queue)
    (launch.dir / "queuedata.json").write_text(json.dumps(qd))
    ddm = json.loads((FIXTURES / "cric_ddmendpoints.json").read_text())
    for proto in ddm["LOCAL_DISK"]["arprotocols"].values():
        proto[0]["path"] = str(launch.storage)
    (launch.dir / "storagedata.json").write_text(json.dumps(ddm))
    if jobs is not None:
        (launch.dir / "pandaJobData.out").write_text(json.dumps({j["PandaID"]: j for j in jobs}))
    return launch


def pilot_cmd(launch: Launch, *extra: str) -> list[str]:
    return [sys.executable, "-m", "fsm_pilot", "run", "-q", QUEUE, "-t", "-a", str(launch.dir),
            "--min-free-disk", "1000000", *extra]


#: Pilots started by tests; any still running when its test ends is stopped (a failed test leaks none).
STARTED: list[subprocess.Popen[str]] = []


def started(proc: subprocess.Popen[str]) -> subprocess.Popen[str]:
    """Remember a pilot process so the test teardown can stop it if the test did not."""
    STARTED.append(proc)
    return proc


def stop_leftovers() -> None:
    """SIGTERM every remembered pilot still running (it kills its own payload tree), then wait for it."""
    while STARTED:
        proc = STARTED.pop()
        if proc.poll() is None:
            proc.send_signal(signal.SIGCONT)  # a pilot frozen at a failpoint must run to handle SIGTERM
            proc.send_signal(signal.SIGTERM)
            try:
                proc.communicate(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()


def start_pilot(launch: Launch, *extra: str) -> subprocess.Popen[str]:
    """Start the pilot in ``launch.dir``; its stderr (the console log) is captured."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FSM_PILOT_")}
    return started(subprocess.Popen(pilot_cmd(launch, *extra), cwd=launch.dir, env=env, text=True,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE))


def run_pilot(launch: Launch, *extra: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run the pilot to its end."""
    proc = start_pilot(launch, *extra)
    out, err = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def stop(proc: subprocess.Popen[str], signum: int = signal.SIGTERM, timeout: float = 20) -> tuple[int, str]:
    """Send ``signum`` and wait for the pilot to exit; return its exit code and stderr."""
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=timeout)
    return proc.returncode, err
