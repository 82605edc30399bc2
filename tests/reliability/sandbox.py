"""Where the reliability tests run pilots, dispatchers and bystanders: a private PID namespace.

These tests provoke kill-scope bugs on purpose. In a private PID namespace a pilot that
signals the wrong process can only hit something inside the sandbox, and closing the
sandbox ends everything left in it (escaped payloads included). Recovery needs the dead
pilot's payload to be visible to the next pilot, so one test's processes share one
sandbox. Where namespaces cannot be made (not root, no ``unshare``), processes run as
plain children instead and the tests that need the isolation skip.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import psutil

NSINIT = Path(__file__).with_name("nsinit.py")
NS_FLAGS = ("--pid", "--fork", "--mount-proc", "--kill-child")


@functools.lru_cache(maxsize=1)
def pidns_problem() -> str | None:
    """None when this machine can make private PID namespaces; else why not, in one line."""
    if os.environ.get("FSM_RELIABILITY_NO_PIDNS"):
        return "disabled by FSM_RELIABILITY_NO_PIDNS"
    if os.geteuid() != 0:
        return "not root"
    unshare = shutil.which("unshare")
    if unshare is None:
        return "no unshare command"
    try:
        done = subprocess.run([unshare, *NS_FLAGS, "true"], capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unshare failed: {exc!r}"
    if done.returncode != 0:
        return f"unshare exited {done.returncode}: {' '.join(done.stderr.split())[:120]}"
    return None


class Proc:
    """A process in a sandbox, addressed by its host pid (Popen-like where the tests need it)."""

    def __init__(self, args: Sequence[str], stdout: Path, stderr: Path) -> None:
        self.args = list(args)
        self.stdout_path = stdout
        self.stderr_path = stderr
        self.pid = 0
        #: The pid the process sees itself as (its pilot dir is named after it).
        self.inner_pid = 0
        self.returncode: int | None = None

    def poll(self) -> int | None:
        raise NotImplementedError

    def wait(self, timeout: float = 60.0) -> int:
        raise NotImplementedError

    def send_signal(self, signum: int) -> None:
        raise NotImplementedError

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""

    def stopped(self) -> bool:
        """Frozen by SIGSTOP (a failpoint)."""
        try:
            return bool(psutil.Process(self.pid).status() == psutil.STATUS_STOPPED)
        except psutil.NoSuchProcess:
            return False


class PlainProc(Proc):
    """A plain child of the test process."""

    def __init__(self, popen: subprocess.Popen[bytes], stdout: Path, stderr: Path) -> None:
        super().__init__(popen.args if isinstance(popen.args, list) else [str(popen.args)], stdout, stderr)
        self.popen = popen
        self.pid = self.inner_pid = popen.pid

    def poll(self) -> int | None:
        self.returncode = self.popen.poll()
        return self.returncode

    def wait(self, timeout: float = 60.0) -> int:
        self.returncode = self.popen.wait(timeout)
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.popen.send_signal(signum)


class NsProc(Proc):
    """A child of the namespace's init; its end is reported by the init."""

    def __init__(self, box: Sandbox, args: Sequence[str], stdout: Path, stderr: Path) -> None:
        super().__init__(args, stdout, stderr)
        self.box = box
        self.pidfd = -1

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float = 60.0) -> int:
        with self.box.cond:
            if not self.box.cond.wait_for(lambda: self.returncode is not None, timeout):
                raise subprocess.TimeoutExpired(self.args, timeout)
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, signum: int) -> None:
        """Through a pidfd opened while the process certainly existed: a reused pid is never hit."""
        if self.returncode is None and self.pidfd >= 0:
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(self.pidfd, signum)


def _ns_pid(host_pid: int) -> int | None:
    """The innermost pid of a host process (the last ``NSpid`` field)."""
    try:
        for line in Path(f"/proc/{host_pid}/status").read_text().splitlines():
            if line.startswith("NSpid:"):
                return int(line.split()[-1])
    except (OSError, ValueError):
        return None
    return None


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found += [int(p) for p in (task / "children").read_text().split()]
    return found


