"""A loopback HTTP server base for stand-ins of remote APIs."""

from __future__ import annotations

import errno

from aiohttp import web

from supervisor import free_port


class LoopbackServer:
    """A stand-in for a remote API on 127.0.0.1: subclasses add their routes in :meth:`routes`."""

    def __init__(self) -> None:
        self.port = free_port()
        self._runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    async def start(self) -> None:
        app = web.Application()
        self.routes(app)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        for attempt in range(5):
            try:
                await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
                return
            except OSError as exc:
                # The port was free when chosen, but something (another test's server, an outgoing
                # connection's ephemeral port) took it before the bind: choose again. Callers read
                # ``port``/``base_url`` after start.
                if exc.errno != errno.EADDRINUSE or attempt == 4:
                    raise
                self.port = free_port()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
