"""QUEUEDATA: load the queue's configuration and storage endpoints, then resolve the settings.

Sources, first found: ``--queuedata-url`` / ``--storagedata-url`` (http(s),
a path or ``file://``; ``{pandaqueue}`` replaced), ``queuedata.json`` /
``storagedata.json`` in the launch dir, the server's cache
(``<url>/cache/schedconfig/<queue>.all.json``, ``<url>/cric/ddmendpoints.json``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fsm_pilot import config
from fsm_pilot.context import Context, Outcome
from fsm_pilot.credentials import CREDENTIAL_ERRORS
from fsm_pilot.errors import PilotError, PilotFailure
from fsm_pilot.exitcodes import Reason
from fsm_pilot.guards import Thresholds
from fsm_pilot.queuedata import is_remote, load_json, queuedata_of, storagedata_of
from fsm_pilot.server import fetch_json


def _source(ctx: Context, given: str | None, local: str, server_path: str) -> str | None:
    if given:
        return given.replace("{pandaqueue}", ctx.args.queue)
    path = Path(ctx.args.launch_dir) / local
    if path.exists():
        return str(path)
    return f"{ctx.args.url}/{server_path}" if ctx.args.url else None


def _load(ctx: Context, url: str, what: str) -> Any:
    if not is_remote(url):
        return load_json(url, what)
    try:
        return fetch_json(ctx, url)
    except PilotFailure as exc:  # a credential the pilot cannot use keeps its own code (exit 68)
        error = exc.error if exc.error in CREDENTIAL_ERRORS else PilotError.QUEUEDATA
        raise PilotFailure(error, f"cannot download {what}: {exc.diag}") from None


def step(ctx: Context) -> Outcome:
    """Load, check, and apply the queue's configuration."""
    queue = ctx.args.queue
    qd_url = _source(ctx, ctx.args.queuedata_url, "queuedata.json", f"cache/schedconfig/{queue}.all.json")
    if qd_url is None:
        return "fail", Reason("no --queuedata-url, no queuedata.json in the launch dir and no --url",
                              PilotError.QUEUEDATA)
    sd_url = _source(ctx, ctx.args.storagedata_url, "storagedata.json", "cric/ddmendpoints.json")
    try:
        ctx.queuedata = queuedata_of(_load(ctx, qd_url, "queuedata"), queue)
        ctx.storagedata = storagedata_of(_load(ctx, sd_url, "storage endpoints")) if sd_url else {}
        ctx.settings = config.resolve(ctx.args.settings, ctx.env, ctx.queuedata)
    except PilotFailure as exc:
        return "fail", Reason(exc.diag, exc.error)
    for name, resolved in sorted(ctx.settings.items()):
        ctx.log.info("setting", name=name, value=resolved.value, source=resolved.source)
    ctx.thresholds = Thresholds(min_free_bytes=int(ctx.setting("min_free_disk")),
                                max_jobs=int(ctx.setting("max_jobs")),
                                blackhole_jobs=int(ctx.setting("blackhole_jobs")),
                                blackhole_seconds=ctx.setting("blackhole_seconds"),
                                lifetime_margin_seconds=ctx.setting("lifetime_margin"))
    ctx.log.info("queuedata loaded", queue=queue, source=qd_url, storage=sd_url,
                 storage_endpoints=sorted(ctx.storagedata))
    from fsm_pilot.drain import set_clock

    return "next", Reason(f"queuedata loaded; {set_clock(ctx)}")
