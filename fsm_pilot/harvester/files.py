"""The Harvester files' names, the directory they are exchanged in, and atomic writes into it.

Harvester reads these files while the pilot writes them: each is written under
a temporary name and renamed, so Harvester sees the old file or the new one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from fsm_pilot.context import Context

JOB_REQUEST = "worker_requestjob.json"
WORKER_ATTRIBUTES = "worker_attributes.json"
WORKER_HEARTBEAT = "worker_heartbeat.json"
EVENT_STATUS = "event_status.dump.json"
JOB_REPORT = "jobReport.json"
KILL_WORKER = "kill_worker"
#: Where Harvester places a job: Pilot 3's name, then Harvester's template default for jobSpecFile.
JOB_FILE = "pandaJobData.out"
HPC_JOB_FILE = "HPCJobs.json"
#: Names an output must not take in the access point: they are Harvester's or this exchange's.
RESERVED = frozenset({JOB_REQUEST, WORKER_ATTRIBUTES, WORKER_HEARTBEAT, EVENT_STATUS, f"{EVENT_STATUS}.read",
                      JOB_REPORT, KILL_WORKER, f"{KILL_WORKER}.json", JOB_FILE, HPC_JOB_FILE, "pandaIDs.out",
                      "worker_pandaids.json", "worker_requestevents.json", "JobsEventRanges.json",
                      "worker_updateevents.json", "PoolFileCatalog_H.xml", "post_process_job_attrs.json"})


def directory(ctx: Context) -> Path:
    """The access point: ``--harvester-workdir``, else the directory the pilot was launched in."""
    return ctx.args.harvester_workdir or ctx.args.launch_dir


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, fsync it, rename it over ``path``."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json(path: Path, data: object) -> None:
    """``data`` as JSON, atomically."""
    write_atomic(path, json.dumps(data, indent=1, sort_keys=True).encode("utf-8"))
