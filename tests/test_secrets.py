"""Secrets found by their shape: withheld from payloads, never written by the pilot (real files)."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from fsm_pilot.payload.environment import payload_environment
from fsm_pilot.redact import REDACTED, holds_secret, redact


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


def test_real_environment_is_untouched() -> None:
    assert "PATH" in payload_environment(dict(os.environ))[0]
