"""Primitive checks of PanDA's loose job fields: text, integers, flags, diags that fit the server.

The server sends values as strings or numbers and spells "none" three ways;
these turn one raw value into checked text or a number, or a PilotFailure
with the PanDA error code and a diag that fits pilotErrorDiag (fsm_pilot.job
builds the job from them).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

from fsm_pilot.errors import PilotError, PilotFailure

#: PanDA stores pilotErrorDiag in a 500 character column.
MAX_DIAG_CHARS = 500

SHOWN_NAME_CHARS = 100
NONE_SPELLINGS = frozenset({"", "NULL", "None"})
INTEGER = re.compile(r"[+-]?[0-9]{1,18}(?:\.0*)?")
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
TRUE = frozenset({"true", "1", "yes"})
FALSE = frozenset({"false", "0", "no"})


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, marked by "..." where cut."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def fail(error: PilotError, diag: str) -> PilotFailure:
    """Build a failure whose diag fits PanDA's pilotErrorDiag column."""
    return PilotFailure(error, clip(diag, MAX_DIAG_CHARS))


def show(value: str) -> str:
    """Quote an untrusted value for a diag: repr() escapes control characters."""
    return clip(repr(value), SHOWN_NAME_CHARS)


def as_text(value: object) -> str | None:
    """Render a raw value as stripped text, or None for any spelling of "none"."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
    elif isinstance(value, int):  # bool too
        text = str(value)
    elif isinstance(value, float):
        text = str(int(value)) if value.is_integer() else repr(value)
    else:
        text = json.dumps(value, separators=(",", ":"), default=str)
    return None if text in NONE_SPELLINGS else text


def normalize(fields: Mapping[str, object]) -> dict[str, str]:
    """Drop none-valued fields so "absent" has exactly one representation."""
    normalized: dict[str, str] = {}
    for key, value in fields.items():
        text = as_text(value)
        if text is not None:
            normalized[str(key)] = text
    return normalized


def to_int(text: str, name: str, minimum: int = 0) -> int:
    """An integer field (``12`` or ``12.0``, at most 18 digits) no less than ``minimum``."""
    if not INTEGER.fullmatch(text):
        raise fail(PilotError.CONVERSIONFAILURE, f"{name}={show(text)} is not an integer")
    number = int(text.partition(".")[0])
    if number < minimum:
        raise fail(PilotError.CONVERSIONFAILURE, f"{name}={number} is below the minimum {minimum}")
    return number


def opt_int(fields: Mapping[str, str], key: str) -> int | None:
    """``key`` as an integer, None when absent."""
    text = fields.get(key)
    return None if text is None else to_int(text, key)


def flag(fields: Mapping[str, str], key: str, default: bool) -> bool:
    """``key`` as a boolean (true/1/yes, false/0/no in any case), ``default`` when absent."""
    text = fields.get(key)
    if text is None:
        return default
    if text.lower() not in TRUE | FALSE:
        raise fail(PilotError.CONVERSIONFAILURE, f"{key}={show(text)} is not a boolean")
    return text.lower() in TRUE


def encodable(text: str) -> bool:
    """False for lone surrogates, which JSON escapes can smuggle into a str."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_text(fields: Mapping[str, str]) -> None:
    """Every key and value is text UTF-8 can carry back to the server."""
    for key, value in fields.items():
        if not (encodable(key) and encodable(value)):
            raise fail(PilotError.CONVERSIONFAILURE, f"field {show(key)} is not valid Unicode text")


def no_control(text: str, key: str) -> str:
    """``text`` unchanged if it has no control character (it may end up in a command line or a log)."""
    if CONTROL.search(text):
        raise fail(PilotError.CONVERSIONFAILURE, f"{key}={show(text)} contains a control character")
    return text


def required(fields: Mapping[str, str], key: str, error: PilotError) -> str:
    """``key``'s text, or the failure ``error`` when the job has none."""
    text = fields.get(key)
    if text is None:
        raise fail(error, f"job definition has no {key}")
    return text
