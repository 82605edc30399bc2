"""Floors for the pilot benchmarks: what each part of a job physically costs with no pilot logic.

Each floor is measured in the same run as the pilot (same load, same disk),
several times, and its median is kept.
"""

from __future__ import annotations

import io
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import requests

#: The four calls a trivial job makes, in the pilot's (REST v1) dialect: getJob, starting, running, final.
UPDATE_STATES = ("starting", "running", "finished")
DEPENDENCIES = "import transitions, requests, psutil, structlog"


def median_seconds(run: Callable[[], object], times: int) -> float:
    """Median wall seconds of ``times`` calls of ``run``."""
    samples = []
    for _ in range(times):
        start = time.perf_counter()
        run()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


class Floors:
    """A requests Session on the dispatcher, as a pilot with no logic would use it.

    It sends the bodies a pilot sent for one of its jobs (``bodies``: the dispatcher's record of
    them), so the server does the same work for the floor as for the pilot; only the job id and
    attempt change. Before ``bodies`` are known, minimal ones.
    """

    def __init__(self, url: str) -> None:
        self.session = requests.Session()
        self.session.headers["Accept"] = "application/json"
        self.base = f"{url}/api/v1/pilot"
        self.bodies: dict[str, dict[str, Any]] = {
            "acquire": {"site_name": "TEST_QUEUE", "computing_element": "TEST_QUEUE",
                        "prod_source_label": "managed", "node": "bench"},
            **{state: {"job_status": state, "node": "bench"} for state in UPDATE_STATES}}

    def get_job(self) -> dict[str, Any] | None:
        reply = self.session.post(f"{self.base}/acquire_jobs", json=self.bodies["acquire"]).json()
        jobs = (reply.get("data") or {}).get("jobs") or []
        return jobs[0] if jobs else None

    def update(self, job: dict[str, Any], state: str) -> None:
        body = {**self.bodies[state], "job_id": int(job["PandaID"]), "attempt_nr": int(job["attemptNr"])}
        self.session.post(f"{self.base}/update_job", json=body).raise_for_status()

    def jobs(self, n: int) -> float:
        """Seconds for ``n`` jobs' HTTP calls plus a fork/exec of ``true`` each (the jobs must be queued)."""
        start = time.perf_counter()
        for _ in range(n):
            job = self.get_job()
            assert job is not None, "the floor ran out of jobs"
            self.update(job, "starting")
            subprocess.run(["true"], check=True)
            for state in UPDATE_STATES[1:]:
                self.update(job, state)
        return time.perf_counter() - start

    def http_call(self) -> None:
        """One call the server answers quickly (a getJob with nothing queued)."""
        assert self.get_job() is None


def fork_exec() -> None:
    subprocess.run(["true"], check=True)


def write_fsync(directory: Path) -> Callable[[], None]:
    """Write, fsync and rename a 2 kB file (a job state save), fsyncing the directory."""
    data = b"x" * 2048

    def run() -> None:
        tmp = directory / ".floor.tmp"
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, directory / "floor.json")
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    return run


def tar_gzip(files: list[tuple[str, bytes]]) -> Callable[[], bytes]:
    """tar+gzip of the given (name, content) pairs in memory: the log tarball with no pilot logic."""
    def run() -> bytes:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            for name, content in files:
                info = tarfile.TarInfo(name)
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
        return buffer.getvalue()
    return run


def adler32(path: Path) -> Callable[[], int]:
    return lambda: zlib.adler32(path.read_bytes())


def log_files(tarball: Path) -> list[tuple[str, bytes]]:
    """The regular files (name, bytes) inside a job's stored log tarball."""
    with tarfile.open(tarball) as tar:
        return [(m.name, tar.extractfile(m).read()) for m in tar.getmembers()  # type: ignore[union-attr]
                if m.isreg()]


def part_floors(floors: Floors, tarball: Path, times: int = 21) -> dict[str, float]:
    """Median seconds of each part a job needs, whatever does it."""
    files = log_files(tarball)
    with tempfile.TemporaryDirectory() as tmp:
        parts: dict[str, Callable[[], object]] = {
            "fork/exec true": fork_exec, "HTTP call": floors.http_call, "write+fsync": write_fsync(Path(tmp)),
            "tar+gzip log": tar_gzip(files), "adler32 log": adler32(tarball)}
        return {name: median_seconds(run, times) for name, run in parts.items()}


def bare_interpreter() -> tuple[float, float]:
    """Seconds to import the four dependencies in a bare interpreter, and its RSS (MiB) once they are in."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", DEPENDENCIES], check=True)
    seconds = time.perf_counter() - start
    code = f"{DEPENDENCIES}, sys; print(flush=True); sys.stdin.read()"
    bare = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert bare.stdout is not None and bare.stdin is not None
    bare.stdout.readline()
    rss = psutil.Process(bare.pid).memory_info().rss / 2**20
    bare.stdin.close()
    bare.wait(10)
    return seconds, rss
