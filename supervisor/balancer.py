"""A small loopback TCP load balancer for running several gateway processes on one machine.

Owns accepting connections on one port and piping each to the next healthy backend (round
robin), and checking backends' health (``GET /health`` answering 200) every second. It works
below HTTP, so websockets (app IM, the console's live feed) pass through unchanged; a
connection stays on the backend it was given. Must not know what the backends serve.

For production use a real load balancer (``deploy/nginx/aftersales.conf``); this one is for
``run.py cluster``, staging and the peak bench.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from dataclasses import dataclass

log = logging.getLogger(__name__)

CHUNK = 64 * 1024
_UNAVAILABLE_BODY = b'{"error": "unavailable", "detail": "no gateway process is healthy"}'
UNAVAILABLE = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 2\r\n"
    b"Connection: close\r\nContent-Length: " + str(len(_UNAVAILABLE_BODY)).encode() + b"\r\n\r\n" + _UNAVAILABLE_BODY
)


@dataclass
class Backend:
    host: str
    port: int
    healthy: bool = False
    connections: int = 0
    served: int = 0
    last_error: str | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


class Balancer:
    def __init__(self, backends: list[tuple[str, int]], *, health_path: str = "/health", interval: float = 1.0) -> None:
        if not backends:
            raise ValueError("a balancer needs at least one backend")
        self.backends = [Backend(host, port) for host, port in backends]
        self.health_path = health_path
        self.interval = interval
        self._turn = itertools.count()
        self._server: asyncio.Server | None = None
        self._checker: asyncio.Task[None] | None = None

    async def start(self, host: str, port: int) -> int:
        """Listen on ``host:port`` (0: any free port); returns the port."""
        await self.check_all()
        self._checker = asyncio.create_task(self._check_forever(), name="balancer-health")
        self._server = await asyncio.start_server(self._accept, host, port)
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._checker is not None:
            self._checker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checker
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def pick(self) -> Backend | None:
        """The next healthy backend in turn, or None when none is."""
        healthy = [b for b in self.backends if b.healthy]
        if not healthy:
            return None
        return healthy[next(self._turn) % len(healthy)]

    async def check_all(self) -> None:
        await asyncio.gather(*(self._check(backend) for backend in self.backends))

    async def _check_forever(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.check_all()

    async def _check(self, backend: Backend) -> None:
        was = backend.healthy
        try:
            async with asyncio.timeout(2):
                reader, writer = await asyncio.open_connection(backend.host, backend.port)
                writer.write(
                    f"GET {self.health_path} HTTP/1.1\r\nHost: {backend.address}\r\nConnection: close\r\n\r\n".encode()
                )
                await writer.drain()
                status_line = await reader.readline()
                writer.close()
                with contextlib.suppress(ConnectionError):
                    await writer.wait_closed()
            backend.healthy = status_line.split(b" ")[1:2] == [b"200"]
        except (OSError, TimeoutError, IndexError):
            backend.healthy = False
        if was != backend.healthy:
            log.info("backend %s is %s", backend.address, "healthy" if backend.healthy else "out of rotation")

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        connected = await self._connect()
        if connected is None:
            client_writer.write(UNAVAILABLE)
            with contextlib.suppress(ConnectionError):
                await client_writer.drain()
            client_writer.close()
            return
        backend, (upstream_reader, upstream_writer) = connected
        backend.connections += 1
        backend.served += 1
        try:
            await asyncio.gather(
                _pipe(client_reader, upstream_writer), _pipe(upstream_reader, client_writer), return_exceptions=True
            )
        finally:
            backend.connections -= 1
            for writer in (upstream_writer, client_writer):
                writer.close()

    async def _connect(self) -> tuple[Backend, tuple[asyncio.StreamReader, asyncio.StreamWriter]] | None:
        """A connection to the next healthy backend; one that refuses (it died since the last
        check) is taken out at once and the next is tried, before any byte of the client's is read."""
        while (backend := self.pick()) is not None:
            try:
                return backend, await asyncio.open_connection(backend.host, backend.port)
            except OSError as exc:
                backend.healthy = False  # the checker decides when it is back
                backend.last_error = str(exc)
                log.warning("backend %s refused a connection (%s); trying another", backend.address, exc)
        return None


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        with contextlib.suppress(Exception):  # half-close: the other direction may still be talking
            if writer.can_write_eof():
                writer.write_eof()
