"""Payload start/wait/kill with real processes and real signals (no mocks).

Every wait polls against a deadline; sleeps in payloads are long (60 s) so a
test only passes if kill_tree really killed them. Subreaper cases run in a
driver subprocess so pytest itself never becomes a subreaper.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from fsm_pilot.errors import PilotError, PilotFailure
from fsm_pilot.payload import (
    Payload,
    descendants,
    kill_tree,
    measure_tree,
    reap_zombies,
    rlimit,
    start_payload,
    wait_payload,
)

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux-only pilot")

DEADLINE = 10.0  # generous per-condition limit; every test normally takes well under 2 s

# Payload scripts: each records the pids it creates in $PIDS (one per line).
TREE = """echo $$ >> "$PIDS"
sh -c 'echo $$ >> "$PIDS"; sleep 60 & echo $! >> "$PIDS"; wait' &
wait
"""
IGNORE_TERM = """trap '' TERM
echo $$ >> "$PIDS"
sleep 60 & echo $! >> "$PIDS"
wait
"""
ESCAPES = """echo $$ >> "$PIDS"
( sh -c 'echo $$ >> "$PIDS"; exec sleep 60' & )
( setsid sh -c 'echo $$ >> "$PIDS"; exec sleep 60' & )
while [ "$(wc -l < "$PIDS")" -lt 3 ]; do sleep 0.01; done
"""
SESSION_ORPHAN = """echo $$ >> "$PIDS"
( sleep 60 & echo $! >> "$PIDS" )
"""

DRIVER = """
import dataclasses, json, subprocess, sys
from pathlib import Path
from fsm_pilot.payload import become_subreaper, descendants, kill_tree, start_payload, wait_payload

cfg = json.loads(sys.argv[1])
assert become_subreaper()
tmp = Path(cfg["tmp"])
payload = start_payload(cfg["argv"], tmp, tmp / "out", tmp / "err", cfg["env"])
print(json.dumps({"pid": payload.pid}), flush=True)
sys.stdin.readline()  # the test says go once the tree is complete
if cfg["leader_exits"]:
    assert wait_payload(payload, None, 10.0) == "exited"
