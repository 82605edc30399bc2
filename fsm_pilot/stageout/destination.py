"""Where an output or the log is written, and with which copytools: Pilot 3's stage-out rules.

Pilot 3 (pilot/api/data.py, pilot/control/data.py), followed here:

- Copytools: queuedata ``acopytools`` for the activity, in order ``pw``,
  ``write_lan``, ``w``, ``default`` for outputs and ``pl`` first for the log (a
  bare name or list counts for every activity); a queue without ``acopytools``
  uses its ``copytools`` names; one naming nothing gets ``rucio``.
- Endpoint: the job's ``ddmEndPointOut`` when CRIC knows it, else the queue's
  ``astorages`` for the activity (``storage.endpoints.write_endpoint_name``).
- Protocol kind: ``write_lan`` when the endpoint is local to the queue (listed
  in ``astorages["read_lan"]``, or that list is empty), then ``write_wan``: the
  first kind the endpoint has any protocol for.
- Protocol: for a copytool, the first protocol whose scheme it writes, trying
  its schemes in its order of preference (queuedata ``acopytools_schemas`` may
  override them per activity and copytool). None fits: NOSTORAGEPROTOCOL.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from fsm_pilot.errors import PilotError, PilotFailure
from fsm_pilot.storage import Endpoint
from fsm_pilot.storage.endpoints import endpoint_protocols, write_endpoint_name

#: ``acopytools`` / ``acopytools_schemas`` keys tried, in order, per stage-out activity.
ACTIVITIES: Mapping[str, tuple[str, ...]] = {
    "pw": ("pw", "write_lan", "w", "default"),
    "pl": ("pl", "pw", "write_lan", "w", "default"),
}
#: Pilot 3's copytool for a queue that names none.
DEFAULT_COPYTOOL = "rucio"
_KINDS = ("write_lan", "write_wan")


def _bad(diag: str) -> PilotFailure:
    return PilotFailure(PilotError.QUEUEDATANOTOK, diag)


def _per_activity(value: object, key: str) -> Mapping[str, Any]:
    """``acopytools``-like queuedata as a mapping; one name or a list of names counts for every activity."""
    if value is None or value in ("", []):
        return {}
    if isinstance(value, str):
        return {"default": [value]}
    if isinstance(value, (list, tuple)):
        return {"default": list(value)}
    if isinstance(value, Mapping):
        return value
    raise _bad(f"queuedata {key} is a {type(value).__name__}, expected an object")


def _names(value: object, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, (list, tuple)) or not all(isinstance(name, str) and name for name in value):
        raise _bad(f"queuedata {what} is {value!r}, expected a list of names")
    return tuple(value)


def copytool_names(queuedata: Mapping[str, Any], activity: str) -> tuple[str, ...]:
    """The copytools to try for ``activity`` ("pw" or "pl"), in the queue's order (never empty)."""
    acopytools = _per_activity(queuedata.get("acopytools"), "acopytools")
    copytools = queuedata.get("copytools")
    if not acopytools and isinstance(copytools, Mapping) and copytools:
        acopytools = {"default": [str(name) for name in copytools]}
    for key in ACTIVITIES[activity]:
        names = _names(acopytools.get(key), f"acopytools[{key!r}]")
        if names:
            return names
    return (DEFAULT_COPYTOOL,)


def allowed_schemes(queuedata: Mapping[str, Any], activity: str, copytool: str) -> tuple[str, ...]:
    """``acopytools_schemas`` for this activity and copytool (or its ``default``); () when not set."""
    schemas = _per_activity(queuedata.get("acopytools_schemas"), "acopytools_schemas")
    for key in ACTIVITIES[activity]:
        entry = schemas.get(key)
        if not entry:
            continue
        per_tool = entry if isinstance(entry, Mapping) else {"default": entry}
        value = per_tool.get(copytool, per_tool.get("default"))
        return _names(value, f"acopytools_schemas[{key!r}]")
    return ()


@dataclass(frozen=True)
class Destination:
    """The chosen endpoint, the protocols of the chosen kind, and the copytools to try."""

    endpoint: str
    kind: str
    protocols: tuple[Endpoint, ...]
    copytools: tuple[str, ...]
    #: ``acopytools_schemas`` per copytool, where the queue sets them.
    schemes: Mapping[str, tuple[str, ...]]

    @property
    def local(self) -> bool:
        """Only file:// protocols: the endpoint is a directory on this host, written directly."""
        return all(urlsplit(p.url).scheme.lower() == "file" for p in self.protocols)

    def protocol_for(self, copytool: str, schemes: tuple[str, ...]) -> Endpoint:
        """The first protocol with a scheme ``copytool`` writes, its schemes tried in their order."""
        for scheme in schemes:
            for protocol in self.protocols:
                if urlsplit(protocol.url).scheme.lower() == scheme:
                    return protocol
        offered = ", ".join(p.url for p in self.protocols)
        raise PilotFailure(
            PilotError.NOSTORAGEPROTOCOL,
            f"copytool {copytool} writes {', '.join(schemes) or 'nothing'}; endpoint {self.endpoint} "
            f"{self.kind} offers {offered}",
        )


def _is_lan(queuedata: Mapping[str, Any], name: str) -> bool:
    """Pilot 3's "input ddms": astorages["read_lan"], or the endpoint itself when that is empty."""
    astorages = _per_activity(queuedata.get("astorages"), "astorages")
    local = _names(astorages.get("read_lan"), "astorages['read_lan']")
    return name in local if local else True


def destination(queuedata: Mapping[str, Any], ddmendpoints: Mapping[str, Any], activity: str,
                preferred: str | None) -> Destination:
    """Endpoint, protocol kind and copytools for one file; NOSTORAGE / NOSTORAGEPROTOCOL when there are none."""
    if not isinstance(queuedata, Mapping):
        raise _bad(f"queuedata is a {type(queuedata).__name__}, expected an object")
    name = write_endpoint_name(queuedata, ddmendpoints, activity, preferred)
    kinds = _KINDS if _is_lan(queuedata, name) else _KINDS[1:]
    for kind in kinds:
        protocols = endpoint_protocols(ddmendpoints, name, kind)
        if protocols:
            if all(urlsplit(p.url).scheme.lower() == "file" for p in protocols):
                return Destination(name, kind, protocols, (), {})  # written by the pilot: no copytool
            names = copytool_names(queuedata, activity)
            schemes = {tool: allowed_schemes(queuedata, activity, tool) for tool in names}
            return Destination(name, kind, protocols, names, {k: v for k, v in schemes.items() if v})
    raise PilotFailure(PilotError.NOSTORAGEPROTOCOL, f"endpoint {name} has no {' or '.join(kinds)} protocol")
