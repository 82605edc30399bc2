"""Stage-in with real files: a file:// endpoint in tmp_path holding replicas at their deterministic paths.

Each built-in copytool end to end, every verification failure with its PanDA
code, copytool order and the first error, inputs already in place. External
tools, timeouts and signals are in test_stagein_tools.py.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from fsm_pilot.errors import PilotError, PilotFailure
from fsm_pilot.job import Checksum
from fsm_pilot.stagein import LOG_NAME, stagein_timeout
from tests.storage_helpers import Storage
from tests.test_stagein_helpers import (
    adler32,
    job_dir,
    no_scratch_left,
    put_replica,
    replica_path,
    run,
    spec_for,
    use_copytools,
)

DATA = b"event data " * 1000
LFN = "EVNT.12345._000001.pool.root.1"


@pytest.fixture
def job(tmp_path: Path) -> Path:
    return job_dir(tmp_path)


def test_cp_end_to_end(storage: Storage, job: Path) -> None:
    use_copytools(storage, "cp")
    replica = put_replica(storage[2], LFN, DATA)
    report = run(job, [spec_for(LFN, DATA)], storage)
    staged = job / LFN
    assert staged.is_file() and not staged.is_symlink()
    assert staged.read_bytes() == DATA
    assert replica.read_bytes() == DATA  # the replica stays on storage
    [item] = report.files
    assert (item.lfn, item.copytool, item.path) == (LFN, "cp", staged)
    assert (item.size, item.adler32) == (len(DATA), adler32(DATA))
    assert item.source == f"file://localhost{replica}"
    assert (report.total_bytes, report.copied) == (len(DATA), 1)
    assert report.seconds >= item.seconds >= 0.0
    assert (job / LOG_NAME).is_file()  # the cp command line and its output
    assert no_scratch_left(job)


@pytest.mark.parametrize("tool", ["symlink", "mv"])
def test_link_end_to_end(storage: Storage, job: Path, tool: str) -> None:
    """Pilot 3's mv links inputs (copy_in's copy_type defaults to "symlink"); the replica is never moved."""
    use_copytools(storage, tool)
    replica = put_replica(storage[2], LFN, DATA)
    report = run(job, [spec_for(LFN, DATA)], storage)
    staged = job / LFN
    assert staged.is_symlink()
    assert Path(os.readlink(staged)) == replica.resolve()
    assert replica.read_bytes() == DATA
    assert [(item.copytool, item.size, item.adler32) for item in report.files] == [(tool, len(DATA), adler32(DATA))]
    assert no_scratch_left(job)


def test_several_inputs_and_totals(storage: Storage, job: Path) -> None:
    use_copytools(storage, "cp")
    contents = {f"file{index}.root": bytes([index]) * (100 * index + 1) for index in range(1, 4)}
    for lfn, data in contents.items():
        put_replica(storage[2], lfn, data)
    report = run(job, [spec_for(lfn, data) for lfn, data in contents.items()], storage)
    assert [item.lfn for item in report.files] == list(contents)
    assert report.total_bytes == sum(len(data) for data in contents.values())
    assert all((job / lfn).read_bytes() == data for lfn, data in contents.items())


def test_md5_checksum(storage: Storage, job: Path) -> None:
    use_copytools(storage, "cp")
    put_replica(storage[2], LFN, DATA)
    md5 = Checksum(kind="md5", value=hashlib.md5(DATA).hexdigest())
    [item] = run(job, [spec_for(LFN, DATA, checksum=md5)], storage).files
    assert item.adler32 == adler32(DATA)  # reported whatever the job's checksum kind


def test_unknown_size_is_not_checked(storage: Storage, job: Path) -> None:
    use_copytools(storage, "cp")
    put_replica(storage[2], LFN, DATA)
    [item] = run(job, [spec_for(LFN, DATA, fsize=None)], storage).files
    assert item.size == len(DATA)


def test_present_and_verified_input_is_not_copied_again(storage: Storage, job: Path) -> None:
    use_copytools(storage, "cp")
    put_replica(storage[2], LFN, DATA)
    run(job, [spec_for(LFN, DATA)], storage)
    before = (job / LFN).stat()
    report = run(job, [spec_for(LFN, DATA)], storage)
    after = (job / LFN).stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert [(item.copytool, item.size) for item in report.files] == [(None, len(DATA))]
    assert report.copied == 0


def test_present_link_is_kept(storage: Storage, job: Path) -> None:
    use_copytools(storage, "symlink")
    put_replica(storage[2], LFN, DATA)
    run(job, [spec_for(LFN, DATA)], storage)
    use_copytools(storage, "unknown-tool")  # would fail if anything were copied
    assert [item.copytool for item in run(job, [spec_for(LFN, DATA)], storage).files] == [None]


@pytest.mark.parametrize("content", ["wrong", "fifo", "link-out"])
def test_present_but_wrong_input_is_replaced(storage: Storage, job: Path, tmp_path: Path, content: str) -> None:
    use_copytools(storage, "cp")
    put_replica(storage[2], LFN, DATA)
    if content == "wrong":
        (job / LFN).write_bytes(b"x" * len(DATA))
    elif content == "fifo":
        os.mkfifo(job / LFN)
    else:
        (tmp_path / "elsewhere").write_bytes(DATA)
        (job / LFN).symlink_to(tmp_path / "elsewhere")
    [item] = run(job, [spec_for(LFN, DATA)], storage).files
    assert item.copytool == "cp"
    assert not (job / LFN).is_symlink() and (job / LFN).read_bytes() == DATA


@pytest.mark.parametrize("endpoint_dir", [True, False])
@pytest.mark.parametrize("tool", ["cp", "mv", "symlink"])
def test_missing_replica(storage: Storage, job: Path, tool: str, endpoint_dir: bool) -> None:
    use_copytools(storage, tool)
    if endpoint_dir:
        storage[2].mkdir()
    with pytest.raises(PilotFailure) as failure:
        run(job, [spec_for(LFN, DATA)], storage)
    assert failure.value.error == PilotError.MISSINGINPUTFILE
    assert LFN in failure.value.diag
    assert not os.path.lexists(job / LFN)
    assert no_scratch_left(job)


@pytest.mark.parametrize("tool", ["cp", "mv", "symlink"])
def test_wrong_size(storage: Storage, job: Path, tool: str) -> None:
    """Pilot 3 has no code for a size mismatch: STAGEINFAILED, its generic stage-in code, with the sizes."""
    use_copytools(storage, tool)
    put_replica(storage[2], LFN, DATA[:-1])
    with pytest.raises(PilotFailure) as failure:
        run(job, [spec_for(LFN, DATA)], storage)
    assert failure.value.error == PilotError.STAGEINFAILED
    assert f"staged in {len(DATA) - 1} bytes, the job expects {len(DATA)}" in failure.value.diag
    assert not os.path.lexists(job / LFN)


@pytest.mark.parametrize("tool", ["cp", "mv", "symlink"])
def test_corrupted_replica(storage: Storage, job: Path, tool: str) -> None:
    use_copytools(storage, tool)
    put_replica(storage[2], LFN, DATA[:-1] + b"X")  # same size, other bytes
    with pytest.raises(PilotFailure) as failure:
        run(job, [spec_for(LFN, DATA)], storage)
    assert failure.value.error == PilotError.GETADMISMATCH
    assert adler32(DATA) in failure.value.diag
    assert not os.path.lexists(job / LFN)


def test_md5_mismatch(storage: Storage, job: Path) -> None:
    use_copytools(storage, "cp")
    put_replica(storage[2], LFN, DATA[:-1] + b"X")
    md5 = Checksum(kind="md5", value=hashlib.md5(DATA).hexdigest())
    with pytest.raises(PilotFailure) as failure:
        run(job, [spec_for(LFN, DATA, checksum=md5)], storage)
    assert failure.value.error == PilotError.GETMD5MISMATCH
    assert not os.path.lexists(job / LFN)


@pytest.mark.parametrize("kind", [None, "sha1"])
def test_unknown_checksum_type(storage: Storage, job: Path, kind: str | None) -> None:
    """Nothing is copied for an input that cannot be verified (Pilot 3: UNKNOWNCHECKSUMTYPE)."""
    use_copytools(storage, "cp")
    put_replica(storage[2], LFN, DATA)
    checksum = None
    if kind is not None:  # Checksum refuses unknown kinds, as the job parser does: force one
        checksum = Checksum(kind="adler32", value=adler32(DATA))
        object.__setattr__(checksum, "kind", kind)
    with pytest.raises(PilotFailure) as failure:
        run(job, [spec_for(LFN, DATA, checksum=checksum)], storage)
    assert failure.value.error == PilotError.UNKNOWNCHECKSUMTYPE
    assert not (job / LOG_NAME).exists()


def test_unknown_copytool(storage: Storage, job: Path) -> None:
    use_copytools(storage, "teleport")
    put_replica(storage[2], LFN, DATA)
    with pytest.raises(PilotFailure) as failure:
        run(job, [spec_for(LFN, DATA)], storage)
    assert failure.value.error == PilotError.UNKNOWNCOPYTOOL
    assert "teleport" in failure.value.diag


def test_pilot3_copytool_not_built_here(storage: Storage, job: Path) -> None:
    use_copytools(storage, "s3")
    with pytest.raises(PilotFailure) as failure:
        run(job, [spec_for(LFN, DATA)], storage)
    assert failure.value.error == PilotError.NOTIMPLEMENTED


@pytest.fixture
def nothing_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))


@pytest.mark.usefixtures("nothing_installed")
@pytest.mark.parametrize("case", [("xrdcp", "xrdcp"), ("gfal", "gfal-copy"), ("rucio", "rucio")])
def test_copytool_not_installed(storage: Storage, job: Path, case: tuple[str, str]) -> None:
    tool, command = case
    use_copytools(storage, tool)
    with pytest.raises(PilotFailure) as failure:
        run(job, [spec_for(LFN, DATA)], storage)
    assert failure.value.error == PilotError.NOTIMPLEMENTED
    assert failure.value.diag == f"{command} is not installed on this node"


def test_copytools_tried_in_order(storage: Storage, job: Path) -> None:
    use_copytools(storage, "teleport", "s3", "cp")
    put_replica(storage[2], LFN, DATA)
    assert [item.copytool for item in run(job, [spec_for(LFN, DATA)], storage).files] == ["cp"]


def test_first_error_is_reported(storage: Storage, job: Path) -> None:
    use_copytools(storage, "teleport", "cp", "symlink")
    with pytest.raises(PilotFailure) as failure:
        run(job, [spec_for(LFN, DATA)], storage)  # no replica: cp and symlink say MISSINGINPUTFILE
    assert failure.value.error == PilotError.UNKNOWNCOPYTOOL


@pytest.mark.parametrize("tool", ["cp", "mv", "symlink"])
def test_replica_link_escaping_the_endpoint(storage: Storage, job: Path, tmp_path: Path, tool: str) -> None:
    """A symlink planted on storage must not hand the payload a file from elsewhere on the node."""
    use_copytools(storage, tool)
    secret = tmp_path / "secret"
    secret.write_bytes(DATA)
    link = replica_path(storage[2], LFN)
    link.parent.mkdir(parents=True)
    link.symlink_to(secret)
    with pytest.raises(PilotFailure) as failure:
        run(job, [spec_for(LFN, DATA)], storage)
    assert failure.value.error == PilotError.STAGEINFAILED
    assert "outside the endpoint path" in failure.value.diag
    assert not os.path.lexists(job / LFN)


def test_link_inside_the_endpoint_is_followed(storage: Storage, job: Path) -> None:
    use_copytools(storage, "symlink")
    target = put_replica(storage[2], "other.root", DATA)
    link = replica_path(storage[2], LFN)
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(target)
    run(job, [spec_for(LFN, DATA)], storage)
    assert Path(os.readlink(job / LFN)) == target.resolve()  # linked to the real replica, not the link


def test_symlink_refuses_a_non_regular_replica(storage: Storage, job: Path) -> None:
    use_copytools(storage, "symlink")
    fifo = replica_path(storage[2], LFN)
    fifo.parent.mkdir(parents=True)
    os.mkfifo(fifo)
    with pytest.raises(PilotFailure) as failure:
        run(job, [spec_for(LFN, DATA)], storage)
    assert failure.value.error == PilotError.STAGEINFAILED
    assert "not a regular file" in failure.value.diag


def test_unsafe_name_is_refused(storage: Storage, job: Path) -> None:
    use_copytools(storage, "cp")
    with pytest.raises(PilotFailure) as failure:
        run(job, [spec_for("../escape", DATA)], storage)
    assert failure.value.error == PilotError.BADOUTPUTFILENAME
    assert not (job.parent / "escape").exists()


def test_timeout_formula() -> None:
    """Pilot 3's get_timeout: 300 s + 1 s per MB, capped at 3 h."""
    assert stagein_timeout(None) == stagein_timeout(0) == 300.0
    assert stagein_timeout(999_999) == 300.0
    assert stagein_timeout(2_000_000_000) == 2300.0
    assert stagein_timeout(100_000_000_000) == 10800.0
