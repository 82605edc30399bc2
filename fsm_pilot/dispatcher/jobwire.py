"""Jobs on the wire to ``POST /api/v1/job/submit``, encoded the way panda-server encodes them.

panda-server's client serialises a list of JobSpecs with ``JobUtils.dump_jobs_json`` and
the server reads it back with ``JobUtils.load_jobs_json`` (panda-server 1.0.4). Each job
is a JSON list, not an object: the JobSpec's column values in column order (an unset
one is the string ``"NULL"``), then, as the last element, the list of its files; each
file is a list of the FileSpec's column values in column order followed by ``null``
(the place of the file's owner). The request body is ``{"jobs": "<that JSON text>"}``:
a string holding JSON, not JSON. A job list shorter than the columns leaves the
missing trailing columns ``"NULL"`` (panda-server's schema evolution); longer ones
are read up to the columns it knows. The column lists are facts taken from
panda-server 1.0.4 (``JobSpec._attributes``, ``FileSpec._attributes``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

NULL = "NULL"

#: JobSpec columns, in panda-server 1.0.4's order (126).
JOB_COLUMNS: tuple[str, ...] = (
    "PandaID", "jobDefinitionID", "schedulerID", "pilotID", "creationTime", "creationHost", "modificationTime",
    "modificationHost", "AtlasRelease", "transformation", "homepackage", "prodSeriesLabel", "prodSourceLabel",
    "prodUserID", "assignedPriority", "currentPriority", "attemptNr", "maxAttempt", "jobStatus", "jobName",
    "maxCpuCount", "maxCpuUnit", "maxDiskCount", "maxDiskUnit", "ipConnectivity", "minRamCount", "minRamUnit",
    "startTime", "endTime", "cpuConsumptionTime", "cpuConsumptionUnit", "commandToPilot", "transExitCode",
    "pilotErrorCode", "pilotErrorDiag", "exeErrorCode", "exeErrorDiag", "supErrorCode", "supErrorDiag",
    "ddmErrorCode", "ddmErrorDiag", "brokerageErrorCode", "brokerageErrorDiag", "jobDispatcherErrorCode",
    "jobDispatcherErrorDiag", "taskBufferErrorCode", "taskBufferErrorDiag", "computingSite", "computingElement",
    "jobParameters", "metadata", "prodDBlock", "dispatchDBlock", "destinationDBlock", "destinationSE", "nEvents",
    "grid", "cloud", "cpuConversion", "sourceSite", "destinationSite", "transferType", "taskID", "cmtConfig",
    "stateChangeTime", "prodDBUpdateTime", "lockedby", "relocationFlag", "jobExecutionID", "VO", "pilotTiming",
    "workingGroup", "processingType", "prodUserName", "nInputFiles", "countryGroup", "batchID", "parentID",
    "specialHandling", "jobsetID", "coreCount", "nInputDataFiles", "inputFileType", "inputFileProject",
    "inputFileBytes", "nOutputDataFiles", "outputFileBytes", "jobMetrics", "workQueue_ID", "jediTaskID",
    "jobSubStatus", "actualCoreCount", "reqID", "maxRSS", "maxVMEM", "maxSWAP", "maxPSS", "avgRSS", "avgVMEM",
    "avgSWAP", "avgPSS", "maxWalltime", "nucleus", "eventService", "failedAttempt", "hs06sec", "gshare", "hs06",
    "totRCHAR", "totWCHAR", "totRBYTES", "totWBYTES", "rateRCHAR", "rateWCHAR", "rateRBYTES", "rateWBYTES",
    "resource_type", "diskIO", "memory_leak", "memory_leak_x2", "container_name", "job_label", "gco2_regional",
    "gco2_global", "cpu_architecture_level", "outputFileType"
)

#: FileSpec columns, in panda-server 1.0.4's order (22).
FILE_COLUMNS: tuple[str, ...] = (
    "row_ID", "PandaID", "GUID", "lfn", "type", "dataset", "status", "prodDBlock", "prodDBlockToken",
    "dispatchDBlock", "dispatchDBlockToken", "destinationDBlock", "destinationDBlockToken", "destinationSE",
    "fsize", "md5sum", "checksum", "scope", "jediTaskID", "datasetID", "fileID", "attemptNr"
)

#: Integer (bigint/integer/smallint/numeric(20)) columns in panda-database's jobsdefined4 and filestable4.
INT_JOB_COLUMNS = frozenset({
    "PandaID", "jobDefinitionID", "assignedPriority", "currentPriority", "attemptNr", "maxAttempt", "maxCpuCount",
    "maxDiskCount", "minRamCount", "cpuConsumptionTime", "pilotErrorCode", "exeErrorCode", "supErrorCode",
    "ddmErrorCode", "brokerageErrorCode", "jobDispatcherErrorCode", "taskBufferErrorCode", "nEvents", "taskID",
    "relocationFlag", "jobExecutionID", "nInputFiles", "parentID", "jobsetID", "coreCount", "nInputDataFiles",
    "inputFileBytes", "nOutputDataFiles", "outputFileBytes", "workQueue_ID", "jediTaskID", "actualCoreCount",
    "reqID", "maxRSS", "maxVMEM", "maxSWAP", "maxPSS", "avgRSS", "avgVMEM", "avgSWAP", "avgPSS", "maxWalltime",
    "eventService", "failedAttempt", "hs06sec", "hs06", "totRCHAR", "totWCHAR", "totRBYTES", "totWBYTES",
    "rateRCHAR", "rateWCHAR", "rateRBYTES", "rateWBYTES", "diskIO", "memory_leak"
})
INT_FILE_COLUMNS = frozenset({"row_ID", "PandaID", "fsize", "jediTaskID", "datasetID", "fileID", "attemptNr"})
#: Columns panda-server stores 0 for when they are unset (JobSpec._zeroAttrs, FileSpec._zeroAttrs).
ZERO_JOB_COLUMNS = frozenset({
    "assignedPriority", "currentPriority", "attemptNr", "maxAttempt", "maxCpuCount", "maxDiskCount", "minRamCount",
    "cpuConsumptionTime", "pilotErrorCode", "exeErrorCode", "supErrorCode", "ddmErrorCode", "brokerageErrorCode",
    "jobDispatcherErrorCode", "taskBufferErrorCode", "nEvents", "relocationFlag", "jobExecutionID",
    "nOutputDataFiles", "outputFileBytes"
})
ZERO_FILE_COLUMNS = frozenset({"fsize"})
_SCALARS = (str, int, float, bool, type(None))
#: How panda-server's JSON encoder marks a datetime value (CoreUtils.NonJsonObjectEncoder).
_DATETIME_KEY = "_datetime_object"


class WireError(ValueError):
    """A ``jobs`` string panda-server's load_jobs_json could not turn into JobSpecs."""


