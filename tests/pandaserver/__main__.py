"""``python -m tests.pandaserver`` (``make panda-server-test``): the pilot against a real panda-server 1.0.4.

Installs what is missing (apt, pip into a cached venv), stands up PostgreSQL, the schema, one queue and
panda-server on 127.0.0.1 in a scratch dir, runs ``pytest tests/pandaserver``, and tears everything down by
PID whatever happened (SIGTERM or SIGINT to this driver included), then checks that nothing it started is
left. A failed case's exchange with the server, its pilots' dirs and the server's logs are kept under
build/artifacts/pandaserver. Where it cannot run (not root, no apt) it says so in one line and exits 0.
Extra arguments go to pytest (e.g. ``-k sigterm``); ``measure [options]`` runs final_update_latency.py
on the stack instead of the cases.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from types import FrameType

from tests.pandaserver import install
from tests.pandaserver.stack import QUEUE, Stack

REPO = Path(__file__).resolve().parent.parent.parent
ARTIFACTS = REPO / "build" / "artifacts" / "pandaserver"


class Stopped(Exception):
    """This driver was told to stop (SIGTERM/SIGINT): tear down and leave."""


def _stop(signum: int, frame: FrameType | None) -> None:
    raise Stopped(signal.Signals(signum).name)


def child_argv(stack_file: Path, extra: list[str]) -> list[str]:
    """pytest on the cases, or (``measure ...``) the final-update latency measurement."""
    if extra[:1] == ["measure"]:
        return [sys.executable, "-m", "tests.pandaserver.final_update_latency", "--stack", str(stack_file),
                "--out", str(ARTIFACTS), *extra[1:]]
    return [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--durations=0",
            str(REPO / "tests" / "pandaserver"), *SUBMIT_TESTS, *extra]


#: Tests of the submit/set_command/get_job_status wire format that also run against the real server here.
SUBMIT_TESTS = [str(REPO / "tests" / "test_submit_server.py"), str(REPO / "tests" / "test_submit_wire.py")]


def run_child(stack: Stack, stack_file: Path, extra: list[str]) -> int:
    """The cases, in their own process; on our own stop it gets SIGINT (pytest's teardown runs) first."""
    env = {**os.environ, "FSM_PANDASERVER_STACK": str(stack_file), "FSM_PANDASERVER_ARTIFACTS": str(ARTIFACTS),
           "FSM_PILOT_PANDA_SERVER_URL": stack.server.url, "FSM_PILOT_PANDA_SERVER_QUEUE": QUEUE,
           "FSM_PILOT_PANDA_SERVER_PYTHON": str(stack.server.python)}
    proc = subprocess.Popen(child_argv(stack_file, extra), cwd=REPO, env=env)
    try:
        return proc.wait()
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def leftovers(stack: Stack) -> list[str]:
    """Anything still running that this run started: server/adder groups, postgres, or a process in scratch."""
    left = stack.down()
    scratch = str(stack.scratch)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cwd = os.readlink(entry / "cwd")
            cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if cwd.startswith(scratch) or scratch in cmdline:
            left.append(f"pid {entry.name} ({cmdline.replace(chr(0), ' ')[:120]})")
    return left


def keep_server_logs(stack: Stack) -> None:
    target = ARTIFACTS / "server"
    target.mkdir(parents=True, exist_ok=True)
    for source in (stack.server.home / "log", stack.cluster.log, stack.server.record):
        if source.is_dir():
            shutil.copytree(source, target / source.name, dirs_exist_ok=True)
        elif source.exists():
            shutil.copy(source, target / source.name)


def prepare(timings: dict[str, float]) -> Path:
    """apt packages, the atlpan user, panda-server's venv (cached); returns the venv."""
    began = time.monotonic()
    install.apt_install()
    install.panda_user()
    timings["install_apt"] = round(time.monotonic() - began, 2)
    venv = install.panda_venv()
    timings["install_venv"] = round(time.monotonic() - began - timings["install_apt"], 2)
    return venv


def run_on_stack(stack: Stack, extra: list[str], timings: dict[str, float]) -> tuple[int, list[str]]:
    """Stand the stack up, run the cases on it, tear it down whatever happened; (exit code, leftovers)."""
    code = 1
    try:
        stack.up(timings)
        stack.save(stack.scratch / "stack.json")
        mark = time.monotonic()
        code = run_child(stack, stack.scratch / "stack.json", extra)
        timings["cases"] = round(time.monotonic() - mark, 2)
    except Stopped as stop:
        print(f"panda-server tests: stopped by {stop}; tearing down", file=sys.stderr)
        code = 130
    except Exception:  # a stack that did not come up: say why, tear down, fail
        traceback.print_exc()
        code = 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the teardown itself is not interrupted
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if code != 0:
            keep_server_logs(stack)
        left = leftovers(stack)
        shutil.rmtree(stack.scratch, ignore_errors=True)
    return code, left


def main(extra: list[str]) -> int:
    why = install.cannot_run()
    if why is not None:
        print(f"panda-server tests skipped: {why}")
        return 0
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    began = time.monotonic()
    timings: dict[str, float] = {}
    try:
        venv = prepare(timings)
    except Stopped as stop:
        print(f"panda-server tests: stopped by {stop} while installing", file=sys.stderr)
        return 130
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    scratch = Path(tempfile.mkdtemp(prefix="fsm-pilot-pandaci-"))
    scratch.chmod(0o755)  # the postgres user must reach its data dir inside
    code, left = run_on_stack(Stack.create(scratch, venv), extra, timings)
    timings["total"] = round(time.monotonic() - began, 2)
    (ARTIFACTS / "timings.json").write_text(json.dumps(timings, indent=1))
    print(f"panda-server tests: {'passed' if code == 0 else f'FAILED ({code})'}; seconds: {json.dumps(timings)}")
    if left:
        print(f"panda-server tests: LEFT BEHIND: {'; '.join(left)}", file=sys.stderr)
        return code or 1
    if code != 0:
        print(f"panda-server tests: artifacts (exchanges, pilot dirs, server logs) in {ARTIFACTS}")
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
