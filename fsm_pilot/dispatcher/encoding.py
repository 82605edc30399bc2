"""Request parsing and reply encoding, byte for byte as panda-server does them.

Legacy (``/server/panda/<method>``): form fields in, every value a string; the reply is
JSON when the request's Accept header names ``application/json``, else a urlencoded
``key=value&...`` string. REST v1 (``/api/v1/<module>/<function>``): a JSON body with
real types (or form/query fields, which arrive as strings); the reply is the envelope
``{"success", "message", "data"}`` as JSON when the request's Content-Type or Accept is
exactly ``application/json`` (panda-server compares the whole header), otherwise ``str()``
of the dict, a Python repr, which is what panda-server sends.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode

from fsm_pilot.dispatcher.httpserver import Request, Response

JSON = "application/json"


class BadRequest(Exception):
    """A request that cannot be understood: answered 4xx with this message."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def accepts_json(req: Request) -> bool:
    return JSON in req.headers.get("accept", "")


def has_json_body(req: Request) -> bool:
    """panda-server reads a JSON body only when the Content-Type is exactly ``application/json``."""
    return req.headers.get("content-type", "").strip() == JSON


def _body(req: Request) -> bytes:
    encoding = req.headers.get("content-encoding", "").lower()
    if encoding not in ("gzip", "x-gzip"):
        return req.body
    try:
        return gzip.decompress(req.body)
    except (OSError, EOFError, zlib.error) as exc:
        raise BadRequest(f"body is not valid gzip: {exc}") from exc


def _form(text: bytes) -> dict[str, str | list[str]]:
    """Form or query fields; a repeated key gives a list (as panda-server's v1 parser does)."""
    try:
        pairs = parse_qsl(text.decode("ascii"), keep_blank_values=True, strict_parsing=False,
                          encoding="utf-8", errors="strict")
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadRequest(f"malformed form data: {exc}") from exc
    fields: dict[str, str | list[str]] = {}
    for key, value in pairs:
        old = fields.get(key)
        fields[key] = value if old is None else [*([old] if isinstance(old, str) else old), value]
    return fields


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadRequest(f"malformed JSON body: {exc}") from exc
    if not isinstance(value, dict):
        raise BadRequest(f"JSON body must be an object, got {type(value).__name__}")
    return value


def params(req: Request) -> dict[str, Any]:
    """The request's parameters: JSON body, form body, or query string."""
    if req.method in ("GET", "HEAD"):
        return dict(_form(req.query.encode("latin-1")))
    if has_json_body(req):
        return _json_object(_body(req))
    return dict(_form(_body(req)))


def legacy_params(req: Request) -> dict[str, str]:
    """Legacy fields are strings; a repeated field keeps its first value (cgi's getfirst)."""
    out: dict[str, str] = {}
    for key, value in params(req).items():
        first = value[0] if isinstance(value, list) else value
        out[key] = first if isinstance(first, str) else _legacy_text(first)
    return out


def _legacy_text(value: Any) -> str:
    """A JSON-typed legacy field as panda-server's legacy JSON parser leaves it (True -> "True")."""
    return json.dumps(value) if isinstance(value, (dict, list)) else str(value)


def legacy_reply(req: Request, data: Mapping[str, Any], force_urlencoded: bool = False) -> Response:
    if accepts_json(req) and not force_urlencoded:
        return Response(200, json.dumps(data).encode(), JSON)
    return Response(200, urlencode(data).encode(), "text/plain")


def envelope(success: bool, message: str = "", data: Any = None) -> dict[str, Any]:
    return {"success": success, "message": message, "data": data}


def v1_reply(req: Request, body: Mapping[str, Any], status: int = 200) -> Response:
    """JSON when the Content-Type or the Accept header is exactly ``application/json``, else a repr."""
    if has_json_body(req) or req.headers.get("accept", "").strip() == JSON:
        return Response(status, json.dumps(body).encode(), JSON)
    return Response(status, str(dict(body)).encode(), "text/plain")


def json_document(doc: Any) -> Response:
    """A plain JSON document (queuedata, CRIC lists)."""
    return Response(200, json.dumps(doc).encode(), JSON)
