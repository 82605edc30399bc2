"""Rucio's deterministic replica path, built from untrusted names.

Scope and file name come from the server and the payload, and both end up
as directories and file names on storage, so they are checked here, once,
before any path is built from them.
"""

from __future__ import annotations

import hashlib
import re

from fsm_pilot.errors import PilotError, PilotFailure

#: Characters allowed in a file name: no separators, no URL or shell specials,
#: no ``:`` (Rucio writes DIDs as ``scope:name``), no whitespace or control bytes.
_LFN_CHARS = re.compile(r"[A-Za-z0-9._+=@-]+")
#: Rucio's scope alphabet.
_SCOPE_CHARS = re.compile(r"[A-Za-z0-9._-]+")
#: Longest name most file systems accept for one path component.
_MAX_NAME_BYTES = 255


def _refuse(what: str, value: object, why: str) -> PilotFailure:
    return PilotFailure(PilotError.BADOUTPUTFILENAME, f"refusing {what} {value!r}: {why}")


def check_lfn(lfn: object) -> str:
    """Return ``lfn`` if it is one safe path component, else refuse it."""
    if not isinstance(lfn, str) or not lfn:
        raise _refuse("file name", lfn, "not a non-empty string")
    if lfn in (".", ".."):
        raise _refuse("file name", lfn, "not a file name")
    if not _LFN_CHARS.fullmatch(lfn):
        raise _refuse("file name", lfn, "path separator, control or special character")
    if len(lfn.encode()) > _MAX_NAME_BYTES:
        raise _refuse("file name", lfn, f"longer than {_MAX_NAME_BYTES} bytes")
    return lfn


def check_scope(scope: object) -> str:
    """Return ``scope`` if every dot-separated part is a safe directory name."""
    if not isinstance(scope, str) or not scope:
        raise _refuse("scope", scope, "not a non-empty string")
    if not _SCOPE_CHARS.fullmatch(scope):
        raise _refuse("scope", scope, "path separator, control or special character")
    if scope.startswith("-"):
        raise _refuse("scope", scope, "leading '-'")
    if ".." in scope or "" in scope.split("."):
        raise _refuse("scope", scope, "empty part")
    if len(scope.encode()) > _MAX_NAME_BYTES:
        raise _refuse("scope", scope, f"longer than {_MAX_NAME_BYTES} bytes")
    return scope


def deterministic_path(scope: str, lfn: str) -> str:
    """``<scope dirs>/<md5[0:2]>/<md5[2:4]>/<lfn>``: where Rucio expects the replica."""
    check_scope(scope)
    check_lfn(lfn)
    digest = hashlib.md5(f"{scope}:{lfn}".encode(), usedforsecurity=False).hexdigest()
    return f"{scope.replace('.', '/')}/{digest[0:2]}/{digest[2:4]}/{lfn}"
