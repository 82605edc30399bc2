"""Start, wait for, measure and kill the payload and exactly its process tree.

The payload runs in its own session (``start_new_session=True``) so its session
and process group ids equal its pid. Its tree is found by one /proc pass (see
``descendants``); the pilot never signals anything outside that tree.
"""

from __future__ import annotations

import contextlib
import os
import select
import selectors
import signal
import subprocess
import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from fsm_pilot import procinfo
from fsm_pilot.errors import PilotError, PilotFailure
from fsm_pilot.payload import rlimit
from fsm_pilot.payload.ownership import MARK_VAR, members, new_mark
from fsm_pilot.payload.subreaper import (
    DEAD_STATES,
    FROZEN_STATES,
    Key,
    ProcStat,
    child_stats,
    is_alive,
    is_subreaper,
    read_stat,
    reap_zombies,
    scan_procs,
    send_signal,
    signal_own_groups,
)

WaitResult = Literal["exited", "woken", "timeout"]

_POLL_STEP = 0.05  # fallback polling period when there is no pidfd
_KILL_STEP = 0.02  # how often survivors are re-checked while killing
_FREEZE_BUDGET = 0.1  # max seconds spent stopping the tree before SIGTERM
_KILL_BUDGET = 0.3  # max seconds spent on SIGKILL + reaping after the grace period


@dataclass
class Payload:
    """A running payload: its Popen, identity, mark, start times, output files and pidfd.

    ``known`` accumulates every member any scan has proven (see
    fsm_pilot.payload.ownership), so an orphan stays known after its parent
    link is gone.
    """

    popen: subprocess.Popen[bytes]
    pid: int
    sid: int
    start_wall: float
    start_monotonic: float
    stdout_path: Path
    stderr_path: Path
    pidfd: int | None
    start_ticks: int
    mark: str = ""
    known: set[Key] = field(default_factory=set)

    @property
    def returncode(self) -> int | None:
        """The exit status once reaped (negative signal number if killed)."""
        return self.popen.returncode

    def close(self) -> None:
        """Release the pidfd; call once the payload has been waited for."""
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None


@dataclass(frozen=True)
class KillReport:
    """What ``kill_tree`` did: who got SIGTERM, who needed SIGKILL, how long, the exit code."""

    terminated: tuple[int, ...]
    killed: tuple[int, ...]
    seconds: float
    returncode: int | None


@dataclass(frozen=True)
class Usage:
    """Resource use of the live tree for the monitoring tick (memory in kB)."""

    rss_kb: int
    pss_kb: int | None
    nprocs: int
    cpu_seconds: float


def _open_pidfd(pid: int) -> int | None:
    """pidfd for a race-free wait (Linux >= 5.3); None where unsupported."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def start_payload(argv: Sequence[str], cwd: Path, stdout: Path, stderr: Path,
                  env: Mapping[str, str], *, rlimit_as: int | None = None) -> Payload:
    """Start the payload in a new session with exactly ``env`` plus its mark (nothing inherited).

    The executable is looked up on ``env``'s PATH. Exec failures raise
    PilotFailure(PAYLOADEXECUTIONFAILURE) so the job fails with a clear diag.
    The mark (``FSM_PILOT_PAYLOAD_MARK``) proves later which processes are its own.
    """
    if not argv:
        raise PilotFailure(PilotError.PAYLOADEXECUTIONFAILURE, "empty payload command")
    start_wall, start_monotonic = time.time(), time.monotonic()
    mark = new_mark()
    try:
        # The files are closed in the parent right after the spawn (the child keeps its copies).
        with open(stdout, "ab") as out, open(stderr, "ab") as err, rlimit.inherit(rlimit_as) as inherited:
            popen = subprocess.Popen(
                list(argv), cwd=cwd, env={**env, MARK_VAR: mark}, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                start_new_session=True, close_fds=True,
                preexec_fn=None if inherited else rlimit.preexec(rlimit_as),  # noqa: PLW1509 (no threads)
            )
        if inherited and rlimit_as is not None:
            rlimit.pin(popen, rlimit_as)
    except OSError as exc:
        where = exc.filename if exc.filename is not None else argv[0]
        raise PilotFailure(PilotError.PAYLOADEXECUTIONFAILURE,
                           f"cannot execute {argv[0]!r} (cwd {cwd}): {exc.strerror or exc}: {where}") from exc
    except subprocess.SubprocessError as exc:
        raise PilotFailure(PilotError.PAYLOADEXECUTIONFAILURE,
                           f"cannot set up {argv[0]!r} (rlimit_as={rlimit_as}): {exc}") from exc
    stat = read_stat(popen.pid)  # unreaped child: its pid cannot have been reused
    return Payload(popen, popen.pid, popen.pid, start_wall, start_monotonic, stdout, stderr,
                   _open_pidfd(popen.pid), stat.start_ticks if stat is not None else 0, mark)


def _remaining(deadline: float | None) -> float | None:
    return None if deadline is None else max(0.0, deadline - time.monotonic())


def _select(fds: Iterable[int], timeout: float | None) -> set[int]:
    """One poll over ``fds`` for readability; EINTR counts as "nothing ready"."""
    with selectors.PollSelector() as sel:
        for fd in fds:
            sel.register(fd, selectors.EVENT_READ)
        if not sel.get_map():
            time.sleep(timeout if timeout is not None else _POLL_STEP)
            return set()
        try:
            return {key.fd for key, _events in sel.select(timeout)}
        except InterruptedError:
            return set()


def wait_payload(payload: Payload, wakeup_fd: int | None, timeout: float | None) -> WaitResult:
    """Block until the payload exits, the wakeup fd is readable, or ``timeout`` passes.

    The wakeup fd is never read: its owner (the signal module) drains it. When
    both fire at once "exited" wins; the wakeup fd then stays readable for the
    next wait. Without a pidfd the exit is polled every 50 ms.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    wakeup = [] if wakeup_fd is None else [wakeup_fd]
    while True:
        if payload.popen.poll() is not None:
            return "exited"
        remaining = _remaining(deadline)
        if payload.pidfd is not None:
            ready = _select([payload.pidfd, *wakeup], remaining)
        else:
            ready = _select(wakeup, _POLL_STEP if remaining is None else min(remaining, _POLL_STEP))
        if payload.popen.poll() is not None:
            return "exited"
        if wakeup_fd is not None and wakeup_fd in ready:
            return "woken"
        if remaining is not None and remaining <= 0.0:
            return "timeout"


