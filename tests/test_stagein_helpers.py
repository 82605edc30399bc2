"""Shared pieces of the stage-in tests (no tests here): replicas on a file:// endpoint in tmp_path."""

from __future__ import annotations

import shutil
import zlib
from pathlib import Path
from typing import Any

import psutil
import structlog

from fsm_pilot.job import Checksum, FileSpec
from fsm_pilot.stagein import StageInReport, stage_in
from fsm_pilot.storage import deterministic_path
from tests.storage_helpers import FIXTURES, Storage

SCOPE = "mc16_13TeV"
FAKE_TOOL = FIXTURES / "stagein_fake_copytool.sh"


def adler32(data: bytes) -> str:
    return f"{zlib.adler32(data) & 0xFFFFFFFF:08x}"


def replica_path(se: Path, lfn: str, scope: str = SCOPE) -> Path:
    return se / deterministic_path(scope, lfn)


def put_replica(se: Path, lfn: str, data: bytes, scope: str = SCOPE) -> Path:
    """Write a replica at its deterministic path below the endpoint's directory."""
    path = replica_path(se, lfn, scope)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def spec_for(lfn: str, data: bytes, **changes: Any) -> FileSpec:
    """The job's description of an input whose content is ``data`` (size and adler32 right)."""
    fields: dict[str, Any] = {
        "lfn": lfn, "scope": SCOPE, "fsize": len(data), "guid": "00000000-0000-0000-0000-000000000001",
        "checksum": Checksum(kind="adler32", value=adler32(data)), "ddm_endpoint": "LOCAL_DISK", "role": "input",
    }
    fields.update(changes)
    return FileSpec(**fields)


def use_copytools(storage: Storage, *names: str) -> None:
    """Make the queue read inputs with ``names``, in that order."""
    storage[0]["acopytools"]["pr"] = list(names)


def job_dir(tmp_path: Path) -> Path:
    path = tmp_path / "PanDA_Pilot-1"
    path.mkdir(exist_ok=True)
    return path


def run(job: Path, specs: list[FileSpec], storage: Storage, **options: Any) -> StageInReport:
    """stage_in with the queue and endpoints of ``storage``; no wakeup fd unless given."""
    options.setdefault("wakeup_fd", None)
    return stage_in(job, specs, storage[0], storage[1], log=structlog.get_logger("test"), **options)


def install_fake(bin_dir: Path, name: str) -> Path:
    """Put the fake tool on PATH under ``name`` (the caller prepends ``bin_dir`` to PATH)."""
    bin_dir.mkdir(exist_ok=True)
    target = bin_dir / name
    shutil.copyfile(FAKE_TOOL, target)
    target.chmod(0o755)
    return target


def children() -> set[int]:
    """Pids of this process's live descendants: what a killed copy must not leave behind."""
    alive = set()
    for proc in psutil.Process().children(recursive=True):
        try:
            if proc.status() != psutil.STATUS_ZOMBIE:
                alive.add(proc.pid)
        except psutil.NoSuchProcess:
            continue
    return alive


def no_scratch_left(job: Path) -> bool:
    return not any(path.name.startswith(".stagein-") for path in job.iterdir())


