"""The interface every channel adapter implements (after Rasa's ``rasa/core/channels``)."""

from __future__ import annotations

import json
import unicodedata
from abc import ABC, abstractmethod
from functools import partial
from typing import Any, ClassVar, Protocol

from aiohttp import web

from errors import GatewayError, OperationalError, TooManyRequests, UserError, whole_seconds
from store.models import Attachment, InboundMessage, Message
from store.models import MediaRejected as MediaRejected  # raised by MediaSink.save

_dumps = partial(json.dumps, ensure_ascii=False)


def json_response(data: Any, status: int = 200) -> web.Response:
    """A JSON response with Chinese left readable (UTF-8), not \\u-escaped."""
    return web.json_response(data, status=status, dumps=_dumps)


def error_response(error: GatewayError) -> web.Response:
    """The one error answer of every HTTP route: ``{"error": {"code", "message", "details"}}``
    with the error's status, and ``Retry-After`` when it says how long to wait.

    The gateway's middleware (``gateway.app.json_errors``) renders every error with it; channel
    adapters call it themselves where they answer a refusal in their own handler (so that they
    answer alike in any app)."""
    response = json_response(error.body(), error.status)
    if error.retry_after is not None:
        response.headers["Retry-After"] = str(whole_seconds(error.retry_after))
    return response


def national_phone(raw: str) -> str:
    """A phone number as the shop keeps it: digits only, a mainland China ``+86`` prefix dropped.

    Telegram contacts and Twilio give E.164 (``+8613800138000``); orders carry ``13800138000``,
    and the identity link only works when both spell it the same.
    """
    digits = "".join(ch for ch in raw if ch.isdigit())
    if len(digits) == 13 and digits.startswith("86"):
        return digits[2:]
    return digits


def storable_text(text: str) -> str:
    """Text with what cannot be stored taken out: NUL characters dropped, lone surrogates
    replaced. For channels that must not refuse a message (Telegram's polling would fetch it
    again and again); webhooks refuse such bodies with a 400 instead (:func:`unstorable`)."""
    return text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")


def unstorable(value: object, _depth: int = 0) -> str | None:
    """Why a parsed JSON value cannot be stored as it is, or None: a NUL character (BSON keys
    cannot hold one, and the embedded store's indexes cut strings at it) or a lone UTF-16
    surrogate such as ``"\\ud800"`` (valid JSON, but no Unicode text: it cannot be encoded), or an
    integer beyond 64 bits (BSON has none)."""
    if _depth > 64:
        return "the value is nested too deeply"
    if isinstance(value, str):
        if "\x00" in value:
            return "it contains a NUL character"
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "it contains a lone UTF-16 surrogate (not Unicode text)"
        return None
    if isinstance(value, int) and not -(2**63) <= value < 2**63:
        return "it has an integer beyond 64 bits"
    if isinstance(value, dict):
        items: list[object] = [*value.keys(), *value.values()]
    elif isinstance(value, list):
        items = value
    else:
        return None
    for item in items:
        if (reason := unstorable(item, _depth + 1)) is not None:
            return reason
    return None


def text_with_choices(message: Message, blank_line: bool = False) -> str:
    """A reply for channels without buttons: its text, then its quick replies as numbered lines
    (the dialogue understands "2") — unless the text already lists them, as the which-order
    question does for every channel, so a customer never reads the same list twice."""
    if not message.quick_replies:
        return message.text
    numbered = [f"{n}. {q.title}" for n, q in enumerate(message.quick_replies, start=1)]
    if all(line in message.text for line in numbered):
        return message.text
    return "\n".join([message.text, *([""] if blank_line else []), *numbered])


def has_control_characters(identifier: str) -> bool:
    """Identifiers (sender ids, message ids) never contain control characters; text may hold newlines."""
    return any(unicodedata.category(ch) == "Cc" for ch in identifier)


class InboundHandler(Protocol):
    """Accepts one normalised inbound message and returns the replies of that turn.

    The message is persisted before the handler returns; a redelivery (same channel message id)
    is not stored again and returns the replies already given.
    """

    async def __call__(self, message: InboundMessage) -> list[Message]: ...


