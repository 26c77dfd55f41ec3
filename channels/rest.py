"""Rasa's REST channel contract: ``POST /webhooks/rest/webhook``.

Request ``{"sender": "...", "message": "...", "message_id"?: "...", "metadata"?: {...}}``;
response ``[{"recipient_id": "...", "text": "...", "buttons"?: [{"title", "payload"}]}, …]``,
so existing Rasa clients and test tools work unchanged.

``message_id`` (or an ``Idempotency-Key`` header) makes a retried delivery idempotent: the
message is stored once and the retry gets the same replies. ``metadata`` may carry ``phone``,
``email`` and ``name`` of a signed-in shop user; the caller (the shop's backend) vouches for them.

The channel is the shop backend's server-to-server one. With a ``token`` (``REST_WEBHOOK_TOKEN``)
every message must carry ``Authorization: Bearer <token>`` (401 otherwise); without one the
route is open, as Rasa's is, and must then only be reachable from the shop's network.
"""

from __future__ import annotations

import hmac
import json
import logging
import uuid
from typing import Any, ClassVar

from aiohttp import web

from channels.base import (
    InboundHandler,
    InputChannel,
    InvalidInbound,
    has_control_characters,
    json_response,
    unstorable,
)
from store.models import MAX_TEXT_CHARS, InboundMessage, Message

log = logging.getLogger(__name__)

MAX_SENDER_CHARS = 256
MAX_MESSAGE_ID_CHARS = 200
PROFILE_FIELDS = ("phone", "email", "name")


class RestInput(InputChannel):
    name: ClassVar[str] = "rest"
    replies_in_response: ClassVar[bool] = True

    def __init__(self, token: str | None = None) -> None:
        self.token = token

    def authorised(self, header: str | None) -> bool:
        if self.token is None:
            return True
        return hmac.compare_digest((header or "").encode(), f"Bearer {self.token}".encode())

    def routes(self, on_message: InboundHandler) -> list[web.RouteDef]:
        async def webhook(request: web.Request) -> web.Response:
            if not self.authorised(request.headers.get("Authorization")):
                log.warning("rest webhook from %s without the right token", request.remote)
                return json_response(
                    {"error": "unauthorized", "detail": "send 'Authorization: Bearer <REST_WEBHOOK_TOKEN>'"}, 401
                )
            try:
                inbound = self.parse(await request.read(), request.headers.get("Idempotency-Key"))
            except InvalidInbound as error:
                return error.response()
            replies = await on_message(inbound)
            return json_response([self.render(r, inbound.sender_id) for r in replies])

        async def health(_: web.Request) -> web.Response:
            return json_response({"status": "ok"})

        return [web.post("/webhooks/rest/webhook", webhook), web.get("/webhooks/rest/", health)]

    def parse(self, body: bytes, idempotency_key: str | None = None) -> InboundMessage:
        try:
            payload = json.loads(body.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise InvalidInbound("invalid_encoding", "the request body must be UTF-8") from exc
        except json.JSONDecodeError as exc:
            raise InvalidInbound("invalid_json", f"the request body is not JSON: {exc.msg} at {exc.pos}") from exc
        if not isinstance(payload, dict):
            raise InvalidInbound("invalid_payload", 'expected an object {"sender": ..., "message": ...}')
        if (reason := unstorable(payload)) is not None:
            raise InvalidInbound("invalid_text", f"the body cannot be stored: {reason}")

        sender = _required_text(payload, "sender", MAX_SENDER_CHARS)
        if "message" not in payload:
            raise InvalidInbound("missing_field", "the field 'message' is required", field="message")
        message = payload["message"]
        if not isinstance(message, str):
            raise InvalidInbound("invalid_field", "'message' must be a string", field="message")
        if len(message) > MAX_TEXT_CHARS:
            raise InvalidInbound(
                "message_too_long",
                f"'message' has {len(message)} characters; the limit is {MAX_TEXT_CHARS}",
                field="message",
                limit=MAX_TEXT_CHARS,
            )
        if not message.strip():
            raise InvalidInbound("empty_message", "'message' must not be empty", field="message")

        message_id = payload.get("message_id", idempotency_key)
        if message_id is not None and not isinstance(message_id, str | int):
            raise InvalidInbound("invalid_field", "'message_id' must be a string", field="message_id")
        message_id = str(message_id) if message_id is not None else uuid.uuid4().hex
        if not message_id or len(message_id) > MAX_MESSAGE_ID_CHARS or has_control_characters(message_id):
            raise InvalidInbound(
                "invalid_field",
                f"'message_id' must have 1–{MAX_MESSAGE_ID_CHARS} characters and no control characters",
                field="message_id",
            )

        metadata = payload.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise InvalidInbound("invalid_field", "'metadata' must be an object", field="metadata")
        profile = {k: metadata[k].strip() for k in PROFILE_FIELDS if isinstance(metadata.get(k), str)}

        return InboundMessage(
            channel=self.name,
            sender_id=sender,
            channel_message_id=f"{sender}:{message_id}",
            text=message,
            profile={k: v for k, v in profile.items() if v},
            metadata=metadata,
        )

    @staticmethod
    def render(reply: Message, recipient_id: str) -> dict[str, Any]:
        rendered: dict[str, Any] = {"recipient_id": recipient_id, "text": reply.text}
        if reply.quick_replies:
            rendered["buttons"] = [{"title": q.title, "payload": q.payload} for q in reply.quick_replies]
        return rendered


def _required_text(payload: dict[str, Any], field: str, limit: int) -> str:
    if field not in payload:
        raise InvalidInbound("missing_field", f"the field '{field}' is required", field=field)
    value = payload[field]
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise InvalidInbound("invalid_field", f"'{field}' must be a non-empty string", field=field)
    if len(value) > limit:
        raise InvalidInbound("invalid_field", f"'{field}' is longer than {limit} characters", field=field)
    if has_control_characters(value):
        raise InvalidInbound("invalid_field", f"'{field}' must not contain control characters", field=field)
    return value.strip()
