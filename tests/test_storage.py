"""Storage: checksums, deterministic paths, endpoint choice.

Everything runs on real files in tmp_path; expected values are published
constants or taken from Pilot 3's captured final update, never recomputed.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest

from fsm_pilot.errors import PilotError, PilotFailure
from fsm_pilot.storage import (
    Endpoint,
    adler32_file,
    check_scope,
    deterministic_path,
    md5_file,
    read_endpoint,
    size_and_adler32,
    write_endpoint,
)
from tests.storage_helpers import Storage, code, pilot3_report

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
    assert code(excinfo) is PilotError.CHECKSUMCALCFAILURE
    assert name in excinfo.value.diag


# --- deterministic paths ---------------------------------------------------------------------


@pytest.mark.parametrize("lfn", ["out.txt", "job.log.tgz"])
def test_surl_matches_pilot3_final_update(lfn: str) -> None:
    endpoint = Endpoint("LOCAL_DISK", "file://localhost", "/scratch/run3/se", True)
    assert endpoint.surl("test", lfn) == pilot3_report()[lfn]["surl"]


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
    assert code(excinfo) is PilotError.BADOUTPUTFILENAME


BAD_SCOPES = ["", "a/b", "..", "a..b", ".a", "a.", "-a", "a\x00", "a b", "x" * 256, None]


@pytest.mark.parametrize("scope", BAD_SCOPES)
def test_bad_scope_refused(scope: object) -> None:
    with pytest.raises(PilotFailure) as excinfo:
        deterministic_path(cast(str, scope), "out.txt")
    assert code(excinfo) is PilotError.BADOUTPUTFILENAME


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
        # xrdcp refuses root://host:port/path as a relative path: XRootD URLs need the double slash
        ("root://eos.example.org:1094", "/eos/se/", "root://eos.example.org:1094//eos/se/test/2c/e7/out.txt"),
        ("roots://eos.example.org:1094/", "//eos/se", "roots://eos.example.org:1094//eos/se/test/2c/e7/out.txt"),
        ("davs://dav.example.org:443", "/eos/se/", "davs://dav.example.org:443/eos/se/test/2c/e7/out.txt"),
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
    assert code(excinfo) is PilotError.NOTIMPLEMENTED


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
    assert code(excinfo) is PilotError.NOSTORAGE
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
    assert code(excinfo) is error


@pytest.mark.parametrize("which", ["queuedata", "ddmendpoints"])
def test_top_level_not_a_mapping(storage: Storage, which: str) -> None:
    queuedata, ddm, _ = storage
    args: list[Any] = [queuedata, ddm]
    args[which == "ddmendpoints"] = ["LOCAL_DISK"]
    with pytest.raises(PilotFailure) as excinfo:
        write_endpoint(args[0], args[1], "pw")
    assert code(excinfo) is PilotError.QUEUEDATANOTOK
    assert excinfo.value.diag == f"{which} is a list, expected an object"


