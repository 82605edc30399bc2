"""Stage-out of one file to a real XRootD storage element, through the real clients.

Each test runs :func:`fsm_pilot.stageout.put` (what the pilot calls for every
output and the log) against Debian's xrootd on loopback: the stored bytes, the
adler32 the server itself reports, a checksum mismatch (the replica removed), a
dead and a stalled server, and a signal during a copy.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from fsm_pilot.errors import PilotError, PilotFailure
from fsm_pilot.stageout import Copying, Interrupted, destination, put
from fsm_pilot.storage.paths import deterministic_path
from tests.xrootd_se import StorageElement

SCOPE = "test"


def _dest(se: StorageElement, copytool: str, *schemes: str) -> Any:
    protocols = [{"endpoint": se.url(s).rstrip("/"), "path": "/rucio", "flavour": s.upper()} for s in schemes]
    ddm = {"SE": {"is_deterministic": True, "arprotocols": {"write_lan": protocols}}}
    return destination({"astorages": {"pw": ["SE"]}, "acopytools": {"pw": [copytool]}}, ddm, "pw", None)


def _copying(se: StorageElement, work: Path, **extra: Any) -> Copying:
    settings: dict[str, Any] = {"timeout_base": 60.0, "bindings": False, **extra}
    return Copying(cwd=work, env={**os.environ, **se.client_env()}, **settings)


def _server_adler32(se: StorageElement, lfn: str) -> str:
    """What the server reports for the stored file (it computes it itself)."""
    query = subprocess.run(["xrdfs", f"127.0.0.1:{se.port}", "query", "checksum",
                            f"/rucio/{deterministic_path(SCOPE, lfn)}"], capture_output=True, text=True,
                           env={**os.environ, **se.client_env()}, timeout=60, check=True)
    kind, value = query.stdout.split()
    assert kind == "adler32"
    return value


def _stored(se: StorageElement, lfn: str) -> Path:
    return se.data / "rucio" / deterministic_path(SCOPE, lfn)


def _copies_running(marker: str) -> list[psutil.Process]:
    """Live processes whose command line names ``marker`` (a unique lfn): a copy left behind."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if marker in cmdline and proc.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(proc)
    return found


@pytest.fixture
def work(tmp_path: Path) -> Path:
    (tmp_path / "job").mkdir()
    return tmp_path / "job"


def _output(work: Path, lfn: str, size: int = 3_000_000) -> tuple[Path, bytes]:
    data = os.urandom(size)
    (work / lfn).write_bytes(data)
    return work / lfn, data


@pytest.mark.parametrize(("copytool", "scheme"), [("xrdcp", "root"), ("xrdcp", "roots"), ("gfalcopy", "davs"),
                                                  ("gfal", "https"), ("gfal", "root")])
def test_stored_and_verified_by_the_servers_checksum(storage_element: StorageElement, work: Path,
                                                     copytool: str, scheme: str) -> None:
    se = storage_element
    lfn = f"out.{copytool}.{scheme}.dat"
    src, data = _output(work, lfn)
    staged = put(_copying(se, work), _dest(se, copytool, scheme), src, scope=SCOPE, lfn=lfn, guid="G1",
                 within=work)
    adler = f"{zlib.adler32(data):08x}"
    assert _stored(se, lfn).read_bytes() == data
    assert (staged.fsize, staged.adler32, _server_adler32(se, lfn)) == (len(data), adler, adler)
    slash = "//" if scheme.startswith("root") else "/"
    assert staged.surl == f"{se.url(scheme).rstrip('/')}{slash}rucio/{deterministic_path(SCOPE, lfn)}"
    assert staged.endpoint == "SE"
    assert f"{copytool} (" in (work / "stageout.log").read_text()


MISMATCHES = {
    "xrdcp": ("root", "xrdcp exited with code 53: Run: [ERROR] CheckSum error", "the copytool had removed the replica"),
    "gfalcopy": ("davs", "the storage element reports adler32 {real}, the file has 0badc0de",
                 "the replica was removed"),
}


