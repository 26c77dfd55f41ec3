"""App IM: a websocket for the shop's app and web widget, plus attachment upload and a chat page.

Owns the JSON frame protocol and who is connected. The shop's backend signs a user in by giving
the client ``user``, ``expires`` and ``token`` = hex HMAC-SHA256(``APP_IM_SECRET``,
``"<user>:<expires>"``); every request carries them as query parameters.

Client → server frames::

    {"type": "message", "client_id": "c-1", "text": "...", "attachments"?: [{"media_id": "..."}]}
    {"type": "resume", "after": "<last message id the client has>" | null}
    {"type": "read", "message_id": "<id of the last message seen>"}
    {"type": "typing"}

Server → client: ``{"type": "message", "id", "direction": "in"|"out", "text", "quick_replies",
"attachments", "in_reply_to", "created_at"}``, ``{"type": "ack", "client_id", "message_id"}``
once a message is stored and its turn ran, and ``{"type": "error", "code", "detail"}``.
``client_id`` makes a resent message idempotent. Attachments are uploaded first by
``POST /webhooks/app/upload`` (the raw bytes, with their Content-Type) and then referenced.

Must not know about dialogue, NLU or the database: it sees the inbound handler, the media sink
and a :class:`ConversationFeed` to replay history.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from dataclasses import dataclass
from importlib import resources
from typing import Any, ClassVar, Protocol

from aiohttp import WSMsgType, web

from channels.base import (
    DeliveryFailed,
    InboundHandler,
    InputChannel,
    InvalidInbound,
    MediaRejected,
    MediaSink,
    OutputChannel,
    SenderThrottled,
    error_response,
    has_control_characters,
    json_response,
    unstorable,
)
from channels.operations import BINARY, TEXT, Body, Operation, Param, Reply, SecurityScheme, route
from channels.spec import ChannelDeps, ChannelSpec
from configuration import setting
from errors import GatewayError, InsufficientStorage, TooLarge, Unauthorized, UnsupportedMediaType, UserError
from store import untrusted_json
from store.models import MAX_TEXT_CHARS, Attachment, InboundMessage, Message

log = logging.getLogger(__name__)

WS_PATH = "/webhooks/app/ws"
UPLOAD_PATH = "/webhooks/app/upload"
CHAT_PAGE_PATH = "/chat"
MAX_USER_CHARS = 128
USER_TOKEN = SecurityScheme(
    "appUserToken",
    {
        "type": "apiKey",
        "in": "query",
        "name": "token",
        "description": "hex HMAC-SHA256(APP_IM_SECRET, '<user>:<expires>'), with the user and expires parameters",
    },
)
USER = (
    Param("user", {"type": "string", "minLength": 1, "maxLength": MAX_USER_CHARS}, required=True),
    Param("expires", {"type": "string", "pattern": "^[0-9]{1,12}$"}, required=True),
    Param("token", {"type": "string", "maxLength": 128}, required=True),
)
"""Who the app's user is: every route but the chat page takes them."""
MAX_CLIENT_ID_CHARS = 128
MAX_FRAME_BYTES = 64 * 1024
MAX_ATTACHMENTS = 10
HISTORY_LIMIT = 200
UPLOAD_REFUSALS: dict[str, type[GatewayError]] = {
    "too_large": TooLarge,
    "type_not_allowed": UnsupportedMediaType,
    "storage_full": InsufficientStorage,
}
"""The answer to a refused upload by :class:`MediaRejected` reason: 413, 415, or 507 (try again later)."""
BAD_TOKEN = "missing, wrong or expired token"


def sign_user(secret: str, user: str, expires: int) -> str:
    """The token the shop's backend gives a signed-in user's client."""
    return hmac.new(secret.encode(), f"{user}:{expires}".encode(), hashlib.sha256).hexdigest()


class ConversationFeed(Protocol):
    """Read access to one channel identity's conversation, for resuming after a reconnect."""

    async def channel_history(
        self, channel: str, sender_id: str, after_id: str | None = None, limit: int = 100
    ) -> list[Message]: ...

    async def mark_delivered(self, message_ids: list[str]) -> None: ...

    async def mark_read(self, channel: str, sender_id: str, up_to_id: str) -> int: ...


SENT_IDS_REMEMBERED = 1000


