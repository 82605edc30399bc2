"""Secrets scan: an inline JWT in PANDA_AUTH_TOKEN appears nowhere the job can leave a trace.

The payload prints its whole environment to stdout and into an output file, and the job ends
finished, failed, or with the pilot told to stop (SIGTERM) while it runs; the token
(and its signature, the part that is a secret on its own) must then appear in no file
of the launch and work dirs, no member of any log tarball (opened, not grepped as
compressed bytes), no file in storage, and not in what the pilot printed.
"""

from __future__ import annotations

import base64
import json
import secrets
import signal
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pilotserver import job_spec
from tests.reliability.cluster import BoxDispatcher, start_dispatcher, start_pilot
from tests.reliability.conftest import MakeLedger
from tests.reliability.invariants import PILOT_INVARIANTS, check_pilot
from tests.reliability.probes import wait_payload
from tests.reliability.sandbox import Proc, Sandbox

INVARIANTS = ("token_absent", "job_ended", *PILOT_INVARIANTS)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_jwt() -> tuple[str, str]:
    """A compact JWT valid for ten days, and its signature part."""
    header = _b64(json.dumps({"alg": "RS256", "typ": "JWT"}).encode())
    claims = _b64(json.dumps({"sub": "pilot", "exp": int(time.time()) + 10 * 86400, "iss": "fsm-test"}).encode())
    signature = _b64(secrets.token_bytes(64))
    return f"{header}.{claims}.{signature}", signature


def _contents(root: Path) -> Iterator[tuple[str, bytes]]:
    """(where, bytes) of every file under ``root``, tarball members opened and read too."""
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        yield str(path), data
        if path.name.endswith((".tgz", ".tar.gz", ".tar")):
            with tarfile.open(path) as tar:
                for member in tar.getmembers():
                    handle = tar.extractfile(member) if member.isfile() else None
                    if handle is not None:
                        yield f"{path}!{member.name}", handle.read()


#: How the job ends -> its payload body and the dispatcher's final state.
ENDINGS = {"finished": ("echo done > out.txt", "finished"), "failed": ("exit 3", "failed"),
           "SIGTERM": ("touch started; sleep 300", "failed")}


def _run(box: Sandbox, server: BoxDispatcher, launch: Path, token: str, ending: str) -> tuple[int, Proc]:
    """One job whose payload dumps its environment, ended ``ending``; its PandaID and pilot."""
    body, _ = ENDINGS[ending]
    [panda_id] = server.submit(job_spec(f"-c 'env; env > env.txt; {body}'", ("env.txt", "out.txt")))
    launch.mkdir()
    pilot = start_pilot(box, launch, server.url, "--timefloor", "0", "-v", "1", "--getjob-wait", "0",
                        env={"PANDA_AUTH_TOKEN": token})
    if ending == "SIGTERM":
        wait_payload(launch, pilot)
        pilot.send_signal(signal.SIGTERM)
    pilot.wait(60)
    return panda_id, pilot


@pytest.mark.parametrize("ending", sorted(ENDINGS))
def test_an_inline_token_appears_nowhere_the_job_leaves_files(tmp_path: Path, sandbox: Sandbox,
                                                              ledger: MakeLedger, ending: str) -> None:
    book = ledger("secrets scan", INVARIANTS)
    token, signature = make_jwt()
    server = start_dispatcher(sandbox, tmp_path / "dispatcher")
    launch = tmp_path / "launch"
    panda_id, pilot = _run(sandbox, server, launch, token, ending)
    book.run()
    check_pilot(book, pilot, launch, f"inline JWT, job {ending}")
    status = server.status(panda_id)
    book.check("job_ended", status == {panda_id: ENDINGS[ending][1]}, f"job {panda_id} is {status}")
    scanned = 0
    for root in (launch, server.storage, sandbox.root):
        for where, data in _contents(root):
            scanned += 1
            leaked = token.encode() in data or signature.encode() in data
            book.check("token_absent", not leaked, f"job {ending}: the token is in {where}")
    book.facts[f"files_scanned_{ending}"] = scanned
    server.stop()
    book.finish()
