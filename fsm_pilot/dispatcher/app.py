"""Routing: which handler answers which path, and what an unknown path gets.

panda-server answers a method it does not offer with ``403 method X is forbidden``
(>= 1.0, for both dialects); any other path is a 404 here.
"""

from __future__ import annotations

from fsm_pilot.dispatcher import legacy, restv1
from fsm_pilot.dispatcher.encoding import BadRequest, json_document
from fsm_pilot.dispatcher.httpserver import Handler, Request, Response, error_response
from fsm_pilot.dispatcher.service import Service

_QUEUE_PREFIX, _QUEUE_SUFFIX = "/cache/schedconfig/", ".all.json"
_V1_VERSIONS = ("v1", "latest")


def _legacy(svc: Service, req: Request, method: str) -> Response:
    handler = legacy.METHODS.get(method)
    if handler is None:
        return error_response(403, f"method {method} is forbidden")
    try:
        return handler(svc, req)
    except BadRequest as exc:
        return error_response(exc.status, str(exc))


def _v1(svc: Service, req: Request, version: str, module: str, function: str) -> Response:
    entry = restv1.FUNCTIONS.get((module, function))
    if version not in _V1_VERSIONS or entry is None:
        return error_response(403, f"method {function} is forbidden")
    return restv1.call(svc, req, *entry)


def _documents(svc: Service, path: str) -> Response | None:
    """Queuedata and the CRIC lists, as Pilot 3 fetches them."""
    if path == "/cric/pandaqueues.json":
        return json_document(svc.queues)
    if path == "/cric/ddmendpoints.json":
        return json_document(svc.endpoints)
    if path.startswith(_QUEUE_PREFIX) and path.endswith(_QUEUE_SUFFIX):
        queue = svc.queues.get(path[len(_QUEUE_PREFIX) : -len(_QUEUE_SUFFIX)])
        return json_document(queue) if queue is not None else error_response(404, "no such queue")
    return None


def make_handler(svc: Service) -> Handler:
    """The request handler the HTTP server calls."""

    def handle(req: Request) -> Response:
        path = req.path
        parts = path.split("/")
        if path.startswith("/server/panda/") and len(parts) == 4:
            return _legacy(svc, req, parts[3])
        if path.startswith("/api/") and len(parts) == 5:
            return _v1(svc, req, parts[2], parts[3], parts[4])
        document = _documents(svc, path)
        return document if document is not None else error_response(404, f"not found: {path}")

    return handle
