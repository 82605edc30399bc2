"""A small HTTP/1.1 server: one thread, non-blocking sockets, one ``selectors`` loop.

Why not ``http.server.ThreadingHTTPServer``: with keep-alive it parks one thread per
pilot connection, every request then pays for ``email``-based header parsing and a
thread switch under the GIL, and every thread needs its own SQLite connection. Here
one loop owns every socket and the single SQLite connection: a request costs a few
tens of microseconds of parsing, database work is short (well under a millisecond),
so doing it inline serialises nothing that matters and makes the job claim trivially
race-free inside this process (it is still an atomic SQL transaction, see ``store``).

What it speaks: HTTP/1.0 and 1.1, keep-alive (1.1 default), pipelined requests,
``Expect: 100-continue`` (curl, and so Pilot 3, sends it for bodies over 1 KiB and
otherwise waits a second), ``Content-Length`` bodies (``Transfer-Encoding`` request
bodies get 411, which HTTP/1.1 allows). Accepted sockets get ``TCP_NODELAY``: without
it Nagle's algorithm and the client's delayed ACK stall each small reply by 40 ms.
SIGTERM and SIGINT wake the loop through ``signal.set_wakeup_fd``; it then closes
every socket and returns, so the caller can close the database cleanly. An optional
``tick`` runs in the same loop every ``tick_interval`` seconds (the dispatcher expires
jobs handed out but never reported on), so no request is needed for it and no thread.
"""

from __future__ import annotations

import contextlib
import email.utils
import os
import selectors
import signal
import socket
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from types import FrameType

#: Largest request head (request line and headers) and body accepted.
MAX_HEAD = 64 * 1024
MAX_BODY = 64 * 1024 * 1024
#: Connections silent for this long are closed (a pilot heartbeats every 30 min and reconnects).
IDLE_TIMEOUT = 600.0
_RECV = 256 * 1024


@dataclass
class Request:
    """One parsed request; header names are lower-case."""

    method: str
    target: str
    version: str
    headers: dict[str, str]
    body: bytes = b""

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    @property
    def query(self) -> str:
        return self.target.partition("?")[2]


@dataclass
class Response:
    """What a handler returns; Content-Length and Connection are added by the server."""

    status: int
    body: bytes = b""
    content_type: str = "text/plain"
    headers: list[tuple[str, str]] = field(default_factory=list)


Handler = Callable[[Request], Response]
Tick = Callable[[], object]


