"""Turning a job's ``transformation`` and ``jobPars`` into an argv, without a shell.

Quoting rule: ``jobPars`` is split with POSIX shell word rules (exactly as
``shlex.split``, in linear time: fsm_pilot.wordsplit; quotes group words,
backslash escapes) and the words are passed to the transformation as its
arguments; one over ``MAX_JOB_PARS_BYTES`` or holding a NUL is refused.
Nothing is ever interpreted by a shell, so ``;``, ``|``, ``$()`` and
redirections in ``jobPars`` reach the payload as literal arguments. A
payload that wants a shell names one (``transformation=bash``,
``jobPars=-c '...'``).

A transformation is a script in the job dir (staged in as an input), an
absolute path, a name on PATH, or a URL under one of the allowed base URLs
(``-g/--baseurls``, ``PANDA_BASE_URLS``), downloaded into the job dir.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fsm_pilot import wordsplit
from fsm_pilot.errors import PilotError, PilotFailure

#: A downloaded transformation larger than this is refused (scripts are small).
MAX_TRF_BYTES = 64 * 1024 * 1024
#: A jobPars larger than this (UTF-8 bytes) is refused unsplit: real ones are a few kB, and
#: the kernel refuses an argv over ARG_MAX (2 MiB by default) anyway.
MAX_JOB_PARS_BYTES = 1024 * 1024
#: Longest single file name (a path component) Linux file systems accept.
MAX_NAME_BYTES = 255


def is_url(transformation: str) -> bool:
    """``http(s)://...``: a transformation to download."""
    return urlsplit(transformation).scheme in ("http", "https")


def allowed(url: str, bases: Sequence[str]) -> bool:
    """Whether ``url`` lies under one of ``bases`` (same scheme and host, path prefix on a / boundary)."""
    target = urlsplit(url)
    for base in bases:
        b = urlsplit(base.strip())
        prefix = b.path.rstrip("/") + "/"
        if (b.scheme, b.netloc) == (target.scheme, target.netloc) and target.path.startswith(prefix):
            return True
    return False


def url_name(url: str) -> str:
    """The file name a downloaded transformation gets: the URL's last path segment, if safe."""
    name = urlsplit(url).path.rsplit("/", 1)[-1]
    if not name or name in (".", "..") or name.startswith("-") or any(ord(c) < 0x20 for c in name):
        raise PilotFailure(PilotError.TRFDOWNLOADFAILURE, f"transformation URL {url[:200]!r} names no usable file")
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        raise PilotFailure(PilotError.TRFDOWNLOADFAILURE, f"transformation URL {url[:200]!r} names a file "
                                                          f"over {MAX_NAME_BYTES} bytes: file name too long")
    return name


def check_transformation(transformation: str, inputs: Collection[str], bases: Sequence[str],
                         path_env: str) -> None:
    """At validation: the transformation can be found once inputs are staged in, or downloaded."""
    if is_url(transformation):
        if not allowed(transformation, bases):
            raise PilotFailure(PilotError.TRFDOWNLOADFAILURE,
                               f"transformation URL {transformation[:200]!r} is not under an allowed base URL "
                               f"({', '.join(bases) or 'none given: use -g/--baseurls or PANDA_BASE_URLS'})")
        url_name(transformation)
        return
    if "://" in transformation:
        raise PilotFailure(PilotError.TRFDOWNLOADFAILURE, f"transformation {transformation[:200]!r}: "
                                                          "only http(s) URLs can be downloaded")
    if transformation not in inputs:
        resolve_transformation(transformation, Path("/nonexistent-job-dir"), path_env)


def download_transformation(url: str, workdir: Path, session: Any, timeout: float = 60.0) -> Path:
    """Fetch an allowed URL transformation into the job dir and make it executable."""
    target = workdir / url_name(url)
    try:
        _fetch(url, target, session, timeout)
    except OSError as exc:  # requests' errors are OSErrors too
        target.unlink(missing_ok=True)
        raise PilotFailure(PilotError.TRFDOWNLOADFAILURE, f"cannot download {url[:200]}: {exc}"[:500]) from None
    target.chmod(target.stat().st_mode | stat.S_IXUSR)
    return target


def _fetch(url: str, target: Path, session: Any, timeout: float) -> None:
    with session.get(url, timeout=timeout, stream=True) as response, open(target, "wb") as out:
        response.raise_for_status()
        size = 0
        for chunk in response.iter_content(1 << 16):
            size += len(chunk)
            if size > MAX_TRF_BYTES:
                raise OSError(f"larger than {MAX_TRF_BYTES} bytes")
            out.write(chunk)


def resolve_transformation(transformation: str, workdir: Path, path_env: str) -> Path:
    """Where the transformation is: the job dir, an absolute path, or PATH."""
    try:
        found = _locate(transformation, workdir, path_env)
    except (OSError, ValueError) as exc:  # a name too long for the file system, a NUL, a loop of links
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise PilotFailure(PilotError.TRANSFORMNOTFOUND,
                           f"transformation {transformation[:200]!r} cannot be looked up: {why}") from None
    if found is None:
        raise PilotFailure(PilotError.TRANSFORMNOTFOUND,
                           f"transformation {transformation[:200]!r} not found in the job dir or on PATH")
    return found


def _locate(transformation: str, workdir: Path, path_env: str) -> Path | None:
    """The transformation's file, or None; the file system's errors propagate."""
    if os.path.isabs(transformation):
        found: Path | None = Path(transformation)
    elif "/" in transformation:
        found = (workdir / transformation).resolve()
        if not found.is_relative_to(workdir.resolve()):
            raise PilotFailure(PilotError.TRANSFORMNOTFOUND,
                               f"transformation {transformation[:200]!r} points outside the job dir")
    elif (workdir / transformation).is_file():
        found = workdir / transformation
    else:
        which = shutil.which(transformation, path=path_env)
        found = Path(which) if which else None
    return found if found is not None and found.is_file() else None


def split_job_pars(job_pars: str) -> list[str]:
    """``jobPars`` as words, by POSIX shell rules; too large, a NUL or unbalanced quotes is CONVERSIONFAILURE."""
    size = len(job_pars.encode("utf-8", "surrogatepass"))
    if size > MAX_JOB_PARS_BYTES:
        raise PilotFailure(PilotError.CONVERSIONFAILURE,
                           f"jobPars is {size} bytes, over the {MAX_JOB_PARS_BYTES} byte limit")
    if "\x00" in job_pars:
        raise PilotFailure(PilotError.CONVERSIONFAILURE,
                           f"jobPars holds a NUL character (at {job_pars.index(chr(0))}), which no argument can carry")
    try:
        return wordsplit.split(job_pars)
    except ValueError as exc:
        raise PilotFailure(PilotError.CONVERSIONFAILURE, f"jobPars cannot be split into words: {exc}") from None


def build_argv(transformation: str, job_pars: str, workdir: Path, path_env: str) -> list[str]:
    """The payload's argv; a script in the job dir is made executable first (we own it)."""
    name = url_name(transformation) if is_url(transformation) else transformation
    exe = resolve_transformation(name, workdir, path_env)
    if exe.parent.resolve() == workdir.resolve() and not os.access(exe, os.X_OK):
        exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    return [str(exe), *split_job_pars(job_pars)]
