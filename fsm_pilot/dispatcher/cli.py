"""The ``dispatcher``, ``submit`` and ``status`` subcommands, for ``fsm-pilot`` and ``python -m``.

The dispatcher binds 127.0.0.1 unless ``--host`` is given explicitly: it has no
authentication, so exposing it is a decision someone must write down (tests use
loopback only).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from fsm_pilot.dispatcher.expiry import DEFAULT_MAX_ATTEMPTS, DEFAULT_SENT_TIMEOUT, Policy

DEFAULT_HOST = "127.0.0.1"


def add_dispatcher_parser(subparsers: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "dispatcher", help="run a small PanDA-compatible server (legacy and REST v1 dialects)")
    p.add_argument("--db", required=True, type=Path, help="SQLite file holding queues, jobs and their history")
    p.add_argument("--host", default=None, help=f"address to bind (default {DEFAULT_HOST}; others only when given)")
    p.add_argument("--port", type=int, default=25443, help="port; 0 picks a free one (default 25443)")
    p.add_argument("--queuedata", type=Path, action="append", default=[], metavar="FILE",
                   help="queue JSON (one queue, or {nickname: queue}); repeatable; default: the bundled example")
    p.add_argument("--storagedata", type=Path, default=None, metavar="FILE",
                   help="storage endpoints JSON (CRIC ddmendpoints); default: one file:// endpoint")
    p.add_argument("--storage-dir", type=Path, default=None,
                   help="directory of the bundled file:// endpoint (default: <db dir>/storage)")
    p.add_argument("--sent-timeout", type=float, default=DEFAULT_SENT_TIMEOUT, metavar="SECONDS",
                   help="a job handed out but never reported on for this long goes back to the queue with "
                        f"attemptNr+1 (default {DEFAULT_SENT_TIMEOUT:g}, panda-server's 30 minutes)")
    p.add_argument("--max-attempts", type=int, default=DEFAULT_MAX_ATTEMPTS, metavar="N",
                   help="attemptNr stays below N: a timed-out job whose next attemptNr would reach N fails "
                        f"instead (default {DEFAULT_MAX_ATTEMPTS})")
    p.set_defaults(func=main_dispatcher)
    return p


def add_submit_parser(subparsers: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "submit", help="submit jobs to panda-server or the embedded dispatcher; prints PandaIDs")
    p.add_argument("--url", required=True, help="server base URL, e.g. http://127.0.0.1:25443")
    p.add_argument("--queue", default=None, help="queue (nickname) for every job (sets computingSite)")
    p.add_argument("jobfiles", nargs="+", type=Path, metavar="JOBFILE",
                   help="JSON job definition (getJob field names, or JobSpec columns with Files), or a list")
    p.set_defaults(func=main_submit)
    return p


def add_status_parser(subparsers: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "status", help="print 'PANDAID STATUS attemptNr=N' for each job ('PANDAID not found' for an unknown one)")
    p.add_argument("--url", required=True, help="dispatcher base URL")
    p.add_argument("ids", nargs="+", type=int, metavar="PANDAID")
    p.set_defaults(func=main_status)
    return p


def main_dispatcher(ns: argparse.Namespace) -> int:
    from fsm_pilot.dispatcher.server import run

    policy = Policy(ns.sent_timeout, ns.max_attempts)
    problems = policy.problems() + ([] if 0 <= ns.port <= 65535 else [f"bad port {ns.port}"])
    if problems:
        for problem in problems:
            print(f"dispatcher: {problem}", file=sys.stderr)
        return 2
    storage_dir = ns.storage_dir or ns.db.parent / "storage"
    return run(ns.db, ns.host or DEFAULT_HOST, ns.port, queuedata=ns.queuedata, storagedata=ns.storagedata,
               storage_dir=storage_dir, policy=policy)


def main_submit(ns: argparse.Namespace) -> int:
    """PandaIDs on stdout, one a line; a job the server did not store is said on stderr (exit 1)."""
    from fsm_pilot.dispatcher.client import ClientError, read_jobs, submit

    try:
        answer = submit(ns.url, read_jobs(ns.jobfiles, ns.queue))
    except ClientError as exc:
        print(f"submit: {exc}", file=sys.stderr)
        return 1
    if answer.message:
        print(f"submit: the server says: {answer.message}", file=sys.stderr)
    lost = 0
    for index, (panda_id, _definition, name) in enumerate(answer.jobs):
        if panda_id is None:
            lost += 1
            print(f"submit: job #{index} ({name}) was not stored by the server", file=sys.stderr)
        else:
            print(panda_id)
    return 1 if lost else 0


def main_status(ns: argparse.Namespace) -> int:
    from fsm_pilot.dispatcher.client import ClientError, status

    try:
        rows = status(ns.url, ns.ids)
    except ClientError as exc:
        print(f"status: {exc}", file=sys.stderr)
        return 1
    for panda_id, state, attempt in rows:
        print(panda_id, state if attempt is None else f"{state} attemptNr={attempt}")
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m fsm_pilot.dispatcher")
    sub = top.add_subparsers(dest="command", required=True)
    add_dispatcher_parser(sub)
    add_submit_parser(sub)
    add_status_parser(sub)
    return top


def main(argv: list[str] | None = None) -> int:
    ns = parser().parse_args(argv)
    result: int = ns.func(ns)
    return result
