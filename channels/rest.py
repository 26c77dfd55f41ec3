"""Rasa's REST channel contract: ``POST /webhooks/rest/webhook``.

Request ``{"sender": "...", "message": "...", "message_id"?: "...", "metadata"?: {...}}``;
response ``[{"recipient_id": "...", "text": "...", "buttons"?: [{"title", "payload"}]}, …]``,
so existing Rasa clients and test tools work unchanged.

``message_id`` (or an ``Idempotency-Key`` header) makes a retried delivery idempotent: the
message is stored once and the retry gets the same replies.

Who is writing is proven, never claimed:

- **The sender** is bound to a session by its first message; every response carries the session
  token in ``X-Session-Token`` and every later message must send it back (the header, or
  ``metadata.session_token``): 403 ``session_required`` / ``session_mismatch`` otherwise, so
  knowing someone's sender id neither continues their conversation nor replays their replies.
- **The customer** is known from the shop's signed customer token (``metadata.customer_token`` or
  ``X-Customer-Token``, see :mod:`channels.customer_token`): its ``phone`` and ``email`` link this
  sender to the customer's other channels and orders. ``phone``/``email`` written in ``metadata``
  without a token are kept as hints only (the dialogue may verify them); they link nothing.

With a ``token`` (``REST_WEBHOOK_TOKEN``, required in production) every message must also carry
``Authorization: Bearer <token>`` (401 otherwise): only the shop's backend may call the webhook.
"""

from __future__ import annotations

import hmac
import logging
import uuid
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from aiohttp import web

from channels.base import (
    InboundHandler,
    InputChannel,
    InvalidInbound,
    error_response,
    has_control_characters,
    json_response,
    unstorable,
)
from channels.customer_token import InvalidCustomerToken, verify_customer_token
from channels.operations import JSON, Operation, Param, Reply, SecurityScheme, json_body, route
from channels.spec import ChannelDeps, ChannelSpec
from configuration import setting
from errors import Forbidden, Unauthorized
from store import untrusted_json
from store.models import MAX_TEXT_CHARS, InboundMessage, Message

log = logging.getLogger(__name__)

MAX_SENDER_CHARS = 256
MAX_MESSAGE_ID_CHARS = 200
SESSION_HEADER = "X-Session-Token"
CUSTOMER_TOKEN_HEADER = "X-Customer-Token"
SECRET_METADATA = ("session_token", "customer_token")
TOKEN = SecurityScheme(
    "restToken",
    {
        "type": "http",
        "scheme": "bearer",
        "description": "REST_WEBHOOK_TOKEN, when the gateway sets one (the shop backend's token)",
    },
)
MESSAGE = {
    "type": "object",
    "required": ["sender", "message"],
    "properties": {
        "sender": {"type": ["string", "integer"], "minLength": 1, "maxLength": MAX_SENDER_CHARS},
        "message": {"type": "string", "minLength": 1, "maxLength": MAX_TEXT_CHARS},
        "message_id": {"type": ["string", "integer"], "minLength": 1, "maxLength": MAX_MESSAGE_ID_CHARS},
        "metadata": {
            "type": "object",
            "properties": {
                "customer_token": {"type": "string", "description": "the shop's signed customer token (HS256 JWT)"},
                "session_token": {"type": "string", "description": "the sender's session token (or the header)"},
                "phone": {"type": "string", "description": "a hint only; links nothing without a customer token"},
                "email": {"type": "string", "description": "a hint only"},
                "name": {"type": "string"},
            },
        },
    },
}
REPLIES = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["recipient_id", "text"],
        "properties": {
            "recipient_id": {"type": "string"},
            "text": {"type": "string"},
            "buttons": {"type": "array", "items": {"type": "object"}},
        },
    },
}
REFUSALS = {
    400: ("invalid_json", "invalid_encoding", "too_deep", "invalid_payload", "invalid_text", "missing_field",
          "invalid_field", "empty_message", "message_too_long"),
    401: ("unauthorized", "invalid_customer_token"),
    403: ("session_required", "session_mismatch"),
}  # fmt: skip
"""Credentials a client may put in ``metadata``; taken out before the message is stored."""


class SenderSessions(Protocol):
    """Sessions binding a sender to the client that first wrote as it (see :mod:`store.sessions`)."""

    def token_for(self, channel: str, sender: str) -> str: ...

    def verify(self, channel: str, sender: str, token: str) -> bool: ...

    async def claim(self, channel: str, sender: str, channel_message_id: str) -> bool: ...


