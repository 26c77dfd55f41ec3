"""Helpers for tests that talk to the gateway as a customer would."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp.test_utils import TestClient

from channels.customer_token import sign_customer_token
from channels.rest import SESSION_HEADER
from standins.loopback import LoopbackServer

CUSTOMER_TOKEN_SECRET = "tests-customer-token-secret"
"""The shop's customer-token secret in the tests' gateways (``Settings.rest_customer_token_secret``)."""


class Chat:
    """A customer talking to the REST channel as the shop's client does: the session token of
    its first answer goes with every later message, and a signed-in user's phone or e-mail come
    as the shop's signed customer token."""

    def __init__(self, http: TestClient[object, object], sender: str, **identities: str) -> None:
        self.http = http
        self.sender = sender
        self.identities = identities
        self.session_token: str | None = None

    def metadata(self) -> dict[str, str]:
        if not self.identities:
            return {}
        return {"customer_token": sign_customer_token(CUSTOMER_TOKEN_SECRET, dict(self.identities))}

    async def send(self, text: str, message_id: str | None = None) -> list[dict[str, object]]:
        body: dict[str, object] = {"sender": self.sender, "message": text}
        if message_id is not None:
            body["message_id"] = message_id
        if metadata := self.metadata():
            body["metadata"] = metadata
        headers = {SESSION_HEADER: self.session_token} if self.session_token else {}
        response = await self.http.post("/webhooks/rest/webhook", json=body, headers=headers)
        assert response.status == 200, await response.text()
        self.session_token = response.headers[SESSION_HEADER]
        return await response.json()

    async def texts(self, text: str, message_id: str | None = None) -> list[str]:
        return [str(r["text"]) for r in await self.send(text, message_id)]


_SESSIONS: dict[tuple[int, str], str] = {}


async def post_rest(http: Any, body: dict[str, Any], **headers: str) -> Any:
    """``POST /webhooks/rest/webhook`` as a client does: the sender's session token (from its first
    answer, per HTTP client) goes with every later message. Returns the response."""
    key = (id(http), str(body.get("sender")))
    if key in _SESSIONS:
        headers = {SESSION_HEADER: _SESSIONS[key], **headers}
    response = await http.post("/webhooks/rest/webhook", json=body, headers=headers)
    if token := response.headers.get(SESSION_HEADER):
        _SESSIONS[key] = token
    return response


async def wait_for(condition: Callable[[], Awaitable[bool]], seconds: float = 30.0) -> None:
    """Poll ``condition`` until it holds; fail the test after ``seconds``."""
    for _ in range(int(seconds / 0.02)):
        if await condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


def unique_sender() -> str:
    return f"customer-{uuid.uuid4().hex[:10]}"


__all__ = ["CUSTOMER_TOKEN_SECRET", "Chat", "LoopbackServer", "post_rest", "unique_sender", "wait_for"]
