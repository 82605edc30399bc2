"""Which replica each input is read from, and which copytools read it, from queuedata and CRIC.

Pilot 3 (pilot/api/data.py) takes the copytools from queuedata ``acopytools``
for the read activity ("pr"), falling back to ``default``; a queue without any
``acopytools`` uses its ``copytools`` names, and one naming nothing for reading
gets ``rucio``. Where the replica is and over which protocols it can be read
is :mod:`fsm_pilot.stagein.sources`; each copytool then takes the first of those
protocols whose scheme it reads. Everything is resolved before the first byte
is copied, so a misconfigured queue fails the job without touching storage.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fsm_pilot.errors import PilotError, PilotFailure
from fsm_pilot.job import FileSpec
from fsm_pilot.stagein.sources import WAN_SCHEMES, domain, pick_endpoint, read_protocols, scheme
from fsm_pilot.storage import Endpoint, check_lfn

#: ``acopytools`` keys for reading, in order: CRIC's activity, Pilot 3's activity name, the fallback.
_ACTIVITIES = ("pr", "read_lan", "default")
#: Pilot 3's copytool for a queue that names none for reading.
_DEFAULT_COPYTOOL = "rucio"


@dataclass(frozen=True)
class Replica:
    """Where one input is read from: its endpoint and URL (``spec.lfn`` is a checked name)."""

    spec: FileSpec
    scope: str
    endpoint: Endpoint
    url: str

    @property
    def lfn(self) -> str:
        """The file name, also its name in the job dir."""
        return self.spec.lfn

    @property
    def scheme(self) -> str:
        """The URL scheme (``file``, ``root``, ``davs``, ...), which decides the copytools that can read it."""
        return scheme(self.url)

    def local_path(self) -> Path:
        """The replica's path on this host (file:// endpoints only)."""
        return self.endpoint.local_path(self.scope, self.lfn)


def _bad(diag: str) -> PilotFailure:
    return PilotFailure(PilotError.QUEUEDATANOTOK, diag)


def _per_activity(value: object) -> Mapping[str, object]:
    """``acopytools`` as a mapping; Pilot 3 also takes one name or a list of names for every activity."""
    if value is None:
        return {}
    if isinstance(value, str):
        return {"default": [value]} if value else {}
    if isinstance(value, (list, tuple)):
        return {"default": list(value)} if value else {}
    if isinstance(value, Mapping):
        return value
    raise _bad(f"queuedata acopytools is a {type(value).__name__}, expected an object")


def _names(value: object, key: str) -> tuple[str, ...]:
    """One activity's copytool names; anything but a list of non-empty strings is QUEUEDATANOTOK."""
    if value is None:
        return ()
    if not isinstance(value, (list, tuple)) or not all(isinstance(name, str) and name for name in value):
        raise _bad(f"queuedata acopytools[{key!r}] is {value!r}, expected a list of copytool names")
    return tuple(value)


def copytool_names(queuedata: Mapping[str, Any]) -> tuple[str, ...]:
    """The copytools to try for reading inputs, in the queue's order (never empty)."""
    if not isinstance(queuedata, Mapping):
        raise _bad(f"queuedata is a {type(queuedata).__name__}, expected an object")
    acopytools = _per_activity(queuedata.get("acopytools"))
    copytools = queuedata.get("copytools")
    if not acopytools and isinstance(copytools, Mapping) and copytools:
        acopytools = {"default": [str(name) for name in copytools]}
    for key in _ACTIVITIES:
        names = _names(acopytools.get(key), key)
        if names:
            return names
    return (_DEFAULT_COPYTOOL,)


@dataclass(frozen=True)
class Source:
    """Where one input can be read: its endpoint, "lan" or "wan", and the protocols to read it over."""

    spec: FileSpec
    scope: str
    domain: str
    protocols: tuple[Endpoint, ...]

    @property
    def lfn(self) -> str:
        """The file name, also its name in the job dir."""
        return self.spec.lfn

    def replica(self, tool: str = "", schemes: frozenset[str] | None = None) -> Replica:
        """The replica a copytool reading ``schemes`` (None: any) uses: the first protocol it can read."""
        usable = WAN_SCHEMES if self.domain == "wan" else None
        for protocol in self.protocols:
            url = protocol.surl(self.scope, self.lfn)
            wanted = scheme(url)
            if (schemes is None or wanted in schemes) and (usable is None or wanted in usable):
                return Replica(spec=self.spec, scope=self.scope, endpoint=protocol, url=url)
        offered = ", ".join(protocol.url for protocol in self.protocols)
        reads = "any scheme" if schemes is None else ", ".join(sorted(schemes))
        raise PilotFailure(
            PilotError.NOSTORAGEPROTOCOL,
            f"copytool {tool or '?'} ({reads}) cannot read {self.lfn} from {self.protocols[0].name}: "
            f"its read_{self.domain} protocols are {offered}",
        )


def resolve_source(spec: FileSpec, queuedata: Mapping[str, Any], ddmendpoints: Mapping[str, Any]) -> Source:
    """Where one input is read from; NOSTORAGE / NOSTORAGEPROTOCOL / QUEUEDATANOTOK when that is unknowable."""
    lfn = check_lfn(spec.lfn)
    if not spec.scope:
        raise PilotFailure(PilotError.REPLICANOTFOUND, f"input {lfn} has no scope (scopeIn): no replica path")
    if not isinstance(queuedata, Mapping) or not isinstance(ddmendpoints, Mapping):
        raise _bad("queuedata and the storage endpoints must be JSON objects")
    name = pick_endpoint(queuedata, ddmendpoints, spec.ddm_endpoint)
    where = domain(queuedata, name)
    return Source(spec, spec.scope, where, read_protocols(name, ddmendpoints[name], f"read_{where}"))


def resolve_replica(spec: FileSpec, queuedata: Mapping[str, Any], ddmendpoints: Mapping[str, Any]) -> Replica:
    """The replica of one input at its endpoint's first read protocol."""
    return resolve_source(spec, queuedata, ddmendpoints).replica()


def resolve_inputs(
    files: Sequence[FileSpec], queuedata: Mapping[str, Any], ddmendpoints: Mapping[str, Any]
) -> tuple[tuple[str, ...], tuple[Source, ...]]:
    """The copytool order and where every input is read from, or the first configuration error."""
    names = copytool_names(queuedata)
    return names, tuple(resolve_source(spec, queuedata, ddmendpoints) for spec in files)
