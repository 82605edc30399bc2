"""Stage-in through copytools that run as processes: external tools, deadlines, signals.

No XRootD, WebDAV or Rucio server can exist here, so the external-tool path is
exercised with a fake tool (tests/fixtures/stagein_fake_copytool.sh) installed
on PATH as xrdcp, gfal-copy or rucio: it records its argv and copies a local
file, fails, or hangs. Timeouts and signals use real blocked copies: cp reading
a FIFO nobody writes, and the hanging fake tool with a child of its own.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from fsm_pilot.errors import PilotError, PilotFailure
from fsm_pilot.stagein import LOG_NAME, Interrupted
from tests.storage_helpers import Storage
from tests.test_stagein_helpers import (
    SCOPE,
    adler32,
    children,
    install_fake,
    job_dir,
    no_scratch_left,
    put_replica,
    replica_path,
    run,
    spec_for,
    use_copytools,
)

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux-only pilot")

DATA = b"0123456789abcdef" * 4096
LFN = "AOD.54321._000007.pool.root.1"
DEADLINE = 10.0  # generous limit for conditions the tests wait for

# Holds the FIFO open for writing once a reader (the blocked cp) has opened it, then writes one byte to
# the wakeup fd it inherited: the signal arrives while the copy is certainly blocked.
SIGNALLER = """
import os, sys, time
fifo, wakeup = sys.argv[1], int(sys.argv[2])
deadline = time.monotonic() + 10.0
while True:
    try:
        held = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)  # ENXIO until a reader has it open
        break
    except OSError:
        if time.monotonic() > deadline:
            sys.exit(1)
        time.sleep(0.01)
os.write(wakeup, b"s")
sys.stdin.read()  # keep the FIFO open (cp stays blocked) until the test closes stdin
"""


@pytest.fixture
def job(tmp_path: Path) -> Path:
    return job_dir(tmp_path)


@pytest.fixture
def fake_bin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A bin dir first on PATH, and the fake tool's files (its argv, the pids it started)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_ARGV", str(tmp_path / "argv"))
    monkeypatch.setenv("FAKE_PIDS", str(tmp_path / "pids"))
    yield bin_dir


def _root_endpoint(storage: Storage) -> None:
    """Serve the endpoint as root://localhost (the fake xrdcp reads the path behind it)."""
    storage[1]["LOCAL_DISK"]["arprotocols"]["read_lan"][0]["endpoint"] = "root://localhost"


def _argv(fake_bin: Path) -> list[str]:
    """The arguments the fake tool was given (``$FAKE_ARGV``, next to the bin dir)."""
    return (fake_bin.parent / "argv").read_text().splitlines()


@pytest.mark.parametrize("case", [("xrdcp", "xrdcp"), ("gfal", "gfal-copy"), ("gfalcopy", "gfal-copy")])
def test_external_tool_copies(storage: Storage, job: Path, fake_bin: Path, case: tuple[str, str]) -> None:
    tool, command = case
    exe = install_fake(fake_bin, command)
    _root_endpoint(storage)
    use_copytools(storage, tool)
    replica = put_replica(storage[2], LFN, DATA)
    [item] = run(job, [spec_for(LFN, DATA)], storage).files
    assert (job / LFN).read_bytes() == DATA
    # XRootD URLs have the double slash before the path (xrdcp refuses root://host/path as relative)
    assert (item.copytool, item.source, item.adler32) == (tool, f"root://localhost/{replica}", adler32(DATA))
    argv = _argv(fake_bin)
    assert argv[-2] == f"root://localhost/{replica}"
    assert Path(argv[-1].removeprefix("file://")).parent.name.startswith(".stagein-")  # landed in scratch first
    if command == "xrdcp":
        assert argv[:2] == ["--nopbar", "--force"]
    else:
        assert argv[:5] == ["--verbose", "--force", "--timeout", "300", "--checksum"]
        assert argv[5] == f"adler32:{adler32(DATA)}"
    assert f"{exe}" in (job / LOG_NAME).read_text()  # the command line is logged
    assert no_scratch_left(job)


def test_rucio_download(storage: Storage, job: Path, fake_bin: Path) -> None:
    install_fake(fake_bin, "rucio")
    use_copytools(storage, "rucio")
    replica = put_replica(storage[2], LFN, DATA)
    [item] = run(job, [spec_for(LFN, DATA)], storage).files
    assert (job / LFN).read_bytes() == DATA and item.copytool == "rucio"
    argv = _argv(fake_bin)
    assert argv[:2] == ["download", "--dir"] and Path(argv[2]).parent == job
    assert argv[3:] == [
        "--no-subdir", "--rses", "LOCAL_DISK", "--pfn", f"file://localhost{replica}",
        "--transfer-timeout", "300", f"{SCOPE}:{LFN}",
    ]


@pytest.mark.parametrize("case", [
    ("fail", PilotError.STAGEINFAILED, "[3010] Unable to open file; permission denied"),
    ("missing", PilotError.MISSINGINPUTFILE, "[3011] No such file or directory"),
])
def test_external_tool_fails(
    storage: Storage, job: Path, fake_bin: Path, monkeypatch: pytest.MonkeyPatch, case: tuple[str, PilotError, str]
) -> None:
    """A tool exiting 54 (xrdcp: the server answered with an error); Pilot 3 reads "No such file" as missing."""
    mode, error, text = case
    install_fake(fake_bin, "xrdcp")
    monkeypatch.setenv("FAKE_MODE", mode)
    _root_endpoint(storage)
    use_copytools(storage, "xrdcp")
    put_replica(storage[2], LFN, DATA)
    with pytest.raises(PilotFailure) as failure:
        run(job, [spec_for(LFN, DATA)], storage)
    assert failure.value.error == error
    assert failure.value.diag.startswith("xrdcp exited with code 54: Run: [ERROR]")
    assert text in failure.value.diag
    assert not os.path.lexists(job / LFN) and no_scratch_left(job)


