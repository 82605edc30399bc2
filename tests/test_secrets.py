"""Secrets found by their shape: withheld from payloads, never written by the pilot (real files)."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest

from fsm_pilot import config, logsetup
from fsm_pilot.context import Context, JobRun, RunArgs
from fsm_pilot.job import job_identity
from fsm_pilot.payload.environment import payload_environment
from fsm_pilot.redact import REDACTED, holds_secret, redact
from fsm_pilot.report import write_final_report
from fsm_pilot.reporting import send_update
from fsm_pilot.signals import SignalState
from fsm_pilot.translog import TransitionLog


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


JWT = ".".join([_b64url(b'{"alg":"RS256","typ":"JWT"}'), _b64url(b'{"sub":"pilot","exp":4102444800}'),
                _b64url(b"signature-bytes-here")])
CLAIMS = JWT.split(".")[1]
PEM = "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n"


@pytest.mark.parametrize("value", [JWT, f" {JWT}\n", f"--token={JWT}", f"Bearer {JWT}",
                                   "Bearer abcdefghijklmnop1234", f"{JWT[:-3]}", PEM,
                                   "eyJhbGciOiJub25lIn0.e30."])  # alg none: an empty signature
def test_secrets_are_recognised(value: str) -> None:
    assert holds_secret(value)


@pytest.mark.parametrize("value", ["/tmp/x509up_u1000", "eyJ", "a.b.c", "panda.token.txt", "atlas.pilot",
                                   "heyJude.song.mp3", "bearer", "x" * 5000, ""])
def test_ordinary_values_are_not_secrets(value: str) -> None:
    assert not holds_secret(value)


def test_redact_replaces_jwts_and_bearer_credentials_only() -> None:
    text = f"reply: Authorization: Bearer abcdefghijklmnop1234; token {JWT}, path /tmp/x509up"
    assert redact(text) == f"reply: Authorization: Bearer {REDACTED}; token {REDACTED}, path /tmp/x509up"
    assert redact("nothing here") == "nothing here"


def test_payload_environment_withholds_inline_secrets_and_keeps_files(tmp_path: Path) -> None:
    (tmp_path / "panda_token").write_text(JWT)
    (tmp_path / "token_key").write_text("key")
    proxy = tmp_path / "x509up"
    proxy.write_text(PEM)
    env = {
        "PATH": "/usr/bin:/bin", "X509_USER_PROXY": str(proxy), "X509_CERT_DIR": "/etc/grid-security/certificates",
        "PANDA_AUTH_TOKEN": "panda_token", "PANDA_AUTH_DIR": str(tmp_path), "PANDA_AUTH_ORIGIN": "atlas.pilot",
        "PANDA_AUTH_TOKEN_KEY": "token_key", "OIDC_AUTH_TOKEN": JWT, "OIDC_REFRESHED_AUTH_TOKEN": "not-a-file",
        "PANDA_AUTH_SECRET": "c3d71281d64881e87e24415865b78e48", "MY_TOOL_ARGS": f"--token {JWT}",
        "HTTP_AUTH": "Bearer abcdefghijklmnop1234", "INLINE_KEY": PEM, "PANDA_AUTH": "oidc",
    }
    kept, withheld = payload_environment(env)
    assert withheld == sorted(["OIDC_AUTH_TOKEN", "OIDC_REFRESHED_AUTH_TOKEN", "PANDA_AUTH_SECRET", "MY_TOOL_ARGS",
                               "HTTP_AUTH", "INLINE_KEY"])
    assert kept == {k: v for k, v in env.items() if k not in withheld}
    assert kept["X509_USER_PROXY"] == str(proxy) and kept["PANDA_AUTH_TOKEN"] == "panda_token"


def test_payload_environment_withholds_an_inline_token_even_without_the_jwt_shape(tmp_path: Path) -> None:
    kept, withheld = payload_environment({"PANDA_AUTH_TOKEN": "opaque-secret-value", "PANDA_AUTH_DIR": str(tmp_path)})
    assert (kept, withheld) == ({"PANDA_AUTH_DIR": str(tmp_path)}, ["PANDA_AUTH_TOKEN"])


# --- what the pilot writes -------------------------------------------------------------------------------


def _ctx(tmp_path: Path) -> tuple[Context, JobRun]:
    args = RunArgs(queue="Q", workdir=tmp_path, launch_dir=tmp_path)
    ctx = Context(args=args, env={}, log=logsetup.configure(), translog=TransitionLog("t"), signals=SignalState(),
                  settings=config.resolve({}, {}, {}), pilot_id="t", pilot_dir=tmp_path)
    record: dict[str, object] = {"PandaID": "5", "logFile": "x.log.tgz"}
    return ctx, JobRun(identity=job_identity(record), record=record)


def test_pilot_log_never_holds_a_jwt(tmp_path: Path) -> None:
    log = logsetup.configure()
    logsetup.add_file(tmp_path / "pilot.log")
    try:
        log.warning(f"server said {JWT}", diag={"nested": [f"Bearer {JWT}"]}, error=ValueError(JWT))
    finally:
        logsetup.close()
    text = (tmp_path / "pilot.log").read_text()
    assert CLAIMS not in text and REDACTED in text
    assert json.loads(text)["event"] == f"server said {REDACTED}"


def test_transition_log_never_holds_a_jwt(tmp_path: Path) -> None:
    translog = TransitionLog("t")
    translog.attach(tmp_path)
    translog.append(event="fail", source="GETJOB", dest="FAILED", job_id=None, guards=[],
                    reason={"text": f"getJob failed: {JWT}"}, ok=True, error=f"Bearer {JWT}")
    translog.close()
    text = (tmp_path / "transitions.jsonl").read_text()
    assert CLAIMS not in text and json.loads(text)["reason"]["text"] == f"getJob failed: {REDACTED}"


def test_job_report_and_heartbeat_never_hold_a_jwt(tmp_path: Path) -> None:
    ctx, run = _ctx(tmp_path)
    run.workdir = tmp_path / "job"
    run.workdir.mkdir()
    # pilotLog quotes pilot.log: a line written there by anything but the pilot's redacting logger is blanked too
    (tmp_path / "pilot.log").write_text(f"PANDA_AUTH_TOKEN={JWT}\nfailed\n")
    run.state, run.diag = "failed", f"copy tool said: Authorization: Bearer {JWT}"
    report = write_final_report(ctx, run).read_text()
    assert send_update(ctx, run, "failed", final=True)  # no server: Pilot 3's heartbeat.json
    heartbeat = (tmp_path / "heartbeat.json").read_text()
    for text in (report, heartbeat):
        assert CLAIMS not in text
        fields = json.loads(text)
        assert fields["pilotLog"] == f"- Log from pilot.log -\nPANDA_AUTH_TOKEN={REDACTED}\nfailed"
        assert REDACTED in fields["pilotErrorDiag"]


def test_real_environment_is_untouched() -> None:
    assert "PATH" in payload_environment(dict(os.environ))[0]
