"""Storage endpoints (Rucio RSEs as CRIC describes them) and how to pick one.

Queuedata and the CRIC endpoint list are external JSON: any shape error is
reported as QUEUEDATANOTOK with what was wrong, never as a TypeError.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fsm_pilot.errors import PilotError, PilotFailure
from fsm_pilot.storage.paths import deterministic_path

#: Activity keys tried after the requested one, per protocol.
_FALLBACKS = {"write_lan": ("pw", "write_lan"), "read_lan": ("pr", "read_lan")}
#: Schemes whose URLs need ``//`` before an absolute path.
_XROOTD_SCHEMES = ("root", "roots", "xroot", "xroots")
#: Hosts a file:// URL may name and still mean this machine.
_LOCAL_HOSTS = ("", "localhost")


def _clean_path(path: str) -> str:
    """``/a/b`` from any spelling (``a//b/``, ``/a/./b``): no empty parts, no trailing slash."""
    return "".join(f"/{part}" for part in path.split("/") if part not in ("", "."))


@dataclass(frozen=True)
class Endpoint:
    """One storage endpoint's protocol: ``url`` (scheme and host) plus ``path``."""

    name: str
    url: str
    path: str
    deterministic: bool

    def base(self) -> str:
        """The endpoint's root as a URL, without a trailing slash.

        An XRootD URL separates host and absolute path with two slashes
        (``root://host:1094//atlas/...``, as Rucio writes them): with one, the
        server reads a relative path and refuses it.
        """
        scheme, sep, rest = self.url.partition("://")
        host = rest.rstrip("/")
        slash = "/" if scheme.lower() in _XROOTD_SCHEMES and host else ""
        return f"{scheme}{sep}{host}{slash}{_clean_path(self.path)}"

    def replica_path(self, scope: str, lfn: str) -> str:
        """The replica's path below the root; non-deterministic endpoints have none yet."""
        if not self.deterministic:
            raise PilotFailure(
                PilotError.NOTIMPLEMENTED, f"endpoint {self.name} is not deterministic: no path for {lfn}"
            )
        return deterministic_path(scope, lfn)

    def surl(self, scope: str, lfn: str) -> str:
        """The replica's URL, as reported to PanDA in the job's output report."""
        return f"{self.base()}/{self.replica_path(scope, lfn)}"

    def local_root(self) -> Path:
        """The endpoint's root directory; only file:// endpoints on this host have one."""
        split = urlsplit(self.base())
        if split.scheme != "file" or split.netloc not in _LOCAL_HOSTS:
            raise PilotFailure(
                PilotError.NOTIMPLEMENTED,
                f"endpoint {self.name} ({self.url}) is not a local file:// endpoint",
            )
        return Path(split.path or "/")

    def local_path(self, scope: str, lfn: str) -> Path:
        """Where the replica lives on this machine (file:// endpoints only)."""
        return self.local_root() / self.replica_path(scope, lfn)


def _bad(diag: str) -> PilotFailure:
    return PilotFailure(PilotError.QUEUEDATANOTOK, diag)


def _mapping(value: object, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _bad(f"{what} is a {type(value).__name__}, expected an object")
    return value


def _names(value: object, what: str) -> list[str]:
    """A list of endpoint names, or QUEUEDATANOTOK (a bare string is not a list)."""
    if not isinstance(value, (list, tuple)) or not all(isinstance(item, str) for item in value):
        raise _bad(f"{what} is {value!r}, expected a list of endpoint names")
    return list(value)


def _activity_names(queuedata: Mapping[str, Any], activity: str, protocol: str) -> tuple[str, list[str]]:
    """The first non-empty ``astorages`` entry among the activity and its fallbacks."""
    astorages = queuedata.get("astorages")
    astorages = _mapping({} if astorages is None else astorages, "queuedata astorages")
    keys = list(dict.fromkeys((activity, *_FALLBACKS[protocol])))
    for key in keys:
        value = astorages.get(key)
        names = [] if value is None else _names(value, f"queuedata astorages[{key!r}]")
        if names:
            return key, names
    return "|".join(keys), []


def _pick_name(
    queuedata: Mapping[str, Any],
    ddmendpoints: Mapping[str, Any],
    activity: str,
    preferred: str | None,
    protocol: str,
) -> str:
    """The job's own endpoint when known, else the queue's first known one."""
    if preferred and preferred in ddmendpoints:
        return preferred
    key, names = _activity_names(queuedata, activity, protocol)
    for name in names:
        if name in ddmendpoints:
            return name
    raise PilotFailure(
        PilotError.NOSTORAGE,
        f"no {protocol} storage endpoint for activity {activity!r}: job endpoint {preferred!r}, "
        f"queuedata astorages[{key!r}] = {names}, none of them among {len(ddmendpoints)} known endpoints",
    )


def _protocols(name: str, entry: Mapping[str, Any], protocol: str) -> list[Any]:
    """The endpoint's protocols of one kind (``write_lan``, ...), in CRIC's order; [] when it has none."""
    arprotocols = entry.get("arprotocols")
    arprotocols = _mapping({} if arprotocols is None else arprotocols, f"endpoint {name} arprotocols")
    protocols = arprotocols.get(protocol)
    if protocols is None:
        return []
    if not isinstance(protocols, list):
        raise _bad(
            f"endpoint {name} arprotocols[{protocol!r}] is a {type(protocols).__name__}, expected a list"
        )
    return protocols


def _check_deterministic(name: str, entry: Mapping[str, Any]) -> None:
    deterministic = entry.get("is_deterministic", True)
    if not isinstance(deterministic, bool):
        raise _bad(f"endpoint {name} is_deterministic is {deterministic!r}, expected true/false")
    if not deterministic:
        raise PilotFailure(
            PilotError.NOTIMPLEMENTED,
            f"endpoint {name} is not deterministic (needs a server-given path, not supported yet)",
        )


def _endpoint(name: str, protocol: str, index: int, value: object) -> Endpoint:
    """One CRIC protocol entry (``endpoint`` URL and ``path``) as an Endpoint."""
    pdat = _mapping(value, f"endpoint {name} arprotocols[{protocol!r}][{index}]")
    url, path = pdat.get("endpoint"), pdat.get("path")
    if not isinstance(url, str) or not url or not isinstance(path, str):
        raise _bad(f"endpoint {name} {protocol}: endpoint {url!r} / path {path!r} are not strings")
    if ".." in path.split("/"):
        raise _bad(f"endpoint {name} {protocol}: path {path!r} contains '..'")
    return Endpoint(name=name, url=url, path=path, deterministic=True)


def _build(name: str, entry_value: object, protocol: str) -> Endpoint:
    """Validate one CRIC endpoint and take its first protocol of the wanted kind."""
    entry = _mapping(entry_value, f"endpoint {name}")
    protocols = _protocols(name, entry, protocol)
    if not protocols:
        raise PilotFailure(PilotError.NOSTORAGEPROTOCOL, f"endpoint {name} has no {protocol} protocol")
    endpoint = _endpoint(name, protocol, 0, protocols[0])
    _check_deterministic(name, entry)
    return endpoint


def endpoint_protocols(ddmendpoints: Mapping[str, Any], name: str, protocol: str) -> tuple[Endpoint, ...]:
    """Every ``protocol`` entry (``write_lan``, ``write_wan``, ...) of endpoint ``name``, validated, in order."""
    ddmendpoints = _mapping(ddmendpoints, "ddmendpoints")
    entry = _mapping(ddmendpoints.get(name), f"endpoint {name}")
    found = tuple(_endpoint(name, protocol, i, value) for i, value in enumerate(_protocols(name, entry, protocol)))
    if found:
        _check_deterministic(name, entry)
    return found


def write_endpoint_name(
    queuedata: Mapping[str, Any],
    ddmendpoints: Mapping[str, Any],
    activity: str,
    preferred: str | None = None,
) -> str:
    """The endpoint to write to, chosen as :func:`write_endpoint` chooses it (without its protocol)."""
    return _pick_name(_mapping(queuedata, "queuedata"), _mapping(ddmendpoints, "ddmendpoints"), activity,
                      preferred, "write_lan")


def _resolve(
    queuedata: Mapping[str, Any],
    ddmendpoints: Mapping[str, Any],
    activity: str,
    preferred: str | None,
    protocol: str,
) -> Endpoint:
    queuedata = _mapping(queuedata, "queuedata")
    ddmendpoints = _mapping(ddmendpoints, "ddmendpoints")
    name = _pick_name(queuedata, ddmendpoints, activity, preferred, protocol)
    return _build(name, ddmendpoints[name], protocol)


def write_endpoint(
    queuedata: Mapping[str, Any],
    ddmendpoints: Mapping[str, Any],
    activity: str,
    preferred: str | None = None,
) -> Endpoint:
    """Where to write: ``activity`` is "pw" for outputs, "pl" for the log."""
    return _resolve(queuedata, ddmendpoints, activity, preferred, "write_lan")


def read_endpoint(
    queuedata: Mapping[str, Any],
    ddmendpoints: Mapping[str, Any],
    activity: str,
    preferred: str | None = None,
) -> Endpoint:
    """Where to read inputs from (activity "pr"), chosen like :func:`write_endpoint`."""
    return _resolve(queuedata, ddmendpoints, activity, preferred, "read_lan")
