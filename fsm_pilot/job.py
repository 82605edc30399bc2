"""Typed, immutable job definitions parsed strictly from PanDA's loose fields.

The server sends values as strings or numbers, spells "none" three ways and
packs per-file attributes into comma lists aligned by position.  Parsing once
here, and refusing anything ambiguous with the PanDA error code the server
expects, lets the rest of the pilot handle only checked values.  File names
come from the server and are untrusted: they later become paths in the work
directory and arguments of copy tools.
"""

from __future__ import annotations

import dataclasses
import re
import types
from collections.abc import Callable, Mapping, Sequence
from typing import Literal, Optional

from fsm_pilot.errors import PilotError, PilotFailure
from fsm_pilot.jobtext import (
    CONTROL,
    INTEGER,
    as_text,
    check_text,
    encodable,
    fail,
    flag,
    no_control,
    normalize,
    opt_int,
    required,
    show,
    to_int,
)

#: Longest file name most file systems (and Rucio) accept, in bytes.
MAX_LFN_BYTES = 255

_HEX = re.compile(r"[0-9a-f]+")
Role = Literal["input", "output", "log"]
ChecksumKind = Literal["adler32", "md5"]

_CHECKSUM_DIGITS: dict[str, int] = {"adler32": 8, "md5": 32}
_PREFIX_KIND: dict[str, ChecksumKind] = {"ad": "adler32", "md": "md5"}
_BARE_KIND: dict[int, ChecksumKind] = {8: "adler32", 32: "md5"}

#: Attribute lists aligned with inFiles / outFiles (split in two only to fit the line length).
_INPUT_ATTRS = ("GUID", "fsize", "checksum", "scopeIn", "realDatasetsIn", "ddmEndPointIn")
_INPUT_COLUMNS = (*_INPUT_ATTRS, "dispatchDBlockToken", "prodDBlockToken")
_OUTPUT_ATTRS = ("scopeOut", "realDatasets", "ddmEndPointOut", "destinationDblock", "fileDestinationSE")
_OUTPUT_COLUMNS = (*_OUTPUT_ATTRS, "destinationDBlockToken", "dispatchDBlockTokenForOut")

Column = list[Optional[str]]
Row = dict[str, Optional[str]]


@dataclasses.dataclass(frozen=True)
class Checksum:
    """A file checksum in the form PanDA and Rucio compare: lowercase hex, fixed width."""

    kind: ChecksumKind
    value: str

    def __post_init__(self) -> None:
        digits = _CHECKSUM_DIGITS.get(self.kind)
        if digits is None or len(self.value) != digits or not _HEX.fullmatch(self.value):
            raise fail(PilotError.UNKNOWNCHECKSUMTYPE, f"invalid {self.kind} checksum {show(self.value)}")

    @classmethod
    def parse(cls, text: str) -> Checksum:
        """Parse ``ad:<hex>``, ``md:<32 hex>``, or bare 8 (adler32) / 32 (md5) hex digits."""
        cleaned = text.strip().lower()
        prefix, colon, digits = cleaned.partition(":")
        kind = _PREFIX_KIND.get(prefix) if colon else _BARE_KIND.get(len(cleaned))
        digits = digits if colon else cleaned
        if kind == "adler32" and colon and digits:
            digits = digits.zfill(8)  # servers drop leading zeros of adler32
        if kind is None or len(digits) != _CHECKSUM_DIGITS[kind] or not _HEX.fullmatch(digits):
            raise fail(
                PilotError.UNKNOWNCHECKSUMTYPE,
                f"unrecognised checksum {show(text)} (expected ad:<8 hex> or md:<32 hex>)",
            )
        return cls(kind=kind, value=digits)


@dataclasses.dataclass(frozen=True)
class FileSpec:
    """One input, output or log file; ``lfn`` is a checked single path component."""

    lfn: str
    role: Role
    scope: str | None = None
    guid: str | None = None
    fsize: int | None = None
    checksum: Checksum | None = None
    dataset: str | None = None
    ddm_endpoint: str | None = None
    storage_token: str | None = None


@dataclasses.dataclass(frozen=True)
class JobIdentity:
    """What is needed to report a job and ship its log even if its definition is rejected."""

    panda_id: int
    log: FileSpec
    #: as the job gave it (any integer); None when it is no integer: reports then go without one
    attempt_nr: int | None = 0
    #: why the job's attemptNr cannot be reported, when it cannot
    attempt_problem: str | None = None


