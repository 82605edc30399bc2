"""Which processes are provably a payload's own: the only ones the pilot may ever signal.

A process belongs to a payload when one of these proves it:

1. it is the payload, or descends from it by parent links;
2. it is in the payload's session (the payload is a session leader, and the
   kernel never reuses a pid that still names a session) and has our uid;
3. its environment carries the payload's mark, a random token put into the
   payload's environment at start and inherited by everything it forks, even
   a child that called ``setsid`` and was reparented away;
4. an earlier scan already found it by 1-3 (recorded by ``(pid, start_ticks)``,
   so an orphan whose parent link is gone stays known), or it descends from
   a process proven by 1-4.

Nothing else is touched: being a child of the pilot (a subreaper adopts
every orphan below it, including ones a wrapper's helper left behind) or
having started after the payload proves nothing.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Collection, Iterable, Mapping

from fsm_pilot.payload.subreaper import Key, ProcStat

#: The environment variable that marks a payload's processes.
MARK_VAR = "FSM_PILOT_PAYLOAD_MARK"


def new_mark() -> str:
    """A fresh token for one payload: 128 random bits, unguessable by anything else on the node."""
    return secrets.token_hex(16)


def has_mark(pid: int, mark: str) -> bool:
    """Whether the process's initial environment holds ``MARK_VAR=mark`` exactly."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as handle:
            data = handle.read()
    except OSError:
        return False
    return f"{MARK_VAR}={mark}".encode() in data.split(b"\0")


def same_uid(pid: int) -> bool:
    """The process runs as our user: anything else is never the payload's (and never ours to kill)."""
    try:
        return os.stat(f"/proc/{pid}").st_uid == os.getuid()
    except OSError:
        return False


def subtrees(children: Mapping[int, list[ProcStat]], roots: Iterable[ProcStat]) -> dict[Key, ProcStat]:
    """The given roots plus all their descendants in the ppid map."""
    found: dict[Key, ProcStat] = {}
    todo = list(roots)
    while todo:
        stat = todo.pop()
        if stat.key not in found:  # roots overlap (leader, session, marked)
            found[stat.key] = stat
            todo.extend(children.get(stat.pid, ()))
    return found


def members(table: Collection[ProcStat], root: Key, sid: int | None, mark: str | None,
            known: Collection[Key] = ()) -> dict[Key, ProcStat]:
    """The payload's processes in ``table`` (one /proc pass), by rules 1-4 of this module.

    ``table`` must hold only processes started no earlier than the payload and
    not the pilot itself: nothing older can belong to it.
    """
    children: dict[int, list[ProcStat]] = {}
    for stat in table:
        children.setdefault(stat.ppid, []).append(stat)
    roots = [s for s in table if s.key == root or s.key in known or (sid is not None and s.sid == sid)]
    found = subtrees(children, [s for s in roots if s.key == root or same_uid(s.pid)])
    if mark:
        marked = [s for s in table if s.key not in found and same_uid(s.pid) and has_mark(s.pid, mark)]
        found.update(subtrees(children, marked))
    return found
