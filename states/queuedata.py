"""QUEUEDATA: load the queue's configuration and storage endpoints, then resolve the settings."""

from __future__ import annotations

from pathlib import Path

from fsm_pilot import config
from fsm_pilot.context import Context, Outcome
from fsm_pilot.errors import PilotError, PilotFailure
from fsm_pilot.exitcodes import Reason
from fsm_pilot.guards import Thresholds
from fsm_pilot.queuedata import load_queuedata, load_storagedata


def _default(ctx: Context, name: str) -> str | None:
    """A ``queuedata.json``/``storagedata.json`` next to the pilot, as Pilot 3 accepts."""
    path = Path(ctx.args.launch_dir) / name
    return str(path) if path.exists() else None


def step(ctx: Context) -> Outcome:
    """Load, check, and apply the queue's configuration."""
    qd_url = ctx.args.queuedata_url or _default(ctx, "queuedata.json")
    if qd_url is None:
        return "fail", Reason("no --queuedata-url and no queuedata.json in the launch dir",
                              PilotError.QUEUEDATA)
    try:
        ctx.queuedata = load_queuedata(qd_url, ctx.args.queue)
        sd_url = ctx.args.storagedata_url or _default(ctx, "storagedata.json")
        ctx.storagedata = load_storagedata(sd_url, ctx.args.queue) if sd_url else {}
        ctx.settings = config.resolve(ctx.args.settings, ctx.env, ctx.queuedata)
    except PilotFailure as exc:
        return "fail", Reason(exc.diag, exc.error)
    for name, resolved in sorted(ctx.settings.items()):
        ctx.log.info("setting", name=name, value=resolved.value, source=resolved.source)
    ctx.thresholds = Thresholds(min_free_bytes=int(ctx.setting("min_free_disk")))
    ctx.log.info("queuedata loaded", queue=ctx.args.queue, source=qd_url,
                 storage_endpoints=sorted(ctx.storagedata))
    return "next", Reason("queuedata loaded")
