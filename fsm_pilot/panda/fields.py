"""Request fields: legacy names (camelCase, every value a string) <-> REST v1 (snake_case, JSON types).

Callers always build requests with the legacy names Pilot 3 sends, so one code
path serves both dialects. The v1 tables follow the function signatures of
panda-server's ``pandaserver/api/v1/pilot_api.py`` (``acquire_jobs``,
``update_job``). Two server facts shape them:

- v1 binds the body to the function's keyword arguments, so a name the
  function lacks fails the whole call ("Argument error: got an unexpected
  keyword argument"). Legacy-only names (``timestamp``, ``cpu``,
  ``workingGroup``, ...) are therefore dropped, never sent.
- v1 checks ``isinstance`` against the annotations, so ``"1"`` for an int
  fails ("Type error: 'job_id' must be of type int"). Values are converted to
  the annotated type here.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from fsm_pilot.errors import PilotError, PilotFailure

#: panda-server parses start/end times in this form (UTC); epoch numbers are dropped by it.
SERVER_TIME = "%Y-%m-%d %H:%M:%S"
_NONE = ("", "NULL", "None")


class _Skip(Exception):
    """The value means "none": leave the field out."""


def _int(value: object) -> int:
    if isinstance(value, bool):
        raise ValueError("a boolean is not a count")
    if isinstance(value, int):
        return value
    number = float(str(value).strip()) if not isinstance(value, float) else value
    if not math.isfinite(number):
        raise ValueError("not finite")
    return int(number)


def _number(value: object) -> int | float:
    if isinstance(value, bool):
        raise ValueError("a boolean is not a number")
    if isinstance(value, (int, float)):
        number: int | float = value
    else:
        text = str(value).strip()
        number = int(text) if text.lstrip("-").isdigit() else float(text)
    if isinstance(number, float) and not math.isfinite(number):
        raise ValueError("not finite")
    return number


def _text(value: object) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    if isinstance(value, bool):
        return "True" if value else "False"
    return str(value)


def _time(value: object) -> str:
    """Epoch seconds (as Pilot 3 sends them) become the server's format; text passes as is."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return time.strftime(SERVER_TIME, time.gmtime(value))
    text = str(value).strip()
    try:
        return time.strftime(SERVER_TIME, time.gmtime(float(text)))
    except (ValueError, OverflowError):
        return text


def _bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("true", "1", "yes")


def _flag(value: object) -> str:
    """``get_proxy_key`` is annotated str but read with ``bool()``: send "True" or nothing."""
    if _bool(value):
        return "True"
    raise _Skip


def _any(value: object) -> object:
    return value


Convert = Callable[[object], object]

#: getJob legacy name -> (acquire_jobs argument, conversion)
GETJOB_V1: dict[str, tuple[str, Convert]] = {
    "siteName": ("site_name", _text),
    "computingElement": ("computing_element", _text),
    "prodSourceLabel": ("prod_source_label", _text),
    "diskSpace": ("disk_space", _int),
    "mem": ("memory", _int),
    "node": ("node", _text),
    "prodUserID": ("prod_user_id", _text),
    "getProxyKey": ("get_proxy_key", _flag),
    "taskID": ("task_id", _int),
    "nJobs": ("n_jobs", _int),
    "background": ("background", _bool),
    "resourceType": ("resource_type", _text),
    "harvester_id": ("harvester_id", _text),
    "worker_id": ("worker_id", _int),
    "schedulerID": ("scheduler_id", _text),
    "jobType": ("job_type", _text),
    "viaTopic": ("via_topic", _bool),
    "remaining_time": ("remaining_time", _int),
    "timeout": ("timeout", _int),
    "target_architecture": ("target_architecture", _any),
}
#: getJob names acquire_jobs has no argument for (sending them fails the call).
GETJOB_LEGACY_ONLY = frozenset({"cpu", "workingGroup", "allowOtherCountry", "countryGroup", "AtlasRelease", "token"})

#: Memory (kB) and I/O counters: update_job takes ``int | float``.
_UPDATE_NUMBERS = {
    "maxRSS": "max_rss", "maxVMEM": "max_vmem", "maxSWAP": "max_swap", "maxPSS": "max_pss",
    "avgRSS": "avg_rss", "avgVMEM": "avg_vmem", "avgSWAP": "avg_swap", "avgPSS": "avg_pss",
    "totRCHAR": "tot_rchar", "totWCHAR": "tot_wchar", "totRBYTES": "tot_rbytes", "totWBYTES": "tot_wbytes",
    "rateRCHAR": "rate_rchar", "rateWCHAR": "rate_wchar", "rateRBYTES": "rate_rbytes", "rateWBYTES": "rate_wbytes",
}

