"""Loading the queue's configuration (queuedata) and its storage endpoints.

Sources are a local path or a ``file://`` URL here; ``{pandaqueue}`` in the
URL is replaced by the queue name, as Pilot 3 does. A source that cannot be
read is QUEUEDATA (exit 71); one that is read but makes no sense is
QUEUEDATANOTOK (72); a queue that is not ACTIVE or is offline is refused
(78, 83) because a pilot must not take work for a closed queue.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from fsm_pilot.errors import PilotError, PilotFailure

MAX_BYTES = 64 * 1024 * 1024


def is_remote(url: str) -> bool:
    """An http(s) source, fetched with the server client."""
    return urlparse(url).scheme in ("http", "https")


def source_path(url: str) -> Path:
    """The local file a queuedata/storage URL names."""
    parsed = urlparse(url)
    if parsed.scheme in ("", "file"):
        return Path(unquote(parsed.path) if parsed.scheme else url)
    raise PilotFailure(PilotError.QUEUEDATA, f"cannot read {url}: scheme {parsed.scheme!r} not supported "
                                             "(use http(s), a local path or a file:// URL)")


def load_json(url: str, what: str) -> Any:
    """Read and decode a local JSON source; coded failures, never a traceback."""
    path = source_path(url)
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_BYTES + 1)
    except OSError as exc:
        raise PilotFailure(PilotError.QUEUEDATA, f"cannot read {what} from {path}: {exc.strerror}") from None
    if len(raw) > MAX_BYTES:
        raise PilotFailure(PilotError.QUEUEDATANOTOK, f"{what} {path} is larger than {MAX_BYTES} bytes")
    try:
        return json.loads(raw.decode("utf-8"))
    except RecursionError:
        raise PilotFailure(PilotError.QUEUEDATANOTOK, f"{what} {path} is nested too deeply to be read") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise PilotFailure(PilotError.QUEUEDATANOTOK, f"{what} {path} is not valid JSON: {exc}") from None


def select_queue(data: Any, queue: str) -> dict[str, Any]:
    """The queue's own dict, from a single-queue document or a CRIC-style ``{name: {...}}``."""
    if not isinstance(data, dict):
        raise PilotFailure(PilotError.QUEUEDATANOTOK, f"queuedata is a {type(data).__name__}, not an object")
    if isinstance(data.get(queue), dict):
        return dict(data[queue])
    if queue in (data.get("nickname"), data.get("name")):
        return dict(data)
    raise PilotFailure(PilotError.QUEUEDATANOTOK, f"queuedata does not describe queue {queue!r}")


def check_queue(qd: dict[str, Any]) -> None:
    """Refuse a queue that is not ACTIVE or is offline."""
    state = str(qd.get("state", "")).upper()
    if state != "ACTIVE":
        raise PilotFailure(PilotError.PANDAQUEUENOTACTIVE, f"queue state is {qd.get('state')!r}, not ACTIVE")
    if str(qd.get("status", "")).lower() == "offline":
        raise PilotFailure(PilotError.PANDAQUEUENOTONLINE, "queue status is offline")


def queuedata_of(data: Any, queue: str) -> dict[str, Any]:
    """The checked queuedata of ``queue`` from a decoded document."""
    qd = select_queue(data, queue)
    check_queue(qd)
    return qd


def storagedata_of(data: Any) -> dict[str, Any]:
    """Storage endpoints by name (``{name: {"arprotocols": ...}}``) from a decoded document."""
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise PilotFailure(PilotError.QUEUEDATANOTOK, "storage endpoints must be an object of objects")
    return data
