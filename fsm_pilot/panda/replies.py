"""Parse a PanDA server reply body, whatever encoding the server chose.

panda-server answers in four encodings depending on its version and on the
request's headers: a JSON object (legacy, ``Accept: application/json``), a
urlencoded ``key=value&...`` string (legacy without it), the v1 envelope
``{"success", "message", "data"}`` as JSON, or that envelope as a Python repr
(v1 without ``Accept: application/json``: single quotes, not JSON). All of
them become one small typed ``Reply``. A body that is none of them is an
``UnreadableReply``, a communication failure with a clear diag and never
another exception type, because callers must tell "the server refused" from
"we could not talk"; the client retries it like a 5xx.
"""

from __future__ import annotations

import ast
import enum
import json
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qsl

from fsm_pilot.errors import PilotError, PilotFailure

Encoding = Literal["json", "urlencoded", "v1", "v1-repr"]

#: How much of an unparsable body goes into the diag (enough to recognise it).
SNIPPET = 160


class StatusCode(enum.IntEnum):
    """panda-server's ``StatusCode`` values (jobdispatcher Protocol)."""

    SUCCESS = 0
    TIMEOUT = 10
    NO_JOBS = 20
    FAILED = 30
    INVALID = 50
    ROLE = 60
    PERMISSION = 70
    KEY_MISSING = 80
    PROXY_ERROR = 90


#: v1 refusals carry no StatusCode, only a message; these are the ones
#: panda-server's pilot API and request validation produce.
_V1_MESSAGES: tuple[tuple[str, StatusCode], ...] = (
    ("no jobs in panda", StatusCode.NO_JOBS),
    ("timed out", StatusCode.TIMEOUT),
    ("database error", StatusCode.FAILED),
    ("role", StatusCode.ROLE),
    ("ssl secure connection is required", StatusCode.PERMISSION),
    ("argument error", StatusCode.INVALID),
    ("type error", StatusCode.INVALID),
    ("expecting ", StatusCode.INVALID),
)


@dataclass(frozen=True)
class Reply:
    """A decoded reply.

    ``fields`` is the legacy reply (or the v1 ``data`` when it is an object);
    ``data`` is the v1 ``data`` as sent (any JSON value, or None). ``status``
    is the StatusCode when the server sent one, or the one a v1 message means.
    """

    encoding: Encoding
    success: bool
    status: int | None
    message: str
    fields: dict[str, Any]
    data: Any = None


class UnreadableReply(PilotFailure):
    """A reply whose body cannot be used (empty, truncated, not PanDA's): worth asking again."""


def communication_failure(what: str, body: str) -> UnreadableReply:
    """The one failure for a reply we cannot use, quoting a short, printable snippet."""
    snippet = " ".join(body.split())[:SNIPPET]
    return UnreadableReply(PilotError.COMMUNICATIONFAILURE, f"{what}: {snippet!r}")


def status_of_message(message: str) -> int | None:
    """The StatusCode a v1 refusal message stands for, or None when unknown."""
    lowered = message.lower()
    for text, code in _V1_MESSAGES:
        if text in lowered:
            return int(code)
    return None


def parse_reply(body: bytes | str) -> Reply:
    """Decode ``body`` in whichever encoding it is; PilotFailure(COMMUNICATIONFAILURE) if none fits."""
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    stripped = text.strip()
    if not stripped:
        raise communication_failure("empty reply from the server", text)
    value = _decode_object(stripped)
    if value is None:
        return _from_legacy(_urlencoded(stripped), "urlencoded", stripped)
    obj, encoding = value
    if isinstance(obj.get("success"), bool) and "data" in obj:
        return _from_envelope(obj, "v1" if encoding == "json" else "v1-repr", stripped)
    return _from_legacy(obj, "json", stripped)


def _decode_object(text: str) -> tuple[dict[str, Any], str] | None:
    """A JSON object, else a Python-literal dict (v1 repr); None if the text is not an object at all."""
    if not text.startswith("{"):
        return None
    try:
        obj = json.loads(text)
        encoding = "json"
    except (ValueError, RecursionError):
        obj, encoding = _literal(text), "repr"
    if not isinstance(obj, dict) or not all(isinstance(key, str) for key in obj):
        raise communication_failure("reply is not a JSON object, a repr or a form", text)
    return obj, encoding


def _literal(text: str) -> object:
    """``ast.literal_eval`` (never eval): literals only, so a hostile body cannot run code."""
    try:
        return ast.literal_eval(text)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise communication_failure("reply is not a JSON object, a repr or a form", text) from None


def _urlencoded(text: str) -> dict[str, Any]:
    """A legacy ``key=value&...`` reply; it always carries StatusCode, which tells it from prose."""
    try:
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        raise communication_failure("reply is not a JSON object, a repr or a form", text) from None
    fields = dict(pairs)
    if "StatusCode" not in fields:
        raise communication_failure("reply is not a JSON object, a repr or a form", text)
    return dict(fields)


def _status(value: object, text: str) -> int:
    """StatusCode as an int (legacy forms send it as a string)."""
    if isinstance(value, bool):
        raise communication_failure("reply has a non-numeric StatusCode", text)
    try:
        return int(str(value).strip())
    except ValueError:
        raise communication_failure("reply has a non-numeric StatusCode", text) from None


def _from_legacy(fields: dict[str, Any], encoding: Encoding, text: str) -> Reply:
    """Legacy reply: StatusCode decides; errorDialog / ErrorDiag explain."""
    if "StatusCode" not in fields:
        raise communication_failure("reply has neither StatusCode nor success", text)
    status = _status(fields["StatusCode"], text)
    message = str(fields.get("errorDialog") or fields.get("ErrorDiag") or "")
    return Reply(encoding, status == StatusCode.SUCCESS, status, message, fields)


def _from_envelope(obj: dict[str, Any], encoding: Encoding, text: str) -> Reply:
    """v1 envelope: success plus message; a StatusCode inside ``data`` wins over the message."""
    data = obj.get("data")
    message = obj.get("message")
    message = "" if message is None else str(message)
    fields = data if isinstance(data, dict) else {}
    status: int | None
    if "StatusCode" in fields:
        status = _status(fields["StatusCode"], text)
        message = message or str(fields.get("ErrorDiag") or fields.get("errorDialog") or "")
    elif obj["success"]:
        status = None
    else:
        status = status_of_message(message)
    return Reply(encoding, bool(obj["success"]), status, message, fields, data)
