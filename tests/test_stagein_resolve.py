"""Which replica and which copytools stage-in uses, from queuedata and CRIC; how tool failures map to codes."""

from __future__ import annotations

import copy
import errno
from pathlib import Path
from typing import Any

import pytest

from fsm_pilot.errors import PilotError, PilotFailure
from fsm_pilot.stagein import COPYTOOLS, copytool_names, get_copytool, resolve_replica
from fsm_pilot.stagein.process import tool_failure
from fsm_pilot.stagein.resolve import resolve_source
from fsm_pilot.storage import deterministic_path
from tests.storage_helpers import Storage
from tests.test_stagein_helpers import SCOPE, job_dir, put_replica, run, spec_for, use_copytools

DATA = b"payload input"
LFN = "HITS.999._000001.pool.root.1"


def _second_endpoint(storage: Storage, name: str, path: Path) -> None:
    """Another file:// endpoint the queue reads locally (astorages read_lan)."""
    entry = copy.deepcopy(storage[1]["LOCAL_DISK"])
    entry["name"] = name
    for protocols in entry["arprotocols"].values():
        protocols[0]["path"] = str(path)
    storage[1][name] = entry
    storage[0]["astorages"]["read_lan"].append(name)


def test_replica_url_and_path(storage: Storage) -> None:
    replica = resolve_replica(spec_for(LFN, DATA), storage[0], storage[1])
    assert replica.endpoint.name == "LOCAL_DISK"
    assert replica.url == f"file://localhost{storage[2]}/{deterministic_path(SCOPE, LFN)}"
    assert replica.scheme == "file"
    assert replica.local_path() == storage[2] / deterministic_path(SCOPE, LFN)


def test_job_endpoint_preferred_when_known(storage: Storage, tmp_path: Path) -> None:
    _second_endpoint(storage, "OTHER_DISK", tmp_path / "other")
    assert resolve_replica(spec_for(LFN, DATA, ddm_endpoint="OTHER_DISK"), *storage[:2]).endpoint.name == "OTHER_DISK"


@pytest.mark.parametrize("job_endpoint", [None, "NOT_IN_CRIC"])
def test_queue_storage_when_job_endpoint_unknown(storage: Storage, tmp_path: Path, job_endpoint: str | None) -> None:
    _second_endpoint(storage, "OTHER_DISK", tmp_path / "other")
    storage[0]["astorages"]["pr"] = ["OTHER_DISK"]
    assert resolve_replica(spec_for(LFN, DATA, ddm_endpoint=job_endpoint), *storage[:2]).endpoint.name == "OTHER_DISK"


def test_read_lan_storage_when_no_pr_storage(storage: Storage, tmp_path: Path) -> None:
    _second_endpoint(storage, "OTHER_DISK", tmp_path / "other")
    del storage[0]["astorages"]["pr"]
    storage[0]["astorages"]["read_lan"] = ["OTHER_DISK"]
    assert resolve_replica(spec_for(LFN, DATA, ddm_endpoint=None), *storage[:2]).endpoint.name == "OTHER_DISK"


def test_no_storage(storage: Storage) -> None:
    storage[0]["astorages"] = {"pw": ["LOCAL_DISK"]}
    with pytest.raises(PilotFailure) as failure:
        resolve_replica(spec_for(LFN, DATA, ddm_endpoint="NOT_IN_CRIC"), *storage[:2])
    assert failure.value.error == PilotError.NOSTORAGE


def test_no_read_protocol(storage: Storage) -> None:
    del storage[1]["LOCAL_DISK"]["arprotocols"]["read_lan"]
    with pytest.raises(PilotFailure) as failure:
        resolve_replica(spec_for(LFN, DATA), *storage[:2])
    assert failure.value.error == PilotError.NOSTORAGEPROTOCOL


def test_no_scope(storage: Storage) -> None:
    with pytest.raises(PilotFailure) as failure:
        resolve_replica(spec_for(LFN, DATA, scope=None), *storage[:2])
    assert failure.value.error == PilotError.REPLICANOTFOUND


def test_everything_resolved_before_copying(storage: Storage, tmp_path: Path) -> None:
    use_copytools(storage, "cp")
    put_replica(storage[2], LFN, DATA)
    storage[0]["astorages"] = {}
    job = job_dir(tmp_path)
    with pytest.raises(PilotFailure) as failure:
        run(job, [spec_for(LFN, DATA), spec_for("second.root", DATA, ddm_endpoint="NOT_IN_CRIC")], storage)
    assert failure.value.error == PilotError.NOSTORAGE
    assert list(job.iterdir()) == []


@pytest.mark.parametrize(("acopytools", "copytools", "names"), [
    ({"pr": ["xrdcp", "cp"], "default": ["mv"]}, {}, ("xrdcp", "cp")),
    ({"read_lan": ["gfal"], "default": ["mv"]}, {}, ("gfal",)),
    ({"pw": ["mv"], "default": ["symlink"]}, {}, ("symlink",)),
    ({"pr": [], "default": ["cp"]}, {}, ("cp",)),
    ("xrdcp", {}, ("xrdcp",)),
    (["cp", "mv"], {}, ("cp", "mv")),
    (None, {"mv": {"setup": ""}, "cp": {}}, ("mv", "cp")),
    ({}, {}, ("rucio",)),
    ({"pw": ["mv"]}, {"cp": {}}, ("rucio",)),
])
def test_copytool_order(acopytools: Any, copytools: Any, names: tuple[str, ...]) -> None:
    """Pilot 3: the read activity, then default; no acopytools: the copytools names; else rucio."""
    assert copytool_names({"acopytools": acopytools, "copytools": copytools}) == names


