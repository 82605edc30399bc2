"""REST v1 parameters checked the way panda-server 1.0.4's ``request_validation`` checks them.

panda-server binds the request's parameters to the function's signature and checks
them against its annotations before the function runs; every refusal is an envelope
``{"success": false, "message": ..., "data": null}`` with HTTP 200, in these words:

- ``expecting POST, received GET`` (the function's HTTP method),
- ``Argument error: missing a required argument: 'site_name'`` (the first one missing, in
  the signature's order) and ``Argument error: got an unexpected keyword argument 'x'``,
- ``Type error: 'job_id' must be of type int, got str.`` (no conversion for JSON or form
  bodies: a form-encoded ``job_id`` is a string and is refused),
- GET query values are strings and are cast first (ints through ``int(float(v))``):
  ``Type error: 'timeout' with value 'x' could not be casted to type int from str.``

A parameter given with its default value is not checked. ``bool`` passes as an ``int``
(it is one, to ``isinstance``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

INT: tuple[type, ...] = (int,)
STR: tuple[type, ...] = (str,)
NUM: tuple[type, ...] = (int, float)
BOOL: tuple[type, ...] = (bool,)
ANY: tuple[type, ...] = ()
#: ``List[int]``: a list whose elements are ints.
INT_LIST: tuple[type, ...] = (list, int)
#: An argument with no default (Python's ``inspect.Parameter.empty``).
REQUIRED = object()


class Refused(Exception):
    """A request the function never runs for: the envelope's message."""


@dataclass(frozen=True)
class Param:
    name: str
    types: tuple[type, ...] = ANY
    default: Any = None


@dataclass(frozen=True)
class Signature:
    """A v1 function's HTTP method and parameters, in the order panda-server declares them."""

    method: str
    params: tuple[Param, ...]


def signature(method: str, required: Mapping[str, tuple[type, ...]], optional: Mapping[str, tuple[type, ...]],
              defaults: Mapping[str, Any] | None = None) -> Signature:
    """Required parameters first, then optional ones (default None unless ``defaults`` says)."""
    given = defaults or {}
    params = [Param(n, t, REQUIRED) for n, t in required.items()]
    params += [Param(n, t, given.get(n)) for n, t in optional.items()]
    return Signature(method, tuple(params))


def _type_name(types: tuple[type, ...]) -> str:
    return "List" if types == INT_LIST else " or ".join(t.__name__ for t in types)


def _cast_get(p: Param, value: Any) -> Any:
    """A query string value as the annotated type (panda-server casts GET parameters only)."""
    if value == "None" and p.default is None:
        return None
    try:
        if p.types == INT:
            return int(float(value))
        if p.types == BOOL:
            return str(value).lower() in ("true", "1")
        if p.types == INT_LIST:
            items = [value] if isinstance(value, str) else value
            value = items
            return [int(float(i)) for i in items]
    except (TypeError, ValueError) as exc:
        raise Refused(f"Type error: '{p.name}' with value '{value}' could not be casted to type "
                      f"{_type_name(p.types)} from {type(value).__name__}.") from exc
    return value


def _check_type(p: Param, value: Any) -> None:
    if p.types == INT_LIST:
        if not isinstance(value, list):
            raise Refused(f"Type error: '{p.name}' must be of type list, got {type(value).__name__}.")
        if not all(isinstance(i, int) for i in value):
            raise Refused(f"Type error: All elements in '{p.name}' must be int.")
        return
    if p.types and not isinstance(value, p.types) and not (value is None and p.default is None):
        raise Refused(f"Type error: '{p.name}' must be of type {_type_name(p.types)}, got {type(value).__name__}.")


def validate(sig: Signature, received: str, raw: Mapping[str, Any]) -> dict[str, Any]:
    """The bound parameters (defaults filled in), or Refused with panda-server's message."""
    if sig.method != received:
        raise Refused(f"expecting {sig.method}, received {received}")
    names = {p.name for p in sig.params}
    for p in sig.params:
        if p.default is REQUIRED and p.name not in raw:
            raise Refused(f"Argument error: missing a required argument: '{p.name}'")
    for name in raw:
        if name not in names:
            raise Refused(f"Argument error: got an unexpected keyword argument '{name}'")
    bound: dict[str, Any] = {}
    for p in sig.params:
        value = raw.get(p.name, p.default)
        if p.types and value != p.default:
            value = _cast_get(p, value) if received == "GET" else value
            _check_type(p, value)
        bound[p.name] = value
    return bound
