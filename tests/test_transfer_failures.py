"""Every failure the real clients can be made to show against a real XRootD server, and its PanDA code.

Each test runs xrdcp or gfal-copy (in the environment the pilot gives its
copytools) against the storage element of tests/xrootd_se.py, provokes one
failure, and classifies the tool's own exit code and output with
fsm_pilot.stagein.failures: no hand-typed error texts. The last test checks the
texts Pilot 3 matches that these tools never print here.
"""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from fsm_pilot.errors import PilotError
from fsm_pilot.stagein.failures import RULES, classify, family
from tests.se_helpers import FAST_XRD, adler32, put, run_tool
from tests.xrootd_se import StorageElement

DATA = b"replica bytes " * 5000
E = PilotError
GFAL = ("gfal-copy", "--verbose", "--force", "--timeout", "30")


def _url(se: StorageElement, scheme: str, path: str) -> str:
    return f"{se.url(scheme)}{path}"


def _down(se: StorageElement, scheme: str, path: str, dest: Path, checksum: str | None = None,
          **env: str) -> tuple[str, ...]:
    """The argv the pilot's xrdcp (root) or gfal (other schemes) copytool would run for a download."""
    if scheme == "xrdcp":
        cksum: tuple[str, ...] = ("--cksum", f"adler32:{checksum}", "--rm-bad-cksum") if checksum else ()
        return ("xrdcp", "--nopbar", "--force", *cksum, _url(se, "root", path), str(dest))
    extra: tuple[str, ...] = ("--checksum", f"adler32:{checksum}") if checksum else ()
    return (*GFAL, *extra, _url(se, scheme, path), f"file://{dest}")


@pytest.mark.parametrize("scheme", ["xrdcp", "root", "davs", "https"])
def test_missing_replica_is_missinginputfile(storage_element: StorageElement, tmp_path: Path, scheme: str) -> None:
    argv = _down(storage_element, scheme, "/nope/missing.dat", tmp_path / "out", adler32(DATA))
    result = run_tool(storage_element, argv[0], *argv)
    assert (result.code, result.error) == ({"xrdcp": 54}.get(scheme, errno.ENOENT), E.MISSINGINPUTFILE), result
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("scheme", ["xrdcp", "root", "davs", "https"])
def test_corrupt_replica_against_the_catalog_checksum_is_getadmismatch(
        storage_element: StorageElement, tmp_path: Path, scheme: str) -> None:
    """The server recomputes the corrupt file's adler32, so only the catalog value exposes it."""
    replica = put(storage_element, "/data/f.dat", DATA)
    catalog = adler32(DATA)
    with replica.open("r+b") as f:  # corrupt it behind the server's back, same size
        f.seek(100)
        f.write(b"XXXX")
    argv = _down(storage_element, scheme, "/data/f.dat", tmp_path / "out", catalog)
    result = run_tool(storage_element, argv[0], *argv)
    assert result.error == E.GETADMISMATCH, result
    assert not (tmp_path / "out").exists()  # xrdcp with --rm-bad-cksum and gfal both remove the bad copy


@pytest.mark.parametrize("scheme", ["xrdcp", "root", "davs", "https"])
def test_replica_the_server_cannot_read_is_an_authentication_failure(
        storage_element: StorageElement, tmp_path: Path, scheme: str) -> None:
    put(storage_element, "/data/secret.dat", DATA, readable=False)
    argv = _down(storage_element, scheme, "/data/secret.dat", tmp_path / "out", adler32(DATA))
    result = run_tool(storage_element, argv[0], *argv)
    assert result.error == E.STAGEINAUTHENTICATIONFAILURE, result


@pytest.mark.parametrize("scheme", ["xrdcp", "root", "davs", "https"])
def test_dead_server_is_unreachablenetwork(storage_element: StorageElement, tmp_path: Path, scheme: str) -> None:
    """Nothing listens any more: each client fails on its own (XRD_CONNECTIONRETRY=1 keeps it short)."""
    put(storage_element, "/data/f.dat", DATA)
    storage_element.stop()
    argv = _down(storage_element, scheme, "/data/f.dat", tmp_path / "out")
    result = run_tool(storage_element, argv[0], *argv, env={"XRD_CONNECTIONRETRY": "1"})
    assert result.error == E.UNREACHABLENETWORK, result


@pytest.mark.parametrize("scheme", ["xrdcp", "root"])
def test_stalled_server_is_stageintimeout(storage_element: StorageElement, tmp_path: Path, scheme: str) -> None:
    """SIGSTOPped: the kernel accepts the connection, nobody answers; XrdCl gives up ("Operation expired")."""
    put(storage_element, "/data/f.dat", DATA)
    storage_element.stall()
    argv = _down(storage_element, scheme, "/data/f.dat", tmp_path / "out")
    result = run_tool(storage_element, argv[0], *argv, env=FAST_XRD)
    assert result.error == E.STAGEINTIMEOUT, result


def test_upload_failures_map_to_stageout_codes(storage_element: StorageElement, tmp_path: Path) -> None:
    """The same table at stage-out: a wrong checksum is PUTADMISMATCH, an existing target FILEEXISTS."""
    se = storage_element
    local = tmp_path / "out.dat"
    local.write_bytes(DATA)
    put(se, "/data/taken.dat", DATA)
    cases = [
        (("xrdcp", "--nopbar", "--cksum", "adler32:deadbeef", str(local), _url(se, "root", "/up/a.dat")),
         E.PUTADMISMATCH),
        ((*GFAL, "--checksum", "adler32:deadbeef", f"file://{local}", _url(se, "davs", "/up/b.dat")),
         E.PUTADMISMATCH),
        (("xrdcp", "--nopbar", str(local), _url(se, "root", "/data/taken.dat")), E.FILEEXISTS),
        (("gfal-copy", f"file://{local}", _url(se, "davs", "/data/taken.dat")), E.FILEEXISTS),
    ]
    for argv, error in cases:
        result = run_tool(se, argv[0], *argv, direction="out")
        assert result.error == error, (argv, result)


def test_pilot3_texts_and_the_table() -> None:
    """Texts only Pilot 3 knows still map as there; exit codes count only for the tool family that uses them."""
    assert classify("rucio", 1, "Details: service is not available at the moment") == E.SERVICENOTAVAILABLE
    assert classify("xrdcp", 1, "md5 value does not match the checksum", "out") == E.PUTMD5MISMATCH
    assert classify("xrdcp", 52, "") == E.STAGEINTIMEOUT
    assert classify("cp", 52, "") == E.STAGEINFAILED
    assert classify("gfal-copy", errno.ENOENT, "", "out") == E.NOSUCHFILE
    assert [family(t) for t in ("gfalcopy", "/usr/bin/gfal-copy", "xrdcp", "xrootd", "cp")] == [
        "gfal", "gfal", "xrootd", "xrootd", None]
    assert len({rule.kind for rule in RULES}) == len(RULES)


def _readme_rows() -> list[list[str]]:
    text = (Path(__file__).parent.parent / "README.md").read_text()
    table = text.split("<!-- copy-errors -->\n", 1)[1].split("<!-- end copy-errors -->", 1)[0]
    return [[cell.strip() for cell in line.strip("|").split(" | ")] for line in table.splitlines()[2:]]


def test_the_readme_table_of_real_errors_says_what_the_code_does() -> None:
    rows = _readme_rows()
    assert len(rows) >= 20
    for tool, case, code, output, expected in rows:
        name, number = expected.split()
        assert int(PilotError[name]) == int(number), expected
        assert classify(tool, int(code), output.strip("`")) == PilotError[name], (tool, case)