#: updateJob legacy name -> (update_job argument, conversion)
UPDATE_V1: dict[str, tuple[str, Convert]] = {
    "jobId": ("job_id", _int),
    "state": ("job_status", _text),
    "xml": ("job_output_report", _text),
    "metaData": ("meta_data", _text),
    "pilotLog": ("pilot_log", _text),
    "transExitCode": ("trans_exit_code", _int),
    "pilotErrorCode": ("pilot_error_code", _int),
    "pilotErrorDiag": ("pilot_error_diag", _text),
    "exeErrorCode": ("exe_error_code", _int),
    "exeErrorDiag": ("exe_error_diag", _text),
    "cpuConsumptionTime": ("cpu_consumption_time", _int),
    "cpuConsumptionUnit": ("cpu_consumption_unit", _text),
    "cpuConversionFactor": ("cpu_conversion_factor", _number),
    "startTime": ("start_time", _time),
    "endTime": ("end_time", _time),
    "nEvents": ("n_events", _int),
    "nInputFiles": ("n_input_files", _int),
    "batchID": ("batch_id", _text),
    "attemptNr": ("attempt_nr", _int),
    "jobMetrics": ("job_metrics", _text),
    "coreCount": ("core_count", _int),
    "meanCoreCount": ("mean_core_count", _int),
    "node": ("node", _text),
    "siteName": ("site_name", _text),
    "schedulerID": ("scheduler_id", _text),
    "pilotID": ("pilot_id", _text),
    "pilotTiming": ("pilot_timing", _text),
    "jobSubStatus": ("job_sub_status", _text),
    "stdout": ("stdout", _text),
    "corruptedFiles": ("corrupted_files", _text),
    "cpu_architecture_level": ("cpu_architecture_level", _text),
    "timeout": ("timeout", _int),
    **{legacy: (v1, _number) for legacy, v1 in _UPDATE_NUMBERS.items()},
}
#: updateJob names update_job has no argument for (``timestamp`` above all: Pilot 3 always sends it).
UPDATE_LEGACY_ONLY = frozenset({"timestamp", "workdir", "remainingSpace", "messageLevel", "computingElement", "token"})
#: Without these update_job cannot run; a value that does not convert is the caller's bug.
UPDATE_REQUIRED = ("job_id", "job_status")


@dataclass(frozen=True)
class V1Body:
    """A v1 request body, and the legacy names left out (unknown, or unconvertible values)."""

    body: dict[str, object]
    dropped: tuple[str, ...]


def to_legacy(fields: Mapping[str, object]) -> dict[str, str]:
    """The legacy form: every value a string (None left out), exactly as Pilot 3 encodes them."""
    return {name: _text(value) for name, value in fields.items() if value is not None}


def to_v1(fields: Mapping[str, object], table: Mapping[str, tuple[str, Convert]],
          legacy_only: frozenset[str]) -> V1Body:
    """Translate legacy names to v1 with JSON types; "none" values and legacy-only names are left out.

    Names neither in ``table`` nor in ``legacy_only``, and values that do not
    convert, are reported in ``dropped`` so the caller can log them; sending
    them would fail the whole call on the server.
    """
    body: dict[str, object] = {}
    dropped: list[str] = []
    for name, value in fields.items():
        if name in legacy_only or value is None or (isinstance(value, str) and value.strip() in _NONE):
            continue
        if name not in table:
            dropped.append(name)
            continue
        v1_name, convert = table[name]
        try:
            body[v1_name] = convert(value)
        except _Skip:
            continue
        except (ValueError, TypeError, OverflowError):
            dropped.append(name)
    return V1Body(body, tuple(dropped))


def update_to_v1(fields: Mapping[str, object]) -> V1Body:
    """updateJob fields for ``/api/v1/pilot/update_job``; job id and state must survive translation."""
    translated = to_v1(fields, UPDATE_V1, UPDATE_LEGACY_ONLY)
    missing = [name for name in UPDATE_REQUIRED if name not in translated.body]
    if missing:
        raise PilotFailure(PilotError.INTERNALPILOTPROBLEM,
                           f"updateJob fields lack a usable {' and '.join(missing)}")
    return translated


def worker_id_v1(value: object) -> object:
    """A Harvester worker ID as acquire_jobs takes it (an int: panda-server's worker table keys it as a
    bigint), so update_worker_status gets the same; one that is no integer is sent as it is."""
    try:
        return _int(value)
    except (ValueError, TypeError, OverflowError):
        return value


def getjob_to_v1(request: Mapping[str, object]) -> V1Body:
    """getJob fields for ``/api/v1/pilot/acquire_jobs``."""
    return to_v1(request, GETJOB_V1, GETJOB_LEGACY_ONLY)
