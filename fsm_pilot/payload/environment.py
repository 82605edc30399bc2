"""What of the pilot's environment a payload (or a copy tool) gets: all of it but the secrets.

A payload's stdout and stderr go into its log tarball, to the storage endpoint and, quoted, to
PanDA; a payload may well run ``env``. So no variable that holds a secret itself reaches it:

- a PanDA/OIDC auth variable (``PANDA_AUTH_*``, ``OIDC_AUTH_*``, ``OIDC_REFRESHED_AUTH_*``) whose
  value is not the path of an existing file, i.e. a token given inline. ``*_DIR``, ``*_ORIGIN`` and
  ``*_VO`` are a directory and labels, not secrets, and stay;
- any variable whose value holds a JWT, a bearer credential or a PEM block (fsm_pilot.redact).

File paths stay: ``X509_USER_PROXY`` is how grid payloads and copy tools find their proxy, and a
token file named by ``PANDA_AUTH_TOKEN`` (with ``PANDA_AUTH_DIR``/``PANDA_AUTH_ORIGIN``) is what a
Pilot 3 payload inherits too. A path lets a job that needs the credential read it; ``env`` shows
only the path.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from fsm_pilot.redact import holds_secret

_AUTH_NAME = re.compile(r"^(PANDA_AUTH|OIDC_AUTH|OIDC_REFRESHED_AUTH)_")
_NOT_SECRET = re.compile(r"_(DIR|ORIGIN|VO)$")


def _names_a_file(value: str, env: Mapping[str, str]) -> bool:
    """``value`` is an existing file, absolute or relative to the auth dir (as the pilot looks tokens up)."""
    if not value or "\n" in value or len(value) > 4096:
        return False
    path = Path(value)
    directory = env.get("PANDA_AUTH_DIR") or env.get("OIDC_AUTH_DIR")
    if not path.is_absolute() and directory:
        path = Path(directory) / path
    try:
        return path.is_file()
    except (OSError, ValueError):  # a name too long for the file system, or with a NUL byte
        return False


def _withheld(name: str, value: str, env: Mapping[str, str]) -> bool:
    if holds_secret(value):
        return True
    return bool(_AUTH_NAME.match(name)) and not _NOT_SECRET.search(name) and not _names_a_file(value, env)


def payload_environment(env: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """The environment to hand a payload, and the names withheld from it (values are never returned)."""
    kept: dict[str, str] = {}
    withheld: list[str] = []
    for name, value in env.items():
        if _withheld(name, value, env):
            withheld.append(name)
        else:
            kept[name] = value
    return kept, sorted(withheld)