tool = subprocess.Popen(["sleep", "60"])  # a pilot tool started after the payload, listed in keep
seen = [p.pid for p in descendants(payload, keep={tool.pid})]
report = kill_tree(payload, 0.5, keep={tool.pid})
tool_alive = tool.poll() is None
tool.kill()
tool.wait()
print(json.dumps({"seen": seen, "report": dataclasses.asdict(report), "tool_alive": tool_alive}), flush=True)
"""


def wait_until(condition: Callable[[], bool], what: str) -> None:
    """Poll ``condition`` until true or fail after DEADLINE seconds."""
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.01)


def gone(proc: psutil.Process) -> bool:
    """Dead: pid gone or reused (identity check), or a zombie awaiting its reaper."""
    try:
        return not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def env_for(tmp_path: Path) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PIDS": str(tmp_path / "pids")}


def script(tmp_path: Path, body: str) -> list[str]:
    path = tmp_path / "payload.sh"
    path.write_text(body)
    return ["sh", str(path)]


def recorded(tmp_path: Path, count: int, cleanup: list[psutil.Process]) -> list[psutil.Process]:
    """Wait until the payload wrote ``count`` pids, then pin their identities."""
    pids_file = tmp_path / "pids"

    def complete() -> bool:
        return pids_file.exists() and len(pids_file.read_text().split()) >= count

    wait_until(complete, f"{count} pids in {pids_file}")
    procs = []
    for pid in map(int, pids_file.read_text().split()):
        try:
            procs.append(psutil.Process(pid))
        except psutil.NoSuchProcess:
            continue  # e.g. a leader that already exited
    cleanup.extend(procs)
    return procs


def run(tmp_path: Path, argv: list[str]) -> Payload:
    return start_payload(argv, tmp_path, tmp_path / "out", tmp_path / "err", env_for(tmp_path))


def orphan_sleep(cleanup: list[psutil.Process]) -> psutil.Process:
    """A same-uid sleep outside any payload, double-forked so its parent is gone."""
    out = subprocess.run(["sh", "-c", "sleep 60 >/dev/null 2>&1 & echo $!"], capture_output=True,
                         text=True, check=True, timeout=DEADLINE)
    proc = psutil.Process(int(out.stdout))
    cleanup.append(proc)
    return proc


@pytest.mark.parametrize("code", [0, 3])
def test_exit_code_seen(tmp_path: Path, code: int) -> None:
    payload = run(tmp_path, ["sh", "-c", f"echo hello; echo oops >&2; exit {code}"])
    assert wait_payload(payload, None, DEADLINE) == "exited"
    assert payload.returncode == code
    assert (tmp_path / "out").read_text() == "hello\n"
    assert (tmp_path / "err").read_text() == "oops\n"
    payload.close()


def test_exit_seen_without_pidfd(tmp_path: Path) -> None:
    payload = dataclasses.replace(run(tmp_path, ["sh", "-c", "sleep 0.1; exit 5"]), pidfd=None)
    assert wait_payload(payload, None, DEADLINE) == "exited"
    assert payload.returncode == 5


def test_timeout_then_woken_without_draining(tmp_path: Path, cleanup: list[psutil.Process]) -> None:
    payload = run(tmp_path, ["sleep", "60"])
    cleanup.append(psutil.Process(payload.pid))
    read_end, write_end = os.pipe()
    try:
        assert wait_payload(payload, read_end, 0.1) == "timeout"
        os.write(write_end, b"x")
        assert wait_payload(payload, read_end, DEADLINE) == "woken"
        assert os.read(read_end, 1) == b"x"  # the byte was left for the fd's owner
    finally:
        os.close(read_end)
        os.close(write_end)
    report = kill_tree(payload, 0.5)
    assert report.returncode is not None and report.returncode < 0
    payload.close()


@pytest.mark.parametrize("case", ["missing", "not-executable", "bad-cwd"])
def test_exec_failure(tmp_path: Path, case: str) -> None:
    tool = tmp_path / "tool.sh"
    tool.write_text("#!/bin/sh\nexit 0\n")
    argv = [str(tmp_path / "nope")] if case == "missing" else [str(tool)]
    cwd = tmp_path / "missing-dir" if case == "bad-cwd" else tmp_path
    if case == "bad-cwd":
        tool.chmod(0o755)
    with pytest.raises(PilotFailure) as info:
        start_payload(argv, cwd, tmp_path / "out", tmp_path / "err", env_for(tmp_path))
    assert info.value.error is PilotError.PAYLOADEXECUTIONFAILURE
    assert "cannot execute" in info.value.diag


@pytest.mark.parametrize("limit_mib", [64 * 1024, 16], ids=["inherited", "preexec"])
def test_rlimit_as_applied_and_output_appended(tmp_path: Path, limit_mib: int) -> None:
    # 64 GiB: far above this process, so the child inherits its soft limit from the pilot (vfork) and gets the
    # hard one by inheritance too with CAP_SYS_RESOURCE, else by prlimit once it runs; 16 MiB: below this
    # process's own size, so the child sets both itself (fork + preexec_fn). The soft limit is read at the
    # payload's first command; the hard one once start_payload has returned (the payload waits for "go").
    import resource

    own = resource.getrlimit(resource.RLIMIT_AS)
    (tmp_path / "out").write_text("before\n")
    probe = "ulimit -S -v; while [ ! -e go ]; do sleep 0.01; done; ulimit -H -v"
    payload = start_payload(["sh", "-c", probe], tmp_path, tmp_path / "out",
                            tmp_path / "err", env_for(tmp_path), rlimit_as=limit_mib * 1024 * 1024)
    assert resource.getrlimit(resource.RLIMIT_AS) == own  # the pilot's own limits are restored
    (tmp_path / "go").touch()
    assert wait_payload(payload, None, DEADLINE) == "exited"
    assert (tmp_path / "out").read_text() == f"before\n{limit_mib * 1024}\n{limit_mib * 1024}\n"


@pytest.mark.skipif(not rlimit.can_raise_hard_limits(), reason="needs CAP_SYS_RESOURCE (root, not in a container)")
def test_rlimit_as_hard_limit_is_in_force_from_the_first_instruction(tmp_path: Path) -> None:
    limit_kib = 64 * 1024 * 1024
    payload = start_payload(["sh", "-c", "ulimit -H -v"], tmp_path, tmp_path / "out",
                            tmp_path / "err", env_for(tmp_path), rlimit_as=limit_kib * 1024)
    assert wait_payload(payload, None, DEADLINE) == "exited"
    assert (tmp_path / "out").read_text() == f"{limit_kib}\n"


def test_the_capability_is_read_from_the_process_status() -> None:
    with open("/proc/self/status", encoding="ascii") as status:
        caps = int(next(line for line in status if line.startswith("CapEff:")).split()[1], 16)
    assert rlimit.can_raise_hard_limits() is bool(caps & (1 << 24))


def test_kill_simple_sleep(tmp_path: Path, cleanup: list[psutil.Process]) -> None:
    payload = run(tmp_path, ["sleep", "60"])
    proc = psutil.Process(payload.pid)
    cleanup.append(proc)
    report = kill_tree(payload, 0.5)
    assert report.terminated == (payload.pid,) and report.killed == ()
    assert report.returncode == -15 and gone(proc)


def test_kill_three_levels_and_measure(tmp_path: Path, cleanup: list[psutil.Process]) -> None:
    payload = run(tmp_path, script(tmp_path, TREE))
    procs = recorded(tmp_path, 3, cleanup)
    assert {p.pid for p in procs} <= {p.pid for p in descendants(payload)}
    usage = measure_tree(payload)
    assert usage.nprocs >= 3 and usage.rss_kb > 0 and usage.cpu_seconds >= 0.0
    report = kill_tree(payload, 0.5)
    assert {p.pid for p in procs} <= set(report.terminated)
    assert all(gone(p) for p in procs) and report.returncode is not None


def test_kill_sigterm_ignored(tmp_path: Path, cleanup: list[psutil.Process]) -> None:
    payload = run(tmp_path, script(tmp_path, IGNORE_TERM))
    procs = recorded(tmp_path, 2, cleanup)
    report = kill_tree(payload, 0.5)
    assert {p.pid for p in procs} <= set(report.killed)
    assert report.returncode == -9 and all(gone(p) for p in procs)
    assert report.seconds < 0.5 + 3.0  # sanity only: grace plus a generous margin


def test_wakeup_cuts_grace_short(tmp_path: Path, cleanup: list[psutil.Process]) -> None:
    payload = run(tmp_path, script(tmp_path, IGNORE_TERM))
    procs = recorded(tmp_path, 2, cleanup)
    read_end, write_end = os.pipe()
    code = f"import os, time; time.sleep(0.2); os.write({write_end}, b'x')"
    writer = subprocess.Popen([sys.executable, "-c", code], pass_fds=(write_end,))
    try:
        report = kill_tree(payload, 20.0, read_end)
    finally:
        writer.wait(timeout=DEADLINE)
        os.close(read_end)
        os.close(write_end)
    assert report.seconds < 10.0 and set(report.killed) >= {p.pid for p in procs}
    assert all(gone(p) for p in procs)


def test_kill_orphans_in_session_after_leader_exit(tmp_path: Path, cleanup: list[psutil.Process]) -> None:
    payload = run(tmp_path, script(tmp_path, SESSION_ORPHAN))
    assert wait_payload(payload, None, DEADLINE) == "exited"
    procs = recorded(tmp_path, 2, cleanup)
    live = [p for p in procs if not gone(p)]
    assert live and {p.pid for p in live} <= {p.pid for p in descendants(payload)}
    report = kill_tree(payload, 0.5)
    assert {p.pid for p in live} <= set(report.terminated)
    assert all(gone(p) for p in procs) and report.returncode == 0


def test_unrelated_process_survives_in_process(tmp_path: Path, cleanup: list[psutil.Process]) -> None:
    payload = run(tmp_path, script(tmp_path, TREE))
    procs = recorded(tmp_path, 3, cleanup)
    bystander = orphan_sleep(cleanup)
    report = kill_tree(payload, 0.5)
    assert bystander.pid not in report.terminated + report.killed
    assert not gone(bystander) and all(gone(p) for p in procs)


@pytest.mark.parametrize("leader_exits", [False, True])
def test_subreaper_kills_double_fork_and_setsid(tmp_path: Path, cleanup: list[psutil.Process],
                                                leader_exits: bool) -> None:
    body = ESCAPES + ("" if leader_exits else "exec sleep 60\n")
    cfg = {"argv": script(tmp_path, body), "env": env_for(tmp_path), "tmp": str(tmp_path),
           "leader_exits": leader_exits}
    driver_path = tmp_path / "driver.py"
    driver_path.write_text(DRIVER)
    driver = subprocess.Popen([sys.executable, str(driver_path), json.dumps(cfg)], text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert driver.stdin is not None and driver.stdout is not None
    try:
        payload_pid = json.loads(driver.stdout.readline())["pid"]
        procs = recorded(tmp_path, 3, cleanup)
        escaped = [p for p in procs if p.pid != payload_pid]
        assert len(escaped) == 2 and any(os.getsid(p.pid) != payload_pid for p in escaped)
        bystander = orphan_sleep(cleanup)
        driver.stdin.write("go\n")
        driver.stdin.flush()
        result = json.loads(driver.stdout.readline())
    finally:
        driver.stdin.close()
        assert driver.wait(timeout=DEADLINE) == 0
    report = result["report"]
    assert {p.pid for p in escaped} <= set(result["seen"]) & set(report["terminated"])
    assert report["returncode"] == (0 if leader_exits else -15)
    assert all(gone(p) for p in procs)
    assert bystander.pid not in result["seen"] and not gone(bystander)
    assert result["tool_alive"]


def test_reap_zombies_spares_kept_children() -> None:
    pids = [os.posix_spawn("/bin/true", ["true"], {}) for _ in range(2)]
    kept, other = pids

    def both_zombies() -> bool:
        return all(psutil.Process(pid).status() == psutil.STATUS_ZOMBIE for pid in pids)

    wait_until(both_zombies, "two zombie children")
    keep = {c.pid for c in psutil.Process().children()} - {other}
    assert reap_zombies(keep) == [other]
    assert psutil.Process(kept).status() == psutil.STATUS_ZOMBIE
    assert os.waitpid(kept, 0)[0] == kept
