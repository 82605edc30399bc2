"""Recognising secrets by their shape, so the pilot never passes one on or writes one down.

The pilot knows the token it was given, but a payload's stderr or a server reply may quote a
token the pilot never read; so secrets are found by shape: a compact JWT (three base64url
parts, the first one a JSON object, i.e. starting ``eyJ``), a bearer credential, a PEM block.
"""

from __future__ import annotations

import re

REDACTED = "<redacted>"

_JWT = re.compile(r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
_BEARER = re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]{16,}")
_PEM = re.compile(r"-----BEGIN [A-Z0-9 ]+-----")


def holds_secret(value: str) -> bool:
    """Whether ``value`` contains a JWT, a bearer credential or a PEM block anywhere in it."""
    return bool(_JWT.search(value) or _BEARER.search(value) or _PEM.search(value))


def redact(text: str) -> str:
    """``text`` with every JWT and bearer credential replaced by ``<redacted>``."""
    if "eyJ" not in text and "earer" not in text.lower():  # the common case: nothing to do, cheaply
        return text
    return _BEARER.sub(rf"\g<1>{REDACTED}", _JWT.sub(REDACTED, text))
