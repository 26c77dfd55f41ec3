"""Active health checks of a proxy's backends (open-source nginx only has passive ones).

Owns asking each backend's health URL on an interval, deciding which backends to keep out of
rotation and telling the caller when that set changes (``run.py cluster`` then reloads nginx
with those servers marked ``down``). A backend is out after ``fails`` failed checks in a row
(not 200, refused, slower than ``timeout``) and back after one good answer. When none is
healthy none is kept out: every one is at least as good as nothing, and the proxy's passive
checks still skip those that refuse connections. Must not know what the backends serve.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping

import aiohttp

log = logging.getLogger(__name__)

OnChange = Callable[[frozenset[str]], Awaitable[None]]


class HealthWatch:
    def __init__(
        self,
        health_urls: Mapping[str, str],
        on_change: OnChange,
        *,
        interval: float = 1.0,
        timeout: float = 3.0,
        fails: int = 2,
    ) -> None:
        """``health_urls``: backend name → its health URL. ``on_change`` gets the names kept out."""
        self.health_urls = dict(health_urls)
        self.on_change = on_change
        self.interval = interval
        self.timeout = timeout
        self.fails = fails
        self.failures = dict.fromkeys(self.health_urls, 0)
        self.out: frozenset[str] = frozenset()
        self.changes = 0
        self._task: asyncio.Task[None] | None = None
        self._http: aiohttp.ClientSession | None = None

    def unhealthy(self) -> frozenset[str]:
        return frozenset(name for name, count in self.failures.items() if count >= self.fails)

    def keep_out(self) -> frozenset[str]:
        """The unhealthy backends, unless that is all of them."""
        unhealthy = self.unhealthy()
        return frozenset() if unhealthy == frozenset(self.health_urls) else unhealthy

    async def check_all(self) -> None:
        """One round of checks; calls ``on_change`` when the set kept out changed."""
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        names = list(self.health_urls)
        results = await asyncio.gather(*(self._healthy(self.health_urls[name]) for name in names))
        for name, healthy in zip(names, results, strict=True):
            self.failures[name] = 0 if healthy else self.failures[name] + 1
        out = self.keep_out()
        if out != self.out:
            await self.on_change(out)  # raises (and the next round tries again) if it could not be applied
            for name in sorted(out - self.out):
                log.warning("%s failed %d health checks in a row: out of rotation", name, self.fails)
            for name in sorted(self.out - out):
                log.warning("%s is back in rotation", name)
            self.out = out
            self.changes += 1

    async def _healthy(self, url: str) -> bool:
        assert self._http is not None
        try:
            async with self._http.get(url) as response:
                return response.status == 200
        except (aiohttp.ClientError, TimeoutError, OSError):
            return False

    def start(self) -> None:
        self._task = asyncio.create_task(self._forever(), name="health-watch")

    async def _forever(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.check_all()
            except Exception:  # a failed reload: the next round tries again
                log.exception("health round failed")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._http is not None:
            await self._http.close()
            self._http = None
