"""Job files turned into panda-server JobSpecs, for ``fsm-pilot submit``.

A job file names fields either as a pilot receives them (getJob's ``jobPars``,
``inFiles``, ``outFiles``, ``scopeOut``, ... with per-file comma lists), or as
panda-server's JobSpec columns with a ``Files`` list of FileSpec columns (the shape of
its ``JobSpec.load_from_dict``); both may mix at job level. The per-file lists become
FileSpecs (type input, output or log), the inverse of what panda-server does when it
serves the job (jobdispatcher/Protocol.py, appendJob). Defaults are filled here, on the
client, so the real server and the embedded dispatcher get the same request: a job name,
a log file with a lower-case uuid4 GUID, an output dataset, scope ``test``,
jobDefinitionID 0 (panda-server stores it in a NOT NULL column), prodSourceLabel
``managed`` and input files ``ready`` (the data is in place: panda-server hands out a job
only when every input is). A field neither form knows is refused: panda-server would
drop it silently.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from fsm_pilot.dispatcher.jobwire import (
    FILE_COLUMNS,
    INT_FILE_COLUMNS,
    INT_JOB_COLUMNS,
    JOB_COLUMNS,
    NULL,
    WireError,
    WireJob,
    column_value,
)

#: getJob names that are JobSpec columns under another name.
RENAMED = {"jobPars": "jobParameters", "swRelease": "AtlasRelease"}
#: getJob per-input lists -> FileSpec column (aligned with inFiles).
INPUT_LISTS = {"GUID": "GUID", "fsize": "fsize", "checksum": "checksum", "scopeIn": "scope",
               "realDatasetsIn": "dataset", "prodDBlocks": "prodDBlock", "prodDBlockToken": "prodDBlockToken",
               "dispatchDblock": "dispatchDBlock", "dispatchDBlockToken": "dispatchDBlockToken"}
#: getJob per-output lists -> FileSpec column (aligned with outFiles; an entry past the outputs is the log's).
OUTPUT_LISTS = {"realDatasets": "dataset", "destinationDblock": "destinationDBlock",
                "destinationDBlockToken": "destinationDBlockToken", "fileDestinationSE": "destinationSE",
                "dispatchDBlockTokenForOut": "dispatchDBlockToken"}
FILE_FIELDS = frozenset({"inFiles", "outFiles", "scopeOut", "scopeLog", "logFile", "logGUID",
                         *INPUT_LISTS, *OUTPUT_LISTS})
#: Fields of a served job that are the server's business, not the submitter's: skipped.
SERVED_ONLY = frozenset({"PandaID", "StatusCode", "nSent"})
#: Chosen by the server from the queue's storages: no column holds them.
SERVER_CHOSEN = frozenset({"ddmEndPointIn", "ddmEndPointOut"})
#: getJob flags that are specialHandling tags in a JobSpec (JobSpec._tagForSH).
FLAG_TAGS = {"debug": ("True", "dm"), "loopingCheck": (False, "lc")}
DEFAULT_SCOPE = "test"


class SpecError(ValueError):
    """A job file that cannot become a JobSpec; the message names the field."""


def _split(value: Any) -> list[str]:
    return [] if value in (None, "", NULL) else str(value).split(",")


def _column_values(ints: frozenset[str], given: Mapping[str, Any]) -> dict[str, Any]:
    try:
        return {name: column_value(name, value, ints) for name, value in given.items()}
    except WireError as exc:
        raise SpecError(str(exc)) from exc


def _flags(raw: Mapping[str, Any]) -> list[str]:
    tags = _split(raw.get("specialHandling"))
    for name, (on, tag) in FLAG_TAGS.items():
        if name in raw and str(raw[name]).lower() == str(on).lower() and tag not in tags:
            tags.append(tag)
    return tags


def _aligned(raw: Mapping[str, Any], name: str, count: int, log_slot: bool) -> list[str | None]:
    """One entry per file (None: not given); a list of any other length is refused."""
    values = _split(raw.get(name))
    if not values:
        return [None] * (count + log_slot)
    if len(values) == count:
        return [*values, *([None] * log_slot)]
    if log_slot and len(values) == count + 1:
        return list(values)
    what = f"{count} outputs" if log_slot else f"{count} inFiles"
    raise SpecError(f"{name} has {len(values)} entries for {what}")


def _inputs(raw: Mapping[str, Any]) -> list[dict[str, Any]]:
    lfns = _split(raw.get("inFiles"))
    files: list[dict[str, Any]] = [{"type": "input", "lfn": lfn, "status": "ready"} for lfn in lfns]
    for name, column in INPUT_LISTS.items():
        for spec, value in zip(files, _aligned(raw, name, len(lfns), False)):
            spec[column] = value
    return files


def _outputs(raw: Mapping[str, Any], job_name: str) -> list[dict[str, Any]]:
    log = str(raw.get("logFile") or f"{job_name}.job.log.tgz")
    outs = [lfn for lfn in _split(raw.get("outFiles")) if lfn != log]
    files: list[dict[str, Any]] = [{"type": "output", "lfn": lfn} for lfn in outs]
    files.append({"type": "log", "lfn": log, "GUID": raw.get("logGUID") or str(uuid.uuid4()),
                  "scope": raw.get("scopeLog") or DEFAULT_SCOPE})
    for name, column in OUTPUT_LISTS.items():
        for spec, value in zip(files, _aligned(raw, name, len(outs), True)):
            spec[column] = value
    for spec, scope in zip(files, _aligned(raw, "scopeOut", len(outs), False)):
        spec["scope"] = scope or DEFAULT_SCOPE
    dataset = f"panda.destDB.{uuid.uuid4()}"
    for spec in files:
        spec["dataset"] = spec.get("dataset") or dataset
        spec["destinationDBlock"] = spec.get("destinationDBlock") or dataset
        spec["destinationSE"] = spec.get("destinationSE") or raw.get("destinationSE")
    return files


def _given_files(raw: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A ``Files`` list of FileSpec columns, as given."""
    files = raw["Files"]
    mixed = sorted(FILE_FIELDS & set(raw))
    if mixed:
        raise SpecError(f"Files and the per-file fields {', '.join(mixed)} cannot be used together")
    if not isinstance(files, list) or not all(isinstance(f, dict) for f in files):
        raise SpecError("Files must be a list of objects with FileSpec columns")
    for n, spec in enumerate(files):
        unknown = sorted(set(spec) - set(FILE_COLUMNS))
        if unknown:
            raise SpecError(f"Files[{n}]: not FileSpec columns: {', '.join(unknown)}")
        if not spec.get("lfn") or not spec.get("type"):
            raise SpecError(f"Files[{n}] needs an lfn and a type (input, output or log)")
    return [{"status": "ready", **f} if f["type"] == "input" else dict(f) for f in files]


