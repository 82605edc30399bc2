"""The pilot's link to its PanDA server: the client, and the getJob request it sends.

There is no default server: without ``--url`` (or with ``-z``) the pilot makes
no server calls at all, so it can never report to a server it was not given.
"""

from __future__ import annotations

import socket
import time
from typing import Any

from fsm_pilot.context import Context
from fsm_pilot.errors import PilotFailure
from fsm_pilot.facts import measure


def make_client(ctx: Context, url: str | None = None) -> Any:
    """A PandaClient for ``--url`` (or ``url``), whose retry sleeps wake up on a signal; None without one.

    ``update_timeout`` is each call's time budget: attempts go on (backing off)
    until it is spent, however many that takes. With -z the client still
    fetches documents (queuedata); :func:`reports` says whether job updates may
    be sent.
    """
    url = url or ctx.args.url
    if url is None:
        return None
    from fsm_pilot.panda import PandaClient, RetryPolicy, auth_from_env
    from fsm_pilot.panda.client import Api

    auth = auth_from_env(ctx.env, capath=ctx.args.capath, cacert=ctx.args.cacert)
    policy = RetryPolicy(total=max(1.0, ctx.setting("update_timeout")))
    api: Api = "v1" if ctx.args.api == "v1" else "legacy" if ctx.args.api == "legacy" else "auto"
    return PandaClient(url, api=api, auth=auth, policy=policy, sleep=ctx.signals.sleep, log=ctx.log)


def reports(ctx: Context) -> bool:
    """Whether the pilot talks to a server about jobs (a --url, and no -z)."""
    return ctx.client is not None and not ctx.args.no_server_update


def fetch_json(ctx: Context, url: str) -> Any:
    """A JSON object over http(s), with the client's retries (a throwaway client without --url).

    A body that is not a JSON object (garbage from a proxy, a truncated reply)
    is asked for again until ``update_timeout`` is spent.
    """
    client = ctx.client or make_client(ctx, url)
    try:
        return client.get_json(url, deadline=deadline(ctx), kind=dict)
    finally:
        if client is not ctx.client:
            client.close()


def deadline(ctx: Context, seconds: float | None = None) -> float:
    """A monotonic deadline for one server exchange with its retries."""
    return time.monotonic() + (ctx.setting("update_timeout") if seconds is None else seconds)


def getjob_request(ctx: Context) -> dict[str, str]:
    """Pilot 3's getJob fields (legacy names; the client translates them for REST v1)."""
    facts = measure(ctx)
    maxwdir_mb = float(ctx.queuedata.get("maxwdir") or 0) or float("inf")
    node = ctx.node
    request = {
        "siteName": str(ctx.queuedata.get("panda_resource") or ctx.args.queue),
        "computingElement": ctx.args.queue,
        "prodSourceLabel": ctx.args.job_label,
        "diskSpace": str(int(min(facts.free_bytes / 2**20, maxwdir_mb))),
        "workingGroup": ctx.args.working_group,
        "cpu": str(getattr(node, "cpu_mhz", None) or 0),
        "mem": str(getattr(node, "memory_total_mb", 0)),
        "node": socket.gethostname(),
        "allowOtherCountry": "False",
        "remaining_time": str(int(facts.lifetime_left)),
    }
    optional = {"jobType": ctx.args.job_type, "resourceType": ctx.args.resource_type,
                "harvester_id": ctx.env.get("HARVESTER_ID", ""), "worker_id": ctx.env.get("HARVESTER_WORKER_ID", "")}
    request.update({k: v for k, v in optional.items() if v})
    return request


def worker_status(ctx: Context, status: str, within: float = 10.0) -> None:
    """Tell Harvester's worker table ``started``/``finished`` when the worker is known (best effort)."""
    worker, harvester = ctx.env.get("HARVESTER_WORKER_ID"), ctx.env.get("HARVESTER_ID")
    if not (worker and harvester and reports(ctx)):
        return
    from fsm_pilot.panda import Interrupted

    try:
        ctx.client.update_worker_status(worker, harvester, status, ctx.args.queue, socket.gethostname(),
                                        deadline=deadline(ctx, within))
    except (PilotFailure, Interrupted) as exc:
        ctx.log.warning("worker status not delivered", status=status, error=repr(exc))
