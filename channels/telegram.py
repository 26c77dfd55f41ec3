"""Telegram through python-telegram-bot: webhook on the gateway's own server, or polling.

Owns the Bot API wire format: turning an ``Update`` (text, photo, contact, callback query) into
an :class:`InboundMessage`, and an outbox message into ``sendMessage`` with an inline keyboard
for quick replies. Webhook requests must carry ``X-Telegram-Bot-Api-Secret-Token``; the
``update_id`` is the channel message id, so Telegram's redeliveries are stored once. Photos are
fetched with getFile into the media store before the message is accepted.

Only private chats are served (a group chat would mix customers). Must not know about dialogue,
NLU or the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, ClassVar

from aiohttp import web
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram import Message as TelegramMessage
from telegram.constants import ChatType
from telegram.error import BadRequest, InvalidToken, RetryAfter, TelegramError
from telegram.error import Forbidden as BotForbidden

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
    json_response,
    national_phone,
    storable_text,
    unstorable,
)
from channels.operations import Operation, SecurityScheme, json_body, route
from channels.spec import ChannelDeps, ChannelSpec
from configuration import SettingsError, setting
from errors import Forbidden, GatewayError, Unavailable
from store import untrusted_json
from store.models import Attachment, InboundMessage, Message

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/webhooks/telegram/webhook"
SECRET = SecurityScheme(
    "telegramSecret",
    {
        "type": "apiKey",
        "in": "header",
        "name": "X-Telegram-Bot-Api-Secret-Token",
        "description": "TELEGRAM_WEBHOOK_SECRET, given to Telegram with setWebhook",
    },
)
WEBHOOK = Operation(
    "POST", WEBHOOK_PATH, "A Telegram update (Bot API webhook)", "channels",
    body=json_body({
        "type": "object",
        "required": ["update_id"],
        "description": "a Bot API Update (message or callback_query)",
        "properties": {"update_id": {"type": "integer"}, "message": {"type": "object"},
                       "callback_query": {"type": "object"}},
    }, 1024 * 1024),
    errors=(400, 403, 413, 503), security=(SECRET,),
)  # fmt: skip
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
ALLOWED_UPDATES = ["message", "callback_query"]
MAX_CALLBACK_DATA_BYTES = 64  # Bot API limit for an inline button's callback_data


def make_bot(token: str, api_base_url: str = "https://api.telegram.org") -> Bot:
    """A Bot talking to ``api_base_url`` (Telegram, or a local Bot API server in tests)."""
    base = api_base_url.rstrip("/")
    return Bot(token, base_url=f"{base}/bot", base_file_url=f"{base}/file/bot")


class Ignored(GatewayError):
    """An update this channel does not serve (group chat, edited message …); acknowledged, not stored."""

    code = "ignored"


class TelegramInput(InputChannel):
    name: ClassVar[str] = "telegram"

    def __init__(
        self,
        bot: Bot,
        media: MediaSink,
        *,
        webhook_secret: str | None,
        polling: bool = False,
        public_base_url: str | None = None,
        poll_timeout: int = 25,
    ) -> None:
        if not polling and not webhook_secret:
            raise ValueError("Telegram webhook mode needs a secret token (TELEGRAM_WEBHOOK_SECRET)")
        self.bot = bot
        self.media = media
        self.webhook_secret = webhook_secret
        self.polling = polling
        self.public_base_url = public_base_url
        self.poll_timeout = poll_timeout
        self._task: asyncio.Task[None] | None = None

    # -- webhook ---------------------------------------------------------------------------

    def routes(self, on_message: InboundHandler) -> list[web.RouteDef]:
        async def webhook(request: web.Request) -> web.Response:
            if not self._secret_ok(request.headers.get(SECRET_HEADER)):
                log.warning("telegram webhook from %s with a wrong secret token", request.remote)
                return error_response(Forbidden("wrong or missing secret token"))
            try:
                data = untrusted_json.loads(await request.read())
                if not isinstance(data, dict):
                    raise InvalidInbound("invalid_payload", "an update must be a JSON object")
                if (reason := unstorable(data)) is not None:
                    raise InvalidInbound("invalid_text", f"the update cannot be stored: {reason}")
                inbound = await self.to_inbound(Update.de_json(data, self.bot))
            except untrusted_json.UntrustedJson as exc:
                log.warning("telegram webhook: %s", exc.message)
                return error_response(InvalidInbound(exc.code, "the request body is not a JSON update"))
            except InvalidInbound as error:
                log.warning("telegram webhook: %s", error.message)
                return error_response(error)
            except Ignored as reason:  # before ValueError below: acknowledged, not refused
                log.info("telegram update ignored: %s", reason)
                return json_response({"ok": True, "ignored": str(reason)})
            except (KeyError, TypeError, ValueError, AttributeError) as exc:  # de_json on a malformed update
                log.warning("telegram webhook: malformed update: %s", exc)
                return error_response(InvalidInbound("invalid_payload", f"malformed update: {exc}"))
            except TelegramError as exc:  # e.g. getFile failed: nothing stored, Telegram retries
                log.error("telegram webhook: Bot API call failed: %s", exc)
                return error_response(Unavailable(str(exc), code="upstream_unavailable"))
            try:
                await on_message(inbound)  # persisted before Telegram gets its 200; replies go via the outbox
            except SenderThrottled:
                # Acknowledged and dropped: Telegram redelivers an update it got no 2xx for, so a
                # 429 would bring the flood back again and again.
                log.info("telegram update %s dropped: its chat sends too fast", inbound.channel_message_id)
                return json_response({"ok": True, "ignored": "rate_limited"})
            return json_response({"ok": True})

        return [] if self.polling else [route(WEBHOOK, webhook)]

    def _secret_ok(self, given: str | None) -> bool:
        if self.webhook_secret is None:
            return False
        return given is not None and hmac.compare_digest(given.encode(), self.webhook_secret.encode())

    # -- polling (development) and webhook registration -------------------------------------

    async def start(self, on_message: InboundHandler) -> None:
        if not self.polling and self.public_base_url:  # every process may (re)register: it is the same URL
            self._task = asyncio.create_task(self._register_webhook(), name="telegram-set-webhook")

    async def stop(self) -> None:
        await self.stop_exclusive()

    def receives_exclusively(self) -> bool:
        return self.polling  # Telegram answers 409 to a second getUpdates at the same time

    async def start_exclusive(self, on_message: InboundHandler) -> None:
        if self.polling and self._task is None:
            self._task = asyncio.create_task(self._poll(on_message), name="telegram-polling")

    async def stop_exclusive(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _register_webhook(self) -> None:
        url = f"{self.public_base_url}{WEBHOOK_PATH}"
        try:
            await self.bot.set_webhook(url, secret_token=self.webhook_secret, allowed_updates=ALLOWED_UPDATES)
            log.info("telegram webhook registered at %s", url)
        except TelegramError as exc:
            log.error("could not register the telegram webhook at %s: %s", url, exc)

    async def _poll(self, on_message: InboundHandler) -> None:
        offset: int | None = None
        failures = 0
        while True:
            try:
                if offset is None:
                    await self.bot.delete_webhook()  # getUpdates is refused while a webhook is set
                    offset = 0
                updates = await self.bot.get_updates(
                    offset=offset, timeout=self.poll_timeout, allowed_updates=ALLOWED_UPDATES
                )
                failures = 0
            except TelegramError as exc:
                failures += 1
                delay = min(2.0**failures, 60.0)
                log.warning("telegram polling failed (%s); again in %.0fs", exc, delay)
                await asyncio.sleep(delay)
                continue
            for update in updates:
                try:
                    await on_message(await self.to_inbound(update))
                except (InvalidInbound, Ignored) as reason:
                    log.info("telegram update %s skipped: %s", update.update_id, reason)
                except Exception as exc:  # Bot API or store trouble: the update comes again
                    log.error("telegram update %s not taken, will retry: %s", update.update_id, exc)
                    await asyncio.sleep(1.0)
                    break  # offset stays
                offset = update.update_id + 1

    # -- Update → InboundMessage -----------------------------------------------------------

    async def to_inbound(self, update: Update) -> InboundMessage:
        if update.callback_query is not None:
            return await self._callback(update)
        message = update.message
        if message is None:
            raise Ignored("not a new message or a button press")
        user = message.from_user
        if message.chat.type != ChatType.PRIVATE or user is None:
            raise Ignored(f"chat {message.chat.id} is a {message.chat.type} chat; only private chats are served")

        text = storable_text(message.text or message.caption or "").strip()  # whitespace alone is no message
        profile = {"name": user.full_name}
        attachments: list[Attachment] = []
        metadata: dict[str, Any] = {"telegram_user_id": user.id}
        if message.contact is not None:
            # Only the customer's own number links identities; a forwarded contact is just content.
            if message.contact.user_id == user.id:
                profile["phone"] = national_phone(message.contact.phone_number)
            else:
                metadata["shared_contact"] = message.contact.phone_number
        if message.photo:
            attachment, rejected = await self._photo(message)
            if attachment is not None:
                attachments.append(attachment)
            if rejected is not None:
                metadata["rejected_attachments"] = [rejected]
        if not text and not attachments and "phone" not in profile and not metadata.keys() - {"telegram_user_id"}:
            raise Ignored(f"message {message.message_id} has nothing this channel handles")
        return InboundMessage(
            channel=self.name,
            sender_id=str(message.chat.id),
            channel_message_id=str(update.update_id),
            text=text,
            attachments=attachments,
            profile=profile,
            metadata=metadata,
        )

    async def _callback(self, update: Update) -> InboundMessage:
        query = update.callback_query
        assert query is not None
        chat = query.message.chat if query.message is not None else None
        if chat is None or chat.type != ChatType.PRIVATE:
            raise Ignored("button press outside a private chat")
        try:  # stop the button's spinner; the answer itself comes through the outbox
            await query.answer()
        except TelegramError as exc:
            log.info("answerCallbackQuery failed (harmless): %s", exc)
        return InboundMessage(
            channel=self.name,
            sender_id=str(chat.id),
            channel_message_id=str(update.update_id),
            text=query.data or "",
            profile={"name": query.from_user.full_name},
            metadata={"telegram_user_id": query.from_user.id, "callback_query": True},
        )

    async def _photo(self, message: TelegramMessage) -> tuple[Attachment | None, dict[str, str] | None]:
        largest = max(message.photo, key=lambda p: p.width * p.height)
        file = await self.bot.get_file(largest.file_id)
        data = bytes(await file.download_as_bytearray())
        try:
            return await self.media.save(data, "image/jpeg", f"{largest.file_unique_id}.jpg"), None
        except MediaRejected as rejected:
            log.info("telegram photo %s refused: %s", largest.file_unique_id, rejected.message)
            return None, {"reason": rejected.reason, "detail": rejected.message}


class TelegramOutput(OutputChannel):
    name: ClassVar[str] = "telegram"

    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.bot.shutdown()

    async def send(self, message: Message) -> str | None:
        if not message.recipient_id or not message.recipient_id.lstrip("-").isdigit():
            raise DeliveryFailed(f"not a telegram chat id: {message.recipient_id!r}", permanent=True)
        keyboard = None
        if message.quick_replies:
            keyboard = InlineKeyboardMarkup(
                [
                    [InlineKeyboardButton(q.title, callback_data=_callback_data(q.payload, q.title))]
                    for q in message.quick_replies
                ]
            )
        try:
            sent = await self.bot.send_message(int(message.recipient_id), message.text, reply_markup=keyboard)
        except RetryAfter as exc:
            wait = exc.retry_after
            seconds = wait.total_seconds() if isinstance(wait, timedelta) else float(wait)
            raise DeliveryFailed(f"rate limited: {exc}", retry_after=seconds) from exc
        except (BotForbidden, BadRequest, InvalidToken) as exc:  # blocked bot, unknown chat: retrying cannot help
            raise DeliveryFailed(f"{type(exc).__name__}: {exc}", permanent=True) from exc
        except TelegramError as exc:  # network errors, timeouts, 5xx
            raise DeliveryFailed(f"{type(exc).__name__}: {exc}") from exc
        return str(sent.message_id)


def _callback_data(payload: str, title: str) -> str:
    """Telegram allows 64 bytes of callback data; a longer payload falls back to the title."""
    for candidate in (payload, title):
        if len(candidate.encode()) <= MAX_CALLBACK_DATA_BYTES:
            return candidate
    return title.encode()[:MAX_CALLBACK_DATA_BYTES].decode(errors="ignore")


@dataclass(frozen=True, slots=True)
class TelegramSettings:
    """A Telegram bot (Bot API webhook, or getUpdates polling for development)."""

    title: ClassVar[str] = "Channel: Telegram"
    bot_token: str | None = setting(None, env="TELEGRAM_BOT_TOKEN", secret=True, help="enables the Telegram channel")
    webhook_secret: str | None = setting(
        None,
        env="TELEGRAM_WEBHOOK_SECRET",
        secret=True,
        help="required in webhook mode: Telegram sends it in `X-Telegram-Bot-Api-Secret-Token`",
    )
    mode: str = setting(
        "webhook",
        env="TELEGRAM_MODE",
        choices=("webhook", "polling"),
        help="`webhook` (production) or `polling` (development, no public URL needed)",
    )
    api_base_url: str = setting(
        "https://api.telegram.org", env="TELEGRAM_API_BASE_URL", help="the Bot API server (a stand-in in tests)"
    )

    @property
    def enabled(self) -> bool:
        return bool(self.bot_token)

    def validate(self) -> None:
        if self.bot_token and self.mode == "webhook" and not self.webhook_secret:
            raise SettingsError(
                "TELEGRAM_BOT_TOKEN in webhook mode needs TELEGRAM_WEBHOOK_SECRET", variable="TELEGRAM_WEBHOOK_SECRET"
            )


def build(section: TelegramSettings, deps: ChannelDeps) -> tuple[InputChannel, OutputChannel]:
    assert section.bot_token is not None
    bot = make_bot(section.bot_token, section.api_base_url.rstrip("/"))
    telegram_in = TelegramInput(
        bot,
        deps.media,
        webhook_secret=section.webhook_secret,
        polling=section.mode == "polling",
        public_base_url=deps.public_base_url,
    )
    return telegram_in, TelegramOutput(bot)


SPEC = ChannelSpec(
    name=TelegramInput.name,
    label={"zh": "Telegram", "en": "Telegram"},
    identity="telegram",
    settings=TelegramSettings,
    build=build,
    outside_account=True,
)