class Connections:
    """The open websockets of each app user (one user may have the app and the widget open).

    Each socket remembers the ids of the last messages it was sent, so a message that reaches
    it twice (pushed as it was stored, found again by a catch-up pass, replayed by ``resume``)
    is sent once."""

    def __init__(self) -> None:
        self._sockets: dict[str, set[web.WebSocketResponse]] = {}
        self._sent: dict[web.WebSocketResponse, dict[str, None]] = {}

    def add(self, user: str, socket: web.WebSocketResponse) -> None:
        self._sockets.setdefault(user, set()).add(socket)
        self._sent[socket] = {}

    def remove(self, user: str, socket: web.WebSocketResponse) -> None:
        sockets = self._sockets.get(user, set())
        sockets.discard(socket)
        self._sent.pop(socket, None)
        if not sockets:
            self._sockets.pop(user, None)

    def users(self) -> set[str]:
        return set(self._sockets)

    async def send(self, socket: web.WebSocketResponse, frame: dict[str, Any]) -> None:
        """Send a frame to one socket; a message frame it already had is not sent again."""
        message_id = frame.get("id") if frame.get("type") == "message" else None
        sent = self._sent.get(socket)
        if message_id is not None and sent is not None:
            if message_id in sent:
                return
            sent[message_id] = None
            if len(sent) > SENT_IDS_REMEMBERED:
                del sent[next(iter(sent))]  # dicts keep insertion order: forget the oldest
        await socket.send_str(json.dumps(frame, ensure_ascii=False))

    async def push(self, user: str, frame: dict[str, Any]) -> int:
        """Send to every open socket of the user; returns how many took it."""
        delivered = 0
        for socket in list(self._sockets.get(user, ())):
            if socket.closed:
                self.remove(user, socket)
                continue
            try:
                await self.send(socket, frame)
                delivered += 1
            except (ConnectionError, RuntimeError) as exc:
                log.info("app socket of %s went away: %s", user, exc)
                self.remove(user, socket)
        return delivered

    async def close_all(self) -> None:
        for user, sockets in list(self._sockets.items()):
            for socket in list(sockets):
                await socket.close()
            self._sockets.pop(user, None)
        self._sent.clear()


def message_frame(message: Message) -> dict[str, Any]:
    return {
        "type": "message",
        "id": message.id,
        "direction": message.direction.value,
        "text": message.text,
        "quick_replies": [q.model_dump() for q in message.quick_replies],
        "attachments": [a.model_dump(exclude_none=True) for a in message.attachments],
        "in_reply_to": message.in_reply_to,
        "created_at": message.created_at.isoformat(),
    }


