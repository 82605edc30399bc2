"""Storage: checksums, deterministic paths, endpoint choice, stage-out, log tarball.

Everything runs on real files in tmp_path; expected values are published
constants or taken from Pilot 3's captured final update, never recomputed.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import stat
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest

from fsm_pilot.errors import PilotError, PilotFailure
from fsm_pilot.storage import (
    Endpoint,
    StagedFile,
    adler32_file,
    check_scope,
    deterministic_path,
    make_log_tarball,
    md5_file,
    put_file,
    read_endpoint,
    size_and_adler32,
    tarball_root,
    write_endpoint,
)
from fsm_pilot.storage import local as local_module

FIXTURES = Path(__file__).parent / "fixtures"
Storage = tuple[dict[str, Any], dict[str, Any], Path]


def _load(name: str) -> dict[str, Any]:
    return cast(dict[str, Any], json.loads((FIXTURES / name).read_text()))


def _pilot3_report() -> dict[str, dict[str, Any]]:
    """The per-file report Pilot 3 sent in its final update (the ``xml`` field)."""
    return cast(dict[str, dict[str, Any]], json.loads(_load("pilot3_final_update_finished.json")["xml"]))


@pytest.fixture
def storage(tmp_path: Path) -> Storage:
    """Queuedata and CRIC endpoints from the fixtures, the storage path moved into tmp_path."""
    queuedata = _load("queuedata_TEST_QUEUE.json")
    ddm = _load("cric_ddmendpoints.json")
    se = tmp_path / "se"
    for protocols in ddm["LOCAL_DISK"]["arprotocols"].values():
        protocols[0]["path"] = str(se)
    return queuedata, ddm, se


def _code(excinfo: pytest.ExceptionInfo[PilotFailure]) -> PilotError:
    return excinfo.value.error


# --- checksums -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "adler"),
    [
        (b"", "00000001"),
        (b"Wikipedia", "11e60398"),  # the worked example on Wikipedia's Adler-32 page
        # n zero bytes keep A = 1 and give B = n mod 65521; 3 MiB + 5 crosses block
        # boundaries: 3145733 mod 65521 = 725 = 0x2d5.
        (bytes(3 * 2**20 + 5), "02d50001"),
    ],
)
def test_adler32_known_values(tmp_path: Path, data: bytes, adler: str) -> None:
    path = tmp_path / "f"
    path.write_bytes(data)
    assert adler32_file(path) == adler
    assert size_and_adler32(path) == (len(data), adler)


@pytest.mark.parametrize(
    ("data", "md5"),
    [
        (b"", "d41d8cd98f00b204e9800998ecf8427e"),  # RFC 1321 test suite
        (b"The quick brown fox jumps over the lazy dog", "9e107d9d372bb6826bd81d3542a419d6"),
    ],
)
def test_md5_known_values(tmp_path: Path, data: bytes, md5: str) -> None:
    path = tmp_path / "f"
    path.write_bytes(data)
    assert md5_file(path) == md5


@pytest.mark.parametrize("func", [adler32_file, md5_file, size_and_adler32])
@pytest.mark.parametrize("name", ["missing", "a_directory"])
def test_checksum_read_error(tmp_path: Path, func: Callable[[Path], object], name: str) -> None:
    (tmp_path / "a_directory").mkdir()
    with pytest.raises(PilotFailure) as excinfo:
        func(tmp_path / name)
    assert _code(excinfo) is PilotError.CHECKSUMCALCFAILURE
    assert name in excinfo.value.diag


# --- deterministic paths ---------------------------------------------------------------------


@pytest.mark.parametrize("lfn", ["out.txt", "job.log.tgz"])
def test_surl_matches_pilot3_final_update(lfn: str) -> None:
    endpoint = Endpoint("LOCAL_DISK", "file://localhost", "/scratch/run3/se", True)
    assert endpoint.surl("test", lfn) == _pilot3_report()[lfn]["surl"]


@pytest.mark.parametrize(
    ("scope", "lfn", "path"),
    [
        ("test", "out.txt", "test/2c/e7/out.txt"),  # as in Pilot 3's final update
        ("test", "job.log.tgz", "test/ef/51/job.log.tgz"),
        ("user.jdoe", "data.root", "user/jdoe/c9/ae/data.root"),
    ],
)
def test_deterministic_path(scope: str, lfn: str, path: str) -> None:
    assert deterministic_path(scope, lfn) == path


BAD_LFNS = ["", ".", "..", "a/b", "../etc", "a\x00b", "a\\b", "a b", "x?y", "x#y", "s:n", "a\n"]


@pytest.mark.parametrize("lfn", [*BAD_LFNS, "é", "x" * 256, 7, None])
def test_bad_lfn_refused(lfn: object) -> None:
    with pytest.raises(PilotFailure) as excinfo:
        deterministic_path("test", cast(str, lfn))
    assert _code(excinfo) is PilotError.BADOUTPUTFILENAME


BAD_SCOPES = ["", "a/b", "..", "a..b", ".a", "a.", "-a", "a\x00", "a b", "x" * 256, None]


@pytest.mark.parametrize("scope", BAD_SCOPES)
def test_bad_scope_refused(scope: object) -> None:
    with pytest.raises(PilotFailure) as excinfo:
        deterministic_path(cast(str, scope), "out.txt")
    assert _code(excinfo) is PilotError.BADOUTPUTFILENAME


@pytest.mark.parametrize("scope", ["user.jdoe", "mc23_13p6TeV", "group.phys-higgs"])
def test_good_scope_accepted(scope: str) -> None:
    assert check_scope(scope) == scope


# --- endpoints -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "path", "surl"),
    [
        ("file://localhost", "/scratch/run3/se", "file://localhost/scratch/run3/se/test/2c/e7/out.txt"),
        ("file://localhost/", "scratch//run3/se/", "file://localhost/scratch/run3/se/test/2c/e7/out.txt"),
        ("file://", "/scratch/./run3/se", "file:///scratch/run3/se/test/2c/e7/out.txt"),
        ("root://eos.example.org:1094", "/eos/se/", "root://eos.example.org:1094/eos/se/test/2c/e7/out.txt"),
    ],
)
def test_surl_normalises_path(url: str, path: str, surl: str) -> None:
    assert Endpoint("E", url, path, True).surl("test", "out.txt") == surl


@pytest.mark.parametrize(
    ("url", "path"), [("file://localhost", "/data/se"), ("file://", "/data/se/"), ("file:///data", "se")]
)
def test_local_path(url: str, path: str) -> None:
    local = Endpoint("E", url, path, True).local_path("test", "out.txt")
    assert local == Path("/data/se/test/2c/e7/out.txt")


@pytest.mark.parametrize(
    "endpoint",
    [
        Endpoint("E", "root://eos.example.org:1094", "/eos", True),
        Endpoint("E", "file://otherhost", "/data", True),
        Endpoint("E", "file://localhost", "/data", False),  # no deterministic path
    ],
)
def test_local_path_not_implemented(endpoint: Endpoint) -> None:
    with pytest.raises(PilotFailure) as excinfo:
        endpoint.local_path("test", "out.txt")
    assert _code(excinfo) is PilotError.NOTIMPLEMENTED


@pytest.mark.parametrize("activity", ["pw", "pl"])
def test_write_endpoint_from_fixtures(storage: Storage, activity: str) -> None:
    queuedata, ddm, se = storage
    expected = Endpoint("LOCAL_DISK", "file://localhost", str(se), True)
    assert write_endpoint(queuedata, ddm, activity) == expected


def test_read_endpoint_uses_read_lan(storage: Storage) -> None:
    queuedata, ddm, se = storage
    ddm["LOCAL_DISK"]["arprotocols"]["read_lan"][0]["path"] = "/read/here"
    expected = Endpoint("LOCAL_DISK", "file://localhost", "/read/here", True)
    assert read_endpoint(queuedata, ddm, "pr") == expected
    assert write_endpoint(queuedata, ddm, "pw").path == str(se)


PREFERRED = [("OTHER", "OTHER"), ("NOT_KNOWN", "LOCAL_DISK"), ("", "LOCAL_DISK")]


@pytest.mark.parametrize(("preferred", "name"), PREFERRED)
def test_preferred_endpoint(storage: Storage, preferred: str, name: str) -> None:
    queuedata, ddm, _ = storage
    ddm["OTHER"] = copy.deepcopy(ddm["LOCAL_DISK"])
    assert write_endpoint(queuedata, ddm, "pw", preferred=preferred).name == name


@pytest.mark.parametrize(
    ("func", "activity", "astorages", "name"),
    [
        (write_endpoint, "pl", {"pl": ["A"], "pw": ["B"], "write_lan": ["C"]}, "A"),
        (write_endpoint, "pl", {"pw": ["B"], "write_lan": ["C"]}, "B"),
        (write_endpoint, "pl", {"pl": [], "pw": ["B"]}, "B"),
        (write_endpoint, "pl", {"write_lan": ["C"], "pr": ["A"]}, "C"),
        (write_endpoint, "pw", {"pw": ["GONE", "C", "B"]}, "C"),
        (read_endpoint, "pr", {"pr": ["A"], "read_lan": ["B"]}, "A"),
        (read_endpoint, "pr", {"pw": ["A"], "read_lan": ["B"]}, "B"),
    ],
)
def test_activity_fallback(
    storage: Storage, func: Callable[..., Endpoint], activity: str, astorages: dict[str, Any], name: str
) -> None:
    queuedata, ddm, _ = storage
    for other in "ABC":
        ddm[other] = copy.deepcopy(ddm["LOCAL_DISK"])
    queuedata["astorages"] = astorages
    assert func(queuedata, ddm, activity).name == name


def test_no_storage_diag_names_the_lookup(storage: Storage) -> None:
    queuedata, ddm, _ = storage
    queuedata["astorages"] = {"pw": ["NOT_KNOWN"]}
    with pytest.raises(PilotFailure) as excinfo:
        write_endpoint(queuedata, ddm, "pw", preferred="ALSO_UNKNOWN")
    assert _code(excinfo) is PilotError.NOSTORAGE
    assert excinfo.value.diag == (
        "no write_lan storage endpoint for activity 'pw': job endpoint 'ALSO_UNKNOWN', "
        "queuedata astorages['pw'] = ['NOT_KNOWN'], none of them among 1 known endpoints"
    )


DELETE = object()
W0 = ("LOCAL_DISK", "arprotocols", "write_lan", 0)


@pytest.mark.parametrize(
    ("target", "keys", "value", "error"),
    [
        ("qd", ("astorages",), DELETE, PilotError.NOSTORAGE),
        ("qd", ("astorages",), {}, PilotError.NOSTORAGE),
        ("qd", ("astorages", "pw"), ["NOT_KNOWN"], PilotError.NOSTORAGE),
        ("ddm", W0[:3], [], PilotError.NOSTORAGEPROTOCOL),
        ("ddm", W0[:3], DELETE, PilotError.NOSTORAGEPROTOCOL),
        ("ddm", W0[:2], DELETE, PilotError.NOSTORAGEPROTOCOL),
        ("ddm", ("LOCAL_DISK", "is_deterministic"), False, PilotError.NOTIMPLEMENTED),
        ("qd", ("astorages",), ["LOCAL_DISK"], PilotError.QUEUEDATANOTOK),
        ("qd", ("astorages", "pw"), "LOCAL_DISK", PilotError.QUEUEDATANOTOK),
        ("qd", ("astorages", "pw"), ["LOCAL_DISK", 7], PilotError.QUEUEDATANOTOK),
        ("ddm", ("LOCAL_DISK",), "LOCAL_DISK", PilotError.QUEUEDATANOTOK),
        ("ddm", W0[:2], ["write_lan"], PilotError.QUEUEDATANOTOK),
        ("ddm", W0[:3], {"endpoint": "file://localhost"}, PilotError.QUEUEDATANOTOK),
        ("ddm", W0[:3], ["file://localhost"], PilotError.QUEUEDATANOTOK),
        ("ddm", (*W0, "endpoint"), 42, PilotError.QUEUEDATANOTOK),
        ("ddm", (*W0, "endpoint"), "", PilotError.QUEUEDATANOTOK),
        ("ddm", (*W0, "path"), None, PilotError.QUEUEDATANOTOK),
        ("ddm", (*W0, "path"), "/se/../etc", PilotError.QUEUEDATANOTOK),
        ("ddm", ("LOCAL_DISK", "is_deterministic"), "yes", PilotError.QUEUEDATANOTOK),
    ],
)
def test_write_endpoint_errors(
    storage: Storage, target: str, keys: tuple[Any, ...], value: object, error: PilotError
) -> None:
    queuedata, ddm, _ = storage
    node: Any = queuedata if target == "qd" else ddm
    for key in keys[:-1]:
        node = node[key]
    if value is DELETE:
        del node[keys[-1]]
    else:
        node[keys[-1]] = value
    with pytest.raises(PilotFailure) as excinfo:
        write_endpoint(queuedata, ddm, "pw")
    assert _code(excinfo) is error


@pytest.mark.parametrize("which", ["queuedata", "ddmendpoints"])
def test_top_level_not_a_mapping(storage: Storage, which: str) -> None:
    queuedata, ddm, _ = storage
    args: list[Any] = [queuedata, ddm]
    args[which == "ddmendpoints"] = ["LOCAL_DISK"]
    with pytest.raises(PilotFailure) as excinfo:
        write_endpoint(args[0], args[1], "pw")
    assert _code(excinfo) is PilotError.QUEUEDATANOTOK
    assert excinfo.value.diag == f"{which} is a list, expected an object"


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
    assert _code(excinfo) is PilotError.PUTADMISMATCH
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
    assert _code(excinfo) is error
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
    # Real storage corruption cannot be produced on demand, so the copy step is
    # replaced by one that writes wrong bytes; verification must catch it.
    monkeypatch.setattr(local_module, "_copy", lambda src, out: out.write(stored))
    with pytest.raises(PilotFailure) as excinfo:
        put_file(job / "out.txt", _endpoint(storage), "test", "out.txt", "G")
    assert _code(excinfo) is PilotError.PUTADMISMATCH
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
    assert _code(excinfo) is PilotError.STAGEOUTFAILED
    assert excinfo.value.diag.startswith(f"cannot write {se}/test/2c/e7/out.txt: [Errno")


def test_put_file_destination_escaping_endpoint(storage: Storage, job: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    storage[2].mkdir()
    (storage[2] / "test").symlink_to(elsewhere)
    with pytest.raises(PilotFailure) as excinfo:
        put_file(job / "out.txt", _endpoint(storage), "test", "out.txt", "G")
    assert _code(excinfo) is PilotError.STAGEOUTFAILED
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
    assert _code(excinfo) is error


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
    assert _code(excinfo) is PilotError.LOGFILECREATIONFAILURE
    assert sorted(os.listdir(tmp_path)) == before  # no tarball, no temp file