@pytest.mark.parametrize("copytool", list(MISMATCHES))
def test_checksum_mismatch_removes_the_replica(storage_element: StorageElement, work: Path, copytool: str) -> None:
    """The file's adler32 is given wrong (as if the file changed after it was taken): every copy is removed.

    xrdcp is given the value and compares the server's itself (``--rm-bad-cksum`` removes the replica; the
    pilot's removal then finds nothing); gfal-copy's replica is compared and removed by the pilot.
    """
    se = storage_element
    scheme, why, removed = MISMATCHES[copytool]
    lfn = f"bad.{copytool}.dat"
    src, data = _output(work, lfn)
    with pytest.raises(PilotFailure) as excinfo:
        put(_copying(se, work), _dest(se, copytool, scheme), src, scope=SCOPE, lfn=lfn, guid="G1",
            expected=(len(data), "0badc0de"))
    assert excinfo.value.error is PilotError.PUTADMISMATCH
    assert why.format(real=f"{zlib.adler32(data):08x}") in excinfo.value.diag
    assert excinfo.value.diag.endswith(removed)
    assert not _stored(se, lfn).exists()
    log = (work / "stageout.log").read_text()
    assert log.count(" rm ") + log.count("gfal-rm ") == 2, log  # two attempts, each replica removed


@pytest.mark.parametrize(("copytool", "scheme", "text"), [("xrdcp", "root", "Connection error"),
                                                          ("gfalcopy", "davs", "Could not connect")])
def test_dead_server_fails_at_once(storage_element: StorageElement, work: Path, copytool: str, scheme: str,
                                   text: str) -> None:
    se = storage_element
    dest = _dest(se, copytool, scheme)
    se.stop()
    src, _ = _output(work, "dead.dat", 1000)
    with pytest.raises(PilotFailure) as excinfo:
        put(_copying(se, work), dest, src, scope=SCOPE, lfn="dead.dat", guid="G1")
    assert excinfo.value.error is PilotError.UNREACHABLENETWORK
    assert text in excinfo.value.diag


@pytest.mark.parametrize(("copytool", "scheme"), [("xrdcp", "root"), ("gfal", "root")])
def test_a_directory_the_server_cannot_write_is_not_retried(storage_element: StorageElement, work: Path,
                                                            copytool: str, scheme: str) -> None:
    (storage_element.data / "rucio").mkdir(mode=0o555)  # the server cannot create the replica's directories
    src, _ = _output(work, "denied.dat", 1000)
    with pytest.raises(PilotFailure) as excinfo:
        put(_copying(storage_element, work), _dest(storage_element, copytool, scheme), src, scope=SCOPE,
            lfn="denied.dat", guid="G1")
    assert excinfo.value.error is PilotError.STAGEOUTAUTHENTICATIONFAILURE
    assert "permission denied" in excinfo.value.diag
    assert (work / "stageout.log").read_text().count("--- ") == 1  # one attempt: another would fail alike


@pytest.fixture
def stalled(storage_element: StorageElement) -> Iterator[StorageElement]:
    storage_element.stall()
    yield storage_element
    storage_element.resume()


@pytest.mark.parametrize(("copytool", "scheme"), [("xrdcp", "root"), ("gfalcopy", "davs")])
def test_stalled_server_is_given_up_on_at_the_pilots_deadline(stalled: StorageElement, work: Path,
                                                               copytool: str, scheme: str) -> None:
    lfn = f"stalled.{copytool}.dat"
    src, _ = _output(work, lfn, 1000)
    with pytest.raises(PilotFailure) as excinfo:
        put(_copying(stalled, work, timeout_base=1.0), _dest(stalled, copytool, scheme), src, scope=SCOPE,
            lfn=lfn, guid="G1")
    assert excinfo.value.error is PilotError.STAGEOUTTIMEOUT
    assert "not done within 1 s, killed" in excinfo.value.diag
    assert _copies_running(lfn) == []


@pytest.mark.parametrize(("copytool", "scheme"), [("xrdcp", "root"), ("gfalcopy", "davs")])
def test_a_retry_cures_a_transient_stall(stalled: StorageElement, work: Path, copytool: str, scheme: str) -> None:
    """The first attempt runs into the deadline on the stalled server; the server comes back while the second
    attempt is under way (resumed from the heartbeat hook once the log shows it started): stored and verified."""
    lfn = f"transient.{copytool}.dat"
    src, data = _output(work, lfn, 1000)
    log = work / "stageout.log"

    def resume_once_retried() -> None:
        if log.exists() and log.read_text().count("--- ") >= 2:
            stalled.resume()

    run = _copying(stalled, work, timeout_base=3.0, tick=resume_once_retried)
    staged = put(run, _dest(stalled, copytool, scheme), src, scope=SCOPE, lfn=lfn, guid="G1")
    assert staged.adler32 == f"{zlib.adler32(data):08x}"
    assert _stored(stalled, lfn).read_bytes() == data
    text = log.read_text()
    assert text.count("--- ") >= 2, text  # the copy twice (gfal-copy's checksum query comes on top)
    assert _copies_running(lfn) == []


