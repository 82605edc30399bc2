"""Where stage-out writes and with what: Pilot 3's choice of endpoint, protocol kind, protocol and copytools."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from fsm_pilot.errors import PilotError, PilotFailure
from fsm_pilot.stagein.failures import classify
from fsm_pilot.stageout.destination import allowed_schemes, copytool_names, destination
from fsm_pilot.stageout.tools import GFAL_COPY, RUCIO, XRDCP, Upload, uploader

ROOT = {"endpoint": "root://se.example.org:1094", "path": "/atlas/rucio", "flavour": "XROOTD"}
DAVS = {"endpoint": "davs://se.example.org:443", "path": "/atlas/rucio", "flavour": "WEBDAV"}
WAN_DAVS = {"endpoint": "davs://wan.example.org:443", "path": "/atlas/rucio", "flavour": "WEBDAV"}


def _ddm(**kinds: list[dict[str, str]]) -> dict[str, Any]:
    return {"DISK": {"is_deterministic": True, "arprotocols": kinds}, "OTHER": {"arprotocols": {}}}


def _queue(**extra: Any) -> dict[str, Any]:
    return {"astorages": {"pw": ["DISK"], "pl": ["DISK"], "read_lan": ["DISK"]}, **extra}


def test_lan_endpoint_uses_write_lan_and_the_copytools_scheme_order() -> None:
    dest = destination(_queue(acopytools={"pw": ["gfalcopy", "xrdcp"]}), _ddm(write_lan=[ROOT, DAVS],
                                                                               write_wan=[WAN_DAVS]), "pw", None)
    assert (dest.endpoint, dest.kind, dest.copytools) == ("DISK", "write_lan", ("gfalcopy", "xrdcp"))
    # gfal prefers davs over root (Pilot 3's allowed_schemas order), whatever CRIC's order
    assert dest.protocol_for("gfalcopy", GFAL_COPY.schemes).url == DAVS["endpoint"]
    assert dest.protocol_for("xrdcp", XRDCP.schemes).url == ROOT["endpoint"]
    assert dest.protocol_for("xrdcp", XRDCP.schemes).surl("test", "out.txt") == \
        "root://se.example.org:1094//atlas/rucio/test/2c/e7/out.txt"


def test_endpoint_not_local_to_the_queue_uses_write_wan() -> None:
    queue = _queue(astorages={"pw": ["DISK"], "read_lan": ["OTHER"]})
    dest = destination(queue, _ddm(write_lan=[ROOT], write_wan=[WAN_DAVS]), "pw", None)
    assert (dest.kind, [p.url for p in dest.protocols]) == ("write_wan", [WAN_DAVS["endpoint"]])
    with pytest.raises(PilotFailure) as excinfo:  # Pilot 3 never falls back to write_lan for a WAN endpoint
        destination(queue, _ddm(write_lan=[ROOT]), "pw", None)
    assert excinfo.value.error is PilotError.NOSTORAGEPROTOCOL


def test_lan_endpoint_without_write_lan_uses_write_wan() -> None:
    dest = destination(_queue(), _ddm(write_wan=[WAN_DAVS]), "pw", None)
    assert dest.kind == "write_wan"


def test_no_protocol_the_copytool_writes() -> None:
    dest = destination(_queue(acopytools={"pw": ["xrdcp"]}), _ddm(write_lan=[DAVS]), "pw", None)
    with pytest.raises(PilotFailure) as excinfo:
        dest.protocol_for("xrdcp", XRDCP.schemes)
    assert excinfo.value.error is PilotError.NOSTORAGEPROTOCOL
    assert "xrdcp writes root, roots" in excinfo.value.diag and DAVS["endpoint"] in excinfo.value.diag


def test_job_endpoint_wins_when_known() -> None:
    ddm = {**_ddm(write_lan=[ROOT]), "JOBS": {"arprotocols": {"write_wan": [DAVS]}}}
    job_endpoint = destination(_queue(), ddm, "pw", "JOBS")  # not in the queue's read_lan: a WAN endpoint
    assert (job_endpoint.endpoint, job_endpoint.kind) == ("JOBS", "write_wan")
    assert destination(_queue(), ddm, "pw", "UNKNOWN").endpoint == "DISK"


@pytest.mark.parametrize(("queuedata", "activity", "names"), [
    ({"acopytools": {"pw": ["xrdcp"], "pl": ["gfal"], "default": ["rucio"]}}, "pl", ("gfal",)),
    ({"acopytools": {"pw": ["xrdcp"], "default": ["rucio"]}}, "pl", ("xrdcp",)),  # pl falls back to pw
    ({"acopytools": {"write_lan": ["gfalcopy"], "default": ["rucio"]}}, "pw", ("gfalcopy",)),
    ({"acopytools": {"pr": ["cp"], "default": ["xrdcp", "gfal"]}}, "pw", ("xrdcp", "gfal")),
    ({"acopytools": "gfalcopy"}, "pw", ("gfalcopy",)),
    ({"acopytools": ["xrdcp", "rucio"]}, "pl", ("xrdcp", "rucio")),
    ({"copytools": {"gfal": {"setup": ""}, "xrdcp": {}}}, "pw", ("gfal", "xrdcp")),
    ({}, "pw", ("rucio",)),
])
def test_copytool_order(queuedata: dict[str, Any], activity: str, names: tuple[str, ...]) -> None:
    assert copytool_names(queuedata, activity) == names


@pytest.mark.parametrize("acopytools", [{"pw": "xrdcp"}, {"pw": ["xrdcp", 3]}, {"pw": [""]}, 42])
def test_bad_acopytools(acopytools: Any) -> None:
    with pytest.raises(PilotFailure) as excinfo:
        copytool_names({"acopytools": acopytools}, "pw")
    assert excinfo.value.error is PilotError.QUEUEDATANOTOK


def test_acopytools_schemas_override_the_copytools_own() -> None:
    queue = _queue(acopytools={"pw": ["gfal"]}, acopytools_schemas={"pw": {"gfal": ["root"]}, "default": ["davs"]})
    assert allowed_schemes(queue, "pw", "gfal") == ("root",)
    assert allowed_schemes(queue, "pw", "xrdcp") == ()  # the pw entry has neither xrdcp nor default
    assert allowed_schemes(_queue(acopytools_schemas={"default": ["davs"]}), "pl", "xrdcp") == ("davs",)
    dest = destination(queue, _ddm(write_lan=[DAVS, ROOT]), "pw", None)
    assert dest.protocol_for("gfal", dest.schemes["gfal"]).url == ROOT["endpoint"]


def test_unknown_and_pilot3_only_copytools() -> None:
    with pytest.raises(PilotFailure) as unknown:
        uploader("scp")
    with pytest.raises(PilotFailure) as pilot3:
        uploader("s3")
    assert (unknown.value.error, pilot3.value.error) == (PilotError.UNKNOWNCOPYTOOL, PilotError.NOTIMPLEMENTED)


#: (tool, exit code, the real tool's output, PanDA code): texts seen against the XRootD storage element,
#: classified by the one table stage-in uses too (fsm_pilot/stagein/failures.py), for the stage-out direction.
REAL_ERRORS = [
    ("xrdcp", 52, "Run: [ERROR] Operation expired:  (destination)", PilotError.STAGEOUTTIMEOUT),
    ("gfalcopy", 110, "gfal-copy error: 110 (Connection timed out) - Command timed out after 5 seconds!",
     PilotError.STAGEOUTTIMEOUT),
    ("xrdcp", 53, "Run: [ERROR] CheckSum error", PilotError.PUTADMISMATCH),
    ("gfalcopy", 5, "gfal-copy error: 5 (Input/output error) - DESTINATION CHECKSUM MISMATCH User-defined and "
     "destination adler32 do not match (deadbeef != f5da0c7a)", PilotError.PUTADMISMATCH),
    ("gfalcopy", 84, "gfal-copy error: 84 (Invalid or incomplete multibyte or wide character) - Error on "
     "XrdCl::CopyProcess::Run(): [ERROR] CheckSum error", PilotError.PUTADMISMATCH),
    ("xrdcp", 54, "Run: [ERROR] Server responded with an error: [3010] Unable to create /ro/x.dat; permission "
     "denied  (destination)", PilotError.STAGEOUTAUTHENTICATIONFAILURE),
    ("gfalcopy", 13, "gfal-copy error: 13 (Permission denied) - Error on XrdCl::CopyProcess::Run(): [ERROR] Server "
     "responded with an error: [3010] Unable to create /ro/x.dat; permission denied",
     PilotError.STAGEOUTAUTHENTICATIONFAILURE),
    ("xrdcp", 51, "Run: [FATAL] Connection error:  (destination)", PilotError.UNREACHABLENETWORK),
    ("gfalcopy", 112, "gfal-copy error: 112 (Host is down) - DESTINATION OVERWRITE   Result Could not connect to "
     "server after 1 attempts", PilotError.UNREACHABLENETWORK),
    ("gfalcopy", 28, "gfal-copy error: 28 (No space left on device) - ...", PilotError.NOREMOTESPACE),
    ("gfal2", 1, "fsm-pilot bindings: cannot import gfal2: ModuleNotFoundError(\"No module named 'gfal2'\")",
     PilotError.MIDDLEWAREIMPORTFAILURE),
    ("xrdcp", -9, "", PilotError.STAGEOUTFAILED),
]


@pytest.mark.parametrize(("tool", "code", "output", "error"), REAL_ERRORS)
def test_real_tool_errors_map_to_panda_codes(tool: str, code: int, output: str, error: PilotError) -> None:
    assert classify(tool, code, output, "out") is error


def test_rucio_upload_command_line() -> None:
    """Not run here (no Rucio server): the command line only, as Pilot 3's upload call asks for it."""
    up = Upload(Path("/job/out.root"), "root://se.example.org:1094//atlas/rucio/mc/ab/cd/out.root", "SITE_DATADISK",
                "mc", "out.root", "A-GUID", 5_000_000)
    assert RUCIO.put is not None
    assert RUCIO.put(up, 305.0) == [
        "rucio", "upload", "--rse", "SITE_DATADISK", "--scope", "mc", "--name", "out.root", "--guid", "A-GUID",
        "--pfn", "root://se.example.org:1094//atlas/rucio/mc/ab/cd/out.root", "--no-register",
        "--transfer-timeout", "305", "/job/out.root"]
    assert RUCIO.verifies_itself


@pytest.mark.skipif(shutil.which("rucio") is not None, reason="the rucio client is installed here")
def test_rucio_not_installed_is_not_implemented() -> None:
    with pytest.raises(PilotFailure) as excinfo:
        uploader("rucio")
    assert excinfo.value.error is PilotError.NOTIMPLEMENTED
    assert "rucio not installed" in excinfo.value.diag


def test_a_file_endpoint_needs_no_copytool() -> None:
    """As before stage-out knew copytools: a file:// endpoint is written by the pilot, acopytools unread."""
    ddm = _ddm(write_lan=[{"endpoint": "file://localhost", "path": "/data/se"}])
    dest = destination(_queue(acopytools=42), ddm, "pw", None)
    assert dest.local and dest.copytools == ()
