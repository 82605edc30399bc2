"""Stage-out steps through the XRootD or gfal2 Python bindings, run as a child process.

``python bindings.py {xrootd|gfal2} put <file> <url> <timeout> [--adler32 V]``
copies and then prints the adler32 the storage element reports for the stored
file (``adler32 <value>``); ``checksum <url> <timeout>`` prints it alone;
``remove <url> <timeout>`` deletes the replica. XRootD's copy runs end to end: it
checksums the file as it sends it (or takes ``--adler32``), compares the
server's value and removes a bad replica itself. A failure prints the library's
own message to stderr and exits non-zero (XRootD: its shell code, gfal2: the
errno), which the pilot classifies like the commands' output.

Run by path with the pilot's interpreter, it imports nothing of fsm_pilot (the
pilot may run from an unpacked tarball that is not on the child's path), only
the standard library and the binding, which is why a binding that cannot load
fails this child, never the pilot.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Any
from urllib.parse import urlsplit

#: Printed when the binding does not load: the pilot maps it to MIDDLEWAREIMPORTFAILURE.
IMPORT_FAILED = "fsm-pilot bindings: cannot import"


class StepError(Exception):
    """A failed step: the message to print and the exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = max(1, min(int(code), 255))


def _load(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except Exception as exc:  # a broken binding can raise anything while loading
        raise StepError(f"{IMPORT_FAILED} {name}: {exc!r}", 1) from exc


def _host_path(url: str) -> tuple[str, str]:
    split = urlsplit(url)
    return f"{split.scheme}://{split.netloc}", "/" + split.path.lstrip("/")


def _xrootd_check(status: Any) -> None:
    if not status.ok:
        raise StepError(f"[XRootD] {status.message}", status.shellcode or 50)


def _xrootd(operation: str, args: argparse.Namespace) -> str:
    client = _load("XRootD.client")
    flags = _load("XRootD.client.flags")
    url, timeout = args.url, args.timeout
    host, path = _host_path(url)
    if operation == "put":
        process = client.CopyProcess()
        process.add_job(os.path.abspath(args.file), url, force=True, posc=True, cptimeout=timeout,
                        checksummode="end2end", checksumtype="adler32", checksumpreset=args.adler32 or "",
                        rmBadCksum=True)
        _xrootd_check(process.prepare())
        status, results = process.run()
        for result in results or []:
            _xrootd_check(result["status"])
        _xrootd_check(status)
    filesystem = client.FileSystem(host)
    if operation == "remove":
        _xrootd_check(filesystem.rm(path, timeout=timeout)[0])
        return ""
    status, answer = filesystem.query(flags.QueryCode.CHECKSUM, path, timeout=timeout)
    _xrootd_check(status)
    kind, _, value = answer.decode("ascii", "replace").strip("\x00 \n").partition(" ")
    return f"{kind} {value}"


def _gfal2(operation: str, args: argparse.Namespace) -> str:
    gfal2 = _load("gfal2")
    url = args.url
    try:
        context = gfal2.creat_context()
        if operation == "put":
            params = context.transfer_parameters()
            params.overwrite = True
            params.timeout = args.timeout
            context.filecopy(params, "file://" + os.path.abspath(args.file), url)
        if operation == "remove":
            context.unlink(url)
            return ""
        return f"adler32 {context.checksum(url, 'ADLER32')}"
    except gfal2.GError as exc:
        message = f"[gfal2] {exc.code} ({os.strerror(exc.code) if exc.code else 'error'}) - {exc.message}"
        raise StepError(message, exc.code or 1) from exc


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bindings.py", description="one stage-out step through a binding")
    parser.add_argument("library", choices=("xrootd", "gfal2"))
    steps = parser.add_subparsers(dest="operation", required=True)
    put = steps.add_parser("put")
    put.add_argument("file")
    for step in (put, steps.add_parser("checksum"), steps.add_parser("remove")):
        step.add_argument("url")
        step.add_argument("timeout", type=int)
    put.add_argument("--adler32", default=None, help="the file's adler32, when known (XRootD checks it)")
    return parser


def main(argv: list[str]) -> int:
    """Run one step; print its result (the adler32 line) on stdout, a failure on stderr."""
    args = _parser().parse_args(argv)
    try:
        step = _xrootd if args.library == "xrootd" else _gfal2
        result = step(args.operation, args)
    except StepError as exc:
        print(exc, file=sys.stderr)
        return exc.code
    if result:
        print(result)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
