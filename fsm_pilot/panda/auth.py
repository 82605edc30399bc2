"""How the pilot proves who it is to the PanDA server, without ever showing the secret.

Production servers accept an X509 proxy as the TLS client certificate or an
OIDC token (``Authorization: Bearer``, with ``Origin: <vo>`` naming the VO).
Both can be configured at once; the server takes either. The token file is
re-read for every request (microseconds): Harvester renews it in place
during long pilots, and a cache keyed on mtime could miss a renewal within
the file system's timestamp resolution. The token only goes to the PanDA
server itself (the client decides per request), and this object's repr, the
diags it produces and the logs never contain it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from fsm_pilot.credentials import find_proxy, find_token, read_token

REDACTED = "<redacted>"


class Auth:
    """Client certificate, CA settings and bearer token for one PanDA server."""

    def __init__(self, cert: str | None = None, verify: bool | str = True,
                 token: Path | str | None = None, origin: str | None = None) -> None:
        self.cert = cert
        self.verify = verify
        self.origin = origin
        self._token_source = token
        self._seen: set[str] = set()

    def __repr__(self) -> str:
        token = "None" if self._token_source is None else REDACTED
        return f"Auth(cert={self.cert!r}, verify={self.verify!r}, token={token}, origin={self.origin!r})"

    __str__ = __repr__

    @property
    def has_token(self) -> bool:
        return self._token_source is not None

    def token(self) -> str | None:
        """The current token text (the file is read each time), or None."""
        if self._token_source is None:
            return None
        token = read_token(self._token_source)
        if token:
            self._seen.add(token)
        return token

    def headers(self) -> dict[str, str]:
        """``Authorization`` and ``Origin`` for a request to the PanDA server (empty without a token)."""
        token = self.token()
        if not token:
            return {}
        headers = {"Authorization": f"Bearer {token}"}
        if self.origin:
            headers["Origin"] = self.origin
        return headers

    def redact(self, text: str) -> str:
        """``text`` with every token this object has read replaced; for diags quoting server replies."""
        for token in self._seen:
            text = text.replace(token, REDACTED)
        return text


def auth_from_env(env: Mapping[str, str] | None = None, *, capath: str | None = None,
                  cacert: str | None = None) -> Auth:
    """Auth as Pilot 3 deployments configure it.

    - proxy: ``X509_USER_PROXY`` (or the grid default), used only if the file
      exists: the proxy guard reports a missing one with NOPROXY, and a
      plain-HTTP dispatcher needs none;
    - CA: ``--cacert`` file, else ``--capath`` / ``X509_CERT_DIR`` directory,
      else the system store; verification is never turned off here;
    - token: ``PANDA_AUTH_TOKEN`` / ``OIDC_AUTH_TOKEN`` (file, relative to
      ``PANDA_AUTH_DIR`` / ``OIDC_AUTH_DIR``), with ``PANDA_AUTH_ORIGIN`` /
      ``OIDC_AUTH_ORIGIN`` as the ``Origin`` header.
    """
    env = os.environ if env is None else env
    proxy = find_proxy(env)
    cert = str(proxy) if proxy is not None and proxy.is_file() else None
    verify: bool | str = cacert or capath or env.get("X509_CERT_DIR") or True
    origin = env.get("PANDA_AUTH_ORIGIN") or env.get("OIDC_AUTH_ORIGIN") or None
    return Auth(cert=cert, verify=verify, token=find_token(env), origin=origin)
