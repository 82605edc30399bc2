"""A purpose-built stand-in for panda-server, used by the PanDA client tests (plus tests of the stand-in).

Why not a real panda-server: its failure modes cannot be produced on demand
(403 "method getJob is forbidden" from a 1.0 server, 404s, 500s, garbage
bodies, replies slower than the read timeout, an empty queue, every
StatusCode, urlencoded and repr encodings of the same reply). This server
answers in exactly those shapes, which the tests script per path. It is a
``http.server`` on 127.0.0.1, port 0, in a thread of the test process, with
TCP_NODELAY on every accepted connection (as a real server must set it, or
each small POST stalls 40 ms); it counts accepted connections so tests can
check that the client reuses one.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Union
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit

import requests

from fsm_pilot.panda import PandaClient, RetryPolicy

FIXTURES = Path(__file__).parent / "fixtures"


@dataclass(frozen=True)
class Canned:
    """One scripted reply; ``delay`` makes it slow (cut short when the stub stops)."""

    status: int = 200
    body: str = ""
    content_type: str = "application/json"
    delay: float = 0.0


@dataclass(frozen=True)
class Seen:
    """One request as the server received it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.body.decode(), keep_blank_values=True, strict_parsing=True))

    def json(self) -> Any:
        return json.loads(self.body)


Reply = Union[Canned, Callable[[Seen], Canned]]


