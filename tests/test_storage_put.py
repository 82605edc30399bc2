"""Storage: verified stage-out of files, the log tarball.

Everything runs on real files in tmp_path; expected values are published
constants or taken from Pilot 3's captured final update, never recomputed.
"""

from __future__ import annotations

import logging
import os
import stat
import tarfile
from pathlib import Path

import pytest

from fsm_pilot.errors import PilotError, PilotFailure
from fsm_pilot.storage import (
    Endpoint,
    StagedFile,
    make_log_tarball,
    put_file,
    tarball_root,
    write_endpoint,
)
from fsm_pilot.storage import local as local_module
from tests.storage_helpers import Storage, code

# --- put_file --------------------------------------------------------------------------------


@pytest.fixture
def job(tmp_path: Path) -> Path:
    """A job directory with one output, ``out.txt`` = b"Wikipedia" (9 bytes, adler32 11e60398)."""
    job_dir = tmp_path / "job"
    job_dir.mkdir()
    (job_dir / "out.txt").write_bytes(b"Wikipedia")
    return job_dir


def _endpoint(storage: Storage) -> Endpoint:
    queuedata, ddm, _ = storage
    return write_endpoint(queuedata, ddm, "pw")


def test_put_file(storage: Storage, job: Path) -> None:
    se = storage[2]
    staged = put_file(job / "out.txt", _endpoint(storage), "test", "out.txt", "GUID-1", within=job)
    dest = se / "test/2c/e7/out.txt"
    surl = f"file://localhost{se}/test/2c/e7/out.txt"
    assert staged == StagedFile("out.txt", "test", "GUID-1", surl, dest, 9, "11e60398", "LOCAL_DISK")
    assert staged.report() == {
        "guid": "GUID-1",
        "fsize": 9,
        "adler32": "11e60398",
        "surl": surl,
        "endpoint": "LOCAL_DISK",
    }
    assert dest.read_bytes() == b"Wikipedia"
    assert os.listdir(dest.parent) == ["out.txt"]  # no temp file left behind
    assert stat.S_IMODE(dest.stat().st_mode) == 0o644


def test_put_file_with_expected_checksum(storage: Storage, job: Path) -> None:
    staged = put_file(job / "out.txt", _endpoint(storage), "test", "out.txt", "G", expected=(9, "11E60398"))
    assert (staged.fsize, staged.adler32) == (9, "11e60398")


@pytest.mark.parametrize("expected", [(9, "deadbeef"), (10, "11e60398")])
def test_put_file_expected_mismatch(storage: Storage, job: Path, expected: tuple[int, str]) -> None:
    with pytest.raises(PilotFailure) as excinfo:
        put_file(job / "out.txt", _endpoint(storage), "test", "out.txt", "G", expected=expected)
    assert code(excinfo) is PilotError.PUTADMISMATCH
    assert os.listdir(storage[2] / "test/2c/e7") == []  # the wrong replica is removed


def _make_source(job: Path, kind: str) -> Path:
    """Source files that must be refused; ``outside`` is a file beside the job dir."""
    outside = job.parent / "outside.txt"
    outside.write_bytes(b"secret")
    src = job / "src"
    if kind == "empty":
        src.touch()
    elif kind == "directory":
        src.mkdir()
    elif kind == "escaping_symlink":
        src.symlink_to(outside)
    elif kind == "dangling_symlink":
        src.symlink_to(job / "nothing")
    elif kind == "symlink_loop":
        src.symlink_to(src)
    return src


@pytest.mark.parametrize(
    ("kind", "error", "diag"),
    [
        ("missing", PilotError.MISSINGOUTPUTFILE, "does not exist"),
        ("empty", PilotError.EMPTYOUTPUTFILE, "is empty"),
        ("directory", PilotError.MISSINGOUTPUTFILE, "not a regular file"),
        ("escaping_symlink", PilotError.MISSINGOUTPUTFILE, "outside the job directory"),
        ("dangling_symlink", PilotError.MISSINGOUTPUTFILE, "does not exist"),
        ("symlink_loop", PilotError.MISSINGOUTPUTFILE, "cannot access output"),
    ],
)
def test_put_file_bad_source(storage: Storage, job: Path, kind: str, error: PilotError, diag: str) -> None:
    src = _make_source(job, kind)
    with pytest.raises(PilotFailure) as excinfo:
        put_file(src, _endpoint(storage), "test", "out.txt", "G", within=job)
    assert code(excinfo) is error
    assert diag in excinfo.value.diag
    assert not storage[2].exists()


