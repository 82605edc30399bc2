"""Measuring the facts the guards decide on: disk, credential lifetime, clocks."""

from __future__ import annotations

import os
from datetime import datetime, timezone

from fsm_pilot.context import Context
from fsm_pilot.errors import PilotFailure
from fsm_pilot.guards import Facts


def credential(ctx: Context) -> tuple[str, float | None]:
    """Which credential the pilot has and how long it lasts; ("skipped", None) with -t."""
    from fsm_pilot import credentials

    if ctx.args.no_proxy_check:
        return "skipped", None
    now = datetime.now(timezone.utc)
    try:
        proxy = credentials.find_proxy(ctx.env)
        if proxy is not None:
            return "x509", credentials.proxy_seconds_left(proxy, now)
        token = credentials.find_token(ctx.env)
        if token is not None:
            return "token", credentials.token_seconds_left(credentials.read_token(token), now)
    except PilotFailure as exc:
        ctx.log.warning("credential unreadable", error=exc.error.name, diag=exc.diag)
        return "none", None
    return "none", None


def measure(ctx: Context) -> Facts:
    """Measure now; guards never measure themselves."""
    assert ctx.pilot_dir is not None
    stat = os.statvfs(ctx.pilot_dir)
    kind, left = credential(ctx)
    elapsed = ctx.elapsed()
    return Facts(
        elapsed=elapsed,
        free_bytes=stat.f_bavail * stat.f_frsize,
        lifetime_left=ctx.setting("lifetime") - elapsed,
        jobs_run=len(ctx.jobs_run),
        timefloor=ctx.setting("timefloor"),
        credential=kind,
        credential_seconds_left=left,
        fast_failures=ctx.fast_failures,
    )
