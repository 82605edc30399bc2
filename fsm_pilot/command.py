"""Turning a job's ``transformation`` and ``jobPars`` into an argv, without a shell.

Quoting rule: ``jobPars`` is split with POSIX shell word rules (``shlex.split``:
quotes group words, backslash escapes) and the words are passed to the
transformation as its arguments. Nothing is ever interpreted by a shell, so
``;``, ``|``, ``$()`` and redirections in ``jobPars`` reach the payload as
literal arguments. A payload that wants a shell names one
(``transformation=bash``, ``jobPars=-c '...'``).
"""

from __future__ import annotations

import os
import shlex
import shutil
import stat
from pathlib import Path

from fsm_pilot.errors import PilotError, PilotFailure


def resolve_transformation(transformation: str, workdir: Path, path_env: str) -> Path:
    """Where the transformation is: the job dir, an absolute path, or PATH."""
    if "://" in transformation:
        raise PilotFailure(PilotError.TRFDOWNLOADFAILURE,
                           f"transformation {transformation[:200]!r} is a URL: downloading transformations "
                           "is not supported by this pilot version")
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
    if found is None or not found.is_file():
        raise PilotFailure(PilotError.TRANSFORMNOTFOUND,
                           f"transformation {transformation[:200]!r} not found in the job dir or on PATH")
    return found


def build_argv(transformation: str, job_pars: str, workdir: Path, path_env: str) -> list[str]:
    """The payload's argv; a script in the job dir is made executable first (we own it)."""
    exe = resolve_transformation(transformation, workdir, path_env)
    if exe.parent.resolve() == workdir.resolve() and not os.access(exe, os.X_OK):
        exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    try:
        words = shlex.split(job_pars)
    except ValueError as exc:
        raise PilotFailure(PilotError.CONVERSIONFAILURE, f"jobPars cannot be split into words: {exc}") from None
    return [str(exe), *words]
