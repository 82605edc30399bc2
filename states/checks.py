"""CHECKS: measure the worker node, check CVMFS when the queue uses it, set the payload memory limit."""

from __future__ import annotations

import platform
import sys
from pathlib import Path

from fsm_pilot import __version__
from fsm_pilot.context import Context, Outcome
from fsm_pilot.errors import PilotError
from fsm_pilot.exitcodes import Reason

#: What must be listable for a queue with ``is_cvmfs`` (ATLAS's repository, as Pilot 3 checks).
CVMFS_PATHS = (Path("/cvmfs/atlas.cern.ch/repo/sw"),)
CVMFS_TIMEOUT = 10.0


def _maxrss_mb(ctx: Context) -> int | None:
    try:
        value = int(float(ctx.queuedata.get("maxrss") or 0))
    except (TypeError, ValueError):
        return None
    return value if value > 0 else None


def step(ctx: Context) -> Outcome:
    """Log what the node is; refuse to start without CVMFS on a CVMFS queue."""
    from fsm_pilot import node

    assert ctx.pilot_dir is not None
    ctx.log.info("pilot", version=__version__, python=sys.version.split()[0], arch=platform.machine())
    ctx.node = node.collect_node_facts(ctx.pilot_dir)
    ctx.log.info("worker node", **vars(ctx.node))
    if ctx.queuedata.get("is_cvmfs") and not ctx.args.no_cvmfs_check:
        alive, why = node.cvmfs_alive(CVMFS_PATHS, CVMFS_TIMEOUT)
        if not alive:
            return "fail", Reason(f"CVMFS is not usable: {why}", PilotError.CVMFSISNOTALIVE)
        ctx.log.info("CVMFS is alive", paths=[str(p) for p in CVMFS_PATHS])
    ctx.rlimit_as = node.payload_memory_limit(_maxrss_mb(ctx), ctx.node.cgroup_memory_limit_bytes)
    ctx.log.info("payload memory limit", rlimit_as=ctx.rlimit_as, maxrss_mb=_maxrss_mb(ctx),
                 cgroup_limit=ctx.node.cgroup_memory_limit_bytes)
    return "next", Reason("node checked")
