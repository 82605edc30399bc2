"""Submitted JobSpecs served as the job definitions panda-server hands out.

What a pilot receives is built from the job's columns and files the way panda-server
1.0.4 builds it (jobdispatcher/Protocol.py, appendJob): per-file comma lists from the
FileSpecs (inputs, then outputs with the log), ``jobPars`` from jobParameters,
``swRelease`` from AtlasRelease, the values as its database gives them back (an unset
column is ``"NULL"``; the columns it stores 0 for come back 0). Storage endpoints are
chosen from the queue's ``astorages`` (a ``dst:<endpoint>`` token picks one of them), as
panda-server chooses them from the site's storages. The field order is the server's
(tests/fixtures/panda-server-1.0.4_acquire_jobs_response.json).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from typing import Any

from fsm_pilot.dispatcher import jobstate
from fsm_pilot.dispatcher.jobwire import (
    INT_FILE_COLUMNS,
    INT_JOB_COLUMNS,
    NULL,
    ZERO_FILE_COLUMNS,
    ZERO_JOB_COLUMNS,
    WireError,
    WireJob,
    column_value,
)

#: prodSourceLabels panda-server treats as analysis (JobUtils.analy_sources) and as pilot tests.
ANALYSIS_LABELS = frozenset({"user", "panda"})
PTEST_LABELS = frozenset({"ptest", "rc_test", "rc_test2", "rc_alrb"})
#: job_label values panda-server accepts at submission (JobUtils.job_labels).
JOB_LABELS = frozenset({"user", "managed"})
#: Job fields served as they are stored, after the per-file lists (panda-server's order).
_TAIL = ("destinationSE", "prodUserID", "maxCpuCount", "minRamCount", "maxDiskCount", "cmtConfig",
         "processingType", "transferType", "sourceSite", "currentPriority")


class SpecError(ValueError):
    """A submitted job panda-server could not store; the message says which field and why."""


def stored(job: WireJob) -> WireJob:
    """Columns and files as panda-server's insert leaves them in its database.

    Integers are checked (its insert would fail), unset counters are 0, an empty
    jobParameters is one space, assignedPriority becomes currentPriority and an unset
    resource_type is ``Undefined`` (what it computes without resource type definitions).
    """
    try:
        columns = {k: column_value(k, v, INT_JOB_COLUMNS) for k, v in job.columns.items()}
        files = [{k: column_value(k, v, INT_FILE_COLUMNS) for k, v in f.items()} for f in job.files]
    except WireError as exc:
        raise SpecError(str(exc)) from exc
    for name in ZERO_JOB_COLUMNS:
        columns[name] = 0 if columns.get(name, NULL) == NULL else columns[name]
    for spec in files:
        for name in ZERO_FILE_COLUMNS:
            spec[name] = 0 if spec.get(name, NULL) == NULL else spec[name]
    if columns.get("assignedPriority", 0) != 0:
        columns["currentPriority"] = columns["assignedPriority"]
    if columns.get("jobParameters", NULL) in ("", NULL):
        columns["jobParameters"] = " "
    if columns.get("resource_type", NULL) in ("", NULL):  # no resource type definitions here
        columns["resource_type"] = "Undefined"
    label = columns.get("prodSourceLabel", NULL)
    if columns.get("jobDefinitionID", NULL) == NULL and label not in ANALYSIS_LABELS:
        raise SpecError("jobDefinitionID is required: panda-server keeps it in a NOT NULL column")
    return WireJob(columns, files)


def initial_status(job: WireJob) -> str:
    """``activated`` (ready to hand out) or ``assigned``, where panda-server's setupper would leave it.

    panda-server activates a job only when its dispatchDBlock is unset and every input file
    is ``ready`` or ``cached``; otherwise the job waits as ``assigned`` for data that a
    local setup never moves, and no pilot gets it.
    """
    inputs_ready = all(f.get("status") in ("ready", "cached") for f in job.files if f.get("type") == "input")
    return jobstate.ACTIVATED if job.columns.get("dispatchDBlock", NULL) == NULL and inputs_ready else jobstate.ASSIGNED


def numbered(job: WireJob, panda_id: int, submission: int) -> WireJob:
    """The job once its PandaID is known: what panda-server's storeJobs sets from it.

    ``$PANDAID`` in file names becomes the PandaID (five digits at least), ``$JOBSETID``
    the jobsetID (six) for jobs not ``managed``, ``$ORIGINPANDAID`` in the job name the
    PandaID. Analysis and pilot-test jobs get the submission's number as jobsetID, and
    analysis jobs as jobDefinitionID (panda-server numbers both per user).
    """
    columns = {**job.columns, "PandaID": panda_id}
    label = columns.get("prodSourceLabel")
    if label in ANALYSIS_LABELS:
        columns["jobDefinitionID"] = submission
    if label in ANALYSIS_LABELS | PTEST_LABELS:
        columns["jobsetID"] = submission
    columns["jobName"] = str(columns.get("jobName", NULL)).replace("$ORIGINPANDAID", str(panda_id))
    jobset = columns.get("jobsetID")
    files = []
    for spec in job.files:
        lfn = str(spec.get("lfn", NULL)).replace("$PANDAID", f"{panda_id:05d}")
        if label != "managed":
            lfn = lfn.replace("$JOBSETID", f"{jobset if isinstance(jobset, int) and jobset != -1 else 0:06d}")
        files.append({**spec, "lfn": lfn})
    return WireJob(columns, files)


def _tags(columns: Mapping[str, Any]) -> list[str]:
    handling = columns.get("specialHandling", NULL)
    return [] if handling in (None, "", NULL) else str(handling).split(",")


def _storage(queuedata: Mapping[str, Any], token: Any, activities: tuple[str, ...]) -> str:
    """The endpoint a file goes to or comes from: a ``dst:`` token naming one of the queue's, else its default."""
    astorages = queuedata.get("astorages") or {}
    default = next((astorages[a][0] for a in activities if astorages.get(a)), "")
    match = re.match(r"^dst:([^/]*)", str(token or ""))
    if match and any(match.group(1) in (names or []) for names in astorages.values()):
        return match.group(1)
    return str(default)