class RestInput(InputChannel):
    name: ClassVar[str] = "rest"
    replies_in_response: ClassVar[bool] = True

    def __init__(
        self,
        token: str | None = None,
        *,
        sessions: SenderSessions | None = None,
        customer_token_secret: str | None = None,
    ) -> None:
        self.token = token
        self.sessions = sessions
        """None only where nothing is served (a parser on its own, in tests and benches)."""
        self.customer_token_secret = customer_token_secret
        """The shop's secret for customer tokens; unset: no token verifies, every identity is a hint."""

    def authorised(self, header: str | None) -> bool:
        if self.token is None:
            return True
        return hmac.compare_digest((header or "").encode(), f"Bearer {self.token}".encode())

    def routes(self, on_message: InboundHandler) -> list[web.RouteDef]:
        sessions = self.sessions
        if sessions is None:
            raise RuntimeError("the REST channel serves only with sender sessions")

        async def webhook(request: web.Request) -> web.Response:
            if not self.authorised(request.headers.get("Authorization")):
                log.warning("rest webhook from %s without the right token", request.remote)
                return error_response(Unauthorized("send 'Authorization: Bearer <REST_WEBHOOK_TOKEN>'"))
            try:
                inbound, credentials = self.parse_with_credentials(
                    await request.read(),
                    request.headers.get("Idempotency-Key"),
                    session_token=request.headers.get(SESSION_HEADER),
                    customer_token=request.headers.get(CUSTOMER_TOKEN_HEADER),
                )
            except (InvalidInbound, InvalidCustomerToken) as error:
                return error_response(error)
            session_token = credentials.get("session_token")
            if session_token is not None:
                if not sessions.verify(self.name, inbound.sender_id, session_token):
                    return error_response(Forbidden("the session token is not this sender's", code="session_mismatch"))
            elif not await sessions.claim(self.name, inbound.sender_id, inbound.channel_message_id):
                return error_response(
                    Forbidden(f"this sender has a session: send its token in {SESSION_HEADER}", code="session_required")
                )
            replies = await on_message(inbound)
            response = json_response([self.render(r, inbound.sender_id) for r in replies])
            response.headers[SESSION_HEADER] = sessions.token_for(self.name, inbound.sender_id)
            return response

        async def health(_: web.Request) -> web.Response:
            return json_response({"status": "ok"})

        message = Operation(
            "POST", "/webhooks/rest/webhook",
            "A customer's message from the shop backend (Rasa's REST contract); the turn's replies", "channels",
            body=json_body(MESSAGE, 1024 * 1024),
            params=(
                Param("Idempotency-Key", {"type": "string", "maxLength": 200}, where="header"),
                Param(SESSION_HEADER, {"type": "string"}, "the sender's session token from its first answer; "
                      "required after it", where="header"),
                Param(CUSTOMER_TOKEN_HEADER, {"type": "string"}, where="header"),
            ),
            replies=(Reply(schema=REPLIES),), errors=(400, 401, 403, 413, 429, 503), codes=REFUSALS,
            security=(TOKEN,) if self.token is not None else (),
        )  # fmt: skip
        up = Operation(
            "GET", "/webhooks/rest/", "The REST channel is up", "channels", replies=(Reply(media_type=JSON),)
        )
        return [route(message, webhook), route(up, health)]

    def parse(self, body: bytes, idempotency_key: str | None = None) -> InboundMessage:
        return self.parse_with_credentials(body, idempotency_key)[0]

    def parse_with_credentials(
        self,
        body: bytes,
        idempotency_key: str | None = None,
        *,
        session_token: str | None = None,
        customer_token: str | None = None,
    ) -> tuple[InboundMessage, dict[str, str]]:
        """The message (credentials taken out of its metadata) and the credentials it came with."""
        try:
            payload = untrusted_json.loads(body)
        except untrusted_json.UntrustedJson as exc:
            raise InvalidInbound(exc.code, exc.message) from exc
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
        credentials = {k: v for k, v in metadata.items() if k in SECRET_METADATA and isinstance(v, str) and v}
        metadata = {k: v for k, v in metadata.items() if k not in SECRET_METADATA}
        if session_token:
            credentials["session_token"] = session_token
        if customer_token:
            credentials["customer_token"] = customer_token
        profile = self._verified_profile(credentials.get("customer_token"))

        inbound = InboundMessage(
            channel=self.name,
            sender_id=sender,
            channel_message_id=f"{sender}:{message_id}",
            text=message,
            profile=profile,
            metadata=metadata,
        )
        return inbound, credentials

    def _verified_profile(self, customer_token: str | None) -> dict[str, str]:
        """The identities a valid customer token proves; none without a token."""
        if customer_token is None:
            return {}
        if self.customer_token_secret is None:
            raise InvalidCustomerToken("this gateway verifies no customer tokens (REST_CUSTOMER_TOKEN_SECRET)")
        return verify_customer_token(self.customer_token_secret, customer_token)

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


@dataclass(frozen=True, slots=True)
class RestSettings:
    """The REST webhook (Rasa's REST contract), the shop backend's channel; always on."""

    title: ClassVar[str] = "Channel: REST"
    webhook_token: str | None = setting(
        None,
        env="REST_WEBHOOK_TOKEN",
        secret=True,
        help="when set, `POST /webhooks/rest/webhook` needs `Authorization: Bearer <token>` (the shop backend's); "
        "required in production (`deploy/gateway.env.example`)",
        default_text="unset: the webhook is open",
    )
    customer_token_secret: str | None = setting(
        None,
        env="REST_CUSTOMER_TOKEN_SECRET",
        secret=True,
        help="the shop's HS256 secret for customer tokens, the only way a REST message is linked to a customer's "
        "phone, e-mail and orders",
        default_text="unset: no token verifies (`make run`: a demo secret in `var/demo-secrets.json`)",
    )
    session_secret: str | None = setting(
        None,
        env="SENDER_SESSION_SECRET",
        secret=True,
        help="signs REST sender sessions (`X-Session-Token`); the same in every gateway process",
        default_text="generated once and kept in the store",
    )

    @property
    def enabled(self) -> bool:
        return True


class RestDeps(ChannelDeps, Protocol):
    @property
    def sessions(self) -> SenderSessions: ...


def build(section: RestSettings, deps: RestDeps) -> tuple[InputChannel, None]:
    """The webhook; its replies go back in the HTTP response, so there is no sender."""
    rest = RestInput(section.webhook_token, sessions=deps.sessions, customer_token_secret=section.customer_token_secret)
    return rest, None


SPEC = ChannelSpec(
    name=RestInput.name,
    label={"zh": "网页", "en": "web"},
    identity="rest",
    settings=RestSettings,
    build=build,
    always_on=True,
)