class AppImInput(InputChannel):
    name: ClassVar[str] = "app"

    def __init__(self, secret: str, connections: Connections, media: MediaSink, feed: ConversationFeed) -> None:
        self.secret = secret
        self.connections = connections
        self.media = media
        self.feed = feed

    def routes(self, on_message: InboundHandler) -> list[web.RouteDef]:
        async def websocket(request: web.Request) -> web.StreamResponse:
            user = self._user(request)
            if user is None:
                return error_response(Unauthorized(BAD_TOKEN))
            socket = web.WebSocketResponse(heartbeat=30, max_msg_size=MAX_FRAME_BYTES)
            if not socket.can_prepare(request).ok:  # a plain GET: say so in JSON, as every other error
                return error_response(UserError("open this URL as a websocket", code="websocket_required"))
            await socket.prepare(request)
            self.connections.add(user, socket)
            try:
                async for frame in socket:
                    if frame.type != WSMsgType.TEXT:
                        await _error(socket, "invalid_frame", "frames must be JSON text")
                        continue
                    await self._frame(user, socket, frame.data, on_message)
            finally:
                self.connections.remove(user, socket)
            return socket

        async def upload(request: web.Request) -> web.Response:
            user = self._user(request)
            if user is None:
                return error_response(Unauthorized(BAD_TOKEN))
            limit = self.media.max_bytes
            if request.content_length is not None and request.content_length > limit:
                return error_response(TooLarge(f"the limit is {limit} bytes", limit=limit))
            data = await request.content.read(limit + 1)  # the app's 1 MiB body limit does not apply here
            if len(data) > limit:
                return error_response(TooLarge(f"the limit is {limit} bytes", limit=limit))
            if not data:
                return error_response(UserError("the request body is empty", code="empty_upload"))
            try:
                attachment = await self.media.save(data, request.content_type, request.query.get("filename"))
            except MediaRejected as rejected:
                log.info("app upload from %s refused: %s", user, rejected.message)
                refusal = UPLOAD_REFUSALS.get(rejected.reason, UnsupportedMediaType)
                return error_response(refusal(rejected.message, code=rejected.reason))
            return json_response(attachment.model_dump(exclude_none=True))

        async def chat_page(_: web.Request) -> web.Response:
            page = resources.files("channels").joinpath("chat.html").read_text(encoding="utf-8")
            return web.Response(text=page, content_type="text/html")

        switching = Reply(101, None, description="switching to the websocket")
        return [
            route(Operation("GET", WS_PATH, "The app's chat websocket (JSON frames; see channels/app_im.py)",
                            "channels", params=USER, replies=(switching,), errors=(400, 401, 429),
                            security=(USER_TOKEN,)), websocket),
            route(Operation("POST", UPLOAD_PATH, "Upload an attachment (the raw bytes with their Content-Type), then "
                            "reference it", "channels",
                            body=Body({"application/octet-stream": BINARY},
                                      f"at most MEDIA_MAX_BYTES ({self.media.max_bytes}) bytes"),
                            params=(*USER, Param("filename", {"type": "string", "maxLength": 200})),
                            errors=(400, 401, 413, 415, 429, 503), security=(USER_TOKEN,)), upload),
            route(Operation("GET", CHAT_PAGE_PATH, "The web chat page (signs in with the app's user token)",
                            "channels", replies=(Reply(media_type="text/html", schema=TEXT),)), chat_page),
        ]  # fmt: skip

    def _user(self, request: web.Request) -> str | None:
        user, expires, token = (request.query.get(k, "") for k in ("user", "expires", "token"))
        if not user or len(user) > MAX_USER_CHARS or has_control_characters(user) or unstorable(user):
            return None
        if not expires.isdigit() or len(expires) > 12 or int(expires) < time.time():
            return None
        if not hmac.compare_digest(token.encode(), sign_user(self.secret, user, int(expires)).encode()):
            log.warning("app request from %s with a wrong token for user %r", request.remote, user)
            return None
        return user

    async def _frame(self, user: str, socket: web.WebSocketResponse, raw: str, on_message: InboundHandler) -> None:
        try:
            frame = untrusted_json.loads(raw)
            if not isinstance(frame, dict):
                raise InvalidInbound("invalid_frame", "a frame must be a JSON object")
            if (reason := unstorable(frame)) is not None:
                raise InvalidInbound("invalid_text", f"the frame cannot be stored: {reason}")
            kind = frame.get("type")
            if kind == "message":
                inbound = await self.parse_message(user, frame)
                await on_message(inbound)  # stored and answered; replies arrive through the outbox
                await socket.send_json({"type": "ack", "client_id": frame["client_id"]})
            elif kind == "resume":
                await self._resume(user, socket, frame.get("after"))
            elif kind == "read":
                message_id = frame.get("message_id")
                if not isinstance(message_id, str) or not message_id:
                    raise InvalidInbound("invalid_field", "'message_id' must be a message id", field="message_id")
                await self.feed.mark_read(self.name, user, message_id)
            elif kind == "typing":
                pass  # nobody to show it to until agents chat here (backoffice)
            else:
                raise InvalidInbound("invalid_frame", f"unknown frame type {kind!r}", field="type")
        except untrusted_json.UntrustedJson as error:
            log.info("app frame from %s is not JSON we take: %s", user, error.message)
            await _error(socket, error.code, error.message)
        except InvalidInbound as error:
            log.info("app frame from %s refused: %s", user, error.message)
            await _error(socket, error.code, error.message, **error.details)
        except SenderThrottled as throttled:  # not stored and not acked: the client resends it later
            await _error(socket, "rate_limited", str(throttled), retry_after=max(1, round(throttled.retry_after)))
        except Exception:  # e.g. the store is down: the client keeps the message unacked and resends it
            log.exception("app frame from %s failed", user)
            await _error(socket, "unavailable", "the message could not be taken now; it will be resent")

    async def parse_message(self, user: str, frame: dict[str, Any]) -> InboundMessage:
        client_id = frame.get("client_id")
        if (
            not isinstance(client_id, str)
            or not 0 < len(client_id) <= MAX_CLIENT_ID_CHARS
            or has_control_characters(client_id)
        ):
            raise InvalidInbound("invalid_field", "'client_id' must be a string of 1–128 characters", field="client_id")
        text = frame.get("text", "")
        if not isinstance(text, str):
            raise InvalidInbound("invalid_field", "'text' must be a string", field="text")
        if len(text) > MAX_TEXT_CHARS:
            raise InvalidInbound("message_too_long", f"'text' is longer than {MAX_TEXT_CHARS}", field="text")
        references = frame.get("attachments") or []
        if not isinstance(references, list) or len(references) > MAX_ATTACHMENTS:
            raise InvalidInbound("invalid_field", "'attachments' must be a list of uploads", field="attachments")
        attachments: list[Attachment] = []
        for reference in references:
            media_id = reference.get("media_id") if isinstance(reference, dict) else None
            attachment = await self.media.describe(media_id) if isinstance(media_id, str) else None
            if attachment is None:
                raise InvalidInbound("unknown_media", f"no uploaded file {media_id!r}", field="attachments")
            attachments.append(attachment)
        if not text.strip() and not attachments:
            raise InvalidInbound("empty_message", "a message needs text or an attachment", field="text")
        return InboundMessage(
            channel=self.name,
            sender_id=user,
            channel_message_id=f"{user}:{client_id}",
            text=text,
            attachments=attachments,
        )

    async def _resume(self, user: str, socket: web.WebSocketResponse, after: object) -> None:
        if after is not None and not isinstance(after, str):
            raise InvalidInbound("invalid_field", "'after' must be a message id or null", field="after")
        history = await self.feed.channel_history(self.name, user, after, HISTORY_LIMIT)
        for message in history:
            await self.connections.send(socket, message_frame(message))
        # What the client now has counts as delivered; the outbox need not push it again.
        await self.feed.mark_delivered([m.id for m in history if m.direction.value == "out" and not m.delivered])