def test_failed_tool_then_next_copytool(
    storage: Storage, job: Path, fake_bin: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_fake(fake_bin, "rucio")
    monkeypatch.setenv("FAKE_MODE", "fail")
    use_copytools(storage, "rucio", "cp")
    put_replica(storage[2], LFN, DATA)
    assert [item.copytool for item in run(job, [spec_for(LFN, DATA)], storage).files] == ["cp"]


def test_scheme_the_copytool_cannot_read(storage: Storage, job: Path) -> None:
    _root_endpoint(storage)
    use_copytools(storage, "cp")
    with pytest.raises(PilotFailure) as failure:
        run(job, [spec_for(LFN, DATA)], storage)
    assert failure.value.error == PilotError.NOSTORAGEPROTOCOL
    assert "cp cannot read root://localhost" in failure.value.diag


def _fifo_replica(storage: Storage) -> Path:
    fifo = replica_path(storage[2], LFN)
    fifo.parent.mkdir(parents=True)
    os.mkfifo(fifo)
    return fifo


def test_cp_past_its_deadline_is_killed(storage: Storage, job: Path) -> None:
    """cp blocks opening a FIFO nobody writes, as on a hung mount: STAGEINTIMEOUT, nothing left running."""
    use_copytools(storage, "cp")
    _fifo_replica(storage)
    before = children()
    with pytest.raises(PilotFailure) as failure:
        run(job, [spec_for(LFN, DATA)], storage, copy_timeout=lambda size: 0.2)
    assert failure.value.error == PilotError.STAGEINTIMEOUT
    assert "not done within 0.2 s, copy killed" in failure.value.diag
    assert children() - before == set()
    assert not os.path.lexists(job / LFN) and no_scratch_left(job)


def _racing_clock(condition: Callable[[], bool]) -> Callable[[], float]:
    """A clock that runs normally until ``condition`` holds, then leaps 10^6 s at every reading.

    Every reading leaps, not just the first, so a deadline set after ``condition``
    became true also passes at the next reading.
    """
    leaps = 0

    def clock() -> float:
        nonlocal leaps
        leaps += condition()
        return time.monotonic() + leaps * 1e6

    return clock


def test_hanging_tool_tree_is_killed(
    storage: Storage, job: Path, tmp_path: Path, fake_bin: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The deadline passes only once the fake xrdcp and its child both run: both must be killed."""
    install_fake(fake_bin, "xrdcp")
    monkeypatch.setenv("FAKE_MODE", "hang")
    _root_endpoint(storage)
    use_copytools(storage, "xrdcp")
    put_replica(storage[2], LFN, DATA)
    pids_file = tmp_path / "pids"

    def tree_started() -> bool:
        return pids_file.exists() and len(pids_file.read_text().split()) == 2

    with pytest.raises(PilotFailure) as failure:
        run(job, [spec_for(LFN, DATA)], storage, clock=_racing_clock(tree_started), copy_timeout=lambda size: 30.0)
    assert failure.value.error == PilotError.STAGEINTIMEOUT
    pids = [int(pid) for pid in pids_file.read_text().split()]
    assert len(pids) == 2
    assert not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE for pid in pids)
    assert no_scratch_left(job)


def test_signal_interrupts_a_blocked_copy(storage: Storage, job: Path) -> None:
    """A byte on the wakeup fd while cp is blocked: Interrupted, cp killed, long before its deadline."""
    use_copytools(storage, "cp")
    fifo = _fifo_replica(storage)
    before = children()
    read_end, write_end = os.pipe()
    signaller = subprocess.Popen(
        [sys.executable, "-c", SIGNALLER, str(fifo), str(write_end)], pass_fds=(write_end,), stdin=subprocess.PIPE
    )
    try:
        with pytest.raises(Interrupted):
            run(job, [spec_for(LFN, DATA)], storage, wakeup_fd=read_end, copy_timeout=lambda size: 60.0)
        assert os.read(read_end, 1) == b"s"  # stage_in left the byte for the signal module to drain
    finally:
        assert signaller.stdin is not None
        signaller.stdin.close()
        signaller.wait(DEADLINE)
        os.close(read_end)
        os.close(write_end)
    assert signaller.returncode == 0
    assert children() - before == set()
    assert not os.path.lexists(job / LFN) and no_scratch_left(job)


def test_pending_signal_stops_before_copying(storage: Storage, job: Path) -> None:
    use_copytools(storage, "cp")
    put_replica(storage[2], LFN, DATA)
    read_end, write_end = os.pipe()
    try:
        os.write(write_end, b"s")
        with pytest.raises(Interrupted):
            run(job, [spec_for(LFN, DATA)], storage, wakeup_fd=read_end)
    finally:
        os.close(read_end)
        os.close(write_end)
    assert not os.path.lexists(job / LFN) and not (job / LOG_NAME).exists()
