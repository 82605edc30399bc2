"""The pilot's logs as one job's log tarball holds them: its own part of pilot.log and of the transition log.

pilot.log and transitions.jsonl grow for the pilot's whole life (never
overwritten). A job's tarball holds pilot.log's head (the pilot's start: version,
node, queue, up to its first job) and the lines since the previous job's tarball
was made (its stage-out and final update, then this job's getJob and run), and the
job's own transition records from the moment it was taken: so its size and
the time to make it do not grow with the number of jobs run before it, and each
line after the head is in one tarball only. Where the offsets are unknown (a
dead pilot's job, recovered) the whole files are read as before.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from fsm_pilot.context import Context, JobRun
from fsm_pilot.report import LOG_NAME
from fsm_pilot.translog import FILENAME as TRANSLOG


def _size(path: Path) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def mark_job_start(ctx: Context, run: JobRun) -> None:
    """Note where pilot.log and the transition log stand as ``run`` is taken (both are flushed per line)."""
    if ctx.pilot_dir is None:
        return
    now = _size(ctx.pilot_dir / LOG_NAME)
    run.log_start = (now if ctx.log_cut is None else min(ctx.log_cut, now), _size(ctx.pilot_dir / TRANSLOG))
    if ctx.log_head is None:
        ctx.log_head = run.log_start[0]


def _offsets(ctx: Context, run: JobRun, origin: Path) -> tuple[int, int, int]:
    """(pilot.log head end, pilot.log job start, transition log job start); zeros: whole files."""
    if origin != ctx.pilot_dir or run.log_start is None:
        return 0, 0, 0
    head = ctx.log_head if ctx.log_head is not None else 0
    return min(head, run.log_start[0]), run.log_start[0], run.log_start[1]


def _pilot_log(src: Path, out: Path, head: int, start: int) -> int:
    """``src``'s first ``head`` bytes, then everything from ``start`` on (head == start: the whole file).

    Returns the offset read up to.
    """
    with open(src, "rb") as f, open(out, "wb") as dst:
        if head < start:
            dst.write(f.read(head))
            f.seek(start)
        shutil.copyfileobj(f, dst)
        return f.tell()


def _transitions(src: Path, out: Path, start: int, panda_id: int) -> None:
    """``src``'s records of job ``panda_id`` from byte ``start`` on."""
    # a dead pilot's log is read as it is: a damaged byte becomes U+FFFD and its line is skipped or kept
    with open(src, "rb") as raw, open(out, "w", encoding="utf-8") as dst:
        raw.seek(start)
        for line in raw:
            text = line.decode("utf-8", errors="replace")
            try:
                record = json.loads(text)
            except (ValueError, RecursionError):  # a dead pilot's last line may be cut short
                continue
            if isinstance(record, dict) and record.get("job_id") == panda_id:
                dst.write(text)


def job_log_files(ctx: Context, run: JobRun, origin: Path) -> list[tuple[Path, str]]:
    """(temp file, name in the tarball) for pilot.log and transitions.jsonl; the caller removes the files."""
    assert ctx.pilot_dir is not None
    head, start, trans_start = _offsets(ctx, run, origin)
    files: list[tuple[Path, str]] = []
    if (origin / LOG_NAME).is_file():
        out = ctx.pilot_dir / f".pilot-{run.panda_id}.log"
        end = _pilot_log(origin / LOG_NAME, out, head, start)
        if origin == ctx.pilot_dir:
            ctx.log_cut = end  # the next job's part starts here: every line goes into one job's tarball
        files.append((out, LOG_NAME))
    if (origin / TRANSLOG).is_file():
        out = ctx.pilot_dir / f".transitions-{run.panda_id}.jsonl"
        _transitions(origin / TRANSLOG, out, trans_start, run.panda_id)
        files.append((out, TRANSLOG))
    return files
