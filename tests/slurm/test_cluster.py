"""The test cluster itself: private enough to run beside another, and stopped by PID even when it failed to start."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.slurm.batch import ROOT
from tests.slurm.cluster import Cluster, ClusterError


def _ours(base: Path) -> list[int]:
    """PIDs of live processes whose command line names ``base`` (every daemon a cluster starts does)."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                if str(base).encode() in f.read() and entry != str(os.getpid()):
                    found.append(int(entry))
        except (OSError, ValueError):
            continue
    return found


def _idle(conf: str) -> str:
    done = subprocess.run(["/usr/bin/sinfo", "-h", "-o", "%T"], env={**os.environ, "SLURM_CONF": conf},
                          capture_output=True, text=True, timeout=30, check=False)
    return done.stdout.strip()


@pytest.fixture
def scratch() -> Path:
    """A dir munged can reach (pytest's own tmp dirs are 0700)."""
    return Path(tempfile.mkdtemp(prefix="fsm-slurm-t-", dir="/tmp"))


def test_the_cli_runs_a_second_cluster_beside_the_first_and_stops_it_by_pid(slurm: Cluster, scratch: Path) -> None:
    cli = [sys.executable, "-m", "tests.slurm"]
    started = subprocess.run([*cli, "start", str(scratch)], cwd=ROOT, capture_output=True, text=True, timeout=120,
                             check=False)
    try:
        assert started.returncode == 0, started.stderr
        assert started.stdout == f"export SLURM_CONF={scratch / 'slurm.conf'}\n"
        assert _idle(str(scratch / "slurm.conf")) == "idle"
        assert _idle(str(slurm.conf)) == "idle", "the first cluster is untouched"
        assert len(_ours(scratch)) >= 3, "munged, slurmctld, slurmd"
    finally:
        stopped = subprocess.run([*cli, "stop", str(scratch)], cwd=ROOT, capture_output=True, text=True,
                                 timeout=120, check=False)
    assert stopped.returncode == 0, stopped.stderr
    assert _ours(scratch) == [] and list((scratch / "run").iterdir()) == []
    Cluster(scratch).remove()


class _Broken(Cluster):
    """A slurm.conf slurmctld refuses."""

    def slurm_conf(self) -> str:
        return super().slurm_conf() + "NoSuchParameter=1\n"


def test_a_cluster_that_cannot_start_says_why_and_stop_ends_what_it_started(slurm: Cluster, scratch: Path) -> None:
    cluster = _Broken(scratch)
    with pytest.raises(ClusterError, match=r"slurmctld exited while waiting for slurmctld to answer") as failed:
        cluster.start()
    assert "NoSuchParameter" in str(failed.value), "the daemon's own log says why"
    assert _ours(scratch), "munged was started before slurmctld failed"
    assert cluster.stop() == []
    assert _ours(scratch) == []
    cluster.remove()