class HTTPError(Exception):
    """A request the server refuses before any handler sees it."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class _Conn:
    sock: socket.socket
    inbuf: bytearray = field(default_factory=bytearray)
    outbuf: bytearray = field(default_factory=bytearray)
    closing: bool = False
    continued: bool = False
    writing: bool = False
    eof: bool = False
    last: float = field(default_factory=time.monotonic)


def _parse_head(head: bytes) -> Request:
    """The request line and headers; a malformed head is a 400."""
    try:
        text = head.decode("iso-8859-1")
    except UnicodeDecodeError as exc:  # pragma: no cover - iso-8859-1 decodes every byte
        raise HTTPError(400, "undecodable request head") from exc
    line, *lines = text.split("\r\n")
    parts = line.split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise HTTPError(400, f"malformed request line: {line[:100]!r}")
    headers: dict[str, str] = {}
    for raw in lines:
        name, sep, value = raw.partition(":")
        if not sep or not name or name != name.strip():
            raise HTTPError(400, f"malformed header line: {raw[:100]!r}")
        key = name.lower()
        headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
    return Request(parts[0], parts[1], parts[2], headers)


def _body_length(req: Request) -> int:
    """The declared body length; refused when chunked, negative, or too large."""
    if "transfer-encoding" in req.headers:
        raise HTTPError(411, "chunked request bodies are not accepted: send Content-Length")
    raw = req.headers.get("content-length", "0")
    if not raw.isdigit():
        raise HTTPError(400, f"bad Content-Length: {raw!r}")
    length = int(raw)
    if length > MAX_BODY:
        raise HTTPError(413, f"body of {length} bytes exceeds {MAX_BODY}")
    return length


def _keep_alive(req: Request) -> bool:
    tokens = {t.strip().lower() for t in req.headers.get("connection", "").split(",")}
    if req.version == "HTTP/1.0":
        return "keep-alive" in tokens
    return "close" not in tokens


class _DateCache:
    """The Date header, formatted once per second."""

    def __init__(self) -> None:
        self._second = -1
        self._value = ""

    def get(self) -> str:
        now = int(time.time())
        if now != self._second:
            self._second, self._value = now, email.utils.formatdate(now, usegmt=True)
        return self._value


def _serialise(resp: Response, keep: bool, date: str, head_only: bool) -> bytes:
    try:
        reason = HTTPStatus(resp.status).phrase
    except ValueError:
        reason = "Unknown"
    lines = [
        f"HTTP/1.1 {resp.status} {reason}",
        f"Date: {date}",
        "Server: fsm-pilot-dispatcher",
        f"Content-Type: {resp.content_type}",
        f"Content-Length: {len(resp.body)}",
        f"Connection: {'keep-alive' if keep else 'close'}",
        *(f"{k}: {v}" for k, v in resp.headers),
    ]
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head if head_only else head + resp.body


def error_response(status: int, message: str) -> Response:
    """A plain-text error, the way panda-server answers what it refuses."""
    return Response(status, f"ERROR : {message}".encode())


class Server:
    """Listens on one address and runs ``handler`` for every request until stopped."""

    def __init__(self, host: str, port: int, handler: Handler, *, tick: Tick | None = None,
                 tick_interval: float = 5.0) -> None:
        self.handler = handler
        self.tick = tick
        self.tick_interval = tick_interval
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.listener = socket.create_server((host, port), family=family, backlog=256)
        self.listener.setblocking(False)
        self.address: tuple[str, int] = self.listener.getsockname()[:2]
        self._sel = selectors.DefaultSelector()
        self._sel.register(self.listener, selectors.EVENT_READ, None)
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._stop = False
        self._dates = _DateCache()
        self._last_sweep = self._last_tick = time.monotonic()

    def install_signals(self) -> None:
        """SIGTERM and SIGINT stop the loop; the handler only records, the loop acts."""

        def _note(signum: int, frame: FrameType | None) -> None:
            self._stop = True

        signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)
        signal.signal(signal.SIGTERM, _note)
        signal.signal(signal.SIGINT, _note)

    def stop(self) -> None:
        """Ask the loop to end (safe from another thread)."""
        self._stop = True
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")

    def serve_forever(self) -> None:
        """Run until stopped, then close every socket."""
        try:
            while not self._stop:
                for key, events in self._sel.select(timeout=min(5.0, self.tick_interval)):
                    self._dispatch(key, events)
                self._sweep_idle()
                self._maybe_tick()
        finally:
            self._close_all()

    def _dispatch(self, key: selectors.SelectorKey, events: int) -> None:
        if key.data == "wake":
            with contextlib.suppress(OSError):
                os.read(self._wake_r, 4096)
        elif key.data is None:
            self._accept()
        elif events & selectors.EVENT_READ:
            self._on_read(key.data)
        elif events & selectors.EVENT_WRITE:
            self._flush(key.data)

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # EMFILE and the like: keep serving the others
                print(f"dispatcher: accept failed: {exc}", file=sys.stderr)
                return
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._sel.register(sock, selectors.EVENT_READ, _Conn(sock))

    def _on_read(self, conn: _Conn) -> None:
        try:
            data = conn.sock.recv(_RECV)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # the peer is done sending: finish what it is owed, then close
            conn.closing = conn.eof = True
            self._flush(conn)
            return
        conn.last = time.monotonic()
        conn.inbuf += data
        self._process(conn)
        self._flush(conn)

    def _process(self, conn: _Conn) -> None:
        """Answer every complete request in the buffer, in order."""
        while not conn.closing:
            end = conn.inbuf.find(b"\r\n\r\n")
            if end < 0:
                if len(conn.inbuf) > MAX_HEAD:
                    self._refuse(conn, HTTPError(431, "request head too large"))
                return
            try:
                req = _parse_head(bytes(conn.inbuf[:end]))
                length = _body_length(req)
            except HTTPError as exc:
                self._refuse(conn, exc)
                return
            if len(conn.inbuf) < end + 4 + length:
                self._maybe_continue(conn, req)
                return
            req.body = bytes(conn.inbuf[end + 4 : end + 4 + length])
            del conn.inbuf[: end + 4 + length]
            conn.continued = False
            self._answer(conn, req)

    def _maybe_continue(self, conn: _Conn, req: Request) -> None:
        if not conn.continued and req.headers.get("expect", "").lower() == "100-continue":
            conn.outbuf += b"HTTP/1.1 100 Continue\r\n\r\n"
            conn.continued = True

    def _answer(self, conn: _Conn, req: Request) -> None:
        keep = _keep_alive(req)
        try:
            resp = self.handler(req)
        except Exception:  # a handler bug answers 500 and the server keeps serving
            traceback.print_exc(file=sys.stderr)
            resp = error_response(500, "internal error in the dispatcher")
        conn.outbuf += _serialise(resp, keep, self._dates.get(), req.method == "HEAD")
        conn.closing = not keep

    def _refuse(self, conn: _Conn, exc: HTTPError) -> None:
        conn.outbuf += _serialise(error_response(exc.status, str(exc)), False, self._dates.get(), False)
        conn.closing = True

    def _flush(self, conn: _Conn) -> None:
        if conn.outbuf:
            try:
                sent = conn.sock.send(conn.outbuf)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError:
                self._close(conn)
                return
            del conn.outbuf[:sent]
        if not conn.outbuf and conn.closing:
            self._close(conn)
        elif bool(conn.outbuf) != conn.writing or conn.eof:  # re-arm the selector only when needed
            conn.writing = bool(conn.outbuf)
            events = (0 if conn.eof else selectors.EVENT_READ) | (selectors.EVENT_WRITE if conn.writing else 0)
            self._sel.modify(conn.sock, events, conn)

    def _close(self, conn: _Conn) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self._sel.unregister(conn.sock)
        with contextlib.suppress(OSError):
            conn.sock.close()

    def _sweep_idle(self) -> None:
        now = time.monotonic()
        if now - self._last_sweep < 5.0:
            return
        self._last_sweep = now
        for key in list(self._sel.get_map().values()):
            if isinstance(key.data, _Conn) and now - key.data.last > IDLE_TIMEOUT:
                self._close(key.data)

    def _maybe_tick(self) -> None:
        now = time.monotonic()
        if self.tick is None or now - self._last_tick < self.tick_interval:
            return
        self._last_tick = now
        try:
            self.tick()
        except Exception:  # like a handler bug: reported, and the server keeps serving
            traceback.print_exc(file=sys.stderr)

    def _close_all(self) -> None:
        for key in list(self._sel.get_map().values()):
            if isinstance(key.data, _Conn):
                self._close(key.data)
        self._sel.close()
        self.listener.close()
        with contextlib.suppress(ValueError):
            signal.set_wakeup_fd(-1)
        os.close(self._wake_r)
        os.close(self._wake_w)
