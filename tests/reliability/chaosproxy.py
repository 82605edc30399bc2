"""A seeded chaos proxy on 127.0.0.1 between pilots and the dispatcher.

It forwards each HTTP request, except that a fraction of them is broken the ways a
real network and a real server's front end break them: the connection reset before
or after the server saw the request, a 200 with an empty body or with garbage, a
body cut short, a 502 or 503 (from the front end or after the server acted), or a
delay. Threads are fine here: this is test code, and a thread per connection keeps
each fault a few lines.
"""

from __future__ import annotations

import contextlib
import http.client
import random
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO

#: Faults and whether the request reaches the dispatcher first (None: a coin decides).
FAULTS: dict[str, bool | None] = {
    "reset_before": False, "reset_after": True, "empty_200": None, "garbage_200": None,
    "truncated": True, "502": None, "503": None, "delay": True,
}
_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection"})
_GARBAGE = (b"<html><body>502 Bad Gateway</body></html>", b"\x00\xff\xfe garbage \x89PNG",
            b'{"StatusCode": 0, "jobs": [', b"Internal error\n", b"StatusCode", b"%%%")


@dataclass
class Request:
    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes

    def wants_close(self) -> bool:
        return any(k.lower() == "connection" and v.lower() == "close" for k, v in self.headers)


@dataclass
class Reply:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def read_request(rfile: IO[bytes]) -> Request | None:
    """One request from a client connection; None at its end (or on anything unreadable)."""
    line = rfile.readline(65537)
    if not line.strip():
        return None
    parts = line.decode("latin-1").split()
    if len(parts) != 3:
        return None
    headers: list[tuple[str, str]] = []
    while True:
        raw = rfile.readline(65537)
        if raw in (b"\r\n", b"\n", b""):
            break
        name, _, value = raw.decode("latin-1").partition(":")
        headers.append((name.strip(), value.strip()))
    length = next((int(v) for k, v in headers if k.lower() == "content-length"), 0)
    body = rfile.read(length) if length else b""
    return Request(parts[0], parts[1], headers, body)


def _reset(conn: socket.socket) -> None:
    """Close with RST (SO_LINGER 0): the client sees 'connection reset by peer'."""
    with contextlib.suppress(OSError):
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


def _head(status: int, headers: Sequence[tuple[str, str]], length: int) -> bytes:
    reason = http.client.responses.get(status, "Status")
    lines = [f"HTTP/1.1 {status} {reason}", *(f"{k}: {v}" for k, v in headers), f"Content-Length: {length}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class ChaosProxy:
    """Listens on 127.0.0.1 (a free port) and forwards to ``upstream`` (host, port), breaking ``rate``."""

    def __init__(self, upstream: tuple[str, int], seed: int, rate: float = 0.31, max_delay: float = 1.0) -> None:
        self.upstream = upstream
        self.rate = rate
        self.max_delay = max_delay
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.faults: Counter[str] = Counter()
        self.requests = 0
        self.conns: set[socket.socket] = set()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.thread = threading.Thread(target=self._accept, daemon=True)

    def start(self) -> ChaosProxy:
        self.thread.start()
        return self

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        self.thread.join(10)
        with self.lock:
            for conn in list(self.conns):
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self.lock:
                self.conns.add(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _choose(self) -> tuple[str | None, bool, float]:
        """The fault for the next request (None: none), whether it is forwarded, and a delay."""
        with self.lock:
            self.requests += 1
            if self.rng.random() >= self.rate:
                return None, True, 0.0
            fault = self.rng.choice(sorted(FAULTS))
            forwarded = FAULTS[fault]
            self.faults[fault] += 1
            return fault, self.rng.random() < 0.5 if forwarded is None else forwarded, \
                self.rng.uniform(0.05, self.max_delay)

    def _serve(self, conn: socket.socket) -> None:
        rfile = conn.makefile("rb")
        try:
            while self._one(conn, rfile):
                pass
        except OSError:
            pass
        finally:
            rfile.close()
            with self.lock:
                self.conns.discard(conn)
            with contextlib.suppress(OSError):
                conn.close()

    def _one(self, conn: socket.socket, rfile: IO[bytes]) -> bool:
        """Serve one request; False when the connection is done."""
        req = read_request(rfile)
        if req is None:
            return False
        fault, forwarded, delay = self._choose()
        if fault == "delay":
            time.sleep(delay)
        reply = self._forward(req) if forwarded else None
        if fault in ("reset_before", "reset_after"):
            _reset(conn)
            return False
        if fault == "truncated" and reply is not None:
            conn.sendall(_head(reply.status, reply.headers, len(reply.body) + 10) + reply.body[: len(reply.body) // 2])
            return False
        conn.sendall(self._faulty(fault, reply))
        return not req.wants_close()

    def _faulty(self, fault: str | None, reply: Reply | None) -> bytes:
        """The bytes to answer with: the dispatcher's reply, or what the fault puts in its place."""
        if fault in ("502", "503"):
            body = f"{fault} from the chaos proxy".encode()
            return _head(int(fault), [("Content-Type", "text/plain")], len(body)) + body
        if fault == "empty_200":
            return _head(200, [("Content-Type", "application/json")], 0)
        if fault == "garbage_200":
            with self.lock:
                body = self.rng.choice(_GARBAGE)
            return _head(200, [("Content-Type", "application/json")], len(body)) + body
        if reply is None:  # the dispatcher is down
            body = b"upstream unreachable"
            return _head(502, [("Content-Type", "text/plain")], len(body)) + body
        return _head(reply.status, reply.headers, len(reply.body)) + reply.body

    def _forward(self, req: Request) -> Reply | None:
        """Send the request to the dispatcher on a fresh connection; None if it cannot be reached."""
        upstream = http.client.HTTPConnection(*self.upstream, timeout=60)
        try:
            headers = {k: v for k, v in req.headers if k.lower() not in _HOP}
            upstream.request(req.method, req.target, body=req.body or None, headers=headers)
            resp = upstream.getresponse()
            body = resp.read()
            kept = [(k, v) for k, v in resp.getheaders() if k.lower() not in _HOP]
            return Reply(resp.status, kept, body)
        except (OSError, http.client.HTTPException):
            return None
        finally:
            upstream.close()
