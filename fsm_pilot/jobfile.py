"""Read a pre-placed job definition file (push mode) into raw job records.

Harvester and test setups place the job next to the pilot in one of the
formats Pilot 3 accepts: the server's urlencoded ``key=value&...`` body, one
job as a JSON object, Harvester's ``{"<PandaID>": {job}, ...}``, a JSON list of
jobs, or a getJob-style ``{"jobs": [...]}`` / ``{"data": {"jobs": [...]}}``
envelope.  This module only decides the shape and returns the records in
file order; typing and validation of the fields is ``fsm_pilot.job``'s job.
"""

from __future__ import annotations

import json
import stat
import urllib.parse
from pathlib import Path

from fsm_pilot.errors import PilotError, PilotFailure
from fsm_pilot.jobtext import MAX_DIAG_CHARS

#: Job definitions are a few kB; anything this large is not one and is not read.
MAX_JOB_FILE_BYTES = 16 * 1024 * 1024

#: Bound on urlencoded fields so a hostile body cannot make parse_qsl balloon.
_MAX_URLENCODED_FIELDS = 10_000

JobRecord = dict[str, object]


def read_job_records(path: Path) -> list[JobRecord]:
    """Return the job records in *path*, in file order.

    Raises FileNotFoundError if *path* does not exist (the caller decides
    whether that means "no pushed job"), PilotFailure(CONVERSIONFAILURE) if
    the content is not a job definition in any accepted format, and
    PilotFailure(FILEHANDLINGFAILURE) if it exists but cannot be read.
    """
    stripped = _read_text(path).strip()
    if not stripped:
        raise _bad(path, "the file is empty")
    if stripped[0] in "{[":
        return _from_json(path, stripped)
    return [_from_urlencoded(path, stripped)]


def _bad(path: Path, what: str, error: PilotError = PilotError.CONVERSIONFAILURE) -> PilotFailure:
    """Name the file first so the diag stays useful even when clipped to PanDA's limit."""
    return PilotFailure(error, f"job definition file {str(path)!r}: {what}"[:MAX_DIAG_CHARS])


def _read_text(path: Path) -> str:
    """Read at most MAX_JOB_FILE_BYTES of a regular file and decode it as UTF-8.

    Only regular files are opened so a FIFO or device cannot block or
    stream forever.
    """
    mode = path.stat().st_mode  # FileNotFoundError propagates on purpose
    if not stat.S_ISREG(mode):
        raise _bad(path, "not a regular file", PilotError.FILEHANDLINGFAILURE)
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_JOB_FILE_BYTES + 1)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise _bad(path, f"cannot be read ({exc})", PilotError.FILEHANDLINGFAILURE) from exc
    if len(data) > MAX_JOB_FILE_BYTES:
        raise _bad(path, f"larger than the {MAX_JOB_FILE_BYTES} byte limit")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _bad(path, f"not UTF-8 text (invalid byte at offset {exc.start})") from exc


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not a valid JSON number")


def _from_json(path: Path, text: str) -> list[JobRecord]:
    try:
        document: object = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise _bad(path, f"invalid JSON ({exc})") from exc
    items = _json_jobs(path, document)
    if not items:
        raise _bad(path, "contains no jobs")
    records: list[JobRecord] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise _bad(path, f"job #{index} is a JSON {type(item).__name__}, not an object")
        if "PandaID" not in item:
            raise _bad(path, f"job #{index} has no PandaID")
        records.append(item)
    return records


def _json_jobs(path: Path, document: object) -> list[object]:
    """Pick the list of jobs out of whichever JSON shape was placed."""
    if isinstance(document, list):
        return document
    if not isinstance(document, dict):
        raise _bad(path, f"JSON {type(document).__name__} is not a job, a job list or a job map")
    if "PandaID" in document:
        return [document]
    if {"jobs", "data", "success"} & document.keys():
        return _envelope_jobs(path, document)
    if document and all(isinstance(value, dict) for value in document.values()):
        return list(document.values())  # Harvester: {"<PandaID>": {job}, ...} in file order
    raise _bad(path, "JSON object is neither a job (no PandaID), a job envelope nor a PandaID->job map")


def _envelope_jobs(path: Path, document: dict[str, object]) -> list[object]:
    """Unwrap ``{"jobs": [...]}`` or the v1 ``{"success": ..., "data": {"jobs": [...]}}``."""
    if document.get("success") is False:
        raise _bad(path, f"envelope reports failure: {str(document.get('message'))[:200]!r}")
    holder = document.get("data", document)
    jobs = holder.get("jobs") if isinstance(holder, dict) else None
    if not isinstance(jobs, list):
        raise _bad(path, "envelope has no 'jobs' list")
    return jobs


def _from_urlencoded(path: Path, text: str) -> JobRecord:
    try:
        pairs = urllib.parse.parse_qsl(
            text, keep_blank_values=True, strict_parsing=True, max_num_fields=_MAX_URLENCODED_FIELDS
        )
    except ValueError as exc:
        raise _bad(path, f"neither a JSON object/list nor a urlencoded key=value body ({exc})") from exc
    record: JobRecord = {}
    for key, value in pairs:
        if key in record:
            raise _bad(path, f"urlencoded field {key[:50]!r} appears more than once")
        record[key] = value
    if "PandaID" not in record:
        raise _bad(path, "urlencoded body has no PandaID")
    return record
