"""Run the pilot on the bundled example queue with two pre-placed jobs, then summarise.

Everything happens under ``./demo-run`` (or the dir given as argument):
a queuedata file, a storage endpoint whose ``file://`` path is
``demo-run/storage``, the pre-placed ``pandaJobData.out``, and the pilot dir.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path


def prepare(root: Path) -> Path:
    """Write the queue, storage and job files under ``root``; return the launch dir."""
    if root.exists():
        shutil.rmtree(root)
    launch, storage = root / "launch", root / "storage"
    launch.mkdir(parents=True)
    storage.mkdir()
    bundled = resources.files("fsm_pilot.demo")
    (launch / "queuedata.json").write_text(bundled.joinpath("queuedata.json").read_text())
    (launch / "pandaJobData.out").write_text(bundled.joinpath("jobs.json").read_text())
    endpoint = {"name": "LOCAL_DISK", "state": "ACTIVE", "is_deterministic": True,
                "arprotocols": {"write_lan": [{"endpoint": "file://localhost", "path": str(storage)}],
                                "read_lan": [{"endpoint": "file://localhost", "path": str(storage)}]}}
    (launch / "storagedata.json").write_text(json.dumps({"LOCAL_DISK": endpoint}, indent=1))
    return launch


def summary(launch: Path) -> str:
    """One line per job, from the final reports the pilot wrote."""
    lines = []
    for report in sorted(launch.glob("Panda_Pilot_*/final_update_*.json")):
        data = json.loads(report.read_text())
        files = ", ".join(f"{lfn} adler32={v['adler32']}" for lfn, v in json.loads(data["xml"] or "{}").items())
        lines.append(f"job {data['jobId']}: {data['state']} pilotErrorCode={data['pilotErrorCode']} "
                     f"transExitCode={data['transExitCode']} stored: {files}")
    return "\n".join(lines)


def main() -> int:
    """Prepare, run the pilot as a real subprocess, print what happened."""
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "demo-run").absolute()
    launch = prepare(root)
    cmd = [sys.executable, "-m", "fsm_pilot", "run", "-q", "FSM_EXAMPLE", "-t", "-a", str(launch)]
    print("$", " ".join(cmd), flush=True)
    code = subprocess.call(cmd, cwd=launch)
    print(f"\npilot exit code: {code}\n{summary(launch)}")
    print(f"stored files under {root / 'storage'}:")
    for path in sorted(p for p in (root / "storage").rglob("*") if p.is_file()):
        print("  ", path.relative_to(root))
    return code


if __name__ == "__main__":
    sys.exit(main())
