"""File checksums as PanDA and Rucio expect them.

Files are streamed in fixed blocks so multi-GB outputs never sit in memory.
"""

from __future__ import annotations

import hashlib
import os
import zlib
from collections.abc import Iterator

from fsm_pilot.errors import PilotError, PilotFailure

#: Read size: large enough to keep syscalls rare, small enough to stay cheap.
BLOCK_SIZE = 1 << 20


def _blocks(path: str | os.PathLike[str]) -> Iterator[bytes]:
    """Yield the file's content block by block."""
    with open(path, "rb") as handle:
        while block := handle.read(BLOCK_SIZE):
            yield block


def _failure(path: str | os.PathLike[str], exc: OSError) -> PilotFailure:
    return PilotFailure(PilotError.CHECKSUMCALCFAILURE, f"cannot read {os.fspath(path)}: {exc}")


def _adler_hex(value: int) -> str:
    """Format as PanDA stores adler32: 8 lowercase hex digits, zero padded."""
    return f"{value & 0xFFFFFFFF:08x}"


def size_and_adler32(path: str | os.PathLike[str]) -> tuple[int, str]:
    """Size in bytes and adler32 from one read pass (stage-out needs both)."""
    size, value = 0, zlib.adler32(b"")
    try:
        for block in _blocks(path):
            size += len(block)
            value = zlib.adler32(block, value)
    except OSError as exc:
        raise _failure(path, exc) from exc
    return size, _adler_hex(value)


def adler32_file(path: str | os.PathLike[str]) -> str:
    """The adler32 of a file, the checksum PanDA and Rucio compare."""
    return size_and_adler32(path)[1]


def md5_file(path: str | os.PathLike[str]) -> str:
    """The md5 hex digest of a file, for jobs whose checksum is ``md:``."""
    digest = hashlib.md5(usedforsecurity=False)
    try:
        for block in _blocks(path):
            digest.update(block)
    except OSError as exc:
        raise _failure(path, exc) from exc
    return digest.hexdigest()