@dataclasses.dataclass(frozen=True)
class Job:
    """A validated job definition; ``fields`` keeps every normalized field for the rest."""

    panda_id: int
    attempt_nr: int
    job_name: str
    task_id: int | None
    jobset_id: int | None
    job_definition_id: int | None
    prod_source_label: str | None
    transformation: str
    job_pars: str
    core_count: int
    max_cpu_count: int
    max_disk_count: int
    min_ram_count: int
    max_walltime: int | None
    looping_check: bool
    debug: bool
    inputs: tuple[FileSpec, ...]
    outputs: tuple[FileSpec, ...]
    log: FileSpec
    fields: Mapping[str, str]

    @property
    def identity(self) -> JobIdentity:
        """The reporting identity, with the fully described log file."""
        return JobIdentity(panda_id=self.panda_id, attempt_nr=self.attempt_nr, log=self.log)


def _panda_id(fields: Mapping[str, str]) -> int:
    return to_int(required(fields, "PandaID", PilotError.CONVERSIONFAILURE), "PandaID", minimum=1)


_NAME_RULES: tuple[tuple[Callable[[str], bool], str], ...] = (
    (lambda name: name in {"", ".", ".."}, "is empty, '.' or '..'"),
    (lambda name: "/" in name or "\\" in name, "contains a path separator"),
    (lambda name: CONTROL.search(name) is not None, "contains a control character"),
    (lambda name: name.startswith("-"), "starts with '-' and would be read as an option"),
    (lambda name: not encodable(name), "is not valid Unicode text"),
)


def _name_problem(name: str) -> tuple[PilotError, str] | None:
    """Why *name* is not safe as one file name in the work directory, or None."""
    for broken, reason in _NAME_RULES:
        if broken(name):
            return PilotError.BADOUTPUTFILENAME, reason
    size = len(name.encode("utf-8"))
    if size > MAX_LFN_BYTES:
        return PilotError.LFNTOOLONG, f"is {size} bytes long, over the {MAX_LFN_BYTES} byte limit"
    return None


def _check_lfn(name: str, role: str) -> str:
    problem = _name_problem(name)
    if problem is not None:
        error, reason = problem
        raise fail(error, f"{role} file name {show(name)} {reason}")
    return name


def _check_names(names: Sequence[str], role: str, key: str) -> None:
    seen: set[str] = set()
    for name in names:
        _check_lfn(name, role)
        if name in seen:
            raise fail(PilotError.BADOUTPUTFILENAME, f"{key} lists file {show(name)} twice")
        seen.add(name)


def _fallback_log_name(panda_id: int) -> str:
    return f"panda.{panda_id}.job.log.tgz"


def _names(fields: Mapping[str, str], key: str) -> list[str]:
    """File names of a list; none-spelled entries become "" so the name check rejects them."""
    text = fields.get(key)
    return [] if text is None else [as_text(item) or "" for item in text.split(",")]


def _split(text: str | None) -> Column | None:
    """Entries of an attribute list; None when absent or when every entry spells none."""
    if text is None:
        return None
    items = [as_text(item) for item in text.split(",")]
    return items if any(item is not None for item in items) else None


def _column(fields: Mapping[str, str], key: str, owner: str, count: int, log_at: int | None = None) -> Column:
    """Align an attribute list with its file list; outFiles lists may omit the log's entry."""
    items = _split(fields.get(key))
    if items is None:
        return [None] * count
    if len(items) == count:
        return items
    if log_at is not None and len(items) == count - 1:
        return [*items[:log_at], None, *items[log_at:]]
    without_log = "" if log_at is None else f" ({count - 1} without the log)"
    diag = f"{key} has {len(items)} entries but {owner} has {count}{without_log}"
    raise fail(PilotError.NOTSAMELENGTH, diag)


def _rows(columns: Mapping[str, Column], count: int) -> list[Row]:
    return [{key: values[index] for key, values in columns.items()} for index in range(count)]


def _checksum_of(text: str | None, lfn: str) -> Checksum | None:
    if text is None:
        return None
    try:
        return Checksum.parse(text)
    except PilotFailure as exc:
        raise fail(exc.error, f"checksum of {show(lfn)}: {exc.diag}") from exc


def _input_spec(lfn: str, row: Row) -> FileSpec:
    size = row["fsize"]
    return FileSpec(
        lfn=lfn,
        role="input",
        scope=row["scopeIn"],
        guid=row["GUID"],
        fsize=None if size is None else to_int(size, f"fsize of {show(lfn)}"),
        checksum=_checksum_of(row["checksum"], lfn),
        dataset=row["realDatasetsIn"],
        ddm_endpoint=row["ddmEndPointIn"],
        storage_token=row["prodDBlockToken"] or row["dispatchDBlockToken"],
    )


