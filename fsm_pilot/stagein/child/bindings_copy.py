"""One copy through the XRootD or gfal2 Python bindings, run by the pilot as its own process.

Usage: python bindings_copy.py xrootd|gfal2 SOURCE DEST TIMEOUT [ADLER32]

The pilot runs this file by path with its own interpreter (the one that can
import the bindings), in a killable session like any copy command, so a copy
blocked in the library never blocks the pilot. It imports nothing of the pilot.
A failure is printed and the exit code is the one the matching command uses:
XRootD's shell code (as xrdcp) or the errno (as gfal-copy), so one table maps
both to PanDA codes. With ADLER32 the library checks the copy against that
catalog value and removes a bad copy.
"""

from __future__ import annotations

import os
import sys


def _xrootd(source: str, dest: str, timeout: int, adler32: str) -> int:
    from XRootD import client

    job = {"source": source, "target": dest, "force": True, "cptimeout": timeout}
    if adler32:
        job.update(checksummode="end2end", checksumtype="adler32", checksumpreset=adler32, rmBadCksum=True)
    process = client.CopyProcess()
    process.add_job(**job)
    status = process.prepare()
    if status.ok:
        status, results = process.run()
        if status.ok and results and not results[0]["status"].ok:
            status = results[0]["status"]
    if status.ok:
        return 0
    print(f"xrootd: {status.message}", file=sys.stderr)
    return int(status.shellcode) or 50


def _gfal2(source: str, dest: str, timeout: int, adler32: str) -> int:
    import gfal2

    context = gfal2.creat_context()
    params = context.transfer_parameters()
    params.overwrite = True
    params.timeout = timeout
    if adler32:
        params.set_checksum(gfal2.checksum_mode.both, "ADLER32", adler32)
    try:
        context.filecopy(params, source, f"file://{os.path.abspath(dest)}")
    except gfal2.GError as exc:
        print(f"gfal2 error: {exc.code} ({os.strerror(exc.code)}) - {exc.message}", file=sys.stderr)
        return exc.code or 1
    return 0


def main(argv: list[str]) -> int:
    """Copy, print what went wrong, exit with the tool's own code."""
    if len(argv) not in (4, 5) or argv[0] not in ("xrootd", "gfal2"):
        print(__doc__, file=sys.stderr)
        return 64
    kind, source, dest, timeout = argv[:4]
    adler32 = argv[4] if len(argv) == 5 else ""
    copy = _xrootd if kind == "xrootd" else _gfal2
    return copy(source, dest, max(1, int(float(timeout))), adler32)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
