"""Helpers for tests that talk to the gateway as a customer would."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable

from aiohttp.test_utils import TestClient

from standins.loopback import LoopbackServer


class Chat:
    """A customer talking to the REST channel."""

    def __init__(self, http: TestClient[object, object], sender: str, **metadata: str) -> None:
        self.http = http
        self.sender = sender
        self.metadata = metadata

    async def send(self, text: str, message_id: str | None = None) -> list[dict[str, object]]:
        body: dict[str, object] = {"sender": self.sender, "message": text}
        if message_id is not None:
            body["message_id"] = message_id
        if self.metadata:
            body["metadata"] = self.metadata
        response = await self.http.post("/webhooks/rest/webhook", json=body)
        assert response.status == 200, await response.text()
        return await response.json()

    async def texts(self, text: str, message_id: str | None = None) -> list[str]:
        return [str(r["text"]) for r in await self.send(text, message_id)]


async def wait_for(condition: Callable[[], Awaitable[bool]], seconds: float = 30.0) -> None:
    """Poll ``condition`` until it holds; fail the test after ``seconds``."""
    for _ in range(int(seconds / 0.02)):
        if await condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


def unique_sender() -> str:
    return f"customer-{uuid.uuid4().hex[:10]}"


__all__ = ["Chat", "LoopbackServer", "unique_sender", "wait_for"]
