"""What the downstream stand-ins share: checking the gateway's signed requests, and sending
signed callbacks to it the way the real systems do (retried a few times on a failure), keeping
every callback sent so a test can replay them."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from downstream.signing import InvalidSignature, StaleTimestamp, signed_headers, verify

log = logging.getLogger(__name__)


@dataclass(slots=True)
class SentCallback:
    url: str
    body: bytes
    content_type: str
    headers: dict[str, str]
    status: int | None = None
    answer: Any = None


@dataclass(slots=True)
class CallbackSender:
    secret: str
    attempts: int = 3
    retry_delay: float = 0.5
    sent: list[SentCallback] = field(default_factory=list)
    hold: bool = False
    """While True, callbacks are made and kept (``held``) but not sent: a test delivers them in its own order."""
    held: list[SentCallback] = field(default_factory=list)
    _session: aiohttp.ClientSession | None = None
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15))
        return self._session

    async def send(self, url: str, body: bytes, content_type: str) -> SentCallback:
        """Sign and POST; retried on a connection failure or a 5xx. The last attempt is returned."""
        callback = SentCallback(url, body, content_type, {})
        if self.hold:
            self.held.append(callback)
            return callback
        for attempt in range(self.attempts):
            callback = SentCallback(url, body, content_type, {"Content-Type": content_type,
                                                              **signed_headers(self.secret, body)})  # fmt: skip
            self.sent.append(callback)
            try:
                await self._post(callback)
                if callback.status is not None and callback.status < 500:
                    return callback
            except (aiohttp.ClientError, TimeoutError) as exc:
                log.info("callback to %s failed (%s); attempt %d", url, exc, attempt + 1)
            await asyncio.sleep(self.retry_delay * (attempt + 1))
        return callback

    async def _post(self, callback: SentCallback) -> None:
        async with self._client().post(callback.url, data=callback.body, headers=callback.headers) as response:
            callback.status = response.status
            text = await response.text()
            with contextlib.suppress(ValueError):
                callback.answer = json.loads(text)

    async def deliver(self, callback: SentCallback) -> SentCallback:
        """Send a held callback now (signed now), once."""
        return await self.send(callback.url, callback.body, callback.content_type) if not self.hold else callback

    async def replay(self, callback: SentCallback, *, resign: bool = False) -> SentCallback:
        """The same request again, byte for byte (its original signature, or signed anew)."""
        headers = dict(callback.headers)
        if resign or not headers:
            headers = {"Content-Type": callback.content_type, **signed_headers(self.secret, callback.body)}
        again = SentCallback(callback.url, callback.body, callback.content_type, headers)
        await self._post(again)
        return again

    def later(self, delay: float, action: Callable[[], Awaitable[Any]]) -> None:
        """Do ``action`` after ``delay`` seconds in the background (the stand-ins' own pace)."""

        async def run() -> None:
            await asyncio.sleep(delay)
            try:
                await action()
            except Exception:
                log.exception("a stand-in's scheduled step failed")

        task = asyncio.get_running_loop().create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._session is not None:
            await self._session.close()
            self._session = None


async def signed_body(request: web.Request, secret: str) -> bytes:
    """The request's body, after its signature is checked (401 otherwise, as the real systems answer)."""
    body = await request.read()
    try:
        verify(secret, body, request.headers, window_seconds=300)
    except (InvalidSignature, StaleTimestamp) as exc:
        raise web.HTTPUnauthorized(
            text=json.dumps({"code": "SIGN_ERROR", "message": exc.message}), content_type="application/json"
        ) from exc
    return body


def json_answer(data: dict[str, Any], status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda d: json.dumps(d, ensure_ascii=False))
