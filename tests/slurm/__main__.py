"""``python -m tests.slurm start|stop DIR``: the tests' single-node Slurm, by hand.

``start`` leaves the daemons running (each in its own session) and prints the
line to paste so that sbatch/squeue/scancel find the cluster; ``stop`` cancels
every job, stops the daemons by the PIDs recorded in DIR/run and keeps DIR/log.
DIR must be reachable by user munge (e.g. under /tmp, not under a 0700 dir).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tests.slurm.cluster import Cluster, ClusterError, missing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.slurm", description=__doc__.split("\n", 1)[0])
    parser.add_argument("action", choices=("start", "stop"))
    parser.add_argument("dir", type=Path)
    parser.add_argument("--cpus", type=int, default=16, help="CPUs the node advertises (default 16)")
    parser.add_argument("--kill-wait", type=int, default=5, help="KillWait, s (default 5)")
    args = parser.parse_args(argv)
    why = missing()
    if why is not None:
        print(f"cannot run Slurm here: {why}", file=sys.stderr)
        return 1
    cluster = Cluster(args.dir.resolve(), cpus=args.cpus, kill_wait=args.kill_wait)
    if args.action == "stop":
        problems = cluster.stop()
        for problem in problems:
            print(problem, file=sys.stderr)
        return 1 if problems else 0
    try:
        took = cluster.start()
    except ClusterError as exc:
        print(f"{exc}\n(run: python -m tests.slurm stop {args.dir})", file=sys.stderr)
        return 1
    print(f"# cluster up in {took:.2f} s; logs in {args.dir / 'log'}", file=sys.stderr)
    print(f"export SLURM_CONF={cluster.conf}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
