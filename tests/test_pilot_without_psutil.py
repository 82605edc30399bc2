"""Where psutil cannot load, the pilot still runs jobs, measures them from /proc, and says so once.

The failures are real loader failures of a real psutil copy put first on
PYTHONPATH: its compiled extension replaced by garbage ("invalid ELF header"),
its Python source damaged (SyntaxError), or the intact package on a tmpfs
mounted ``noexec`` (the .so cannot be mapped executable; root only, in a
private mount namespace that vanishes with the process).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import psutil
import pytest

from tests.pilotrun import Launch, started, wait_for
from tests.pilotserver import Dispatcher, job_spec

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux-only pilot")

PSUTIL = Path(psutil.__file__).parent
WARNING = "psutil cannot be loaded; process and node figures are read from /proc"
MIB = 1 << 20
#: Inside a private mount namespace: mount a noexec tmpfs on $1, copy psutil ($2) there, run the rest.
NOEXEC = 'm=$1; src=$2; shift 2; mount -t tmpfs -o noexec,size=64m tmpfs "$m" && cp -R "$src" "$m"/ && exec "$@"'
PROBE = "import json; from fsm_pilot import procinfo; print(json.dumps([procinfo.SOURCE, procinfo.UNAVAILABLE]))"
#: The payload: burns 1 s of CPU, holds 40 MiB, says "ready", waits for the gate.
HOLD = f"""
import sys, time
from pathlib import Path
while time.process_time() < 1.0:
    pass
block = bytearray({40 * MIB})
block[::4096] = b"x" * len(block[::4096])
Path(sys.argv[1]).touch()
while not Path(sys.argv[2]).exists():
    time.sleep(0.02)
"""


def copy_psutil(root: Path) -> Path:
    """``root/psutil``: a copy of the real package (no bytecode caches); returns ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copytree(PSUTIL, root / "psutil", ignore=shutil.ignore_patterns("__pycache__"))
    return root


def garbage_extension(root: Path) -> Path:
    """A psutil copy whose compiled extension is bytes no dynamic loader accepts."""
    extensions = sorted((copy_psutil(root) / "psutil").glob("_psutil_*.so"))
    assert extensions, f"no compiled extension in {PSUTIL}"
    for ext in extensions:
        ext.write_bytes(b"this is not an ELF shared object\n" * 64)
    return root


def env_with(path: Path | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FSM_PILOT_")}
    if path is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(path), *filter(None, [env.get("PYTHONPATH")])])
    return env


def in_noexec_namespace(mount: Path, argv: Sequence[str]) -> list[str]:
    """``argv`` run where ``mount`` is a fresh noexec tmpfs holding a copy of the intact psutil."""
    mount.mkdir(parents=True, exist_ok=True)
    return ["unshare", "-m", "--propagation", "private", "sh", "-c", NOEXEC, "sh", str(mount), str(PSUTIL), *argv]


def noexec_unavailable() -> str | None:
    """Why the noexec cases cannot run here, or None."""
    if os.geteuid() != 0:
        return "mounting a noexec tmpfs needs root (CI runs as root)"
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-m", "true"], check=False).returncode:
        return "no private mount namespace here (unshare -m failed)"
    return None


def probe(argv_prefix: Sequence[str], pythonpath: Path) -> tuple[str, str | None]:
    out = subprocess.run([*argv_prefix, sys.executable, "-c", PROBE], env=env_with(pythonpath), cwd="/",
                         capture_output=True, text=True, check=True, timeout=60)
    source, why = json.loads(out.stdout)
    return source, why


def test_a_garbage_extension_or_damaged_source_falls_back_and_an_intact_copy_does_not(tmp_path: Path) -> None:
    assert probe([], copy_psutil(tmp_path / "intact")) == ("psutil", None)  # the copy itself is good
    source, why = probe([], garbage_extension(tmp_path / "garbage"))
    assert source == "/proc" and why is not None and why.startswith("ImportError") and "invalid ELF header" in why
    damaged = copy_psutil(tmp_path / "damaged")
    init = damaged / "psutil" / "__init__.py"
    init.write_text(init.read_text() + "\ndef (\n")
    source, why = probe([], damaged)
    assert source == "/proc" and why is not None and why.startswith("SyntaxError")