def test_put_file_symlink_inside_job_dir(storage: Storage, job: Path) -> None:
    (job / "link").symlink_to(job / "out.txt")
    staged = put_file(job / "link", _endpoint(storage), "test", "out.txt", "G", within=job)
    assert staged.path.read_bytes() == b"Wikipedia"


@pytest.mark.parametrize("stored", [b"Wikipedio", b"Wiki"])
def test_put_file_detects_corruption(
    storage: Storage, job: Path, monkeypatch: pytest.MonkeyPatch, stored: bytes
) -> None:
    # Real storage corruption cannot be produced on demand, so the replica is
    # overwritten with wrong bytes right after the copy; verification must catch it.
    real_write = local_module._write_atomically

    def write_then_corrupt(src: Path, dest: Path) -> tuple[int, str]:
        copied = real_write(src, dest)
        dest.write_bytes(stored)
        return copied

    monkeypatch.setattr(local_module, "_write_atomically", write_then_corrupt)
    with pytest.raises(PilotFailure) as excinfo:
        put_file(job / "out.txt", _endpoint(storage), "test", "out.txt", "G")
    assert code(excinfo) is PilotError.PUTADMISMATCH
    assert "expected 9 bytes adler32 11e60398" in excinfo.value.diag
    assert os.listdir(storage[2] / "test/2c/e7") == []


def _no_copy(src: Path, out: object) -> None:
    raise AssertionError("an identical replica must not be copied again")


