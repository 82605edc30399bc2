"""The job's log tarball: the work directory minus inputs, plus pilot files.

Symlinks are never followed: a payload could point one at anything on the
node, and the tarball is uploaded to shared storage.
"""

from __future__ import annotations

import logging
import os
import re
import stat
import tarfile
import tempfile
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path, PurePosixPath

from fsm_pilot.errors import PilotError, PilotFailure
from fsm_pilot.storage.adler import Adler32Writer

log = logging.getLogger(__name__)

#: Archive suffixes dropped from the log name to get the tarball's top directory
#: (``log.123._000001.job.log.tgz.1`` -> ``log.123._000001.job.log``).
_SUFFIX = re.compile(r"(\.tgz|\.tar\.gz)(\.\d+)?$")
#: gzip level 6: close to 9 in size, several times faster on big logs.
_COMPRESSLEVEL = 6


def _failure(diag: str) -> PilotFailure:
    return PilotFailure(PilotError.LOGFILECREATIONFAILURE, diag)


def tarball_root(name: str) -> str:
    """The top directory inside the tarball, so it unpacks into one folder."""
    return _SUFFIX.sub("", name) or name


def _relative_name(name: str) -> str:
    """A caller-given archive name, refused if it could unpack outside the top directory."""
    parts = PurePosixPath(name).parts
    if not parts or name.startswith("/") or any(part in (".", "..") for part in parts):
        raise _failure(f"bad name {name!r} for a file in the log tarball")
    return "/".join(parts)


def _log_walk_error(exc: OSError) -> None:
    log.warning("log tarball: skipped %s (%s)", exc.filename, exc.strerror)


def _entries(job: Path, exclude: Collection[str]) -> Iterator[tuple[Path, str]]:
    """(path, relative name) of every entry below ``job``, excluded subtrees pruned."""
    for dirpath, dirnames, filenames in os.walk(job, onerror=_log_walk_error):
        base = Path(dirpath)
        rel_dir = base.relative_to(job)
        dirnames[:] = sorted(name for name in dirnames if (rel_dir / name).as_posix() not in exclude)
        for name in sorted(dirnames + filenames):
            rel = (rel_dir / name).as_posix()
            if rel not in exclude:
                yield base / name, rel


def _add_regular(tar: tarfile.TarFile, path: Path, arcname: str) -> bool:
    """Add a regular file without following a symlink swapped in meanwhile."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as handle:
        info = tar.gettarinfo(arcname=arcname, fileobj=handle)
        if not info.isreg():
            return False
        tar.addfile(info, handle)
    return True


def _add_entry(tar: tarfile.TarFile, path: Path, arcname: str) -> str | None:
    """Add one directory or regular file; return why it was skipped otherwise."""
    try:
        mode = os.lstat(path).st_mode
        if stat.S_ISLNK(mode):
            return "symlink"
        if stat.S_ISDIR(mode):
            tar.add(path, arcname=arcname, recursive=False)
            return None
        if stat.S_ISREG(mode) and _add_regular(tar, path, arcname):
            return None
    except FileNotFoundError:
        return "vanished"
    return "not a regular file"


def _add_job_dir(tar: tarfile.TarFile, job: Path, root: str, exclude: Collection[str]) -> None:
    tar.add(job, arcname=root, recursive=False)
    for path, rel in _entries(job, exclude):
        reason = _add_entry(tar, path, f"{root}/{rel}")
        if reason is not None:
            log.warning("log tarball: skipped %s (%s)", path, reason)


def _add_extra(tar: tarfile.TarFile, path: Path, arcname: str) -> None:
    with path.open("rb") as handle:
        info = tar.gettarinfo(arcname=arcname, fileobj=handle)
        if not info.isreg():
            raise _failure(f"{path} is not a regular file")
        tar.addfile(info, handle)


def _write(
    fd: int, job: Path, root: str, exclude: Collection[str], extras: Sequence[tuple[Path, str]]
) -> tuple[int, str]:
    """Write the tarball to ``fd``; its size and adler32 come from the bytes as they are written."""
    with os.fdopen(fd, "wb") as raw:
        summed = Adler32Writer(raw)
        # the writer has all gzip needs (write, flush), not the whole IO[bytes] interface
        # GNU format, as GNU tar writes it: PAX (the default) adds a header block per member for its float mtime
        with tarfile.open(fileobj=summed, mode="w:gz", compresslevel=_COMPRESSLEVEL,  # type: ignore[call-overload]
                          format=tarfile.GNU_FORMAT) as tar:
            _add_job_dir(tar, job, root, exclude)
            for path, arcname in extras:
                _add_extra(tar, path, f"{root}/{arcname}")
    # not fsynced: the tarball is a temp file, copied (and that copy made durable) then removed; after a
    # crash the job's recovery makes it again
    return summed.result()


def _names_inside(job: Path, paths: Sequence[Path]) -> set[str]:
    """Relative names of those paths that lie in the job dir (the tarball must not contain itself)."""
    return {path.relative_to(job).as_posix() for path in paths if path.is_relative_to(job)}


def make_log_tarball(
    job_dir: Path,
    tarball: Path,
    exclude: Collection[str],
    extra: Sequence[tuple[Path, str]] = (),
) -> Path:
    """Write ``tarball`` (gzip tar) of ``job_dir`` under ``<log name without .tgz>/``.

    ``exclude`` holds names relative to the job dir (the staged-in inputs);
    ``extra`` adds (file, name) pairs, e.g. the pilot log, under the same top
    directory. Written under a temp name and renamed, so it is whole or absent.
    """
    return make_log_tarball_summed(job_dir, tarball, exclude, extra)[0]


def make_log_tarball_summed(
    job_dir: Path,
    tarball: Path,
    exclude: Collection[str],
    extra: Sequence[tuple[Path, str]] = (),
) -> tuple[Path, tuple[int, str]]:
    """:func:`make_log_tarball`, also returning the tarball's (size, adler32), taken as it was written."""
    root = tarball_root(tarball.name)
    extras = [(path, _relative_name(name)) for path, name in extra]
    skip = set(exclude) | {name for _, name in extras}
    try:
        job = job_dir.resolve(strict=True)
        if not job.is_dir():
            raise _failure(f"job directory {job_dir} is not a directory")
        fd, tmp_name = tempfile.mkstemp(prefix=f".{tarball.name}.", suffix=".part", dir=tarball.parent)
    except (OSError, RuntimeError) as exc:
        raise _failure(f"cannot create {tarball} from {job_dir}: {exc}") from exc
    tmp = Path(tmp_name).resolve()
    skip |= _names_inside(job, (tmp, tarball.resolve()))
    try:
        summed = _write(fd, job, root, skip, extras)
        os.replace(tmp, tarball)
    except (OSError, tarfile.TarError) as exc:
        tmp.unlink(missing_ok=True)
        raise _failure(f"cannot create {tarball} from {job_dir}: {exc}") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tarball, summed