def _input_lists(files: list[dict[str, Any]], queuedata: Mapping[str, Any]) -> dict[str, str]:
    seen: set[str] = set()
    rows = []
    for f in files:
        if f.get("type") == "input" and f["lfn"] not in seen:
            seen.add(f["lfn"])
            rows.append(f)

    def joined(fn: Any) -> str:
        return ",".join(str(fn(f)) for f in rows)

    checksum = joined(lambda f: f["checksum"] if f.get("checksum", NULL) not in ("", NULL) else f.get("md5sum", NULL))
    return {"inFiles": joined(lambda f: f["lfn"]), "dispatchDblock": joined(lambda f: f.get("dispatchDBlock", NULL)),
            "dispatchDBlockToken": joined(lambda f: f.get("dispatchDBlockToken", NULL)),
            "prodDBlocks": joined(lambda f: f.get("prodDBlock", NULL)),
            "prodDBlockToken": joined(lambda f: f.get("prodDBlockToken", NULL)),
            "realDatasetsIn": joined(lambda f: f.get("dataset", NULL)), "GUID": joined(lambda f: f.get("GUID", NULL)),
            "checksum": checksum, "fsize": joined(lambda f: f.get("fsize", 0)),
            "scopeIn": joined(lambda f: f.get("scope", NULL)),
            "ddmEndPointIn": joined(lambda f: _storage(queuedata, f.get("dispatchDBlockToken"), ("pr", "read_lan")))}


