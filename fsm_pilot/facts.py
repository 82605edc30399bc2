"""Measuring the facts the guards decide on: disk, credential lifetimes, clocks."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from typing import NamedTuple

from fsm_pilot.context import Context
from fsm_pilot.errors import PilotFailure
from fsm_pilot.guards import Facts


class CredentialReading(NamedTuple):
    """What the pilot found of its credentials, in the shape of the :class:`Facts` fields."""

    kind: str
    seconds_left: float | None = None
    lifetimes: dict[str, float | None] | None = None
    problem: str | None = None


def credential(ctx: Context) -> CredentialReading:
    """Every configured credential and how long it lasts; kind ``"skipped"`` with -t.

    The shortest lifetime is the one that counts: a proxy and a token are both handed to the
    server, so either expiring ends what the pilot can do.
    """
    from fsm_pilot import credentials

    if ctx.args.no_proxy_check:
        return CredentialReading("skipped")
    kinds = credentials.configured(ctx.env)
    if not kinds:
        return CredentialReading("none")
    kind = "+".join(kinds)
    try:
        lifetimes = credentials.lifetimes(ctx.env, datetime.now(timezone.utc))
    except PilotFailure as exc:
        ctx.log.warning("credential unusable", error=exc.error.name, diag=exc.diag)
        return CredentialReading(kind, problem=exc.diag)
    known = [left for left in lifetimes.values() if left is not None]
    return CredentialReading(kind, min(known) if known else None, lifetimes)


def measure(ctx: Context) -> Facts:
    """Measure now; guards never measure themselves."""
    assert ctx.pilot_dir is not None
    stat = os.statvfs(ctx.pilot_dir)
    reading = credential(ctx)
    elapsed = ctx.elapsed()
    return Facts(
        elapsed=elapsed,
        free_bytes=stat.f_bavail * stat.f_frsize,
        lifetime_left=ctx.lifetime() - elapsed,
        jobs_run=len(ctx.jobs_run),
        timefloor=ctx.setting("timefloor"),
        credential=reading.kind,
        credential_seconds_left=reading.seconds_left,
        credential_lifetimes=reading.lifetimes or {},
        credential_problem=reading.problem,
        fast_failures=ctx.fast_failures,
    )
