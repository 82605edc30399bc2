"""stage_in itself against the real XRootD SE (no pilot): bad copies are not left behind; the tools' environment."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import structlog

from fsm_pilot.errors import PilotError, PilotFailure
from fsm_pilot.job import Checksum, FileSpec
from fsm_pilot.stagein import LOG_NAME, stage_in
from fsm_pilot.storage import deterministic_path
from fsm_pilot.transfer.toolenv import SYSTEM_PYTHON, XRD_DEFAULTS, tool_environment
from tests.se_helpers import adler32, put
from tests.xrootd_se import StorageElement

SCOPE = "data23"
DATA = b"0123456789" * 10_000


def _queue(se: StorageElement, scheme: str, copytool: str) -> tuple[dict[str, Any], dict[str, Any]]:
    endpoint = {"is_deterministic": True, "arprotocols": {"read_lan": [
        {"endpoint": se.url(scheme), "path": "/rucio"}]}}
    return {"acopytools": {"pr": [copytool]}, "astorages": {"read_lan": ["SE"]}}, {"SE": endpoint}


@pytest.mark.parametrize(("scheme", "copytool"), [("root", "xrdcp"), ("davs", "gfal")])
def test_a_corrupt_copy_is_not_left_in_the_job_dir(storage_element: StorageElement, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch, scheme: str, copytool: str) -> None:
    """xrdcp keeps a bad copy; the pilot copies into a scratch dir it removes, so nothing of it remains."""
    monkeypatch.setenv("X509_CERT_DIR", str(storage_element.ca_dir))
    put(storage_element, f"/rucio/{deterministic_path(SCOPE, 'in.dat')}", DATA.replace(b"0", b"X", 1))
    spec = FileSpec(lfn="in.dat", scope=SCOPE, fsize=len(DATA), guid="00000000-0000-0000-0000-000000000001",
                    checksum=Checksum(kind="adler32", value=adler32(DATA)), ddm_endpoint="SE", role="input")
    job = tmp_path / "job"
    job.mkdir()
    with pytest.raises(PilotFailure) as failure:
        stage_in(job, [spec], *_queue(storage_element, scheme, copytool), wakeup_fd=None,
                 log=structlog.get_logger("test"))
    assert failure.value.error == PilotError.GETADMISMATCH
    assert [p.name for p in job.iterdir()] == [LOG_NAME]


def test_tool_environment_adds_defaults_a_site_has_not_set() -> None:
    base = {"PATH": os.environ["PATH"], "XRD_CONNECTIONRETRY": "7", "XRD_REQUESTTIMEOUT": ""}
    env = tool_environment(["xrdcp", "a", "b"], base)
    assert env["XRD_CONNECTIONRETRY"] == "7"  # the site's value wins
    assert env["XRD_REQUESTTIMEOUT"] == XRD_DEFAULTS["XRD_REQUESTTIMEOUT"]
    assert "GFAL_PYTHONBIN" not in env  # only gfal-* commands need it


@pytest.mark.skipif(not Path("/usr/bin/gfal-copy").exists(), reason="no system gfal-copy (gfal2-util-scripts)")
def test_gfal_commands_get_the_system_python_unless_set() -> None:
    """With pyenv first on PATH, Debian's gfal-copy finds no Python with gfal2: the pilot names the system one."""
    env = tool_environment(["/usr/bin/gfal-copy", "a", "b"], {"PATH": os.environ["PATH"]})
    assert env["GFAL_PYTHONBIN"] == SYSTEM_PYTHON
    assert tool_environment(["gfal-copy"], {"PATH": "/usr/bin", "GFAL_PYTHONBIN": "/opt/py"})["GFAL_PYTHONBIN"] == (
        "/opt/py")