def _check_names(raw: Mapping[str, Any]) -> None:
    chosen = sorted(SERVER_CHOSEN & set(raw))
    if chosen:
        raise SpecError(f"{', '.join(chosen)}: the server picks storage endpoints from the queue's "
                        "astorages; leave them out (an output may name one as destinationDBlockToken dst:<endpoint>)")
    known = {*JOB_COLUMNS, *RENAMED, *FILE_FIELDS, *SERVED_ONLY, *FLAG_TAGS, "Files"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise SpecError(f"not panda-server job fields: {', '.join(unknown)}")


def to_wire(raw: Mapping[str, Any], queue: str | None = None) -> WireJob:
    """The JobSpec (columns and files) for one job file entry."""
    _check_names(raw)
    columns: dict[str, Any] = {RENAMED.get(k, k): v for k, v in raw.items()
                               if k in JOB_COLUMNS or k in RENAMED}
    columns.pop("PandaID", None)
    columns["computingSite"] = queue or columns.get("computingSite")
    if not columns["computingSite"]:
        raise SpecError("no queue: give --queue or computingSite")
    transformation = columns.get("transformation")
    if not isinstance(transformation, str) or not transformation.strip():
        raise SpecError("transformation is required (the payload's script or command)")
    columns["jobName"] = columns.get("jobName") or f"fsm_submit.{uuid.uuid4()}"
    if columns.get("jobDefinitionID") in (None, "", NULL):
        columns["jobDefinitionID"] = 0
    columns["prodSourceLabel"] = columns.get("prodSourceLabel") or "managed"
    columns["destinationSE"] = columns.get("destinationSE") or columns["computingSite"]
    tags = _flags(raw)
    if tags:
        columns["specialHandling"] = ",".join(tags)
    defaults = {**raw, "destinationSE": columns["destinationSE"]}
    files = _given_files(raw) if "Files" in raw else [*_inputs(raw), *_outputs(defaults, columns["jobName"])]
    return WireJob(_column_values(INT_JOB_COLUMNS, columns), [_column_values(INT_FILE_COLUMNS, f) for f in files])