class InvalidInbound(UserError):
    """A request a channel cannot turn into a message: a 400 whose ``code`` names the problem
    (``details`` may name the ``field``)."""

    def __init__(self, code: str, message: str, **details: Any) -> None:
        super().__init__(message, code=code, **details)


class SenderThrottled(TooManyRequests):
    """The inbound handler refused a message: this sender sent too many too fast. Nothing was
    stored; ``retry_after`` seconds from now a message would be taken. Channels answer it the
    way their clients understand (HTTP 429, an app error frame, SMTP 451)."""

    code = "rate_limited"

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"too many messages; retry in {retry_after:.0f} s", retry_after=retry_after)


class InputChannel(ABC):
    """Receives messages from one channel and registers its HTTP routes on the gateway."""

    name: ClassVar[str]
    replies_in_response: ClassVar[bool] = False
    """True for synchronous channels (REST): the turn's replies go back in the HTTP response,
    so they leave the outbox as delivered; other channels' replies wait for their sender."""

    @abstractmethod
    def routes(self, on_message: InboundHandler) -> list[web.RouteDef]:
        """The routes this channel serves; each calls ``on_message`` for every message."""

    async def start(self, on_message: InboundHandler) -> None:
        """Begin receiving without HTTP (an SMTP listener); called once the store is up."""
        return None

    async def stop(self) -> None:
        """Stop receiving; called at shutdown."""
        return None

    def receives_exclusively(self) -> bool:
        """Whether part of receiving must run in one gateway process at a time (Telegram's
        getUpdates, an IMAP mailbox): the gateway then runs :meth:`start_exclusive` only in the
        process holding the channel's lease, and :meth:`stop_exclusive` when it loses it
        (:meth:`start` never starts that part)."""
        return False

    async def start_exclusive(self, on_message: InboundHandler) -> None:
        return None

    async def stop_exclusive(self) -> None:
        return None


class DeliveryFailed(OperationalError):
    """Sending failed; ``permanent`` means retrying cannot help (blocked bot, unknown chat)."""

    code = "delivery_failed"

    def __init__(
        self, detail: str, *, permanent: bool = False, retry_after: float | None = None, offline: bool = False
    ) -> None:
        super().__init__(detail)
        self.permanent = permanent
        self.retry_after = retry_after
        """Seconds the provider asked us to wait (rate limits), if it said."""
        self.offline = offline
        """The customer is not connected (app); the channel delivers on reconnect, so this is no failure."""


class OutputChannel(ABC):
    """Sends stored replies to one channel; the outbox dispatcher calls it, never the dialogue."""

    name: ClassVar[str]
    combines_replies: ClassVar[bool] = False
    """True where one turn's replies should arrive as one item (an e-mail, not three): the
    dispatcher then waits for the turn to finish and calls :meth:`send_combined`."""

    local_delivery: ClassVar[bool] = False
    """True where delivery is to connections this process holds (app IM websockets): every
    gateway process then delivers to its own connections, instead of one process sending for
    all through a provider's API."""

    def connected_recipients(self) -> set[str]:
        """With ``local_delivery``: the recipients connected to this process now."""
        return set()

    async def send_combined(self, messages: list[Message]) -> str | None:
        """Deliver one turn's replies (same recipient, same inbound message) as one item."""
        raise NotImplementedError

    @abstractmethod
    async def send(self, message: Message) -> str | None:
        """Deliver one outbox message to ``message.recipient_id``; returns the provider's message id if it gives one.

        Raises :class:`DeliveryFailed` when the provider refused or could not be reached.
        """

    async def start(self) -> None:
        """Open connections; called once before the first send."""
        return None

    async def close(self) -> None:
        """Release connections; called at shutdown."""
        return None


class MediaSink(Protocol):
    """Where adapters put downloaded attachments (the media store); returns their metadata."""

    max_bytes: int

    async def save(self, data: bytes, content_type: str, filename: str | None = None) -> Attachment:
        """Store the bytes by content hash; raises :class:`MediaRejected` over the limits."""
        ...

    async def describe(self, media_id: str) -> Attachment | None:
        """Metadata of media stored earlier (e.g. uploaded before the message referencing it)."""
        ...
