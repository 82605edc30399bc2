"""Where the pilot's credentials are and how long they stay valid.

Only lifetimes are read here: the X509 proxy's earliest ``notAfter`` and a
token's ``exp``. Nothing is verified cryptographically, because the server
does that on every call; the pilot only needs to know when to stop relying on
a credential (Pilot 3 thresholds: 72 h at start, 1 h while running). That is
also why a small DER reader is enough and no crypto library is needed.

Token text never appears in a log record or an exception message.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from fsm_pilot.errors import PilotError, PilotFailure

#: Errors about the pilot's own credentials: no retry, dialect or other server can help, so callers
#: that translate a failed server call into their own error keep these (exit 68 or 80, not 71 or 79).
CREDENTIAL_ERRORS = frozenset({PilotError.NOPROXY, PilotError.NOVOMSPROXY, PilotError.CERTIFICATEHASEXPIRED,
                               PilotError.PROXYTOOSHORT})
#: How to fix a proxy the pilot cannot use.
PROXY_HINT = "point X509_USER_PROXY at a valid proxy file, or unset it"

_PEM_CERT = re.compile(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", re.DOTALL)
_B64URL = re.compile(r"[A-Za-z0-9_-]*")

_SEQUENCE = 0x30
_INTEGER = 0x02
_VERSION = 0xA0  # [0] EXPLICIT, constructed
_UTC_TIME = 0x17
_GENERALIZED_TIME = 0x18


# --- X509 proxy -------------------------------------------------------------


def find_proxy(env: Mapping[str, str]) -> Path | None:
    """The proxy file: ``X509_USER_PROXY`` when set, else the grid default if present.

    A set variable is returned even if the file is missing, so the caller
    reports NOPROXY for the path the site configured instead of silently
    falling back to another file.
    """
    configured = env.get("X509_USER_PROXY")
    if configured:
        return Path(configured)
    default = Path(f"/tmp/x509up_u{os.getuid()}")
    return default if default.is_file() else None


def proxy_not_after(path: Path) -> datetime:
    """Earliest ``notAfter`` (aware, UTC) over every certificate in the PEM file.

    A proxy file holds the proxy certificate, maybe its key, then the chain;
    the chain is only usable while its shortest-lived member is.
    """
    blocks = _certificate_blocks(_read_pem(path))
    if not blocks:
        raise PilotFailure(PilotError.NOPROXY, f"{path}: no CERTIFICATE block found")
    limits: list[datetime] = []
    for number, block in enumerate(blocks, start=1):
        try:
            limits.append(_cert_not_after(_pem_body_to_der(block)))
        except ValueError as err:
            raise PilotFailure(
                PilotError.NOPROXY, f"{path}: certificate {number} is unreadable: {err}"
            ) from None
    return min(limits)


def proxy_seconds_left(path: Path, now: datetime) -> float:
    """Seconds until the proxy chain expires (negative once expired); ``now`` must be aware."""
    return (proxy_not_after(path) - now).total_seconds()


def _read_pem(path: Path) -> str:
    """The file as text; bytes that are not ASCII cannot be part of a PEM block anyway."""
    try:
        return path.read_bytes().decode("ascii", errors="replace")
    except FileNotFoundError:
        raise PilotFailure(PilotError.NOPROXY, f"{path}: proxy file not found") from None
    except OSError as err:
        raise PilotFailure(PilotError.NOPROXY, f"{path}: cannot read proxy: {err.strerror}") from None


def _certificate_blocks(text: str) -> list[str]:
    """Base64 bodies of the CERTIFICATE blocks; key blocks are skipped, never decoded."""
    return [match.group(1) for match in _PEM_CERT.finditer(text)]


def _pem_body_to_der(body: str) -> bytes:
    """Strict base64 so a damaged block is reported, not half-decoded."""
    try:
        return base64.b64decode("".join(body.split()), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("invalid base64") from None


# --- minimal DER reader -----------------------------------------------------


@dataclass(frozen=True)
class _Tlv:
    """One DER element: its tag and where its content lies in the buffer."""

    tag: int
    start: int
    end: int


def _read_tlv(der: bytes, pos: int, limit: int) -> _Tlv:
    """Parse the element at ``pos``; its content must end before ``limit``."""
    if pos + 2 > limit:
        raise ValueError("truncated DER element")
    tag, first = der[pos], der[pos + 1]
    if tag & 0x1F == 0x1F:
        raise ValueError("multi-byte DER tags are not used in certificates")
    pos += 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or pos + count > limit:
            raise ValueError("bad DER length")
        length = int.from_bytes(der[pos : pos + count], "big")
        pos += count
    if pos + length > limit:
        raise ValueError("DER length runs past its container")
    return _Tlv(tag, pos, pos + length)


def _expect(der: bytes, pos: int, limit: int, tags: tuple[int, ...], what: str) -> _Tlv:
    """Read one element and insist on its tag, naming the field in the error."""
    element = _read_tlv(der, pos, limit)
    if element.tag not in tags:
        raise ValueError(f"expected {what}, found DER tag 0x{element.tag:02x}")
    return element


def _cert_not_after(der: bytes) -> datetime:
    """Walk Certificate -> TBSCertificate -> validity and parse notAfter."""
    cert = _expect(der, 0, len(der), (_SEQUENCE,), "Certificate SEQUENCE")
    tbs = _expect(der, cert.start, cert.end, (_SEQUENCE,), "TBSCertificate SEQUENCE")
    field = _read_tlv(der, tbs.start, tbs.end)
    if field.tag == _VERSION:
        field = _read_tlv(der, field.end, tbs.end)
    if field.tag != _INTEGER:
        raise ValueError("expected serialNumber INTEGER")
    signature = _expect(der, field.end, tbs.end, (_SEQUENCE,), "signature AlgorithmIdentifier")
    issuer = _expect(der, signature.end, tbs.end, (_SEQUENCE,), "issuer Name")
    validity = _expect(der, issuer.end, tbs.end, (_SEQUENCE,), "Validity SEQUENCE")
    times = (_UTC_TIME, _GENERALIZED_TIME)
    not_before = _expect(der, validity.start, validity.end, times, "notBefore time")
    not_after = _expect(der, not_before.end, validity.end, times, "notAfter time")
    return _parse_time(not_after.tag, der[not_after.start : not_after.end])


def _parse_time(tag: int, raw: bytes) -> datetime:
    """RFC 5280 times: UTCTime YYMMDDHHMMSSZ (YY < 50 is 20YY) or GeneralizedTime YYYYMMDDHHMMSSZ."""
    text = raw.decode("ascii", errors="replace")
    size = 13 if tag == _UTC_TIME else 15
    if len(text) != size or not text.endswith("Z") or not text[:-1].isdigit():
        raise ValueError("time is not in the RFC 5280 form")
    if tag == _UTC_TIME:
        year = int(text[:2])
        text = f"{1900 + year if year >= 50 else 2000 + year}{text[2:]}"
    try:
        return datetime.strptime(text, "%Y%m%d%H%M%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        raise ValueError("time has an impossible date") from None


# --- tokens -----------------------------------------------------------------

#: How to fix a token the pilot cannot use; every token diag ends with it.
TOKEN_HINT = ("point PANDA_AUTH_TOKEN (or OIDC_AUTH_TOKEN; a relative name is looked up in PANDA_AUTH_DIR or "
              "OIDC_AUTH_DIR) at a readable token file, or unset it")


def find_token(env: Mapping[str, str]) -> Path | str | None:
    """The pilot's OIDC token, as PanDA deployments configure it.

    ``PANDA_AUTH_TOKEN`` (fallback ``OIDC_AUTH_TOKEN``) names the token file,
    absolute or relative to ``PANDA_AUTH_DIR`` (fallback ``OIDC_AUTH_DIR``):
    a ``Path`` is returned, existing or not, so a missing file is reported
    against the configured name. If the variable instead holds a compact JWT
    itself (its header decodes to a JSON object) that string is returned.
    """
    name = env.get("PANDA_AUTH_TOKEN") or env.get("OIDC_AUTH_TOKEN")
    if not name:
        return None
    if _is_inline_jwt(name):  # decided without the filesystem: a JWT is too long for a file name
        return name
    directory = env.get("PANDA_AUTH_DIR") or env.get("OIDC_AUTH_DIR")
    path = Path(name)
    if not path.is_absolute() and directory:
        path = Path(directory) / path
    return path


def read_token(found: Path | str) -> str:
    """The token text from what ``find_token`` returned (surrounding whitespace dropped).

    A file that is missing, unreadable or empty is NOPROXY naming the file and the fix: sending no
    token (or an empty one) would only earn a refusal from the server, reported as something else.
    """
    if isinstance(found, str):
        return found.strip()
    try:
        token = found.read_text(encoding="utf-8", errors="replace").strip()
    except FileNotFoundError:
        raise PilotFailure(PilotError.NOPROXY, f"token file {found} does not exist: {TOKEN_HINT}") from None
    except OSError as err:
        raise PilotFailure(PilotError.NOPROXY,
                           f"token file {found} cannot be read ({err.strerror}): {TOKEN_HINT}") from None
    if not token:
        raise PilotFailure(PilotError.NOPROXY, f"token file {found} is empty: {TOKEN_HINT}")
    return token


def token_seconds_left(token: str, now: datetime) -> float | None:
    """Seconds until the JWT's ``exp`` (None when it has none); ``now`` must be aware.

    The signature is not checked: the server verifies it on every request,
    and the pilot only needs the expiry to know when to stop trusting it.
    """
    claims = _jwt_claims(token)
    exp = claims.get("exp")
    if exp is None:
        return None
    if isinstance(exp, bool) or not isinstance(exp, (int, float)) or not math.isfinite(exp):
        raise PilotFailure(PilotError.NOPROXY, "token is malformed: exp claim is not a finite number")
    return float(exp) - now.timestamp()


def _is_inline_jwt(value: str) -> bool:
    """Compact JWS shape with a decodable header; a name like ``a.b.c`` fails the header test."""
    parts = value.strip().split(".")
    if len(parts) != 3 or not all(parts):
        return False
    try:
        _b64url_json_object(parts[0], "header")
    except PilotFailure:
        return False
    return True


def _jwt_claims(token: str) -> dict[str, object]:
    """Decode the payload part; every failure carries a fixed reason, never token text."""
    parts = token.strip().split(".")
    if len(parts) != 3:
        raise PilotFailure(PilotError.NOPROXY, "token is malformed: not three dot-separated parts")
    _b64url_json_object(parts[0], "header")
    return _b64url_json_object(parts[1], "payload")


def _b64url_json_object(part: str, what: str) -> dict[str, object]:
    """base64url (unpadded) -> UTF-8 -> JSON object, or NOPROXY naming only ``what`` failed.

    The decoding error is dropped before raising: UnicodeDecodeError and
    JSONDecodeError keep the decoded token text in their attributes, and a
    chained ``__context__`` would carry it into any error report.
    """
    value: object = None
    if _B64URL.fullmatch(part) and len(part) % 4 != 1:
        try:
            value = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)).decode("utf-8"))
        except (binascii.Error, ValueError, RecursionError):  # JSON and UTF-8 errors are ValueErrors
            value = None
    if not isinstance(value, dict):
        raise PilotFailure(PilotError.NOPROXY, f"token is malformed: {what} is not a base64url JSON object")
    return value


# --- every configured credential -------------------------------------------


def configured(env: Mapping[str, str]) -> tuple[str, ...]:
    """Which credentials the environment configures: ``"x509"``, ``"token"``, both or none."""
    return tuple(kind for kind, found in (("x509", find_proxy(env)), ("token", find_token(env)))
                 if found is not None)


def lifetimes(env: Mapping[str, str], now: datetime) -> dict[str, float | None]:
    """Seconds left of each configured credential (None: a token without expiry); ``now`` must be aware.

    Each one is read, not only the first found: the server may be handed either, so a valid proxy
    does not make an expired token usable. PilotFailure(NOPROXY) names the first credential that
    cannot be used (its file, what is wrong, how to fix it).
    """
    found: dict[str, float | None] = {}
    proxy = find_proxy(env)
    if proxy is not None:
        try:
            found["x509"] = proxy_seconds_left(proxy, now)
        except PilotFailure as exc:
            raise PilotFailure(exc.error, f"{exc.diag}: {PROXY_HINT}") from None
    token = find_token(env)
    if token is not None:
        text = read_token(token)
        try:
            found["token"] = token_seconds_left(text, now)
        except PilotFailure as exc:
            where = f"file {token}" if isinstance(token, Path) else "the value of PANDA_AUTH_TOKEN / OIDC_AUTH_TOKEN"
            raise PilotFailure(exc.error, f"{exc.diag} (token {where}): {TOKEN_HINT}") from None
    return found