class Sandbox:
    """One test's processes: in a private PID namespace (``namespaced``) or as plain children."""

    def __init__(self, root: Path, namespaced: bool) -> None:
        self.root = root
        self.namespaced = namespaced
        self.procs: list[Proc] = []
        self.cond = threading.Condition()
        self.spawned: dict[str, int] = {}
        self.by_ns_pid: dict[int, NsProc] = {}
        self.unshare: subprocess.Popen[bytes] | None = None
        self.init_pid = 0
        root.mkdir(parents=True, exist_ok=True)
        if namespaced:
            self._start_init()
        else:
            _stop_ignoring()

    def _start_init(self) -> None:
        unshare = shutil.which("unshare") or "unshare"
        with (self.root / "nsinit.stderr").open("ab") as err:
            self.unshare = subprocess.Popen([unshare, *NS_FLAGS, sys.executable, str(NSINIT)],
                                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err)
        threading.Thread(target=self._read_events, args=(self.unshare.stdout,), daemon=True).start()

    def _read_events(self, stream: IO[bytes]) -> None:
        for line in stream:
            event: dict[str, Any] = json.loads(line)
            with self.cond:
                if "spawned" in event:
                    self.spawned[event["spawned"]] = int(event["pid"])
                elif "exited" in event and event["exited"] in self.by_ns_pid:
                    self.by_ns_pid[event["exited"]].returncode = int(event["code"])
                self.cond.notify_all()
        with self.cond:  # the init is gone: so is everything it ran
            for proc in self.by_ns_pid.values():
                if proc.returncode is None:
                    proc.returncode = -signal.SIGKILL
            self.cond.notify_all()

    def _send(self, request: Mapping[str, Any]) -> None:
        assert self.unshare is not None and self.unshare.stdin is not None
        self.unshare.stdin.write((json.dumps(request) + "\n").encode())
        self.unshare.stdin.flush()

    def _host_pid(self, ns_pid: int) -> int:
        """The host pid of the init's child ``ns_pid`` (it waits for its go byte, so it exists)."""
        if not self.init_pid:
            assert self.unshare is not None
            self.init_pid = _children(self.unshare.pid)[0]
        for pid in _children(self.init_pid):
            if _ns_pid(pid) == ns_pid:
                return pid
        raise AssertionError(f"sandbox: no host pid for namespace pid {ns_pid}")

    def spawn(self, argv: Sequence[str], *, cwd: Path, env: Mapping[str, str], name: str) -> Proc:
        """Start ``argv``; its stdout and stderr go to ``<root>/<name>.stdout|.stderr``."""
        out, err = self.root / f"{name}.stdout", self.root / f"{name}.stderr"
        if not self.namespaced:
            with out.open("ab") as o, err.open("ab") as e:
                popen = subprocess.Popen(list(argv), cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL,
                                         stdout=o, stderr=e)
            proc: Proc = PlainProc(popen, out, err)
        else:
            proc = self._spawn_ns(argv, cwd, env, name=name, out=out, err=err)
        self.procs.append(proc)
        return proc

    def _spawn_ns(self, argv: Sequence[str], cwd: Path, env: Mapping[str, str], *, name: str,
                  out: Path, err: Path) -> NsProc:
        tag = f"{name}#{len(self.procs)}"
        self._send({"op": "spawn", "tag": tag, "argv": list(argv), "cwd": str(cwd), "env": dict(env),
                    "stdout": str(out), "stderr": str(err)})
        with self.cond:
            if not self.cond.wait_for(lambda: tag in self.spawned, 20):
                raise AssertionError(f"sandbox init did not spawn {argv!r}: {self.init_stderr()}")
            ns_pid = self.spawned.pop(tag)
        proc = NsProc(self, argv, out, err)
        proc.pid, proc.inner_pid = self._host_pid(ns_pid), ns_pid
        proc.pidfd = os.pidfd_open(proc.pid)
        with self.cond:
            self.by_ns_pid[ns_pid] = proc
        self._send({"op": "go", "tag": tag})
        return proc

    def processes(self) -> list[psutil.Process]:
        """Every process in the sandbox (host view); outside a namespace, the test's descendants."""
        parent = psutil.Process(self.init_pid or self.unshare.pid) if self.unshare else psutil.Process()
        with contextlib.suppress(psutil.NoSuchProcess):
            return [p for p in parent.children(recursive=True) if p.pid != self.init_pid]
        return []

    def alive_by_own_pid(self, pids: list[int]) -> list[int]:
        """Which of ``pids``, as the processes saw themselves (``$$`` inside the namespace), still run."""
        alive = []
        for proc in self.processes():
            with contextlib.suppress(psutil.Error, OSError, ValueError):
                status = Path(f"/proc/{proc.pid}/status").read_text()
                nspid = int(next(line for line in status.splitlines() if line.startswith("NSpid:")).split()[-1])
                if nspid in pids and proc.status() != psutil.STATUS_ZOMBIE:
                    alive.append(nspid)
        return sorted(alive)

    def find(self, marker: str) -> list[int]:
        """Host pids of the live processes in the sandbox whose command line contains ``marker``."""
        found = []
        for proc in self.processes():
            with contextlib.suppress(psutil.Error):
                if proc.status() != psutil.STATUS_ZOMBIE and any(marker in arg for arg in proc.cmdline()):
                    found.append(proc.pid)
        return found

    def init_stderr(self) -> str:
        path = self.root / "nsinit.stderr"
        return path.read_text(errors="replace") if path.exists() else ""

    def close(self) -> None:
        """End everything: the namespace's init (and so all in it), or each plain child's tree."""
        if self.unshare is not None:
            with contextlib.suppress(OSError):
                assert self.unshare.stdin is not None
                self.unshare.stdin.close()
            try:
                self.unshare.wait(20)
            except subprocess.TimeoutExpired:
                self.unshare.kill()
                self.unshare.wait(20)
        for proc in self.procs:
            if isinstance(proc, NsProc) and proc.pidfd >= 0:
                os.close(proc.pidfd)
                proc.pidfd = -1
            elif isinstance(proc, PlainProc):
                _end_tree(proc)


def _stop_ignoring() -> None:
    """Plain children inherit ignored signals (a runner in the background ignores INT and QUIT, nohup
    HUP): make the stop signals the storm sends reach them as they would a pilot under a batch system."""
    for signum in (signal.SIGTERM, signal.SIGQUIT, signal.SIGHUP, signal.SIGUSR1):
        if signal.getsignal(signum) == signal.SIG_IGN:
            signal.signal(signum, signal.SIG_DFL)
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _end_tree(proc: PlainProc) -> None:
    """Stop a plain child and its descendants (a frozen pilot is continued so SIGTERM can act)."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(psutil.NoSuchProcess):
        tree = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
        proc.send_signal(signal.SIGCONT)
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(20)
        for child in tree[1:]:
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()
