"""Submitted job specs completed into the job definitions panda-server hands out.

A pilot written against panda-server expects every field the server sends, with the
server's types (ids and counts as ints, "NULL" for unset text) even when whoever
submitted the job named only a few. The defaults below are panda-server 1.0.4's, as
seen in a real acquire_jobs reply (tests/fixtures/panda-server-1.0.4_acquire_jobs_response.json).
Per-file lists (outFiles, realDatasets, ...) stay aligned by position: the log file is
always the last output.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

#: Fields a served job always has, in panda-server's order, with its defaults when not derived.
DEFAULTS: dict[str, Any] = {
    "PandaID": 0, "prodSourceLabel": "managed", "swRelease": "NULL", "homepackage": "NULL",
    "transformation": "", "jobName": "", "jobDefinitionID": 0, "cloud": "WORLD", "inFiles": "",
    "dispatchDblock": "", "dispatchDBlockToken": "", "dispatchDBlockTokenForOut": "", "outFiles": "",
    "destinationDblock": "", "destinationDBlockToken": "", "prodDBlocks": "", "prodDBlockToken": "",
    "realDatasets": "", "realDatasetsIn": "", "fileDestinationSE": "", "logFile": "", "logGUID": "",
    "jobPars": "", "attemptNr": 0, "GUID": "", "checksum": "", "fsize": "", "scopeIn": "", "scopeOut": "",
    "scopeLog": "", "ddmEndPointIn": "", "ddmEndPointOut": "", "destinationSE": "", "prodUserID": "NULL",
    "maxCpuCount": 0, "minRamCount": 0, "maxDiskCount": 0, "cmtConfig": "NULL", "processingType": "NULL",
    "transferType": "NULL", "sourceSite": "NULL", "currentPriority": 100, "taskID": "NULL", "coreCount": 1,
    "jobsetID": "NULL", "reqID": "NULL", "nucleus": "NULL", "maxWalltime": "NULL",
    "resource_type": "Undefined", "ioIntensity": None, "ioIntensityUnit": None,
}
#: Integer columns in panda-server's JobSpec: served as ints (or "NULL" when unset).
INT_FIELDS = frozenset({
    "PandaID", "jobDefinitionID", "attemptNr", "maxCpuCount", "minRamCount", "maxDiskCount",
    "currentPriority", "coreCount", "taskID", "jobsetID", "reqID", "maxWalltime",
})
#: Set per reply by the dispatcher, never stored: a spec's own values are dropped.
REPLY_FIELDS = frozenset({"StatusCode", "nSent"})
#: The PanDA field naming the queue a job is for; stored as the job's queue, not served.
QUEUE_FIELD = "computingSite"
_SCALARS = (str, int, float, bool, type(None))
_DEFAULT_SCOPE = "test"


class SpecError(ValueError):
    """A submitted spec that cannot become a job; the message says which field and why."""


def _as_int(name: str, value: Any) -> Any:
    """panda-server's integer columns: "12" -> 12; "NULL"/""/None stay "NULL" where allowed."""
    if isinstance(value, bool):
        raise SpecError(f"{name} must be an integer, got {value!r}")
    if isinstance(value, int):
        return value
    if value in (None, "", "NULL"):
        return DEFAULTS[name] if DEFAULTS[name] != "NULL" else "NULL"
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    raise SpecError(f"{name} must be an integer, got {value!r}")


def _split(value: Any) -> list[str]:
    return [] if value in (None, "", "NULL") else str(value).split(",")


def _per_file(spec: dict[str, Any], name: str, count: int, fill: str) -> None:
    """Give a per-output-file field one entry per output when the spec left it out."""
    if spec.get(name) in (None, ""):
        spec[name] = ",".join([fill] * count)


def _outputs(spec: dict[str, Any], queue: str) -> None:
    """Log file and per-output lists, defaulted the way panda-server fills them."""
    name = spec["jobName"]
    log = spec.get("logFile") or f"{name}.job.log.tgz"
    outs = [lfn for lfn in _split(spec.get("outFiles")) if lfn != log]
    spec["logFile"], spec["outFiles"] = log, ",".join([*outs, log])
    spec["logGUID"] = spec.get("logGUID") or str(uuid.uuid4())
    dataset = f"panda.destDB.{uuid.uuid4()}"
    count = len(outs) + 1
    _per_file(spec, "destinationDblock", count, dataset)
    _per_file(spec, "realDatasets", count, dataset)
    _per_file(spec, "fileDestinationSE", count, queue)
    _per_file(spec, "dispatchDBlockTokenForOut", count, "NULL")
    _per_file(spec, "destinationDBlockToken", count, "NULL")
    _per_file(spec, "scopeOut", len(outs), _DEFAULT_SCOPE)
    spec["scopeLog"] = spec.get("scopeLog") or _DEFAULT_SCOPE
    spec["destinationSE"] = spec.get("destinationSE") or queue


def _endpoints(spec: dict[str, Any], queuedata: Mapping[str, Any]) -> None:
    """ddmEndPointOut from the queue's write storages, as panda-server resolves them from the site."""
    if spec.get("ddmEndPointOut") not in (None, ""):
        return
    astorages = queuedata.get("astorages") or {}
    write = (astorages.get("pw") or astorages.get("write_lan") or [""])[0]
    log = (astorages.get("pl") or [write])[0]
    if write or log:
        outs = len(_split(spec["outFiles"])) - 1
        spec["ddmEndPointOut"] = ",".join([*([write] * outs), log])


def check_scalars(raw: Mapping[str, Any]) -> None:
    """Field values are JSON scalars: a nested object is not a PanDA job field."""
    for key, value in raw.items():
        if not isinstance(key, str) or not isinstance(value, _SCALARS):
            raise SpecError(f"field {key!r} must be a string, number, boolean or null")


def complete(raw: Mapping[str, Any], queue: str, queuedata: Mapping[str, Any]) -> dict[str, Any]:
    """The stored definition of a new job (PandaID still 0: the store assigns it)."""
    check_scalars(raw)
    if not isinstance(raw.get("transformation"), str) or not raw["transformation"].strip():
        raise SpecError("transformation is required (the payload's script or command)")
    spec: dict[str, Any] = dict(DEFAULTS)
    spec.update({k: v for k, v in raw.items() if k not in REPLY_FIELDS and k != QUEUE_FIELD})
    for name in INT_FIELDS:
        spec[name] = _as_int(name, spec[name])
    spec["jobName"] = spec["jobName"] or f"fsm_dispatcher_{uuid.uuid4()}"
    _outputs(spec, queue)
    _endpoints(spec, queuedata)
    return spec