@pytest.mark.parametrize("acopytools", [{"pr": "cp"}, {"pr": ["cp", 3]}, {"pr": [""]}, 42])
def test_bad_acopytools(acopytools: Any) -> None:
    with pytest.raises(PilotFailure) as failure:
        copytool_names({"acopytools": acopytools})
    assert failure.value.error == PilotError.QUEUEDATANOTOK


def test_registry_names() -> None:
    """Pilot 3's names (gfal and gfalcopy are both gfal-copy) plus mv's other copy types, cp and symlink."""
    assert set(COPYTOOLS) == {"cp", "mv", "symlink", "xrdcp", "gfal", "gfalcopy", "rucio", "xrootd", "gfal2"}
    assert get_copytool("mv").name == "mv"
    assert [getattr(COPYTOOLS[name], "executable", None) for name in ("gfal", "gfalcopy")] == ["gfal-copy"] * 2


@pytest.mark.parametrize(("tool", "code", "output", "error"), [
    ("gfal", errno.ETIMEDOUT, "", PilotError.STAGEINTIMEOUT),
    ("tool", errno.ETIMEDOUT, "", PilotError.STAGEINFAILED),  # an errno exit code means something for gfal only
    ("tool", 1, "Connection timeout after 60 s", PilotError.STAGEINTIMEOUT),
    ("tool", 1, "[ERROR] failed xrdadler32", PilotError.GETADMISMATCH),
    ("tool", 1, "Source and destination adler32 does not match the checksum", PilotError.GETADMISMATCH),
    ("tool", 1, "md5 value does not match the checksum", PilotError.GETMD5MISMATCH),
    ("tool", 54, "[3011] No such file or directory", PilotError.MISSINGINPUTFILE),
    ("tool", 1, "Could not establish context", PilotError.NOPROXY),
    ("tool", 1, "write failed: No space left on device", PilotError.NOLOCALSPACE),
    ("tool", 2, "something else", PilotError.STAGEINFAILED),
])
def test_tool_failure_codes(tool: str, code: int, output: str, error: PilotError) -> None:
    """Pilot 3's texts of resolve_common_transfer_errors still mean what they meant there."""
    assert tool_failure(tool, code, output).error == error


def test_tool_failure_diag() -> None:
    failure = tool_failure("xrdcp", -9, "line\x00one\n" + "x" * 1000 + "\x1b[0mend")
    assert failure.diag.startswith("xrdcp was killed by signal 9: ...")
    assert failure.diag.endswith("x [0mend")
    assert len(failure.diag) < 400
    assert tool_failure("cp", 1, "").diag == "cp exited with code 1"


def _remote_endpoint(storage: Storage, activity: str, *urls: str) -> None:
    """LOCAL_DISK's read protocols for ``activity`` become ``urls`` (a CRIC-style list, in priority order)."""
    storage[1]["LOCAL_DISK"]["arprotocols"][activity] = [
        {"endpoint": url, "path": "/atlas/data", "flavour": "XROOTD"} for url in urls]


def test_each_copytool_takes_the_first_protocol_it_reads(storage: Storage) -> None:
    """Pilot 3's get_preferred_replica: CRIC's protocol order first, the copytool's schemes filter."""
    _remote_endpoint(storage, "read_lan", "davs://se.example:443", "root://se.example:1094")
    source = resolve_source(spec_for(LFN, DATA), *storage[:2])
    path = deterministic_path(SCOPE, LFN)
    assert source.domain == "lan"
    assert source.replica("xrdcp", COPYTOOLS["xrdcp"].schemes).url == f"root://se.example:1094//atlas/data/{path}"
    assert source.replica("gfal", COPYTOOLS["gfal"].schemes).url == f"davs://se.example:443/atlas/data/{path}"
    with pytest.raises(PilotFailure) as failure:
        source.replica("cp", frozenset({"file"}))
    assert failure.value.error == PilotError.NOSTORAGEPROTOCOL


def test_an_endpoint_the_queue_does_not_read_locally_is_read_over_wan(storage: Storage) -> None:
    """Not in astorages read_lan: read_wan protocols, and (Pilot 3's remote schemes) never davs."""
    storage[0]["astorages"]["read_lan"] = ["SOMEWHERE_ELSE"]
    _remote_endpoint(storage, "read_wan", "davs://se.example:443", "https://se.example:443")
    source = resolve_source(spec_for(LFN, DATA), *storage[:2])
    assert source.domain == "wan"
    assert source.replica("gfal", frozenset({"davs", "https", "root"})).url.startswith("https://se.example:443/")
    del storage[1]["LOCAL_DISK"]["arprotocols"]["read_wan"]
    with pytest.raises(PilotFailure) as failure:
        resolve_source(spec_for(LFN, DATA), *storage[:2])
    assert failure.value.error == PilotError.NOSTORAGEPROTOCOL


@pytest.mark.parametrize("protocols", ["root://x", [{"endpoint": 3, "path": "/p"}], [{"endpoint": "root://x",
                                                                                     "path": "/a/../b"}]])
def test_bad_protocol_lists_are_queuedatanotok(storage: Storage, protocols: Any) -> None:
    storage[1]["LOCAL_DISK"]["arprotocols"]["read_lan"] = protocols
    with pytest.raises(PilotFailure) as failure:
        resolve_source(spec_for(LFN, DATA), *storage[:2])
    assert failure.value.error == PilotError.QUEUEDATANOTOK