def _tree(payload: Payload, keep: Collection[int] = ()) -> dict[Key, ProcStat]:
    """The payload's members from one /proc pass; ``keep`` (the pilot's own tools) never are."""
    me = os.getpid()
    table = [s for s in scan_procs() if s.start_ticks >= payload.start_ticks and s.pid != me and s.pid not in keep]
    found = members(table, (payload.pid, payload.start_ticks), payload.sid, payload.mark, payload.known)
    payload.known.update(found)
    return found


def descendants(payload: Payload, *, keep: Collection[int] = ()) -> list[ProcStat]:
    """The payload's process tree, the payload itself included while it exists.

    One /proc pass, only processes started no earlier than the payload (nothing
    older can descend from it), de-duplicated by (pid, start time). Members are
    what fsm_pilot.payload.ownership proves: descendants, session members,
    carriers of the payload's mark, and members found before. A child of the
    pilot is not a member for being one: a wrapper's orphans are adopted too.
    Sorted oldest first.
    """
    return sorted(_tree(payload, keep).values(), key=lambda s: (s.start_ticks, s.pid))


def measure_tree(payload: Payload) -> Usage:
    """RSS/PSS (kB), process count and CPU seconds of the live tree (fsm_pilot.procinfo).

    CPU includes the reaped children of live members (children_user/system) so
    shell-driven payloads running many short commands are not under-counted.
    Zombies and processes gone mid-read are skipped; PSS is None for the tree
    once one member's cannot be read.
    """
    rss, pss, nprocs, cpu = 0, 0, 0, 0.0
    pss_ok = True
    for stat in descendants(payload):
        sample = procinfo.sample(stat.pid, with_pss=pss_ok)
        if sample is None or sample.zombie:
            continue
        nprocs += 1
        rss += sample.rss // 1024
        cpu += sample.cpu.total()
        pss_ok = pss_ok and sample.pss is not None
        pss += (sample.pss or 0) // 1024
    return Usage(rss, pss if pss_ok else None, nprocs, cpu)


def _broadcast(members: Mapping[Key, ProcStat], keys: Iterable[Key], sig: int) -> set[int]:
    """Signal every member in ``keys``; returns the pids actually signalled.

    Groups led by our own children among them (the payload's, and those of
    orphans that called setsid when we are a subreaper) are signalled first with
    killpg, atomically including members forked since the last scan.
    """
    keys, me = list(keys), os.getpid()
    leaders = [k for k in keys if (s := members.get(k)) is not None and s.pgrp == s.pid and s.ppid == me]
    signal_own_groups(leaders, sig)
    return {key[0] for key in keys if send_signal(key, sig)}


def _freeze(payload: Payload, keep: Collection[int], deadline: float) -> dict[Key, ProcStat]:
    """SIGSTOP every member, re-scanning until no new one appears and all are stopped.

    A stopped process cannot fork, so once a scan finds nothing new while every
    member is stopped (or dead) the snapshot is complete.
    """
    signal_own_groups([(payload.pid, payload.start_ticks)], signal.SIGSTOP)
    members: dict[Key, ProcStat] = {}
    while True:
        stats = _tree(payload, keep)
        new = [key for key in stats if key not in members]
        _broadcast(stats, new, signal.SIGSTOP)
        members.update(stats)
        settled = all(s.state in FROZEN_STATES for k, s in stats.items() if k not in new)
        if (not new and settled) or time.monotonic() >= deadline:
            return members
        if not new:
            time.sleep(0.002)  # stop signals are in flight: let the members stop