def _signal_on_first_tick(write_fd: int) -> Any:
    def tick() -> None:
        os.write(write_fd, b"\0")  # what the signal module's handler does when a signal arrives
    return tick


def test_a_signal_kills_the_copy_in_flight(stalled: StorageElement, work: Path) -> None:
    lfn = "signalled.dat"
    src, _ = _output(work, lfn, 1000)
    read_fd, write_fd = os.pipe()
    try:
        run = _copying(stalled, work, wakeup_fd=read_fd, tick=_signal_on_first_tick(write_fd))
        with pytest.raises(Interrupted, match="killed"):
            put(run, _dest(stalled, "xrdcp", "root"), src, scope=SCOPE, lfn=lfn, guid="G1")
    finally:
        os.close(read_fd)
        os.close(write_fd)
    assert _copies_running(lfn) == []
    assert "xrdcp --nopbar" in (work / "stageout.log").read_text()  # it had started


def test_a_copy_that_must_finish_outlives_the_signal(storage_element: StorageElement, work: Path) -> None:
    lfn = "log.tgz"
    src, data = _output(work, lfn, 1000)
    read_fd, write_fd = os.pipe()
    try:
        run = _copying(storage_element, work, wakeup_fd=read_fd, tick=_signal_on_first_tick(write_fd),
                       must_finish=True)
        os.write(write_fd, b"\0")  # a signal came before the copy started
        staged = put(run, _dest(storage_element, "xrdcp", "root"), src, scope=SCOPE, lfn=lfn, guid="G1")
    finally:
        os.close(read_fd)
        os.close(write_fd)
    assert staged.adler32 == f"{zlib.adler32(data):08x}" and run.signalled


def test_after_a_signal_a_copy_that_must_finish_gets_the_stopping_budget(stalled: StorageElement,
                                                                          work: Path) -> None:
    src, _ = _output(work, "late.log.tgz", 1000)
    run = _copying(stalled, work, must_finish=True, signalled=True, stopping=1.0, timeout_base=600)
    with pytest.raises(PilotFailure) as excinfo:
        put(run, _dest(stalled, "xrdcp", "root"), src, scope=SCOPE, lfn="late.log.tgz", guid="G1")
    assert excinfo.value.error is PilotError.STAGEOUTTIMEOUT
    assert "not done within 1 s" in excinfo.value.diag


def test_a_file_endpoint_in_the_list_is_written_by_mv(storage_element: StorageElement, work: Path,
                                                      tmp_path: Path) -> None:
    """mv first: the queue's file:// protocol; the root:// one is there for xrdcp."""
    protocols = [{"endpoint": "file://localhost", "path": str(tmp_path / "se"), "flavour": "POSIX"},
                 {"endpoint": storage_element.url("root").rstrip("/"), "path": "/rucio", "flavour": "XROOTD"}]
    ddm = {"SE": {"is_deterministic": True, "arprotocols": {"write_lan": protocols}}}
    dest = destination({"astorages": {"pw": ["SE"]}, "acopytools": {"pw": ["mv", "xrdcp"]}}, ddm, "pw", None)
    src, data = _output(work, "mixed.dat", 1000)
    staged = put(_copying(storage_element, work), dest, src, scope=SCOPE, lfn="mixed.dat", guid="G1")
    assert staged.surl.startswith("file://localhost/")
    assert (tmp_path / "se" / deterministic_path(SCOPE, "mixed.dat")).read_bytes() == data


