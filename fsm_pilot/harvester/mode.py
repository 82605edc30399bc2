"""Whether the pilot runs under Harvester, by Pilot 3's rule, and whether Harvester reports for it."""

from __future__ import annotations

from fsm_pilot.context import Context, RunArgs


def _server_updates(args: RunArgs) -> bool:
    """The pilot itself reports to a server: a ``--url`` and no ``-z`` (Pilot 3: no ``-z``)."""
    return args.url is not None and not args.no_server_update


def is_harvester(args: RunArgs, env: dict[str, str]) -> bool:
    """Pilot 3's ``is_harvester_mode``: a Harvester option without server updates, or Harvester's ids in PUSH.

    The values of ``--harvester-eventstatusdump`` and ``--harvester-workerattributes``
    only switch the mode on, as in Pilot 3; the files keep their fixed names.
    """
    options = (args.harvester_workdir, args.harvester_datadir, args.harvester_eventstatusdump,
               args.harvester_workerattributes)
    if any(options) and not _server_updates(args):
        return True
    return ("HARVESTER_ID" in env or "HARVESTER_WORKER_ID" in env) and args.push


def active(ctx: Context) -> bool:
    """Harvester mode: jobs come from Harvester's file, and ``kill_worker`` ends the pilot."""
    return is_harvester(ctx.args, ctx.env)


def files_mode(ctx: Context) -> bool:
    """Harvester mode without server updates: job updates and outputs go to Harvester through files."""
    return active(ctx) and not _server_updates(ctx.args)
