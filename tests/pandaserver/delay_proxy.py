"""A TCP proxy on 127.0.0.1 that adds network latency: a remote server's round trips, on one machine.

Every byte is forwarded after half the round-trip time in each direction, in order, with no bandwidth limit;
a new connection is held one full round trip before anything flows, as TCP's handshake would hold it. So a
TLS 1.3 request over a new connection costs what it costs across a WAN: one RTT to connect, one for the TLS
handshake, one for the request and its reply. Used only to measure the final update after SIGTERM
(final_update_latency.py); asyncio, one process, stopped by PID.

Usage: python -m tests.pandaserver.delay_proxy TARGET_PORT RTT_MS; prints ``listening PORT``.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys


async def forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    """Copy one direction, each chunk released ``delay`` after it arrived (order kept)."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def receive() -> None:
        while True:
            data = await reader.read(65536)
            queue.put_nowait((loop.time() + delay, data))
            if not data:
                return

    async def send() -> None:
        while True:
            due, data = await queue.get()
            await asyncio.sleep(max(0.0, due - loop.time()))
            if not data:
                with contextlib.suppress(OSError):
                    writer.write_eof()
                return
            writer.write(data)
            await writer.drain()

    with contextlib.suppress(OSError):
        await asyncio.gather(receive(), send())


async def serve(target_port: int, rtt: float) -> None:
    async def handle(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(rtt)  # the TCP handshake a remote server would cost
        try:
            server_reader, server_writer = await asyncio.open_connection("127.0.0.1", target_port)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(forward(client_reader, server_writer, rtt / 2),
                             forward(server_reader, client_writer, rtt / 2))
        for writer in (client_writer, server_writer):
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    print(f"listening {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


def main(argv: list[str]) -> None:
    asyncio.run(serve(int(argv[1]), float(argv[2]) / 1000.0))


if __name__ == "__main__":
    main(sys.argv)
