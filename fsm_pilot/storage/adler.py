"""Adler32 computed alongside other work: in slices while a copy runs, or as a file is written.

The pilot has no threads. A checksum pass done in slices while a copytool child
uploads the same file costs the pilot's CPU but no wall time (the copy, not the
pilot, is what the job waits for); a tarball's checksum is taken from its bytes
as they are written. Either way no file is read an extra time just to checksum it.
"""

from __future__ import annotations

import io
import os
import zlib
from typing import BinaryIO

from fsm_pilot.errors import PilotError, PilotFailure
from fsm_pilot.storage.checksum import BLOCK_SIZE

#: Bytes read per call of :meth:`SlicedAdler32.step`: a few ms of work, so a signal or a
#: finished copy is noticed at once.
SLICE_BYTES = 8 * BLOCK_SIZE


def adler_hex(value: int) -> str:
    """PanDA's form: 8 lowercase hex digits, zero padded."""
    return f"{value & 0xFFFFFFFF:08x}"


class SlicedAdler32:
    """Size and adler32 of a file, read a slice at a time by whoever has time to spare."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self.size = 0
        self._value = zlib.adler32(b"")
        self._buffer = bytearray(BLOCK_SIZE)
        self._handle: io.BufferedReader | None = None
        self._error: PilotFailure | None = None
        self.done = False

    @classmethod
    def known(cls, path: str | os.PathLike[str], size: int, adler32: str) -> SlicedAdler32:
        """A file whose size and adler32 are known already (the log tarball's, taken as it was written)."""
        summed = cls(path)
        summed.size, summed._value, summed.done = size, int(adler32, 16), True
        return summed

    def _failure(self, exc: OSError) -> PilotFailure:
        self.close()
        self._error = PilotFailure(PilotError.CHECKSUMCALCFAILURE, f"cannot read {self.path}: {exc}")
        return self._error

    def step(self, max_bytes: int = SLICE_BYTES) -> bool:
        """Read up to ``max_bytes`` more; True once the whole file has been read. A read error sticks."""
        if self._error is not None:
            raise self._error
        if self.done:
            return True
        view = memoryview(self._buffer)
        try:
            if self._handle is None:
                self._handle = open(self.path, "rb")  # noqa: SIM115 (kept open across slices)
            for _ in range(max(1, max_bytes // BLOCK_SIZE)):
                count = self._handle.readinto(view)
                if not count:
                    self.done = True
                    self.close()
                    break
                self.size += count
                self._value = zlib.adler32(view[:count], self._value)
        except OSError as exc:
            raise self._failure(exc) from exc
        return self.done

    def adopt(self, size: int, adler32: str) -> None:
        """Take (size, adler32) from whoever read the file instead (a copytool that checksums as it copies)."""
        self.close()
        self.size, self._value, self.done = size, int(adler32, 16), True

    @property
    def value(self) -> str | None:
        """The adler32 once known, else None."""
        return adler_hex(self._value) if self.done else None

    def finish(self) -> tuple[int, str]:
        """Read whatever is left and return (size, adler32)."""
        while not self.step():
            pass
        return self.result()

    def result(self) -> tuple[int, str]:
        """(size, adler32) of the whole file; only once :attr:`done`."""
        if not self.done:
            raise RuntimeError(f"{self.path}: checksum not complete")
        return self.size, adler_hex(self._value)

    def close(self) -> None:
        """Release the file (the result so far is kept)."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None


class Adler32Writer:
    """A binary file wrapper that checksums and counts what goes through ``write``."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.size = 0
        self._value = zlib.adler32(b"")

    def write(self, data: bytes) -> int:
        """Write to the wrapped file, then account for the bytes written."""
        result = self.raw.write(data)
        view = memoryview(data).cast("B")
        written = len(view) if result is None else result
        view = view[:written]
        self.size += written
        self._value = zlib.adler32(view, self._value)
        return written

    def flush(self) -> None:
        self.raw.flush()

    def result(self) -> tuple[int, str]:
        """(size, adler32) of everything written so far."""
        return self.size, adler_hex(self._value)