def test_psutil_on_a_noexec_mount_falls_back(tmp_path: Path) -> None:
    reason = noexec_unavailable()
    if reason:
        pytest.skip(reason)
    mount = tmp_path / "noexec"
    source, why = probe(in_noexec_namespace(mount, []), mount)
    assert source == "/proc" and why is not None and "failed to map segment" in why, why
    assert not any(mount.iterdir()), "the tmpfs must have gone with its namespace"


def _running_updates(server: Dispatcher, panda_id: int) -> int:
    [(count,)] = server.query("SELECT COUNT(*) FROM job_history WHERE PandaID = ? AND event = 'update' "
                              "AND state = 'running' AND outcome = 'accepted'", panda_id)
    return int(count)


def _pilot_cmd(launch: Launch, url: str) -> list[str]:
    return [sys.executable, "-m", "fsm_pilot", "run", "-q", "TEST_QUEUE", "-j", "managed", "-t", "-a",
            str(launch.dir), "--url", url, "--heartbeat-interval", "0.5", "--check-interval", "0.1",
            "--kill-grace", "0.5", "--getjob-wait", "0", "--timefloor", "0", "--min-free-disk", "1000"]


@pytest.mark.parametrize("failure", ["garbage", "noexec"])
def test_a_pilot_without_psutil_runs_the_job_and_reports_its_usage(
        tmp_path: Path, dispatcher: Dispatcher, failure: str) -> None:
    if failure == "noexec" and (reason := noexec_unavailable()):
        pytest.skip(reason)
    ready, gate, script = tmp_path / "ready", tmp_path / "gate", tmp_path / "hold.py"
    script.write_text(HOLD)
    inner = shlex.join([sys.executable, str(script), str(ready), str(gate)])
    [panda_id] = dispatcher.submit(job_spec(f"-c {shlex.quote(inner + '; echo done')}"))
    launch = Launch(tmp_path / "pilot")
    launch.dir.mkdir(parents=True)
    cmd = _pilot_cmd(launch, dispatcher.url)
    if failure == "garbage":
        path = garbage_extension(tmp_path / "site")
    else:
        path = tmp_path / "noexec"
        cmd = in_noexec_namespace(path, cmd)
    proc = started(subprocess.Popen(cmd, cwd=launch.dir, env=env_with(path), text=True,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
    wait_for(ready.exists, timeout=60, what="the payload holding its memory")
    # Heartbeats are sent from the watch loop right after a pass of the due checks; with the memory
    # check every 0.1 s and heartbeats every 0.5 s, two heartbeats sent after "ready" enclose a memory
    # sample. The first update counted after "ready" may have been sent before it, hence + 3.
    seen = _running_updates(dispatcher, panda_id)
    wait_for(lambda: _running_updates(dispatcher, panda_id) >= seen + 3, timeout=60,
             what="a memory sample taken after the payload allocated")
    gate.touch()
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert dispatcher.status(panda_id) == {panda_id: "finished"}
    [(fields,)] = dispatcher.query("SELECT fields FROM job_history WHERE PandaID = ? AND state = 'finished'",
                                   panda_id)
    final = json.loads(fields)
    assert int(final["max_rss"]) >= 40 * 1024, final  # kB, the holder's 40 MiB
    assert int(final["max_vmem"]) >= int(final["max_rss"]) and int(final["max_pss"]) > 0, final
    assert int(final["avg_rss"]) > 0 and int(final["cpu_consumption_time"]) >= 1, final
    assert "actualCoreCount=" in final["job_metrics"], final
    pilot_dir = launch.pilot_dir()
    assert pilot_dir is not None
    lines = [json.loads(line) for line in (pilot_dir / "pilot.log").read_text().splitlines() if line.strip()]
    warnings = [line for line in lines if line.get("event") == WARNING]
    assert len(warnings) == 1, warnings
    assert warnings[0]["level"] == "warning"
    assert ("invalid ELF header" if failure == "garbage" else "failed to map segment") in warnings[0]["error"]
    assert err.count(WARNING) == 1, err
    [node] = [line for line in lines if line.get("event") == "worker node"]
    assert node["memory_total_mb"] == psutil.virtual_memory().total / 2**20, node  # MemTotal, exact
    assert node["cpu_count"] == psutil.cpu_count(logical=True) and node["memory_available_mb"] > 0, node