def _parse_inputs(fields: Mapping[str, str]) -> tuple[FileSpec, ...]:
    lfns = _names(fields, "inFiles")
    _check_names(lfns, "input", "inFiles")
    columns = {key: _column(fields, key, "inFiles", len(lfns)) for key in _INPUT_COLUMNS}
    return tuple(_input_spec(lfn, row) for lfn, row in zip(lfns, _rows(columns, len(lfns))))


def _output_spec(lfn: str, row: Row, role: Role, scope: str | None) -> FileSpec:
    return FileSpec(
        lfn=lfn,
        role=role,
        scope=scope,
        dataset=row["realDatasets"],
        ddm_endpoint=row["ddmEndPointOut"],
        storage_token=row["destinationDBlockToken"] or row["dispatchDBlockTokenForOut"],
    )


def _parse_outputs(fields: Mapping[str, str], log_name: str) -> tuple[tuple[FileSpec, ...], FileSpec]:
    """Split outFiles into outputs and the log; the log is logFile even if outFiles omits it."""
    lfns = _names(fields, "outFiles")
    _check_names(lfns, "output", "outFiles")
    log_index = lfns.index(log_name) if log_name in lfns else None
    columns = {key: _column(fields, key, "outFiles", len(lfns), log_index) for key in _OUTPUT_COLUMNS}
    rows = _rows(columns, len(lfns))
    outputs = tuple(
        _output_spec(lfn, row, "output", row["scopeOut"])
        for index, (lfn, row) in enumerate(zip(lfns, rows))
        if index != log_index
    )
    log_row: Row = rows[log_index] if log_index is not None else dict.fromkeys(_OUTPUT_COLUMNS)
    log_scope = fields.get("scopeLog") or log_row["scopeOut"]
    log = dataclasses.replace(_output_spec(log_name, log_row, "log", log_scope), guid=fields.get("logGUID"))
    return outputs, log


def job_identity(fields: Mapping[str, object]) -> JobIdentity:
    """Identify a job for failure reporting; only a missing or invalid PandaID is fatal.

    Everything else degrades: an absent or unsafe logFile becomes
    ``panda.<PandaID>.job.log.tgz``. attemptNr is kept as the job gave it, even
    one the definition check rejects (the server matches reports on it): an
    integer is reported as it is; anything else is not reported at all, and
    ``attempt_problem`` says why.
    """
    normalized = normalize(fields)
    panda_id = _panda_id(normalized)
    name = normalized.get("logFile")
    if name is None or _name_problem(name) is not None:
        name = _fallback_log_name(panda_id)
    log = FileSpec(lfn=name, role="log", guid=normalized.get("logGUID"), scope=normalized.get("scopeLog"))
    text = normalized.get("attemptNr", "0")
    if INTEGER.fullmatch(text):
        return JobIdentity(panda_id=panda_id, attempt_nr=int(text.partition(".")[0]), log=log)
    problem = f"attemptNr={show(text)} is not an integer"
    return JobIdentity(panda_id=panda_id, attempt_nr=None, log=log, attempt_problem=problem)


def parse_job(fields: Mapping[str, object]) -> Job:
    """Validate a raw job definition; raise PilotFailure naming the first bad field."""
    normalized = normalize(fields)
    panda_id = _panda_id(normalized)
    check_text(normalized)
    log_file = normalized.get("logFile")
    log_name = _fallback_log_name(panda_id) if log_file is None else _check_lfn(log_file, "log")
    outputs, log = _parse_outputs(normalized, log_name)
    return Job(
        panda_id=panda_id,
        attempt_nr=opt_int(normalized, "attemptNr") or 0,
        job_name=no_control(normalized.get("jobName", ""), "jobName"),
        task_id=opt_int(normalized, "taskID"),
        jobset_id=opt_int(normalized, "jobsetID"),
        job_definition_id=opt_int(normalized, "jobDefinitionID"),
        prod_source_label=normalized.get("prodSourceLabel"),
        transformation=no_control(
            required(normalized, "transformation", PilotError.TRANSFORMNOTFOUND), "transformation"
        ),
        job_pars=normalized.get("jobPars", ""),
        core_count=opt_int(normalized, "coreCount") or 1,
        max_cpu_count=opt_int(normalized, "maxCpuCount") or 0,
        max_disk_count=opt_int(normalized, "maxDiskCount") or 0,
        min_ram_count=opt_int(normalized, "minRamCount") or 0,
        max_walltime=opt_int(normalized, "maxWalltime"),
        looping_check=flag(normalized, "loopingCheck", default=True),
        debug=flag(normalized, "debug", default=False),
        inputs=_parse_inputs(normalized),
        outputs=outputs,
        log=log,
        fields=types.MappingProxyType(normalized),
    )
