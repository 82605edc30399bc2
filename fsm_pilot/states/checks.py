"""CHECKS: measure the worker node, check the credentials and CVMFS, set the payload memory limit."""

from __future__ import annotations

import platform
import sys
from datetime import datetime, timezone
from pathlib import Path

from fsm_pilot import __version__
from fsm_pilot.context import Context, Outcome
from fsm_pilot.errors import PilotError, PilotFailure
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


def _check_credentials(ctx: Context) -> Reason | None:
    """Every configured credential must be readable and well formed (skipped with -t).

    Their lifetimes are the ``proxy_lifetime`` guard's to judge; a file that is missing, empty or
    garbled is a configuration error, reported here with the file and the fix, before any job.
    """
    from fsm_pilot import credentials

    if ctx.args.no_proxy_check:
        return None
    try:
        lifetimes = credentials.lifetimes(ctx.env, datetime.now(timezone.utc))
    except PilotFailure as exc:
        return Reason(exc.diag, exc.error)
    ctx.log.info("credentials", seconds_left=lifetimes)
    if isinstance(credentials.find_token(ctx.env), str):
        ctx.log.warning("the token is given inline, not as a file: payloads never get it, and any process "
                        "of this user can read it from the pilot's environment; a token file is safer")
    return None


def step(ctx: Context) -> Outcome:
    """Log what the node is; refuse to start with an unusable credential, or without CVMFS on a CVMFS queue."""
    from fsm_pilot import node, procinfo

    assert ctx.pilot_dir is not None
    ctx.log.info("pilot", version=__version__, python=sys.version.split()[0], arch=platform.machine())
    if procinfo.UNAVAILABLE is not None:  # CHECKS runs once per pilot: said once
        ctx.log.warning("psutil cannot be loaded; process and node figures are read from /proc",
                        error=procinfo.UNAVAILABLE)
    ctx.node = node.collect_node_facts(ctx.pilot_dir)
    ctx.log.info("worker node", **vars(ctx.node))
    refused = _check_credentials(ctx)
    if refused is not None:
        return "fail", refused
    if ctx.queuedata.get("is_cvmfs") and not ctx.args.no_cvmfs_check:
        alive, why = node.cvmfs_alive(CVMFS_PATHS, CVMFS_TIMEOUT)
        if not alive:
            return "fail", Reason(f"CVMFS is not usable: {why}", PilotError.CVMFSISNOTALIVE)
        ctx.log.info("CVMFS is alive", paths=[str(p) for p in CVMFS_PATHS])
    ctx.rlimit_as = node.payload_memory_limit(_maxrss_mb(ctx), ctx.node.cgroup_memory_limit_bytes)
    ctx.log.info("payload memory limit", rlimit_as=ctx.rlimit_as, maxrss_mb=_maxrss_mb(ctx),
                 cgroup_limit=ctx.node.cgroup_memory_limit_bytes)
    return "next", Reason("node checked")