def test_the_next_copytool_is_tried_and_the_first_error_reported(storage_element: StorageElement,
                                                                 work: Path) -> None:
    """xrdcp cannot write davs://; gfal-copy can: the file is stored, by the second copytool."""
    protocols = [{"endpoint": storage_element.url("davs").rstrip("/"), "path": "/rucio", "flavour": "WEBDAV"}]
    ddm = {"SE": {"is_deterministic": True, "arprotocols": {"write_lan": protocols}}}
    dest = destination({"astorages": {"pw": ["SE"]}, "acopytools": {"pw": ["xrdcp", "gfalcopy"]}}, ddm, "pw", None)
    src, data = _output(work, "second.dat", 1000)
    staged = put(_copying(storage_element, work), dest, src, scope=SCOPE, lfn="second.dat", guid="G1")
    assert staged.surl.startswith("davs://") and _stored(storage_element, "second.dat").read_bytes() == data
    only_xrdcp = destination({"astorages": {"pw": ["SE"]}, "acopytools": {"pw": ["xrdcp"]}}, ddm, "pw", None)
    with pytest.raises(PilotFailure) as excinfo:
        put(_copying(storage_element, work), only_xrdcp, src, scope=SCOPE, lfn="second.dat", guid="G1")
    assert excinfo.value.error is PilotError.NOSTORAGEPROTOCOL


SYSTEM_PYTHON = "/usr/bin/python3"
BINDINGS = Path(__file__).parent.parent / "fsm_pilot" / "stageout" / "bindings.py"


def _bindings_importable() -> bool:
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        return False
    probe = subprocess.run([SYSTEM_PYTHON, "-c", "import gfal2; from XRootD import client"], capture_output=True,
                           check=False)
    return probe.returncode == 0


@pytest.mark.skipif(not _bindings_importable(), reason="/usr/bin/python3 cannot import gfal2 and XRootD "
                                                      "(apt-get install python3-gfal2 python3-xrootd)")
@pytest.mark.parametrize(("library", "scheme"), [("xrootd", "root"), ("gfal2", "davs"), ("gfal2", "root")])
def test_bindings_child_puts_reports_and_removes(storage_element: StorageElement, work: Path, library: str,
                                                 scheme: str) -> None:
    se = storage_element
    src, data = _output(work, "b.dat", 100_000)
    url = f"{se.url(scheme)}/rucio/b.{library}.dat"
    env = {**os.environ, **se.client_env()}

    def step(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([SYSTEM_PYTHON, str(BINDINGS), library, *args, "30"], capture_output=True, text=True,
                              env=env, timeout=60, check=False)

    assert step("put", str(src), url).stdout == f"adler32 {zlib.adler32(data):08x}\n"
    assert (se.data / "rucio" / f"b.{library}.dat").read_bytes() == data
    assert step("checksum", url).stdout == f"adler32 {zlib.adler32(data):08x}\n"
    assert step("remove", url).returncode == 0
    gone = step("checksum", url)
    assert gone.returncode != 0 and "no such file" in gone.stderr.lower()
    assert shutil.which("xrdcp")  # the commands are there too: the bindings are chosen, not needed


def _bytes_read() -> int:
    """What this thread has read so far (``rchar``); /proc/self/io would add the reaped copy children's."""
    for line in Path("/proc/thread-self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar in /proc/self/io")


@pytest.mark.parametrize(("copytool", "scheme", "reads"), [("xrdcp", "root", 0), ("gfalcopy", "davs", 1)])
def test_the_pilot_reads_an_output_at_most_once_and_a_known_one_never(
        storage_element: StorageElement, work: Path, copytool: str, scheme: str, reads: int) -> None:
    """gfal-copy: the pilot reads the file once, while it is copied; xrdcp checksums it itself as it sends it."""
    size = 16 * 1024 * 1024
    src, data = _output(work, "once.dat", size)
    dest = _dest(storage_element, copytool, scheme)
    before = _bytes_read()
    staged = put(_copying(storage_element, work), dest, src, scope=SCOPE, lfn="once.dat", guid="G1")
    once = _bytes_read() - before
    before = _bytes_read()
    put(_copying(storage_element, work), dest, src, scope=SCOPE, lfn="known.dat", guid="G1",
        expected=(staged.fsize, staged.adler32))  # the log tarball's case: taken as it was written
    never = _bytes_read() - before
    assert reads * size <= once < (reads + 0.1) * size
    assert never < 0.1 * size
    assert _stored(storage_element, "known.dat").read_bytes() == data
