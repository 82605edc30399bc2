"""Is a staged-in file the one the job asked for? Size, then checksum.

Pilot 3 compares the checksum only (``verify_catalog_checksum``): adler32
mismatch GETADMISMATCH, md5 mismatch GETMD5MISMATCH, no usable checksum
UNKNOWNCHECKSUMTYPE. It has no error code for a wrong size, so a size that
differs from the job's ``fsize`` is STAGEINFAILED, its generic stage-in code,
checked first because it needs no read and names the problem plainly.
"""

from __future__ import annotations

from pathlib import Path

from fsm_pilot.errors import PilotError, PilotFailure
from fsm_pilot.job import Checksum, FileSpec
from fsm_pilot.storage import md5_file, size_and_adler32

_KINDS = ("adler32", "md5")


def expected_checksum(spec: FileSpec) -> Checksum:
    """The checksum to verify ``spec`` against; without one an input cannot be trusted."""
    checksum = spec.checksum
    if checksum is None:
        raise PilotFailure(PilotError.UNKNOWNCHECKSUMTYPE, f"input {spec.lfn} has no checksum to verify it against")
    if checksum.kind not in _KINDS:
        raise PilotFailure(
            PilotError.UNKNOWNCHECKSUMTYPE, f"input {spec.lfn}: unknown checksum type {checksum.kind!r}"
        )
    return checksum


def verify(path: Path, spec: FileSpec) -> tuple[int, str]:
    """Size and adler32 of ``path`` after checking them (or md5) against the job's values."""
    checksum = expected_checksum(spec)
    if not path.is_file():
        raise PilotFailure(PilotError.STAGEINFAILED, f"input {spec.lfn}: the copy left no file at {path}")
    size, adler32 = size_and_adler32(path)
    if spec.fsize is not None and size != spec.fsize:
        raise PilotFailure(
            PilotError.STAGEINFAILED, f"input {spec.lfn}: staged in {size} bytes, the job expects {spec.fsize}"
        )
    if checksum.kind == "adler32" and adler32 != checksum.value:
        raise PilotFailure(
            PilotError.GETADMISMATCH, f"input {spec.lfn}: adler32 {adler32}, the job expects {checksum.value}"
        )
    if checksum.kind == "md5":
        md5 = md5_file(path)
        if md5 != checksum.value:
            raise PilotFailure(
                PilotError.GETMD5MISMATCH, f"input {spec.lfn}: md5 {md5}, the job expects {checksum.value}"
            )
    return size, adler32