def _output_lists(files: list[dict[str, Any]], queuedata: Mapping[str, Any]) -> dict[str, str]:
    rows = [f for f in files if f.get("type") in ("output", "log")]
    logs = [f for f in rows if f.get("type") == "log"]
    log = logs[-1] if logs else {}

    def joined(fn: Any, only: tuple[str, ...] = ("output", "log")) -> str:
        return ",".join(str(fn(f)) for f in rows if f.get("type") in only)

    def token(f: Mapping[str, Any]) -> str:
        return re.sub("^ddd:", "dst:", str(f.get("destinationDBlockToken", NULL)).split(",")[0])

    return {"dispatchDBlockTokenForOut": joined(lambda f: f.get("dispatchDBlockToken", NULL)),
            "outFiles": joined(lambda f: f["lfn"]),
            "destinationDblock": joined(lambda f: f.get("destinationDBlock", NULL)),
            "destinationDBlockToken": joined(token), "realDatasets": joined(lambda f: f.get("dataset", NULL)),
            "fileDestinationSE": joined(lambda f: f.get("destinationSE", NULL)),
            "logFile": str(log.get("lfn", "")), "logGUID": str(log.get("GUID", "")) if log else "",
            "scopeOut": joined(lambda f: f.get("scope", NULL), ("output",)),
            "scopeLog": str(log.get("scope", "")) if log else "",
            "ddmEndPointOut": joined(lambda f: _storage(queuedata, token(f), ("pw", "write_lan")))}


def _job_pars(columns: Mapping[str, Any]) -> str:
    pars = str(columns.get("jobParameters", " "))
    return base64.b64encode(pars.encode()).decode() if "ej" in _tags(columns) else pars


def serve(job: WireJob, queuedata: Mapping[str, Any]) -> dict[str, Any]:
    """The job definition acquire_jobs/getJob hand out for a stored job."""
    c, files = job.columns, job.files
    ins, outs = _input_lists(files, queuedata), _output_lists(files, queuedata)
    d: dict[str, Any] = {name: c.get(key, NULL) for name, key in (
        ("PandaID", "PandaID"), ("prodSourceLabel", "prodSourceLabel"), ("swRelease", "AtlasRelease"),
        ("homepackage", "homepackage"), ("transformation", "transformation"), ("jobName", "jobName"),
        ("jobDefinitionID", "jobDefinitionID"), ("cloud", "cloud"))}
    d.update({"inFiles": ins["inFiles"], "dispatchDblock": ins["dispatchDblock"],
              "dispatchDBlockToken": ins["dispatchDBlockToken"]})
    d.update({k: outs[k] for k in ("dispatchDBlockTokenForOut", "outFiles", "destinationDblock",
                                   "destinationDBlockToken")})
    d.update({"prodDBlocks": ins["prodDBlocks"], "prodDBlockToken": ins["prodDBlockToken"],
              "realDatasets": outs["realDatasets"], "realDatasetsIn": ins["realDatasetsIn"],
              "fileDestinationSE": outs["fileDestinationSE"], "logFile": outs["logFile"], "logGUID": outs["logGUID"],
              "jobPars": _job_pars(c), "attemptNr": c.get("attemptNr", 0)})
    d.update({k: ins[k] for k in ("GUID", "checksum", "fsize", "scopeIn")})
    d.update({k: outs[k] for k in ("scopeOut", "scopeLog")})
    d.update({"ddmEndPointIn": ins["ddmEndPointIn"], "ddmEndPointOut": outs["ddmEndPointOut"]})
    d.update({name: c.get(name, NULL) for name in _TAIL})
    d["taskID"] = c.get("jediTaskID", NULL) if c.get("lockedby") == "jedi" else c.get("taskID", NULL)
    d["coreCount"] = 1 if c.get("coreCount", NULL) == NULL else c["coreCount"]
    d.update({name: c.get(name, NULL) for name in ("jobsetID", "reqID", "nucleus", "maxWalltime")})
    d["resource_type"] = c.get("resource_type", NULL)
    tags = _tags(c)
    if "lc" in tags:
        d["loopingCheck"] = False
    if "dm" in tags or "debug" in tags:
        d["debug"] = "True"
    if c.get("container_name", NULL) != NULL:
        d["container_name"] = c["container_name"]
    d.update({"ioIntensity": None, "ioIntensityUnit": None})
    return d
