"""Where an input can be read from: its endpoint, LAN or WAN, and that endpoint's read protocols.

Pilot 3 (pilot/api/data.py) gets replicas from Rucio and calls one local
(``lan``) when its storage is among the queue's ``astorages["read_lan"]`` (or,
when the queue lists none, is the job's own ``ddmEndPointIn``), else remote
(``wan``). There is no Rucio catalog here: the replica is on the job's
``ddmEndPointIn`` when CRIC knows it, else on the queue's first read storage
(``astorages`` "pr", then "read_lan"), at Rucio's deterministic path. A local
replica is read through the endpoint's ``arprotocols["read_lan"]``, a remote one
through ``read_wan``, and, as Pilot 3 does for remote replicas, only over
root, gsiftp, dcap, srm, storm or https. Each copytool takes the first of
those protocols, in CRIC's order, whose scheme it reads (Pilot 3's
``get_preferred_replica``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from fsm_pilot.errors import PilotError, PilotFailure
from fsm_pilot.storage import Endpoint

#: ``astorages`` keys naming the queue's read storage, in the order tried when the job names none.
_READ_STORAGES = ("pr", "read_lan")
#: Pilot 3's ``remoteinput_allowed_schemas``: the schemes a remote (WAN) replica may be read over.
WAN_SCHEMES = frozenset({"root", "gsiftp", "dcap", "srm", "storm", "https"})


def _bad(diag: str) -> PilotFailure:
    return PilotFailure(PilotError.QUEUEDATANOTOK, diag)


def _mapping(value: object, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _bad(f"{what} is a {type(value).__name__}, expected an object")
    return value


def _storages(queuedata: Mapping[str, Any], key: str) -> list[str]:
    astorages = _mapping(queuedata.get("astorages") or {}, "queuedata astorages")
    names = astorages.get(key) or []
    if not isinstance(names, (list, tuple)) or not all(isinstance(name, str) for name in names):
        raise _bad(f"queuedata astorages[{key!r}] is {names!r}, expected a list of endpoint names")
    return list(names)


def pick_endpoint(queuedata: Mapping[str, Any], ddmendpoints: Mapping[str, Any], preferred: str | None) -> str:
    """The job's input endpoint when CRIC knows it, else the queue's first known read storage."""
    if preferred and preferred in ddmendpoints:
        return preferred
    for key in _READ_STORAGES:
        known = [name for name in _storages(queuedata, key) if name in ddmendpoints]
        if known:
            return known[0]
    raise PilotFailure(
        PilotError.NOSTORAGE,
        f"no read storage endpoint: job endpoint {preferred!r} is not among {len(ddmendpoints)} known endpoints, "
        f"nor is any of queuedata astorages {_READ_STORAGES}",
    )


def domain(queuedata: Mapping[str, Any], name: str) -> str:
    """"lan" when the queue reads ``name`` locally (or names no local read storage at all), else "wan"."""
    local = _storages(queuedata, "read_lan")
    return "lan" if not local or name in local else "wan"


def _protocol(name: str, activity: str, index: int, value: object) -> Endpoint:
    entry = _mapping(value, f"endpoint {name} arprotocols[{activity!r}][{index}]")
    url, path = entry.get("endpoint"), entry.get("path")
    if not isinstance(url, str) or not url or not isinstance(path, str):
        raise _bad(f"endpoint {name} {activity}: endpoint {url!r} / path {path!r} are not strings")
    if ".." in path.split("/"):
        raise _bad(f"endpoint {name} {activity}: path {path!r} contains '..'")
    return Endpoint(name=name, url=url, path=path, deterministic=True)


def read_protocols(name: str, entry_value: object, activity: str) -> tuple[Endpoint, ...]:
    """Every ``arprotocols[activity]`` protocol of a deterministic endpoint, in CRIC's order."""
    entry = _mapping(entry_value, f"endpoint {name}")
    deterministic = entry.get("is_deterministic", True)
    if not isinstance(deterministic, bool):
        raise _bad(f"endpoint {name} is_deterministic is {deterministic!r}, expected true/false")
    if not deterministic:
        raise PilotFailure(PilotError.NOTIMPLEMENTED,
                           f"endpoint {name} is not deterministic (needs a server-given path, not supported yet)")
    arprotocols = _mapping(entry.get("arprotocols") or {}, f"endpoint {name} arprotocols")
    protocols = arprotocols.get(activity) or []
    if not isinstance(protocols, list):
        raise _bad(f"endpoint {name} arprotocols[{activity!r}] is a {type(protocols).__name__}, expected a list")
    if not protocols:
        raise PilotFailure(PilotError.NOSTORAGEPROTOCOL, f"endpoint {name} has no {activity} protocol")
    return tuple(_protocol(name, activity, i, value) for i, value in enumerate(protocols))


def scheme(url: str) -> str:
    """A URL's scheme, lower case (``root``, ``davs``, ``file``, ...)."""
    return urlsplit(url).scheme.lower()
