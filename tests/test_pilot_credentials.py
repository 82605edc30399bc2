"""Credentials seen from outside: real pilots against the real dispatcher, real token files, real certificates.

No VOMS server can exist here, so the "proxy" is a self-signed certificate made by
openssl: DER-wise real, and its notAfter is all the pilot reads of a proxy.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from fsm_pilot.errors import PilotError
from fsm_pilot.replay import problems
from tests.pilotrun import Launch, job_def, make_launch, started
from tests.pilotserver import Dispatcher, job_spec

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")

FAST = ("--heartbeat-interval", "0.5", "--kill-grace", "0.5", "--getjob-wait", "0", "-v", "1",
        "--min-free-disk", "1000")
DAY = 86400


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def jwt(lifetime: float) -> str:
    """A compact JWS as an IAM issues it, unique per call (a ``jti``), so a scan cannot confuse two."""
    head = _b64url(json.dumps({"alg": "RS256", "typ": "JWT", "kid": "rsa1"}).encode())
    claims = {"sub": "pilot", "exp": int(time.time() + lifetime), "jti": uuid.uuid4().hex}
    return f"{head}.{_b64url(json.dumps(claims).encode())}.{_b64url(uuid.uuid4().bytes * 4)}"


def fake_proxy(path: Path, days: int = 30) -> Path:
    """A self-signed certificate standing in for a VOMS proxy (no VOMS server here)."""
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", str(days),
                    "-subj", "/CN=fsm-pilot test proxy", "-keyout", str(path.with_suffix(".key")),
                    "-out", str(path)], check=True, capture_output=True)
    path.write_text(path.read_text() + path.with_suffix(".key").read_text())
    return path


def run_pilot(launch: Launch, url: str | None, *extra: str, env: dict[str, str]) -> tuple[int, str]:
    """A pilot with exactly the credentials in ``env`` (none of the test runner's own)."""
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("X509", "PANDA_AUTH", "OIDC", "FSM_PILOT"))}
    cmd = [sys.executable, "-m", "fsm_pilot", "run", "-q", "TEST_QUEUE", "-j", "managed", "-a", str(launch.dir),
           *(("--url", url) if url else ()), *FAST, *extra]
    proc = started(subprocess.Popen(cmd, cwd=launch.dir, env={**base, **env}, text=True,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
    _, err = proc.communicate(timeout=90)
    return proc.returncode, err


def _launch(root: Path, local_queuedata: bool) -> Launch:
    if local_queuedata:
        return make_launch(root)
    launch = Launch(root)
    launch.dir.mkdir(parents=True)
    return launch


# --- a token file that cannot be used --------------------------------------------------------------------


@pytest.mark.parametrize(("local_queuedata", "extra", "where"), [
    (False, (), ("QUEUEDATA", "FAILED")),  # the first server call needs the token
    (True, (), ("CHECKS", "FAILED")),  # the credential check, before any server call
    (True, ("-t",), ("GETJOB", "EXIT")),  # -t skips the check; getJob cannot send a token it cannot read
])
def test_missing_token_file_exits_68_naming_the_file(tmp_path: Path, dispatcher: Dispatcher, local_queuedata: bool,
                                                     extra: tuple[str, ...], where: tuple[str, str]) -> None:
    dispatcher.submit(job_spec("-c true"))
    launch = _launch(tmp_path / "pilot", local_queuedata)
    missing = tmp_path / "auth" / "panda_token"
    code, err = run_pilot(launch, dispatcher.url, *extra,
                          env={"PANDA_AUTH_TOKEN": "panda_token", "PANDA_AUTH_DIR": str(missing.parent)})
    assert code == 68, err
    assert "Traceback" not in err
    last = launch.records()[-1]
    assert (last["source"], last["dest"], last["reason"]["error"]) == (*where, PilotError.NOPROXY)
    text = last["reason"]["text"]
    assert str(missing) in text and "does not exist" in text and "PANDA_AUTH_TOKEN" in text, text
    assert problems(launch.records()) == []
    assert launch.reports() == {}


@pytest.mark.parametrize(("content", "why"), [("", "is empty"), ("not a token at all\n", "malformed")])
def test_empty_or_malformed_token_file_fails_the_checks_with_68(tmp_path: Path, dispatcher: Dispatcher,
                                                               content: str, why: str) -> None:
    launch = _launch(tmp_path / "pilot", local_queuedata=True)
    token = tmp_path / "token"
    token.write_text(content)
    code, err = run_pilot(launch, dispatcher.url, env={"PANDA_AUTH_TOKEN": str(token)})
    assert code == 68, err
    last = launch.records()[-1]
    assert (last["source"], last["dest"], last["reason"]["error"]) == ("CHECKS", "FAILED", PilotError.NOPROXY)
    assert str(token) in last["reason"]["text"] and why in last["reason"]["text"]


# --- both credentials are checked --------------------------------------------------------------------------


def test_expired_token_with_a_valid_proxy_exits_68(tmp_path: Path, dispatcher: Dispatcher) -> None:
    [panda_id] = dispatcher.submit(job_spec("-c true"))
    launch = _launch(tmp_path / "pilot", local_queuedata=False)
    token = tmp_path / "token"
    token.write_text(jwt(-3600) + "\n")
    proxy = fake_proxy(tmp_path / "x509up")
    code, err = run_pilot(launch, dispatcher.url, env={"PANDA_AUTH_TOKEN": str(token),
                                                        "X509_USER_PROXY": str(proxy)})
    assert code == 68, err
    last = launch.records()[-1]
    assert (last["source"], last["dest"]) == ("CLEANUP", "EXIT")
    assert last["reason"]["error"] == PilotError.CERTIFICATEHASEXPIRED
    [guard] = [g for g in last["guards"] if g["guard"] == "proxy_lifetime"]
    assert guard["allowed"] is False
    assert guard["inputs"]["credential"] == "x509+token"
    lifetimes = guard["inputs"]["lifetimes"]
    assert lifetimes["x509"] > 29 * DAY and -3700 < lifetimes["token"] < -3500
    assert not (launch.dir / "pandaIDs.out").exists()  # no job was taken
    assert dispatcher.status(panda_id) == {panda_id: "activated"}


def test_valid_token_and_proxy_run_the_job(tmp_path: Path, dispatcher: Dispatcher) -> None:
    [panda_id] = dispatcher.submit(job_spec("-c true"))
    launch = _launch(tmp_path / "pilot", local_queuedata=False)
    token = tmp_path / "token"
    token.write_text(jwt(10 * DAY))
    env = {"PANDA_AUTH_TOKEN": str(token), "X509_USER_PROXY": str(fake_proxy(tmp_path / "x509up"))}
    code, err = run_pilot(launch, dispatcher.url, "--timefloor", "0", env=env)
    assert code == 0, err
    assert dispatcher.status(panda_id) == {panda_id: "finished"}
    [first] = [r for r in launch.records() if r["source"] == "CLEANUP"]
    [guard] = [g for g in first["guards"] if g["guard"] == "proxy_lifetime"]
    assert guard["allowed"] is True and set(guard["inputs"]["lifetimes"]) == {"x509", "token"}


# --- an inline token never leaves the pilot ---------------------------------------------------------------


def _files(root: Path) -> Iterator[tuple[str, bytes]]:
    """Every file under ``root`` with its bytes, and every member of every tarball, recursively."""
    for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink()):
        data = path.read_bytes()
        yield str(path), data
        if path.name.endswith((".tgz", ".tar.gz", ".tar")):
            with tarfile.open(path) as tar:
                for member in tar.getmembers():
                    extracted = tar.extractfile(member) if member.isfile() else None
                    if extracted is not None:
                        yield f"{path}!{member.name}", extracted.read()


#: The payload shows its whole environment on stdout, on stderr (the report quotes stderr's tail when
#: the job fails), in an output file that is stored, and names the token variable last.
_SHOW_ENV = ("-c 'env; env > env.txt; env >&2; echo \"token=$PANDA_AUTH_TOKEN\"; "
             "echo \"token=$PANDA_AUTH_TOKEN\" >&2; exit {code}'")


@pytest.mark.parametrize("where", ["server", "push -z"])
def test_inline_token_never_reaches_the_payload_logs_or_storage(tmp_path: Path, dispatcher: Dispatcher,
                                                                where: str) -> None:
    secret = jwt(30 * DAY)
    proxy = fake_proxy(tmp_path / "x509up")
    specs = [(_SHOW_ENV.format(code=0), ("env.txt",)), (_SHOW_ENV.format(code=3), ())]
    extra: tuple[str, ...]
    if where == "server":
        launch = _launch(tmp_path / "pilot", local_queuedata=False)
        dispatcher.submit(*(job_spec(pars, outs) for pars, outs in specs))
        url, extra = dispatcher.url, ("--timefloor", "10")
    else:
        jobs = [job_def(i, pars, outs) for i, (pars, outs) in enumerate(specs, start=1)]
        launch = make_launch(tmp_path / "pilot", jobs, timefloor=10)
        url, extra = None, ("-z",)
    code, err = run_pilot(launch, url, *extra, env={"PANDA_AUTH_TOKEN": secret, "PANDA_AUTH_ORIGIN": "test.pilot",
                                                    "X509_USER_PROXY": str(proxy)})
    assert code == 0, err
    assert secret not in err
    assert sorted(r["state"] for r in launch.reports().values()) == ["failed", "finished"]
    claims = secret.split(".")[1]
    leaks = [name for name, data in _files(tmp_path) if claims.encode() in data]
    assert leaks == []
    # the payload still got what a grid job needs: the proxy file, and the job's own variables
    stored = [data.decode() for name, data in _files(tmp_path) if name.endswith("/env.txt")]
    assert stored, "the payload's env.txt was not stored"
    env = dict(line.split("=", 1) for line in stored[0].splitlines() if "=" in line)
    assert env["X509_USER_PROXY"] == str(proxy)
    assert "PANDA_AUTH_TOKEN" not in env and "PandaID" in env
