"""Stage-out of a 1 GB output to a real XRootD storage element, beside the same tool's bare copy (not a test).

For root:// (xrdcp) and davs:// (gfal-copy), in the same run and interleaved:
the pilot's stage-out of the file (``fsm_pilot.stageout.put``, what the pilot
calls for every output: source checks, the copy as a killable child, the file's
adler32 taken in slices while it runs, the storage element's adler32 for the
stored file, the compare, plus the durable write of the job's report entry the
pilot does next) beside the bare copy by the same tool with no checksum at all
(the floor), and the pilot process's own CPU time for it (the copy's is the
children's). Also shown: the server's own checksum of a freshly stored 1 GB file
(part of any verification by the storage element), and the adler32 throughput
of the pilot's checksum code on the page-cached file beside ``zlib.adler32``
over the same bytes already in memory. Medians of ``--rounds`` runs, the two
kinds of copy interleaved (each first in turn), dirty pages synced before each.

Needs Debian's xrootd-server, xrootd-client and gfal2-util (see .ci/run). Run it
with /usr/bin/python3 (PYTHONPATH=.:<venv site-packages>) and ``--bindings`` to
measure the XRootD/gfal2 Python bindings instead of the commands.

"SE checksum" is the storage element computing the adler32 of a freshly stored
file (the first query of the bare copy's file): any verification by the storage
element waits for it, and "ratio w/o it" takes it out of the pilot's time.

Usage: python bench/stageout_remote.py [--gb 1] [--rounds 3] [--bindings] [--readme]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from fsm_pilot.report import write_json_atomic
from fsm_pilot.stageout import Copying, Destination, destination, put
from fsm_pilot.storage.adler import SlicedAdler32
from fsm_pilot.storage.checksum import size_and_adler32
from tests import xrootd_se

CASES = (("root", "xrdcp"), ("davs", "gfalcopy"))
#: The bindings' plain copy, run as a child like the pilot's (argv: source, url).
BARE_XROOTD = ("import sys; from XRootD import client; p = client.CopyProcess(); "
               "p.add_job(sys.argv[1], sys.argv[2], force=True); p.prepare(); s, r = p.run(); sys.exit(not s.ok)")
BARE_GFAL2 = ("import sys, gfal2; c = gfal2.creat_context(); t = c.transfer_parameters(); t.overwrite = True; "
              "c.filecopy(t, 'file://' + sys.argv[1], sys.argv[2])")


def bare_argv(scheme: str, src: Path, url: str, bindings: bool) -> list[str]:
    """The same tool's plain copy: no checksum of any kind."""
    if bindings:
        return [sys.executable, "-c", BARE_XROOTD if scheme == "root" else BARE_GFAL2, str(src), url]
    if scheme == "root":
        return ["xrdcp", "--nopbar", "--force", str(src), url]
    return ["gfal-copy", "--force", "--timeout", "3600", src.as_uri(), url]


def timed(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def write_source(path: Path, size: int) -> None:
    """Random bytes (nothing compresses or dedups them), 64 MB at a time."""
    chunk = os.urandom(64 << 20)
    with path.open("wb") as out:
        for offset in range(0, size, len(chunk)):
            out.write(chunk[: min(len(chunk), size - offset)])


class Bench:
    """One storage element, one source file, the measurements."""

    def __init__(self, se: xrootd_se.StorageElement, src: Path, work: Path, bindings: bool) -> None:
        self.se, self.src, self.work, self.bindings = se, src, work, bindings
        self.env = {**os.environ, **se.client_env()}
        self.count = 0

    def destination(self, scheme: str, copytool: str) -> Destination:
        protocol = {"endpoint": self.se.url(scheme).rstrip("/"), "path": "/bench", "flavour": scheme}
        ddm = {"SE": {"is_deterministic": True, "arprotocols": {"write_lan": [protocol]}}}
        return destination({"astorages": {"pw": ["SE"]}, "acopytools": {"pw": [copytool]}}, ddm, "pw", None)

    def clean(self) -> None:
        shutil.rmtree(self.se.data / "bench", ignore_errors=True)

    def bare(self, scheme: str) -> tuple[float, float]:
        """The bare copy's time, and the server's first checksum of the file it stored."""
        self.count += 1
        path = f"/bench/bare{self.count}.dat"
        url = f"{self.se.url(scheme).rstrip('/')}{'/' if scheme == 'root' else ''}{path}"
        argv = bare_argv(scheme, self.src, url, self.bindings)
        seconds = timed(lambda: subprocess.run(argv, env=self.env, check=True, capture_output=True))
        query = ["xrdfs", f"127.0.0.1:{self.se.port}", "query", "checksum", path]
        checksum = timed(lambda: subprocess.run(query, env=self.env, check=True, capture_output=True))
        self.clean()
        return seconds, checksum

    def pilot(self, scheme: str, copytool: str) -> tuple[float, float]:
        """The pilot's stage-out of the file (and the durable report entry that follows it); its own CPU."""
        self.count += 1
        run = Copying(cwd=self.work, env=self.env, bindings=self.bindings)
        dest = self.destination(scheme, copytool)

        def stage_out() -> None:
            staged = put(run, dest, self.src, scope="bench", lfn=f"pilot{self.count}.dat", guid="G")
            write_json_atomic(self.work / "report.json", {staged.lfn: staged.report()})

        cpu = resource.getrusage(resource.RUSAGE_SELF)
        seconds = timed(stage_out)
        after = resource.getrusage(resource.RUSAGE_SELF)
        self.clean()
        return seconds, after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime


def _in_slices(data: bytes, step: int = 1 << 20) -> int:
    view, value = memoryview(data), 1
    for offset in range(0, len(data), step):
        value = zlib.adler32(view[offset:offset + step], value)
    return value


def checksum_rates(src: Path) -> tuple[float, ...]:
    """GB/s: the pilot's sliced pass on the page-cached file, the whole-file pass put_file uses,
    zlib.adler32 over the same bytes in memory in one call and in 1 MB slices (cache-sized)."""
    size = src.stat().st_size
    sliced = min(timed(lambda: SlicedAdler32(src).finish()) for _ in range(3))
    whole = min(timed(lambda: size_and_adler32(src)) for _ in range(3))
    data = src.read_bytes()
    one_call = min(timed(lambda: zlib.adler32(data)) for _ in range(3))
    slices = min(timed(lambda: _in_slices(data)) for _ in range(3))
    return tuple(size / seconds / 1e9 for seconds in (sliced, whole, one_call, slices))


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f}s ({min(values):.2f}-{max(values):.2f})"


