"""Stage-out to a file:// storage endpoint (a POSIX directory on this host).

A replica is either complete and verified or absent: it is written under a
temporary name, fsynced, renamed into place, then read back and compared.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from fsm_pilot.errors import PilotError, PilotFailure
from fsm_pilot.storage.adler import Adler32Writer
from fsm_pilot.storage.checksum import BLOCK_SIZE, size_and_adler32
from fsm_pilot.storage.endpoints import Endpoint

#: Replicas are shared data: readable by everyone, writable by the pilot's user.
_REPLICA_MODE = 0o644


@dataclass(frozen=True)
class StagedFile:
    """A verified replica: everything the final update reports about one file."""

    lfn: str
    scope: str
    guid: str
    surl: str
    path: Path
    fsize: int
    adler32: str
    endpoint: str

    def report(self) -> dict[str, str | int]:
        """This file's entry in the final update's ``xml`` (``job_output_report``) field."""
        return {
            "guid": self.guid,
            "fsize": self.fsize,
            "adler32": self.adler32,
            "surl": self.surl,
            "endpoint": self.endpoint,
        }


def _missing(diag: str) -> PilotFailure:
    return PilotFailure(PilotError.MISSINGOUTPUTFILE, diag)


def check_source(src: Path, within: Path | None) -> Path:
    """The resolved file to read; refuses escapes from ``within``, non-files and empty files."""
    try:
        real = src.resolve()
        if within is not None and not real.is_relative_to(within.resolve()):
            raise _missing(f"output {src} resolves to {real}, outside the job directory {within}")
        info = real.stat()
    except FileNotFoundError as exc:
        raise _missing(f"output {src} does not exist") from exc
    except (OSError, RuntimeError) as exc:  # RuntimeError: symlink loop (Python < 3.13)
        raise _missing(f"cannot access output {src}: {exc}") from exc
    if not stat.S_ISREG(info.st_mode):
        raise _missing(f"output {src} is not a regular file")
    if info.st_size == 0:
        raise PilotFailure(PilotError.EMPTYOUTPUTFILE, f"output {src} is empty")
    return real


def _check_inside(dest: Path, root: Path) -> None:
    """Defence in depth: a symlink on storage must not redirect the replica elsewhere."""
    if not dest.resolve().is_relative_to(root):
        raise PilotFailure(
            PilotError.STAGEOUTFAILED, f"destination {dest} resolves outside the endpoint path {root}"
        )


def _copy(src: Path, out: BinaryIO) -> tuple[int, str]:
    """Copy the source's bytes into an open destination; their (size, adler32), taken on the way."""
    summed = Adler32Writer(out)
    with src.open("rb") as handle:
        shutil.copyfileobj(handle, summed, BLOCK_SIZE)
    return summed.result()


def _fsync_dir(directory: Path) -> None:
    """Make the rename durable; some file systems cannot fsync a directory, which is fine."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_atomically(src: Path, dest: Path) -> tuple[int, str]:
    """Temp file in the destination directory, fsync, rename: readers never see a partial file."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            os.fchmod(out.fileno(), _REPLICA_MODE)
            copied = _copy(src, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(dest.parent)
    return copied


def _measure_destination(dest: Path) -> tuple[int, str]:
    """Size and adler32 of the replica; a read failure there is a stage-out failure."""
    try:
        return size_and_adler32(dest)
    except PilotFailure as exc:
        raise PilotFailure(PilotError.STAGEOUTFAILED, exc.diag) from exc


def _already_there(dest: Path, want: tuple[int, str]) -> bool:
    """True when an identical replica exists (a retried stage-out has nothing to do)."""
    if not dest.is_file():
        return False
    try:
        return _measure_destination(dest) == want
    except PilotFailure:
        return False


def _place(source: Path, dest: Path, want: tuple[int, str] | None) -> tuple[int, str]:
    """Write the replica unless an identical one is there; the source's (size, adler32).

    Unknown, they are taken while copying (no read of the source just for them),
    unless a replica is there already to compare with.
    """
    if want is None and dest.is_file():
        want = size_and_adler32(source)
    if want is not None and _already_there(dest, want):
        return want
    copied = _write_atomically(source, dest)
    return want or copied


def _verify(dest: Path, want: tuple[int, str]) -> None:
    """Read the replica back; a wrong one is removed so nothing can register it."""
    got = _measure_destination(dest)
    if got != want:
        with contextlib.suppress(OSError):
            dest.unlink()
        raise PilotFailure(
            PilotError.PUTADMISMATCH,
            f"{dest}: stored {got[0]} bytes adler32 {got[1]}, expected {want[0]} bytes adler32 {want[1]}",
        )


def put_path(src: Path, dest: Path, *, within: Path | None = None) -> tuple[int, str]:
    """Copy ``src`` to the plain local path ``dest`` and verify it; return (size, adler32).

    For a destination that is no storage endpoint: Harvester's access point,
    from where Harvester stages the file out itself.
    """
    source = check_source(src, within)
    try:
        want = _place(source, dest, None)
    except OSError as exc:
        raise PilotFailure(PilotError.STAGEOUTFAILED, f"cannot write {dest}: {exc}") from exc
    _verify(dest, want)
    return want


def put_file(
    src: Path,
    endpoint: Endpoint,
    scope: str,
    lfn: str,
    guid: str,
    *,
    expected: tuple[int, str] | None = None,
    within: Path | None = None,
) -> StagedFile:
    """Copy ``src`` to its deterministic place on a file:// endpoint and verify it.

    ``expected`` (size, adler32) skips reading the source when the payload already
    reported them; ``within`` (the job directory) is where the source must really be.
    """
    dest = endpoint.local_path(scope, lfn)
    source = check_source(src, within)
    known = None if expected is None else (expected[0], expected[1].lower().zfill(8))
    try:
        root = endpoint.local_root().resolve()
        _check_inside(dest, root)
        dest.parent.mkdir(parents=True, exist_ok=True)
        _check_inside(dest, root)
        want = _place(source, dest, known)
    except OSError as exc:
        raise PilotFailure(PilotError.STAGEOUTFAILED, f"cannot write {dest}: {exc}") from exc
    _verify(dest, want)
    return StagedFile(
        lfn=lfn,
        scope=scope,
        guid=guid,
        surl=endpoint.surl(scope, lfn),
        path=dest,
        fsize=want[0],
        adler32=want[1],
        endpoint=endpoint.name,
    )
