"""panda-server's WSGI app on 127.0.0.1, plain HTTP and TLS, for the CI stack (run by the panda venv's python).

Stands in for Apache with mod_wsgi, mod_ssl and mod_gridsite: a middleware fills in what those fill in (the
caller's DN and VOMS FQAN, as ``SSL_CLIENT_S_DN`` and ``GRST_CRED_0``), SCRIPT_NAME as WSGIScriptAliasMatch sets
it, and CONTENT_LENGTH 0 for an empty body; only Apache's aliased paths (``/server/panda/...`` and
``/api/...``) reach the app, the rest is 404 as there. Every exchange is appended to the record file as one
JSON line (what the pilot sent, what it got, when, on which listener): the CI artifact of a failed case and
the source of the server-side timings. wsgiref answers HTTP/1.0, one request per connection, so every
request over TLS pays a full handshake: the case of a pilot's first call after Apache's keep-alive ran out.

Usage: python wsgi_local.py RECORD_FILE CERT_FILE KEY_FILE DN FQAN HTTP_PORT HTTPS_PORT; prints one line
``listening http://127.0.0.1:P https://127.0.0.1:Q`` once the app is imported and both sockets listen.
Stdlib and pandaserver only: it runs in panda-server's own virtualenv.
"""

from __future__ import annotations

import io
import json
import selectors
import ssl
import sys
import threading
import time
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
ALIASED = ("/server/panda/", "/api/")


class Server(ThreadingMixIn, WSGIServer):
    """One thread per request, as mod_wsgi's daemon threads."""

    daemon_threads = True


class QuietHandler(WSGIRequestHandler):
    """No access log on stderr: the record file has every exchange."""

    def log_message(self, format: str, *args: Any) -> None:
        return None


class Recorder:
    """Appends one JSON line per exchange; one lock, since requests run in their own threads."""

    def __init__(self, path: str) -> None:
        self.file = open(path, "a", encoding="utf-8")  # noqa: SIM115 (open for the process's life)
        self.lock = threading.Lock()

    def write(self, entry: dict[str, Any]) -> None:
        line = json.dumps(entry, default=str) + "\n"
        with self.lock:
            self.file.write(line)
            self.file.flush()


def local_auth(app: WsgiApp, recorder: Recorder, dn: str, fqan: str) -> WsgiApp:
    """What Apache and GridSite would put in the environ for a pilot with a production proxy, plus the record."""

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        started = time.time()
        path = environ.get("PATH_INFO", "")
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        environ["SSL_CLIENT_S_DN"] = dn
        environ["GRST_CRED_0"] = f"VOMS {fqan}"
        environ["SCRIPT_NAME"], environ["PATH_INFO"] = environ.get("SCRIPT_NAME", "") + path, ""
        status: list[str] = []

        def remember(code: str, headers: list[tuple[str, str]], *exc: Any) -> Any:
            status.append(code)
            return start_response(code, headers, *exc)

        if path.startswith(ALIASED):
            reply = b"".join(app(environ, remember))
        else:
            reply = b"not found"
            remember("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", str(len(reply)))])
        recorder.write({"listener": environ["wsgi.url_scheme"], "start": started, "end": time.time(),
                        "method": environ.get("REQUEST_METHOD"), "path": path,
                        "query": environ.get("QUERY_STRING", ""), "content_type": environ.get("CONTENT_TYPE"),
                        "accept": environ.get("HTTP_ACCEPT"), "request": body.decode("utf-8", "replace"),
                        "status": status[0] if status else None, "reply": reply.decode("utf-8", "replace")})
        return [reply]

    return wrapped


def serve(app: WsgiApp, cert: str, key: str, ports: tuple[int, int]) -> None:
    """Listen on two loopback ports (the second behind TLS) and serve both from one selector loop."""
    plain = Server(("127.0.0.1", ports[0]), QuietHandler)
    secure = Server(("127.0.0.1", ports[1]), QuietHandler)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    secure.socket = context.wrap_socket(secure.socket, server_side=True, do_handshake_on_connect=False)
    plain.set_app(app)
    secure.set_app(app)
    secure.base_environ["HTTPS"] = "on"  # wsgiref derives wsgi.url_scheme from it
    print(f"listening http://127.0.0.1:{plain.server_port} https://127.0.0.1:{secure.server_port}", flush=True)
    with selectors.DefaultSelector() as selector:
        selector.register(plain, selectors.EVENT_READ)
        selector.register(secure, selectors.EVENT_READ)
        while True:
            for key_, _ in selector.select():
                key_.fileobj._handle_request_noblock()  # type: ignore[union-attr]


def main(argv: list[str]) -> None:
    record, cert, key, dn, fqan, http_port, https_port = argv[1:8]
    from pandaserver.server.panda import application

    serve(local_auth(application, Recorder(record), dn, fqan), cert, key, (int(http_port), int(https_port)))


if __name__ == "__main__":
    main(sys.argv)
