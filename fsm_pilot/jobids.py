"""pandaIDs.out: the ids of the jobs a pilot took, for the production wrapper.

The wrapper reads ``pilot3/pandaIDs.out`` after the pilot exits and logs (and
reports to its monitoring) up to 30 ids, whitespace-separated; Pilot 3 appends
one id per line as it takes each job. Nothing depends on this file inside the
pilot, so failing to write it is logged, never fatal.
"""

from __future__ import annotations

import os
from pathlib import Path

from fsm_pilot.context import Context


def record_job_id(ctx: Context, panda_id: int) -> None:
    """Append ``panda_id`` to --jobid-file (None: nowhere)."""
    path: Path | None = ctx.args.jobid_file
    if path is None:
        return
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        try:
            os.write(fd, f"{panda_id}\n".encode())
        finally:
            os.close(fd)
    except OSError as exc:
        ctx.log.warning("cannot record the job id for the wrapper", path=str(path), error=str(exc))
