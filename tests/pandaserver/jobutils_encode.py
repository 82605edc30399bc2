"""Encode jobs for panda-server's POST /api/v1/job/submit with panda-server's own JobSpec and JobUtils.

Run by the panda venv's python: reads a JSON list of job definitions on stdin, with PanDA's job-definition
names as ``fsm-pilot submit`` takes them (``transformation``, ``jobPars``, ``outFiles``/``scopeOut``,
``inFiles``/``GUID``/``fsize``/``checksum``/``scopeIn``/``realDatasetsIn``, ``scopeLog``,
``prodSourceLabel``, ``computingSite``), and writes the ``jobs`` string: exactly what
``JobUtils.dump_jobs_json([JobSpec, ...])`` makes of them. Until ``fsm-pilot submit`` speaks this API itself,
the CI cases submit through this (tests/pandaserver/stack.py, ``Stack.submit``).
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from typing import Any

from pandaserver.taskbuffer import JobUtils
from pandaserver.taskbuffer.FileSpec import FileSpec
from pandaserver.taskbuffer.JobSpec import JobSpec

VO = "local"


def split(job: dict[str, Any], key: str, count: int, default: str = "") -> list[str]:
    """A comma-separated per-file field, padded to ``count``."""
    values = [v for v in str(job.get(key) or "").split(",")] if job.get(key) else []
    return values + [default] * (count - len(values))


def add_file(spec: JobSpec, kind: str, lfn: str, scope: str, dataset: str, **extra: Any) -> None:
    file = FileSpec()
    file.lfn, file.type, file.scope, file.dataset = lfn, kind, scope, dataset
    file.destinationDBlock = dataset
    file.destinationSE = spec.computingSite
    for key, value in extra.items():
        setattr(file, key, value)
    spec.addFile(file)


def inputs(spec: JobSpec, job: dict[str, Any]) -> None:
    lfns = [x for x in str(job.get("inFiles") or "").split(",") if x]
    n = len(lfns)
    for lfn, guid, size, checksum, scope, dataset in zip(
            lfns, split(job, "GUID", n), split(job, "fsize", n), split(job, "checksum", n),
            split(job, "scopeIn", n, "test"), split(job, "realDatasetsIn", n, "ci.input")):
        add_file(spec, "input", lfn, scope, dataset, GUID=guid or str(uuid.uuid4()), fsize=int(size or 0),
                 checksum=checksum or None, prodDBlock=dataset, dispatchDBlock="NULL", status="ready")


def outputs(spec: JobSpec, job: dict[str, Any]) -> None:
    dataset = f"ci.output.{uuid.uuid4()}"
    lfns = [x for x in str(job.get("outFiles") or "").split(",") if x]
    for lfn, scope in zip(lfns, split(job, "scopeOut", len(lfns), "test")):
        add_file(spec, "output", lfn, scope, dataset, destinationDBlockToken="NULL")
    add_file(spec, "log", f"{spec.jobName}.job.log.tgz", str(job.get("scopeLog") or "test"), dataset,
             destinationDBlockToken="NULL")


def job_spec(job: dict[str, Any]) -> JobSpec:
    spec = JobSpec()
    spec.jobDefinitionID = int(time.time()) % 10000
    spec.jobName = str(job.get("jobName") or f"fsm_ci_{uuid.uuid4()}")
    spec.transformation = str(job["transformation"])
    spec.jobParameters = str(job.get("jobPars") or "")
    spec.prodSourceLabel = str(job.get("prodSourceLabel") or "managed")
    spec.computingSite = str(job["computingSite"])
    spec.destinationSE = spec.computingSite
    spec.VO = VO
    spec.currentPriority = int(job.get("currentPriority") or 100)
    spec.coreCount = int(job.get("coreCount") or 1)
    spec.cloud = "WORLD"
    inputs(spec, job)
    outputs(spec, job)
    return spec


def main() -> None:
    jobs = json.load(sys.stdin)
    sys.stdout.write(JobUtils.dump_jobs_json([job_spec(job) for job in jobs]))


if __name__ == "__main__":
    main()