@dataclass
class WireJob:
    """One job: column name -> value (``"NULL"`` when unset), and its files the same way."""

    columns: dict[str, Any] = field(default_factory=dict)
    files: list[dict[str, Any]] = field(default_factory=list)


def _values(names: Sequence[str], given: Mapping[str, Any]) -> list[Any]:
    return [NULL if given.get(name) is None else given[name] for name in names]


def encode(jobs: Sequence[WireJob]) -> str:
    """The ``jobs`` string, byte for byte as dump_jobs_json writes it for the same JobSpecs."""
    states: list[list[Any]] = []
    for job in jobs:
        files = [[*_values(FILE_COLUMNS, {**f, "PandaID": job.columns.get("PandaID")}), None] for f in job.files]
        states.append([*_values(JOB_COLUMNS, job.columns), files])
    return json.dumps(states)


def _unmarked(value: Any) -> Any:
    """A datetime marked by panda-server's encoder is kept as its text; other values as they are."""
    if isinstance(value, dict) and _DATETIME_KEY in value:
        return str(value[_DATETIME_KEY])
    return value


def _columns(names: Sequence[str], state: list[Any], what: str) -> dict[str, Any]:
    """Column values from a state list: the last element is not a column (files, or the owner)."""
    out: dict[str, Any] = {}
    for i, name in enumerate(names):
        value = _unmarked(state[i]) if i + 1 < len(state) else NULL
        if not isinstance(value, _SCALARS):
            raise WireError(f"{what}: column {name} must be a JSON scalar, got {type(value).__name__}")
        out[name] = NULL if value is None else value
    return out


def _job(index: int, state: Any) -> WireJob:
    what = f"job #{index}"
    if not isinstance(state, list) or not state:
        raise WireError(f"{what} must be a non-empty JSON list (column values, then the file list), "
                        f"got {type(state).__name__}")
    files = state[-1]
    if not isinstance(files, list):
        raise WireError(f"{what}: its last element must be the list of its files, got {type(files).__name__}")
    job = WireJob(_columns(JOB_COLUMNS, state, what))
    for n, file_state in enumerate(files):
        if not isinstance(file_state, list) or not file_state:
            raise WireError(f"{what} file #{n} must be a non-empty JSON list, got {type(file_state).__name__}")
        job.files.append(_columns(FILE_COLUMNS, file_state, f"{what} file #{n}"))
    return job


def decode(text: str) -> list[WireJob]:
    """The jobs in a ``jobs`` string, read as load_jobs_json reads them; WireError says why not."""
    try:
        states = json.loads(text)
    except ValueError as exc:
        raise WireError(f"not valid JSON: {exc}") from exc
    if not isinstance(states, list):
        raise WireError(f"expected a JSON list of jobs, got {type(states).__name__}")
    return [_job(i, state) for i, state in enumerate(states)]


def column_value(name: str, value: Any, ints: frozenset[str]) -> Any:
    """A column's value as PostgreSQL would store it: integer columns take integers or their text.

    ``None``, ``""`` and ``"NULL"`` are NULL; anything else in an integer column that is not
    an integer is refused (panda-server's insert of that job would fail).
    """
    if value is None or value in ("", NULL):
        return NULL
    if name not in ints:
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise WireError(f"{name} must be an integer, got {value!r}")
