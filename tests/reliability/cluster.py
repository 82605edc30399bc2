"""The campaign's dispatcher and pilots, started inside a test's sandbox.

The dispatcher is the project's own (``fsm-pilot dispatcher``) on a fixed loopback port
so it can be SIGKILLed and restarted on the same SQLite file and port. Options that
other branches add to it (``--sent-timeout``, ``--max-attempts``: requeue a job whose
getJob reply was lost) are passed only when its ``--help`` lists them, so the harness
works before and after they land.
"""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tests.pilotrun import FIXTURES, wait_for
from tests.pilotserver import Dispatcher, free_port
from tests.reliability.sandbox import Proc, Sandbox

QUEUE = "TEST_QUEUE"
#: Short intervals so a small campaign finishes in seconds.
FAST = ("--heartbeat-interval", "0.5", "--kill-grace", "0.5", "--min-free-disk", "1000")
#: Dispatcher states a job can end in.
FINAL = frozenset({"finished", "failed", "closed", "cancelled"})


@functools.lru_cache(maxsize=1)
def dispatcher_help() -> str:
    return subprocess.run([sys.executable, "-m", "fsm_pilot", "dispatcher", "--help"], capture_output=True,
                          text=True, timeout=60, check=False).stdout


def requeue_options(sent_timeout: float, max_attempts: int) -> list[str]:
    """``--sent-timeout``/``--max-attempts`` where this dispatcher has them, else nothing."""
    text = dispatcher_help()
    options: list[str] = []
    if "--sent-timeout" in text:
        options += ["--sent-timeout", f"{sent_timeout:g}"]
    if "--max-attempts" in text:
        options += ["--max-attempts", str(max_attempts)]
    return options


def can_requeue() -> bool:
    """The dispatcher puts a job whose getJob reply was lost back in the queue."""
    return "--sent-timeout" in dispatcher_help()


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This environment without the pilot's FSM_PILOT_* settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FSM_PILOT_")}
    env.update(extra or {})
    return env


@dataclass
class BoxDispatcher(Dispatcher):
    """The dispatcher as a process of ``box`` (port fixed at first start, kept across restarts)."""

    box: Sandbox | None = None
    options: tuple[str, ...] = ()
    boxed: Proc | None = None
    starts: int = 0

    def start(self) -> BoxDispatcher:
        assert self.box is not None
        self.root.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        cmd = [sys.executable, "-m", "fsm_pilot", "dispatcher", "--db", str(self.db), "--port", str(self.port),
               "--queuedata", str(FIXTURES / "queuedata_TEST_QUEUE.json"), "--storage-dir", str(self.storage),
               *self.options]
        self.starts += 1
        proc = self.boxed = self.box.spawn(cmd, cwd=self.root, env=clean_env(), name=f"dispatcher-{self.starts}")
        line = wait_for(lambda: self._listening(proc), timeout=30, what="the dispatcher listening")
        self.url = line.removeprefix("listening on ")
        return self

    def _listening(self, proc: Proc) -> str | None:
        if proc.poll() is not None:
            raise AssertionError(f"dispatcher exited {proc.returncode}: {proc.stderr()[-2000:]}")
        text = proc.stdout_path.read_text() if proc.stdout_path.exists() else ""
        return next((line for line in text.splitlines() if line.startswith("listening on ")), None)

    def stop(self, signum: int = signal.SIGTERM) -> None:
        if self.boxed is not None and self.boxed.poll() is None:
            self.boxed.send_signal(signum)
            self.boxed.wait(30)

    def stderr_text(self) -> str:
        return "".join(p.read_text(errors="replace") for p in sorted(self.root.glob("dispatcher-*.stderr")))

    def statuses(self) -> dict[int, str]:
        return {int(i): str(s) for i, s in self.query("SELECT PandaID, status FROM jobs")}


def start_dispatcher(box: Sandbox, root: Path, sent_timeout: float = 2.0, max_attempts: int = 5) -> BoxDispatcher:
    server = BoxDispatcher(root, box=box, options=tuple(requeue_options(sent_timeout, max_attempts)))
    return server.start()


def new_launch(root: Path) -> Path:
    """An empty launch dir: queuedata and storage endpoints come from the server."""
    path = root.resolve()
    path.mkdir(parents=True)
    return path


def pilot_argv(launch: Path, url: str | None, *extra: str) -> list[str]:
    """``fsm-pilot run`` in ``launch``, pulling from (and reporting to) ``url`` unless None."""
    server = ["--url", url] if url else []
    return [sys.executable, "-m", "fsm_pilot", "run", "-q", QUEUE, "-j", "managed", "-t", "-a", str(launch),
            *server, *FAST, *extra]


def start_pilot(box: Sandbox, launch: Path, url: str | None, *extra: str, env: Mapping[str, str] | None = None,
                name: str = "pilot") -> Proc:
    """A real pilot process in ``box`` (see ``pilot_argv``)."""
    return box.spawn(pilot_argv(launch, url, *extra), cwd=launch, env=clean_env(env), name=name)


def wait_all(procs: list[Proc], timeout: float) -> None:
    """Wait for every process until one shared deadline; a process still running then fails the test."""
    deadline = time.monotonic() + timeout
    for proc in procs:
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{proc.args[-1]} still running after {timeout} s: {proc.stderr()[-1500:]}") \
                from None