@dataclass
class StubPanda:
    """Routes: path -> replies used in order, the last one repeating; unknown paths get 404."""

    routes: dict[str, list[Reply]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    connections: int = 0
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    port: int = 0

    def on(self, path: str, *replies: Reply) -> None:
        self.routes[path] = list(replies)

    def count(self, path: str) -> int:
        return sum(1 for seen in self.seen if seen.path == path)

    def requests_to(self, path: str) -> list[Seen]:
        return [seen for seen in self.seen if seen.path == path]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def answer(self, seen: Seen) -> Canned:
        with self.lock:
            self.seen.append(seen)
            replies = self.routes.get(seen.path)
            if not replies:
                return Canned(404, "not found", "text/plain")
            reply = replies.pop(0) if len(replies) > 1 else replies[0]
        return reply(seen) if callable(reply) else reply


def _handler(stub: StubPanda) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, so connection reuse is observable
        disable_nagle_algorithm = True  # TCP_NODELAY on the accepted socket

        def setup(self) -> None:
            super().setup()
            with stub.lock:
                stub.connections += 1

        def do_GET(self) -> None:
            self._serve()

        def do_POST(self) -> None:
            self._serve()

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            parts = urlsplit(self.path)
            seen = Seen(self.command, parts.path, parse_qs(parts.query), dict(self.headers.items()), body)
            canned = stub.answer(seen)
            if canned.delay:
                stub.release.wait(canned.delay)
            payload = canned.body.encode()
            try:
                self.send_response(canned.status)
                self.send_header("Content-Type", canned.content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except OSError:  # the client gave up (read timeout) and closed the socket
                self.close_connection = True

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the tests inspect ``stub.seen`` instead."""

    return Handler


@contextmanager
def running_stub() -> Iterator[StubPanda]:
    """Start a stub on a free loopback port; stop it (and end slow replies) afterwards."""
    stub = StubPanda()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(stub))
    server.daemon_threads = True
    stub.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.005}, daemon=True)
    thread.start()
    try:
        yield stub
    finally:
        stub.release.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


def closed_port() -> int:
    """A loopback port nobody listens on: connecting to it is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# --- replies in panda-server's shapes -----------------------------------------


def v1(data: Any = None, success: bool = True, message: str = "") -> Canned:
    """The v1 envelope as JSON (request had Accept: application/json)."""
    return Canned(body=json.dumps({"success": success, "message": message, "data": data}))


def v1_repr(data: Any = None, success: bool = True, message: str = "") -> Canned:
    """The v1 envelope as str(dict): what a v1 server sends without Accept: application/json."""
    return Canned(body=str({"success": success, "message": message, "data": data}), content_type="text/plain")


def legacy_json(**fields: Any) -> Canned:
    return Canned(body=json.dumps(fields))


def legacy_form(**fields: Any) -> Canned:
    return Canned(body=urlencode({key: str(value) for key, value in fields.items()}), content_type="text/plain")


def forbidden(method: str) -> Canned:
    """panda-server >= 1.0 for a deleted legacy method (and < 1.0 for an unknown v1 one)."""
    return Canned(403, f"ERROR : method {method} is forbidden", "text/plain")


def server_error(text: str = "execution failure") -> Canned:
    return Canned(500, text, "text/plain")


def fixture_reply() -> dict[str, Any]:
    """panda-server 1.0.4's acquire_jobs reply, captured."""
    reply: dict[str, Any] = json.loads((FIXTURES / "panda-server-1.0.4_acquire_jobs_response.json").read_text())
    return reply


def captured_requests(method: str) -> list[dict[str, str]]:
    """The form fields of each ``method`` request Pilot 3.7 sent, from the captured exchange."""
    blocks: list[dict[str, str]] = []
    lines = (FIXTURES / "pilot3-3.7_captured_requests.txt").read_text().splitlines()
    for number, line in enumerate(lines):
        if line.startswith(f"POST /server/panda/{method} "):
            end = lines.index("}", number)
            blocks.append(json.loads("\n".join(lines[number + 1 : end + 1])))
    return blocks


# --- the client side of the tests ---------------------------------------------


@dataclass
class RecLog:
    """A structlog-style logger that keeps every call, to inspect what was (never) logged."""

    records: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    def info(self, event: str, **kw: Any) -> None:
        self.records.append(("info", event, kw))

    def warning(self, event: str, **kw: Any) -> None:
        self.records.append(("warning", event, kw))

    def events(self, name: str) -> list[dict[str, Any]]:
        return [kw for _, event, kw in self.records if event == name]

    def text(self) -> str:
        return repr(self.records)


#: Real retries with waits too short to matter; timeouts far above loopback latency.
FAST = RetryPolicy(attempts=5, total=60.0, backoff=0.001, backoff_cap=0.005, connect_timeout=5.0, read_timeout=5.0)


@dataclass
class Sleeps:
    """An injected sleep that records each wait (attempts = waits + 1) and can report a signal."""

    signal: bool = False
    waits: list[float] = field(default_factory=list)

    def __call__(self, seconds: float) -> bool:
        self.waits.append(seconds)
        return self.signal


def client_for(stub: StubPanda, log: RecLog | None = None, **kw: Any) -> PandaClient:
    kw.setdefault("policy", FAST)
    kw.setdefault("sleep", Sleeps())
    return PandaClient(stub.url, log=log if log is not None else RecLog(), **kw)


# --- tests of the stub itself ------------------------------------------------


def test_stub_scripts_replies_in_order_and_404s_unknown_paths() -> None:
    with running_stub() as stub:
        stub.on("/x", Canned(500, "a"), Canned(200, "b"))
        with requests.Session() as session:
            got = [session.get(f"{stub.url}/x").status_code for _ in range(3)]
            assert session.get(f"{stub.url}/nowhere").status_code == 404
    assert got == [500, 200, 200]
    assert stub.count("/x") == 3
    assert stub.connections == 1  # HTTP/1.1 keep-alive: one connection for the whole session


def test_stub_sets_tcp_nodelay_on_accepted_sockets() -> None:
    sockets: list[int] = []

    class Probe(_handler(StubPanda())):  # type: ignore[misc]
        def setup(self) -> None:
            super().setup()
            sockets.append(self.connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

    server = ThreadingHTTPServer(("127.0.0.1", 0), Probe)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.005}, daemon=True)
    thread.start()
    try:
        requests.get(f"http://127.0.0.1:{server.server_address[1]}/", timeout=5)
    finally:
        server.shutdown()
        server.server_close()
    assert sockets and sockets[0] != 0


def test_captured_pilot3_requests_are_readable() -> None:
    updates = captured_requests("updateJob")
    assert [update["state"] for update in updates] == ["starting", "running", "finished"]
    assert captured_requests("getJob")[0]["siteName"] == "LOCAL_TEST"
