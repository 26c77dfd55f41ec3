"""HTTP client for Rasa's ``POST /model/parse``."""

from __future__ import annotations

import itertools
import logging
import time
from abc import ABC, abstractmethod
from typing import Any

import aiohttp

from errors import Unavailable
from nlu.result import FALLBACK_INTENT as FALLBACK_INTENT
from nlu.result import Entity as Entity
from nlu.result import Intent as Intent
from nlu.result import ParseResult as ParseResult
from nlu.result import Request as Request

log = logging.getLogger(__name__)


class NluUnavailable(Unavailable, RuntimeError):
    """The NLU server could not be reached, timed out or answered with an error."""

    code = "nlu_unavailable"


class NluClient(ABC):
    """Turns text into a :class:`ParseResult`; raises :class:`NluUnavailable` when it cannot."""

    @abstractmethod
    async def parse(self, text: str, message_id: str | None = None) -> ParseResult: ...

    @abstractmethod
    async def ready(self) -> bool: ...

    async def fallback_parse(self, text: str) -> ParseResult | None:
        """A rough reading for while :meth:`parse` raises :class:`NluUnavailable` (keywords), if any."""
        return None

    async def close(self) -> None:
        return None


class OfflineNlu(NluClient):
    """The NLU while no server is reachable yet (starting, or failed to start)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    async def parse(self, text: str, message_id: str | None = None) -> ParseResult:
        raise NluUnavailable(self.reason)

    async def ready(self) -> bool:
        return False


class RasaNluClient(NluClient):
    """Calls one or more Rasa servers started with ``--enable-api`` (``RASA_URL``, comma-separated).

    A Rasa server handles one request at a time, so a busy gateway spreads requests round-robin
    over several. A server that fails (refused, timed out, 5xx) is taken out of the rotation and
    the request goes to the next one; after ``cooldown`` seconds it is probed with ``/status``
    before it gets requests again, so a stopped or restarting server costs one failed request,
    not one per turn. :class:`NluUnavailable` only when every server failed.
    """

    def __init__(
        self,
        urls: list[str] | str,
        token: str | None = None,
        timeout: float = 5.0,
        *,
        cooldown: float = 5.0,
        probe_timeout: float = 1.0,
    ) -> None:
        self.urls = [u.rstrip("/") for u in ([urls] if isinstance(urls, str) else urls)]
        if not self.urls:
            raise ValueError("at least one Rasa server URL is needed")
        self.token = token
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.probe_timeout = aiohttp.ClientTimeout(total=probe_timeout)
        self.cooldown = cooldown
        self._next = itertools.count()
        self._out_until: dict[str, float] = {}
        """Servers out of the rotation, with the monotonic time at which to probe them again."""
        self._session: aiohttp.ClientSession | None = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        return self._session

    def _params(self) -> dict[str, str]:
        return {"token": self.token} if self.token else {}

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def servers(self) -> dict[str, bool]:
        """Each server and whether it is in the rotation now."""
        return {url: url not in self._out_until for url in self.urls}

    async def ready(self) -> bool:
        """True when a server answers ``/status`` with a loaded model."""
        ready = False
        for url in self.urls:
            if await self._status_ok(url, self.timeout):
                self._out_until.pop(url, None)
                ready = True
        return ready

    async def _status_ok(self, url: str, timeout: aiohttp.ClientTimeout) -> bool:
        try:
            async with self._http().get(f"{url}/status", params=self._params(), timeout=timeout) as response:
                return response.status == 200 and bool((await response.json()).get("model_file"))
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return False

    async def _rotation(self) -> list[str]:
        """The servers to try for one request: the healthy ones from the next in turn, then any
        whose time out is over and that answer a probe."""
        start = next(self._next)
        ordered = [self.urls[(start + i) % len(self.urls)] for i in range(len(self.urls))]
        now = time.monotonic()
        healthy = [url for url in ordered if url not in self._out_until]
        for url in ordered:
            until = self._out_until.get(url)
            if until is None or until > now:
                continue
            if await self._status_ok(url, self.probe_timeout):
                log.info("Rasa server %s is back in the rotation", url)
                self._out_until.pop(url, None)
                healthy.append(url)
            else:
                self._out_until[url] = now + self.cooldown
        return healthy

    def _take_out(self, url: str, reason: str) -> None:
        if url not in self._out_until:
            log.warning("Rasa server %s taken out of the rotation: %s", url, reason)
        self._out_until[url] = time.monotonic() + self.cooldown

    async def parse(self, text: str, message_id: str | None = None) -> ParseResult:
        body: dict[str, Any] = {"text": text}
        if message_id:
            body["message_id"] = message_id
        failures: list[str] = []
        for url in await self._rotation():
            try:
                return await self._parse_at(url, body)
            except NluUnavailable as exc:
                failures.append(str(exc))
                self._take_out(url, str(exc))
        if not failures:
            failures = [f"all {len(self.urls)} Rasa servers are out of the rotation"]
        raise NluUnavailable("; ".join(failures))

    async def _parse_at(self, url: str, body: dict[str, Any]) -> ParseResult:
        try:
            async with self._http().post(f"{url}/model/parse", json=body, params=self._params()) as response:
                if response.status != 200:
                    detail = (await response.text())[:300]
                    raise NluUnavailable(f"{url}/model/parse answered {response.status}: {detail}")
                payload = await response.json()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise NluUnavailable(f"{url}/model/parse failed: {exc!r}") from exc
        return ParseResult.model_validate(payload)
