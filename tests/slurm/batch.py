"""Pilots submitted with examples/slurm/pilot.sbatch, and what Slurm and the pilot say about them afterwards."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fsm_pilot.errors import PilotError
from fsm_pilot.exitcodes import Reason, exit_code
from tests.slurm.cluster import Cluster, wait_until

ROOT = Path(__file__).resolve().parent.parent.parent
SCRIPT = ROOT / "examples" / "slurm" / "pilot.sbatch"
#: Every process of a pilot job carries MARK=<the pilot's token> (the pilot passes its environment on to the
#: payload), so what is left on the node afterwards is found without touching anything else.
MARK = "FSM_SLURM_TEST_MARK"
#: Job states Slurm leaves a job in once nothing of it runs any more.
ENDED = frozenset({"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "PREEMPTED", "OUT_OF_MEMORY",
                   "BOOT_FAIL", "DEADLINE"})


@dataclass(frozen=True)
class Site:
    """What a site provides to its pilot jobs: the cluster, the tarball, a python3 with only its stdlib."""

    cluster: Cluster
    tarball: Path
    python: Path
    root: Path

    def submit(self, name: str, url: str, pilot_args: str, *sbatch_args: str, path: str = "/usr/bin:/bin") -> Pilot:
        """``sbatch pilot.sbatch`` for one pilot whose working dir is root/name; a bare node's environment."""
        pilot = Pilot(self.cluster, self.root / name, 0, f"{name}-{os.getpid()}-{time.monotonic_ns()}")
        pilot.dir.mkdir(parents=True)
        env = {"PATH": path, "HOME": str(pilot.dir), "LANG": "C.UTF-8", **self.cluster.env(),
               "PILOT_QUEUE": "TEST_QUEUE", "PILOT_URL": url, "PILOT_TARBALL": str(self.tarball),
               "PILOT_PYTHON": str(self.python), "PILOT_ARGS": pilot_args, MARK: pilot.mark}
        argv = ["/usr/bin/sbatch", "--parsable", f"--chdir={pilot.dir}", f"--output={pilot.dir}/slurm-%j.out",
                f"--job-name={name}", *sbatch_args, str(SCRIPT)]
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, f"sbatch: {done.stderr}"
        return Pilot(self.cluster, pilot.dir, int(done.stdout.strip().split(";")[0]), pilot.mark)


@dataclass(frozen=True)
class Pilot:
    """One pilot batch job: its Slurm id, its working dir, its mark."""

    cluster: Cluster
    dir: Path
    job_id: int
    mark: str

    @property
    def launch(self) -> Path:
        return self.dir / f"fsm-pilot-{self.job_id}"

    def slurm(self) -> dict[str, str]:
        """``scontrol show job``: what Slurm records (kept for MinJobAge after the end)."""
        line = self.cluster.client("scontrol", "-o", "show", "job", str(self.job_id))
        return dict(re.findall(r"(\w+)=(\S*)", line))

    def state(self) -> str:
        return self.slurm().get("JobState", "")

    def ended(self) -> bool:
        return self.state() in ENDED

    def output(self) -> str:
        """The job's stdout and stderr (the pilot's console log, Slurm's own messages)."""
        path = self.dir / f"slurm-{self.job_id}.out"
        return path.read_text(errors="replace") if path.exists() else ""

    def records(self) -> list[dict[str, Any]]:
        """The pilot's transition log."""
        found = sorted(self.launch.glob("Panda_Pilot_*/transitions.jsonl"))
        assert len(found) == 1, f"{self.launch}: {found}\n{self.output()[-3000:]}"
        return [json.loads(line) for line in found[0].read_text().splitlines() if line.strip()]

    def job_ids(self) -> list[int]:
        """The PandaIDs this pilot took (pilot3/pandaIDs.out, one per line, written as each job is taken)."""
        path = self.launch / "pilot3" / "pandaIDs.out"
        return [int(word) for word in path.read_text().split()] if path.exists() else []

    def describe(self) -> str:
        """For a failure message: Slurm's record and the end of the job's output."""
        return f"slurm: {self.slurm()}\n--- output:\n{self.output()[-3000:]}"


def wait_ended(pilots: list[Pilot], timeout: float) -> None:
    """Until Slurm says every pilot job has ended."""
    wait_until(lambda: all(p.ended() for p in pilots), timeout, f"pilot jobs {[p.job_id for p in pilots]} to end")


def logged_exit(records: list[dict[str, Any]]) -> int:
    """The exit code the pilot's transition log implies: its terminal state and reason, by the exit-code table."""
    last = records[-1]
    reason = last["reason"]
    error = PilotError(reason["error"]) if reason.get("error") is not None else None
    return exit_code(str(last["dest"]), Reason(str(reason["text"]), error, reason.get("signal")))


def marked(mark: str) -> list[int]:
    """PIDs of live processes whose environment carries MARK=mark (a pilot's or its payload's)."""
    needle = f"{MARK}={mark}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if needle in f.read().split(b"\0"):
                    found.append(int(entry))
        except OSError:
            continue
    return found
