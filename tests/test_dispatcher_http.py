"""The HTTP/1.1 layer, spoken byte by byte over a raw loopback socket."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from tests.dispatcher_helpers import Dispatcher, queue_args, running

FORM = "application/x-www-form-urlencoded"


@pytest.fixture
def disp(tmp_path: Path) -> Iterator[Dispatcher]:
    with running(tmp_path, *queue_args()) as d:
        yield d


def connect(disp: Dispatcher) -> socket.socket:
    split = urlsplit(disp.url)
    sock = socket.create_connection((split.hostname or "127.0.0.1", split.port or 0), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def read_response(sock: socket.socket) -> tuple[str, dict[str, str], bytes]:
    """One response: status line, headers, body (by Content-Length); leaves what follows unread."""
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        byte = sock.recv(1)
        assert byte, f"connection closed mid-head: {head!r}"
        head += byte
    status, *lines = head.decode("latin-1").rstrip("\r\n").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    body = b""
    while len(body) < int(headers.get("content-length", "0")):
        chunk = sock.recv(int(headers["content-length"]) - len(body))
        assert chunk
        body += chunk
    return status, headers, body


def post(path: str, body: bytes, extra: str = "") -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {FORM}\r\nAccept: application/json\r\n"
            f"Content-Length: {len(body)}\r\n{extra}\r\n").encode() + body


def test_keep_alive_serves_many_requests_on_one_connection(disp: Dispatcher) -> None:
    with connect(disp) as sock:
        for _ in range(3):
            sock.sendall(b"GET /api/v1/system/is_alive HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\n\r\n")
            status, headers, body = read_response(sock)
            assert status == "HTTP/1.1 200 OK" and headers["connection"] == "keep-alive"
            assert body == b'{"success": true, "message": "", "data": null}'


def test_pipelined_requests_are_answered_in_order(disp: Dispatcher) -> None:
    with connect(disp) as sock:
        sock.sendall(post("/server/panda/getJob", b"siteName=TEST_QUEUE") + post("/server/panda/getProxy", b""))
        assert read_response(sock)[2] == b'{"StatusCode": 20, "errorDialog": "no jobs in PanDA"}'
        assert read_response(sock)[0] == "HTTP/1.1 403 Forbidden"


def test_expect_100_continue_is_answered_before_the_body(disp: Dispatcher) -> None:
    body = b"siteName=TEST_QUEUE&pad=" + b"x" * 2000
    with connect(disp) as sock:
        raw = post("/server/panda/getJob", body, "Expect: 100-continue\r\n")
        sock.sendall(raw[: -len(body)])
        assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(body)
        assert read_response(sock)[0] == "HTTP/1.1 200 OK"


def test_connection_close_and_http_1_0_close_after_the_reply(disp: Dispatcher) -> None:
    for request in (b"GET /cric/pandaqueues.json HTTP/1.1\r\nConnection: close\r\n\r\n",
                    b"GET /cric/pandaqueues.json HTTP/1.0\r\n\r\n"):
        with connect(disp) as sock:
            sock.sendall(request)
            status, headers, _ = read_response(sock)
            assert status == "HTTP/1.1 200 OK" and headers["connection"] == "close"
            assert sock.recv(10) == b""


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"NONSENSE\r\n\r\n", "HTTP/1.1 400 Bad Request"),
        (b"POST /server/panda/getJob HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", "HTTP/1.1 411 Length Required"),
        (b"POST /server/panda/getJob HTTP/1.1\r\nContent-Length: -5\r\n\r\n", "HTTP/1.1 400 Bad Request"),
        (b"GET / HTTP/1.1\r\nBroken header\r\n\r\n", "HTTP/1.1 400 Bad Request"),
    ],
)
def test_malformed_http_is_refused_and_closed(disp: Dispatcher, request_bytes: bytes, status: str) -> None:
    with connect(disp) as sock:
        sock.sendall(request_bytes)
        got, headers, _ = read_response(sock)
        assert got == status and headers["connection"] == "close"
        assert sock.recv(10) == b""
    assert requests.get(f"{disp.url}/api/v1/system/is_alive", timeout=10).status_code == 200


def test_small_posts_do_not_stall_on_nagle(disp: Dispatcher) -> None:
    """Without TCP_NODELAY on the server each small reply waits ~40 ms for the client's delayed ACK."""
    session = requests.Session()
    start = time.perf_counter()
    for _ in range(100):
        assert session.post(f"{disp.url}/server/panda/getJob", data={"siteName": "TEST_QUEUE"},
                            headers={"Accept": "application/json"}, timeout=10).json()["StatusCode"] == 20
    assert time.perf_counter() - start < 2.0  # 100 x 40 ms would be 4 s


def test_head_gets_headers_only(disp: Dispatcher) -> None:
    resp = requests.head(f"{disp.url}/api/v1/system/is_alive", timeout=10)
    assert resp.status_code == 200 and resp.content == b"" and int(resp.headers["Content-Length"]) > 0
