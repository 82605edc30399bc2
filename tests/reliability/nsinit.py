"""PID 1 of a test sandbox (a private PID namespace): spawns what the test asks, reaps every orphan.

Run by ``unshare --pid --fork --mount-proc --kill-child python nsinit.py``. It reads one JSON
request per line on stdin and answers one JSON line per event on stdout:

- ``{"op": "spawn", "tag": T, "argv": [...], "cwd": D, "env": {...}, "stdout": F, "stderr": F}``
  forks a child that waits for ``{"op": "go", "tag": T}`` before it execs, so the test can find
  its host pid while it certainly exists; answered ``{"spawned": T, "pid": <pid in the namespace>}``;
- a spawned child's end is reported as ``{"exited": <pid>, "code": <Popen-style returncode>}``.

End of stdin ends this process, and with it (the kernel's rule for a namespace's init) every
process left in the namespace: a pilot's kill-scope bug can never reach outside the sandbox.
Deliberately small and standard-library only: it runs as init, where an unhandled exception
would kill the whole sandbox.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import sys
from typing import Any


def _default_signals() -> None:
    """Every signal to its default action: a test runner started in the background ignores SIGINT
    and SIGQUIT (and under nohup SIGHUP), and an ignored signal stays ignored across exec."""
    for signum in signal.valid_signals() - {signal.SIGKILL, signal.SIGSTOP}:
        try:
            signal.signal(signum, signal.SIG_DFL)
        except (OSError, ValueError):
            continue


def _exec_child(request: dict[str, Any], go_fd: int) -> None:
    """In the forked child: wait for the go byte, set up files and signals, exec; never returns."""
    try:
        os.read(go_fd, 1)
        os.close(go_fd)
        signal.set_wakeup_fd(-1)
        _default_signals()
        os.chdir(request["cwd"])
        null = os.open(os.devnull, os.O_RDONLY)
        out = os.open(request["stdout"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        err = os.open(request["stderr"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(null, 0)
        os.dup2(out, 1)
        os.dup2(err, 2)
        os.closerange(3, 1024)
        os.execvpe(request["argv"][0], request["argv"], request["env"])
    except BaseException as exc:  # exec failed: say why where the test looks, exit like a shell
        os.write(2, f"nsinit: cannot start {request.get('argv')!r}: {exc!r}\n".encode())
    os._exit(127)


class Init:
    """The init's state: children waiting for their go byte, and the ones the test asked for."""

    def __init__(self) -> None:
        self.waiting: dict[str, int] = {}
        self.spawned: set[int] = set()
        self.buffer = b""

    def say(self, message: dict[str, Any]) -> None:
        os.write(1, (json.dumps(message) + "\n").encode())

    def request(self, line: bytes) -> None:
        req = json.loads(line)
        if req["op"] == "spawn":
            read_fd, write_fd = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.close(write_fd)
                _exec_child(req, read_fd)
            os.close(read_fd)
            self.waiting[req["tag"]] = write_fd
            self.spawned.add(pid)
            self.say({"spawned": req["tag"], "pid": pid})
        elif req["op"] == "go":
            write_fd = self.waiting.pop(req["tag"])
            os.write(write_fd, b"g")
            os.close(write_fd)

    def reap(self) -> None:
        """Reap every dead child: the spawned ones are reported, orphans are just buried."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid in self.spawned:
                self.spawned.discard(pid)
                code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
                self.say({"exited": pid, "code": code})

    def read_stdin(self) -> bool:
        """Handle the complete request lines; False at end of input."""
        data = os.read(0, 65536)
        if not data:
            return False
        self.buffer += data
        while b"\n" in self.buffer:
            line, self.buffer = self.buffer.split(b"\n", 1)
            if line.strip():
                self.request(line)
        return True


def main() -> int:
    wake_read, wake_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(wake_write, warn_on_full_buffer=False)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    init = Init()
    sel = selectors.DefaultSelector()
    sel.register(0, selectors.EVENT_READ, "stdin")
    sel.register(wake_read, selectors.EVENT_READ, "signal")
    while True:
        for key, _ in sel.select(timeout=1.0):
            if key.data == "stdin" and not init.read_stdin():
                return 0
            if key.data == "signal":
                while True:
                    try:
                        if not os.read(wake_read, 512):
                            break
                    except BlockingIOError:
                        break
        init.reap()


if __name__ == "__main__":
    sys.exit(main())