Row = tuple[str, list[float], list[float], list[float], list[float]]


def run_cases(bench: Bench, rounds: int) -> list[Row]:
    rows = []
    for scheme, copytool in CASES:
        bare, pilot, server, cpu = [], [], [], []
        for turn in range(rounds):  # interleaved, each first in turn, so the machine's load hits both alike
            for which in ("bare", "pilot") if turn % 2 == 0 else ("pilot", "bare"):
                os.sync()  # the previous copy's dirty pages are not written back during the next one
                if which == "bare":
                    seconds, checksum = bench.bare(scheme)
                    bare.append(seconds)
                    server.append(checksum)
                else:
                    seconds, used = bench.pilot(scheme, copytool)
                    pilot.append(seconds)
                    cpu.append(used)
        rows.append((f"{scheme}:// ({copytool})", pilot, bare, server, cpu))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gb", type=float, default=1.0, help="size of the output in GB (default 1)")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each measurement (default 3)")
    parser.add_argument("--bindings", action="store_true", help="the Python bindings where importable")
    parser.add_argument("--readme", action="store_true", help="also write the table into README.md")
    args = parser.parse_args()
    why = xrootd_se.missing()
    if why is not None:
        sys.exit(why)
    size = int(args.gb * 1e9)
    se = xrootd_se.start(xrootd_se.traversable_base())
    scratch = Path(tempfile.mkdtemp(prefix="stageout-bench-"))
    try:
        src = scratch / "output.dat"
        write_source(src, size)
        bench = Bench(se, src, scratch, args.bindings)
        rows = run_cases(bench, args.rounds)
        rates = checksum_rates(src)
    finally:
        se.stop()
        shutil.rmtree(se.root, ignore_errors=True)
        shutil.rmtree(scratch, ignore_errors=True)
    report = render(rows, rates, size, args)
    print(report, end="")
    if args.readme:
        from bench.readme_block import write_block

        write_block("stageout", report)


def render(rows: list[Row], rates: tuple[float, ...], size: int, args: argparse.Namespace) -> str:
    """The table: the pilot's stage-out beside the bare copy, and the same without the SE's own checksum."""
    lines = [f"stage-out of {size / 1e9:g} GB, median of {args.rounds} (tools: "
             f"{'bindings where importable' if args.bindings else 'commands'})",
             f"{'':20} {'pilot stage-out':>22} {'bare copy (floor)':>22} {'ratio':>6} {'SE checksum':>22} "
             f"{'ratio w/o it':>12} {'pilot CPU':>10}"]
    for name, pilot, bare, server, cpu in rows:
        ratio = statistics.median(pilot) / statistics.median(bare)
        own = (statistics.median(pilot) - statistics.median(server)) / statistics.median(bare)
        lines.append(f"{name:20} {spread(pilot):>22} {spread(bare):>22} {ratio:5.2f}x {spread(server):>22} "
                     f"{own:11.2f}x {statistics.median(cpu):9.2f}s")
    sliced, whole, one_call, slices = rates
    lines.append(f"adler32 GB/s (best of 3): pilot's sliced pass over the page-cached file {sliced:.2f}, "
                 f"whole-file pass {whole:.2f}; zlib.adler32 over the bytes in memory {one_call:.2f} in one "
                 f"call, {slices:.2f} in 1 MB slices")
    return "\n".join(lines) + "\n"

if __name__ == "__main__":
    main()