async def _error(socket: web.WebSocketResponse, code: str, detail: str, **extra: Any) -> None:
    await socket.send_json({"type": "error", "error": code, "detail": detail, **extra})


class AppImOutput(OutputChannel):
    """Pushes replies to the sockets this process holds; every gateway process runs one."""

    name: ClassVar[str] = "app"
    local_delivery: ClassVar[bool] = True

    def __init__(self, connections: Connections) -> None:
        self.connections = connections

    def connected_recipients(self) -> set[str]:
        return self.connections.users()

    async def close(self) -> None:
        await self.connections.close_all()

    async def send(self, message: Message) -> str | None:
        if not message.recipient_id:
            raise DeliveryFailed("the reply has no recipient", permanent=True)
        if await self.connections.push(message.recipient_id, message_frame(message)) == 0:
            # The app fetches it with "resume" when it reconnects.
            raise DeliveryFailed(f"{message.recipient_id} is not connected", offline=True)
        return None


@dataclass(frozen=True, slots=True)
class AppImSettings:
    """The shop's app and web widget: a websocket, uploads and the chat page (``/chat``)."""

    title: ClassVar[str] = "Channel: app chat"
    secret: str | None = setting(
        None,
        env="APP_IM_SECRET",
        secret=True,
        help="enables the app IM websocket and the chat page; the shop's backend signs user tokens with it",
        default_text="unset: off (`make run`: a demo secret in `var/demo-secrets.json`)",
    )

    @property
    def enabled(self) -> bool:
        return bool(self.secret)


class AppImDeps(ChannelDeps, Protocol):
    @property
    def feed(self) -> ConversationFeed: ...


def build(section: AppImSettings, deps: AppImDeps) -> tuple[InputChannel, OutputChannel]:
    assert section.secret is not None
    connections = Connections()
    return AppImInput(section.secret, connections, deps.media, deps.feed), AppImOutput(connections)


SPEC = ChannelSpec(
    name=AppImInput.name,
    label={"zh": "App", "en": "the app"},
    identity="app",
    settings=AppImSettings,
    build=build,
)