def _await_exit(payload: Payload, pending: list[Key], deadline: float, watch: int | None) -> None:
    """Wait until every pending member is dead, ``deadline`` passes or ``watch`` fires.

    Dead members are popped from ``pending`` so each is re-checked only while alive.
    """
    while True:
        payload.popen.poll()
        while pending and not is_alive(pending[-1]):
            pending.pop()
        remaining = deadline - time.monotonic()
        if not pending or remaining <= 0.0:
            return
        fds = [] if watch is None else [watch]
        if payload.pidfd is not None and payload.popen.returncode is None:
            fds.append(payload.pidfd)
        if watch is not None and watch in _select(fds, min(remaining, _KILL_STEP)):
            return


def _kill_survivors(payload: Payload, members: dict[Key, ProcStat], keep: Collection[int],
                    deadline: float) -> set[int]:
    """SIGKILL every live member, then re-scan for late forks; returns the pids.

    Known members are killed before any scan so a fork loop stops at once; each
    round kills, waits briefly, re-scans, and ends when a scan finds nothing new
    and everything is dead. Members found by the last scan are always killed.
    """
    killed: set[int] = set()
    while True:
        payload.popen.poll()
        pending = [key for key in members if is_alive(key)]
        killed |= _broadcast(members, pending, signal.SIGKILL)
        _await_exit(payload, pending, min(deadline, time.monotonic() + _KILL_STEP), None)
        found = _tree(payload, keep)
        new = [key for key in found if key not in members]
        members.update(found)
        if not new and not pending:
            return killed
        if time.monotonic() >= deadline:
            return killed | _broadcast(members, new, signal.SIGKILL)


def _reap(payload: Payload, members: Collection[Key], keep: Collection[int], deadline: float) -> None:
    """Reap the payload via Popen and orphaned tree members via reap_zombies."""
    with contextlib.suppress(subprocess.TimeoutExpired):
        payload.popen.wait(timeout=max(0.0, deadline - time.monotonic()))
    others = {stat.pid for stat in child_stats() if stat.key not in members}
    reap_zombies({payload.pid, *keep, *others})


def _no_orphans(payload: Payload, keep: Collection[int]) -> bool:
    """After a scan found no live member: whether a second scan can be skipped (the common, clean exit).

    A member the scan missed (forked by one that exited during the scan) is an
    orphan, and orphans come back to a subreaper pilot: none among its children
    (the payload and its own tools aside) means there is nothing to look for.
    """
    if not is_subreaper():
        return False
    return all(stat.pid == payload.pid or stat.pid in keep for stat in child_stats())


def _exited_alone(payload: Payload, keep: Collection[int]) -> bool:
    """The common end, proven without a /proc scan: the payload exited and left no process behind.

    Under a subreaper pilot, a live process forked below the payload is a child
    of the pilot or below one once the payload is gone (orphans come back to the
    nearest subreaper), and a child stays listed, zombie or not, until this
    thread reaps it: so the pilot's children being its own tools only proves the
    tree empty. Rule 3 of fsm_pilot.payload.ownership (the mark) finds processes
    reparented away from a pilot that is not a subreaper; this one gets them back.
    Not proven here: a process a daemon outside the tree (atd, for one) starts with
    the payload's environment. The mark finds it when a payload is stopped, not
    after a clean exit, whose scan cost 0.6 ms a job with 70 processes on the node.
    Known members are checked one by one all the same (a read of their stat each).
    """
    if payload.popen.poll() is None or any(is_alive(key) for key in payload.known):
        return False
    return _no_orphans(payload, keep)  # the payload is reaped: only its tools may be left among the children


def _readable(fd: int) -> bool:
    return bool(select.select([fd], [], [], 0)[0])


def kill_tree(payload: Payload, grace: float, wakeup_fd: int | None = None, *,
              keep: Collection[int] = ()) -> KillReport:
    """Stop the payload's whole tree within ``grace`` + ~0.5 s, touching nothing else.

    1. Freeze: SIGSTOP every member (and groups we lead), re-scan until stable.
    2. SIGTERM then SIGCONT every member; wait up to ``grace`` for them to exit.
    3. SIGKILL survivors and late forks (re-scanning), then reap payload and orphans.
    A wakeup fd that becomes readable during the grace (another signal) cuts it
    short; one already readable on entry is ignored since it cannot be told apart.
    """
    started = time.monotonic()
    if _exited_alone(payload, keep):
        _reap(payload, (), keep, started + _KILL_BUDGET)
        return KillReport((), (), time.monotonic() - started, payload.popen.returncode)
    watch = wakeup_fd if wakeup_fd is not None and not _readable(wakeup_fd) else None
    members = _freeze(payload, keep, started + _FREEZE_BUDGET)
    live = [key for key, stat in members.items() if stat.state not in DEAD_STATES]
    terminated = _broadcast(members, live, signal.SIGTERM)
    _broadcast(members, members, signal.SIGCONT)
    _await_exit(payload, live, time.monotonic() + grace, watch)
    deadline = time.monotonic() + _KILL_BUDGET
    killed = _kill_survivors(payload, members, keep, deadline) if live or not _no_orphans(payload, keep) else set()
    _reap(payload, members, keep, deadline + 0.05)
    return KillReport(tuple(sorted(terminated)), tuple(sorted(killed)),
                      time.monotonic() - started, payload.popen.returncode)
