"""Proxy and token lifetimes, against real certificates made by the openssl CLI."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import traceback
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from fsm_pilot.credentials import (
    _parse_time,
    configured,
    find_proxy,
    find_token,
    lifetimes,
    proxy_not_after,
    proxy_seconds_left,
    read_token,
    token_seconds_left,
)
from fsm_pilot.errors import PilotError, PilotFailure

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


# --- helpers ----------------------------------------------------------------


def _openssl(*args: str) -> str:
    done = subprocess.run(["openssl", *args], check=True, capture_output=True, text=True)
    return done.stdout


def _make_cert(directory: Path, name: str, days: int) -> tuple[Path, Path]:
    """A self-signed certificate and its key, as a grid CA would never issue but DER-wise real."""
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", str(days), "-subj", f"/CN={name}",
             "-keyout", str(key), "-out", str(cert))
    return cert, key


def _openssl_not_after(cert: Path) -> datetime:
    """The independent oracle: what openssl itself says the expiry is."""
    line = _openssl("x509", "-in", str(cert), "-noout", "-enddate").strip()
    stamp = line.split("=", 1)[1]
    return datetime.strptime(stamp, "%b %d %H:%M:%S %Y GMT").replace(tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    """Generated once per module: RSA key generation is the slow part."""
    directory = tmp_path_factory.mktemp("certs")
    lifetimes = {"short": 1, "month": 30, "beyond2050": 20000}
    return {name: _make_cert(directory, name, days) for name, days in lifetimes.items()}


def _concat(target: Path, *parts: Path) -> Path:
    target.write_text("".join(part.read_text() for part in parts))
    return target


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _jwt(claims: object) -> str:
    """A compact JWS as an IAM would issue it; the signature is never checked, so any bytes do."""
    head = _b64url(json.dumps({"alg": "RS256", "typ": "JWT"}).encode())
    return f"{head}.{_b64url(json.dumps(claims).encode())}.c2lnbmF0dXJl"


# --- proxy ------------------------------------------------------------------


@pytest.mark.parametrize(("name", "der_time"), [("month", "UTCTIME"), ("beyond2050", "GENERALIZEDTIME")])
def test_not_after_matches_openssl(certs: dict[str, tuple[Path, Path]], name: str, der_time: str) -> None:
    cert, _ = certs[name]
    # Prove which ASN.1 time type this certificate really exercises.
    assert der_time in _openssl("asn1parse", "-in", str(cert))
    got = proxy_not_after(cert)
    assert got == _openssl_not_after(cert)
    assert got.utcoffset() == timedelta(0)


@pytest.mark.parametrize("order", [("short", "beyond2050"), ("beyond2050", "short")])
def test_chain_earliest_not_after_wins(
    certs: dict[str, tuple[Path, Path]], tmp_path: Path, order: tuple[str, str]
) -> None:
    chain = _concat(tmp_path / "chain.pem", *(certs[name][0] for name in order))
    assert proxy_not_after(chain) == _openssl_not_after(certs["short"][0])


def test_proxy_layout_with_key_between_certs(certs: dict[str, tuple[Path, Path]], tmp_path: Path) -> None:
    proxy_cert, proxy_key = certs["month"]
    proxy = _concat(tmp_path / "x509up", proxy_cert, proxy_key, certs["short"][0])
    assert "PRIVATE KEY" in proxy.read_text()
    assert proxy_not_after(proxy) == _openssl_not_after(certs["short"][0])


def test_seconds_left(certs: dict[str, tuple[Path, Path]]) -> None:
    cert, _ = certs["month"]
    expected = (_openssl_not_after(cert) - NOW).total_seconds()
    assert proxy_seconds_left(cert, NOW) == expected
    far_future = NOW + timedelta(days=40000)
    assert proxy_seconds_left(cert, far_future) < 0


@pytest.mark.parametrize(
    ("rfc_tag", "raw", "expected"),
    [
        (0x17, b"491231235959Z", datetime(2049, 12, 31, 23, 59, 59, tzinfo=timezone.utc)),
        (0x17, b"500101000000Z", datetime(1950, 1, 1, tzinfo=timezone.utc)),
        (0x17, b"991231235959Z", datetime(1999, 12, 31, 23, 59, 59, tzinfo=timezone.utc)),
        (0x18, b"20500101000000Z", datetime(2050, 1, 1, tzinfo=timezone.utc)),
    ],
)
def test_utctime_pivot_and_generalized_time(rfc_tag: int, raw: bytes, expected: datetime) -> None:
    # openssl 3.0's CLI cannot set a notAfter before now, so the 1950-1999 half of the
    # RFC 5280 pivot is checked on the time parser alone.
    assert _parse_time(rfc_tag, raw) == expected


@pytest.mark.parametrize(
    ("rfc_tag", "raw"),
    [
        (0x17, b"4912312359Z"),  # no seconds: allowed by BER, forbidden by RFC 5280
        (0x17, b"491231235959+0100"),
        (0x17, b"491231235959"),
        (0x17, b"4912312359590"),
        (0x18, b"20500101000000.5Z"),
        (0x18, b"500101000000Z"),
        (0x18, b"20501301000000Z"),  # month 13
        (0x17, b"49123123595\xffZ"),
    ],
)
def test_time_forms_outside_rfc5280_are_rejected(rfc_tag: int, raw: bytes) -> None:
    with pytest.raises(ValueError):
        _parse_time(rfc_tag, raw)


def _pem(der: bytes) -> str:
    body = base64.b64encode(der).decode()
    return f"-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n"


def _real_der(cert: Path) -> bytes:
    return base64.b64decode("".join(cert.read_text().splitlines()[1:-1]))


_KEY_ONLY = "hello\n-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
#: Proxy file contents that must all end as NOPROXY, built from a real certificate.
_BROKEN: dict[str, Callable[[Path], str]] = {
    "no certificate block": lambda cert: _KEY_ONLY,
    "empty file": lambda cert: "",
    "bad base64": lambda cert: "-----BEGIN CERTIFICATE-----\n!!not*base64!!\n-----END CERTIFICATE-----\n",
    "base64 not DER": lambda cert: _pem(b"this is not DER at all"),
    "truncated DER": lambda cert: _pem(_real_der(cert)[:300]),
    "only a tag": lambda cert: _pem(b"\x30"),
    "indefinite length": lambda cert: _pem(b"\x30\x80\x00\x00"),
    "length past end": lambda cert: _pem(b"\x30\x84\xff\xff\xff\xff"),
    "SEQUENCE of an INTEGER": lambda cert: _pem(b"\x30\x05\x30\x03\x02\x01\x01"),
    "good cert then garbage cert": lambda cert: cert.read_text() + _pem(b"\x30\x00"),
    "time lengths corrupted": lambda cert: _pem(
        _real_der(cert).replace(b"\x17\x0d", b"\x17\x0b", 2)
    ),
}


@pytest.mark.parametrize("case", sorted(_BROKEN))
def test_unreadable_proxy_is_noproxy(certs: dict[str, tuple[Path, Path]], tmp_path: Path, case: str) -> None:
    path = tmp_path / "x509up"
    path.write_text(_BROKEN[case](certs["month"][0]))
    with pytest.raises(PilotFailure) as caught:
        proxy_not_after(path)
    assert caught.value.error is PilotError.NOPROXY
    assert str(path) in caught.value.diag


def test_missing_proxy_is_noproxy(tmp_path: Path) -> None:
    with pytest.raises(PilotFailure) as caught:
        proxy_seconds_left(tmp_path / "absent", NOW)
    assert caught.value.error is PilotError.NOPROXY
    assert "not found" in caught.value.diag


def test_find_proxy_prefers_the_variable(tmp_path: Path) -> None:
    configured = tmp_path / "configured"  # returned even though missing: the site asked for it
    assert find_proxy({"X509_USER_PROXY": str(configured)}) == configured


def test_find_proxy_default_location(monkeypatch: pytest.MonkeyPatch) -> None:
    # A uid nobody has, so the real /tmp/x509up_u<uid> of this user is never touched.
    fake_uid = 4_000_000_000 + os.getpid() % 1000
    default = Path(f"/tmp/x509up_u{fake_uid}")
    monkeypatch.setattr(os, "getuid", lambda: fake_uid)
    assert find_proxy({}) is None
    default.write_text("proxy")
    try:
        assert find_proxy({"X509_USER_PROXY": ""}) == default
    finally:
        default.unlink()


# --- tokens -----------------------------------------------------------------


@pytest.mark.parametrize("lifetime", [3600, 0.5, -120])
def test_token_seconds_left(lifetime: float) -> None:
    token = _jwt({"sub": "pilot", "exp": NOW.timestamp() + lifetime})
    assert token_seconds_left(token, NOW) == pytest.approx(lifetime)


def test_token_without_exp() -> None:
    assert token_seconds_left(_jwt({"sub": "pilot"}), NOW) is None


SECRET = "Zs3cr3tZ"
_GOOD_HEAD = _b64url(b'{"alg": "none"}')
_MALFORMED = {
    "one part": SECRET,
    "two parts": f"{SECRET}.{SECRET}",
    "four parts": f"{_GOOD_HEAD}.{SECRET}.{SECRET}.{SECRET}",
    "payload bad characters": f"{_GOOD_HEAD}.{SECRET}$$.sig",
    "payload impossible length": f"{_GOOD_HEAD}.{SECRET}a.sig",
    "payload not JSON": f"{_GOOD_HEAD}.{_b64url(SECRET.encode() + b' not json')}.sig",
    "payload not UTF-8": f"{_GOOD_HEAD}.{_b64url(bytes([0xFF, 0xFE]) + SECRET.encode())}.sig",
    "payload a list": f"{_GOOD_HEAD}.{_b64url(json.dumps([SECRET]).encode())}.sig",
    "exp a string": _jwt({"exp": SECRET}),
    "exp a boolean": _jwt({"exp": True, "sub": SECRET}),
    "exp NaN": _jwt({"exp": float("nan"), "sub": SECRET}),
    "header garbage": f"{_b64url(SECRET.encode())}.{_b64url(b'{}')}.sig",
    "empty": "",
}


@pytest.mark.parametrize("case", sorted(_MALFORMED))
def test_malformed_token_never_leaks(case: str) -> None:
    token = _MALFORMED[case]
    with pytest.raises(PilotFailure) as caught:
        token_seconds_left(token, NOW)
    assert caught.value.error is PilotError.NOPROXY
    # Nothing chained either: decoding errors keep the decoded text in their attributes.
    assert caught.value.__context__ is None
    assert caught.value.__cause__ is None
    rendered = "".join(traceback.format_exception(type(caught.value), caught.value, caught.value.__traceback__))
    assert SECRET not in rendered
    for part in filter(None, token.split(".")):
        assert part not in rendered


def test_find_token_none_configured() -> None:
    assert find_token({"PATH": "/bin"}) is None


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"PANDA_AUTH_TOKEN": "tok", "PANDA_AUTH_DIR": "/auth"}, Path("/auth/tok")),
        ({"PANDA_AUTH_TOKEN": "/abs/tok", "PANDA_AUTH_DIR": "/auth"}, Path("/abs/tok")),
        ({"PANDA_AUTH_TOKEN": "tok"}, Path("tok")),
        ({"OIDC_AUTH_TOKEN": "tok", "OIDC_AUTH_DIR": "/oidc"}, Path("/oidc/tok")),
        ({"PANDA_AUTH_TOKEN": "tok", "OIDC_AUTH_DIR": "/oidc"}, Path("/oidc/tok")),
        ({"PANDA_AUTH_TOKEN": "p", "OIDC_AUTH_TOKEN": "o", "PANDA_AUTH_DIR": "/a", "OIDC_AUTH_DIR": "/b"},
         Path("/a/p")),
        ({"PANDA_AUTH_TOKEN": "", "OIDC_AUTH_TOKEN": "o"}, Path("o")),
    ],
)
def test_find_token_file(env: dict[str, str], expected: Path) -> None:
    assert find_token(env) == expected


@pytest.mark.parametrize("padding", [0, 2000])  # long tokens exceed NAME_MAX: no filesystem probe
def test_find_token_inline_value(padding: int) -> None:
    token = _jwt({"exp": 1, "groups": "x" * padding})
    assert find_token({"PANDA_AUTH_TOKEN": token, "PANDA_AUTH_DIR": "/auth"}) == token


def test_find_token_dotted_file_name_is_a_file() -> None:
    assert find_token({"PANDA_AUTH_TOKEN": "panda.token.txt", "PANDA_AUTH_DIR": "/auth"}) == Path(
        "/auth/panda.token.txt"
    )


def test_token_file_end_to_end(tmp_path: Path) -> None:
    token = _jwt({"exp": NOW.timestamp() + 7200})
    (tmp_path / "panda_token").write_text(token + "\n")
    found = find_token({"PANDA_AUTH_TOKEN": "panda_token", "PANDA_AUTH_DIR": str(tmp_path)})
    assert found == tmp_path / "panda_token"
    assert token_seconds_left(read_token(found), NOW) == pytest.approx(7200)


def test_unreadable_token_file(tmp_path: Path) -> None:
    with pytest.raises(PilotFailure) as caught:
        read_token(tmp_path / "absent")
    assert caught.value.error is PilotError.NOPROXY
    assert f"token file {tmp_path / 'absent'} does not exist" in caught.value.diag
    assert "PANDA_AUTH_TOKEN" in caught.value.diag  # and what to do about it
    (tmp_path / "empty").write_text(" \n")
    with pytest.raises(PilotFailure, match="is empty"):
        read_token(tmp_path / "empty")


# --- every configured credential --------------------------------------------


def test_lifetimes_reads_both_proxy_and_token(certs: dict[str, tuple[Path, Path]], tmp_path: Path) -> None:
    cert, _ = certs["month"]
    (tmp_path / "tok").write_text(_jwt({"exp": NOW.timestamp() - 60}))
    env = {"X509_USER_PROXY": str(cert), "PANDA_AUTH_TOKEN": "tok", "PANDA_AUTH_DIR": str(tmp_path)}
    assert configured(env) == ("x509", "token")
    found = lifetimes(env, NOW)
    assert found == {"x509": (_openssl_not_after(cert) - NOW).total_seconds(), "token": pytest.approx(-60)}


@pytest.mark.parametrize(("content", "why"), [(None, "does not exist"), ("", "is empty"),
                                              ("garbage", "token is malformed")])
def test_lifetimes_names_the_token_file_that_cannot_be_used(
        certs: dict[str, tuple[Path, Path]], tmp_path: Path, content: str | None, why: str) -> None:
    token = tmp_path / "tok"
    if content is not None:
        token.write_text(content)
    env = {"X509_USER_PROXY": str(certs["month"][0]), "PANDA_AUTH_TOKEN": str(token)}
    with pytest.raises(PilotFailure) as caught:
        lifetimes(env, NOW)
    assert caught.value.error is PilotError.NOPROXY
    assert str(token) in caught.value.diag and why in caught.value.diag and "unset it" in caught.value.diag


def test_lifetimes_names_the_proxy_that_cannot_be_used(tmp_path: Path) -> None:
    with pytest.raises(PilotFailure) as caught:
        lifetimes({"X509_USER_PROXY": str(tmp_path / "gone")}, NOW)
    assert str(tmp_path / "gone") in caught.value.diag and "X509_USER_PROXY" in caught.value.diag
    assert configured({"PATH": "/bin", "X509_USER_PROXY": str(tmp_path / "gone")}) == ("x509",)