def test_put_file_is_idempotent(storage: Storage, job: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    endpoint = _endpoint(storage)
    first = put_file(job / "out.txt", endpoint, "test", "out.txt", "G")
    inode = first.path.stat().st_ino
    monkeypatch.setattr(local_module, "_copy", _no_copy)
    assert put_file(job / "out.txt", endpoint, "test", "out.txt", "G") == first
    assert first.path.stat().st_ino == inode


def test_put_file_overwrites_a_different_replica(storage: Storage, job: Path) -> None:
    dest = storage[2] / "test/2c/e7/out.txt"
    dest.parent.mkdir(parents=True)
    dest.write_bytes(b"stale")
    assert put_file(job / "out.txt", _endpoint(storage), "test", "out.txt", "G").path == dest
    assert dest.read_bytes() == b"Wikipedia"


@pytest.mark.parametrize("obstacle", ["root_is_a_file", "destination_is_a_directory"])
def test_put_file_os_error(storage: Storage, job: Path, obstacle: str) -> None:
    se = storage[2]
    if obstacle == "root_is_a_file":
        se.write_bytes(b"")
    else:
        (se / "test/2c/e7/out.txt/x").mkdir(parents=True)
    with pytest.raises(PilotFailure) as excinfo:
        put_file(job / "out.txt", _endpoint(storage), "test", "out.txt", "G")
    assert code(excinfo) is PilotError.STAGEOUTFAILED
    assert excinfo.value.diag.startswith(f"cannot write {se}/test/2c/e7/out.txt: [Errno")


def test_put_file_destination_escaping_endpoint(storage: Storage, job: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    storage[2].mkdir()
    (storage[2] / "test").symlink_to(elsewhere)
    with pytest.raises(PilotFailure) as excinfo:
        put_file(job / "out.txt", _endpoint(storage), "test", "out.txt", "G")
    assert code(excinfo) is PilotError.STAGEOUTFAILED
    assert "outside the endpoint path" in excinfo.value.diag
    assert list(elsewhere.iterdir()) == []


@pytest.mark.parametrize(
    ("endpoint", "lfn", "error"),
    [
        (Endpoint("E", "root://eos.example.org:1094", "/eos", True), "out.txt", PilotError.NOTIMPLEMENTED),
        (None, "../out.txt", PilotError.BADOUTPUTFILENAME),
    ],
)
def test_put_file_refusals(
    storage: Storage, job: Path, endpoint: Endpoint | None, lfn: str, error: PilotError
) -> None:
    with pytest.raises(PilotFailure) as excinfo:
        put_file(job / "out.txt", endpoint or _endpoint(storage), "test", lfn, "G")
    assert code(excinfo) is error


# --- log tarball -----------------------------------------------------------------------------


@pytest.fixture
def log_job(job: Path, tmp_path: Path) -> Path:
    """Job dir with outputs, an empty dir, inputs to exclude and symlinks pointing out."""
    (job / "sub").mkdir()
    (job / "sub/b.txt").write_bytes(b"beta")
    (job / "emptydir").mkdir()
    (job / "in.root").write_bytes(b"input")
    (job / "inputs").mkdir()
    (job / "inputs/x.root").write_bytes(b"input")
    (job / "pilot.log").write_bytes(b"stale copy")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside/secret.txt").write_bytes(b"secret")
    (job / "link").symlink_to(tmp_path / "outside/secret.txt")
    (job / "dirlink").symlink_to(tmp_path / "outside")
    (tmp_path / "pilot.log").write_bytes(b"log lines")
    return job


def test_log_tarball(log_job: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    tarball = make_log_tarball(
        log_job, tmp_path / "job.log.tgz", {"in.root", "inputs"}, [(tmp_path / "pilot.log", "pilot.log")]
    )
    assert tarball == tmp_path / "job.log.tgz"
    with tarfile.open(tarball, "r:gz") as tar:
        names = tar.getnames()
        assert sorted(names) == [
            "job.log",
            "job.log/emptydir",
            "job.log/out.txt",
            "job.log/pilot.log",
            "job.log/sub",
            "job.log/sub/b.txt",
        ]
        assert all(member.isreg() or member.isdir() for member in tar.getmembers())
        contents = {name: tar.extractfile(name) for name in ("job.log/out.txt", "job.log/pilot.log")}
        assert {name: f.read() for name, f in contents.items() if f} == {
            "job.log/out.txt": b"Wikipedia",
            "job.log/pilot.log": b"log lines",
        }
    skipped = sorted(r.getMessage() for r in caplog.records if "(symlink)" in r.getMessage())
    assert skipped == [
        f"log tarball: skipped {log_job.resolve()}/dirlink (symlink)",
        f"log tarball: skipped {log_job.resolve()}/link (symlink)",
    ]
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")] == []


def test_log_tarball_inside_job_dir(job: Path) -> None:
    tarball = job / "log.1._000001.job.log.tgz.1"
    tarball.write_bytes(b"an older attempt")
    make_log_tarball(job, tarball, ())
    with tarfile.open(tarball, "r:gz") as tar:
        assert tar.getnames() == ["log.1._000001.job.log", "log.1._000001.job.log/out.txt"]
    assert sorted(os.listdir(job)) == ["log.1._000001.job.log.tgz.1", "out.txt"]


@pytest.mark.parametrize(
    ("name", "root"),
    [("job.log.tgz", "job.log"), ("x.tar.gz", "x"), ("log.1._000001.job.log.tgz.2", "log.1._000001.job.log"),
     ("plain", "plain"), (".tgz", ".tgz")],
)  # fmt: skip
def test_tarball_root(name: str, root: str) -> None:
    assert tarball_root(name) == root


@pytest.mark.parametrize(
    ("job_name", "tarball_name", "extra"),
    [
        ("missing_job", "log.tgz", ("pilot.log", "pilot.log")),
        ("a_file", "log.tgz", ("pilot.log", "pilot.log")),
        ("job", "no_such_dir/log.tgz", ("pilot.log", "pilot.log")),
        ("job", "log.tgz", ("missing.log", "pilot.log")),
        ("job", "log.tgz", ("a_dir", "pilot.log")),
        ("job", "log.tgz", ("pilot.log", "../escape")),
        ("job", "log.tgz", ("pilot.log", "/abs")),
        ("job", "log.tgz", ("pilot.log", "")),
    ],
)
def test_log_tarball_errors(
    job: Path, tmp_path: Path, job_name: str, tarball_name: str, extra: tuple[str, str]
) -> None:
    (tmp_path / "a_file").write_bytes(b"x")
    (tmp_path / "a_dir").mkdir()
    (tmp_path / "pilot.log").write_bytes(b"log lines")
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(PilotFailure) as excinfo:
        make_log_tarball(tmp_path / job_name, tmp_path / tarball_name, (), [(tmp_path / extra[0], extra[1])])
    assert code(excinfo) is PilotError.LOGFILECREATIONFAILURE
    assert sorted(os.listdir(tmp_path)) == before  # no tarball, no temp file


def _bytes_read() -> int:
    """What this thread has read so far (``rchar``: every read(2), cached or not)."""
    for line in Path("/proc/thread-self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar in /proc/self/io")


def test_put_file_reads_the_source_once(storage: Storage, job: Path) -> None:
    """The source's checksum comes from the copy itself; only the replica is read back (2 reads, not 3)."""
    size = 16 * 1024 * 1024
    (job / "big.dat").write_bytes(os.urandom(size))
    before = _bytes_read()
    staged = put_file(job / "big.dat", _endpoint(storage), "test", "big.dat", "G", within=job)
    read = _bytes_read() - before
    assert staged.fsize == size
    assert 2 * size <= read < 2.2 * size
