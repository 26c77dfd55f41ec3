"""Telegram test support: the Bot API stand-in (``standins.telegram_bot_api``) and a gateway
whose only channel is Telegram against it."""

from __future__ import annotations

from pathlib import Path

from channels.telegram import TelegramInput, TelegramOutput, make_bot
from gateway import Gateway, GatewayBuilder, Settings
from gateway.settings import GatewaySettings, OutboxSettings
from nlu import NluClient
from standins.telegram_bot_api import BOT_USER, TOKEN, BotApiStandIn, callback_update, private_update
from store.media import MediaStore
from store.mongo import ConversationStore

__all__ = ["BOT_USER", "TOKEN", "BotApiStandIn", "callback_update", "private_update", "telegram_gateway"]


def telegram_gateway(
    tmp_path: Path, store: ConversationStore, nlu: NluClient, standin: BotApiStandIn, secret: str
) -> Gateway:
    """A gateway whose only channel is Telegram (webhook mode, ``secret``) against the stand-in,
    with a fast outbox."""
    settings = Settings(
        gateway=GatewaySettings(var_dir=tmp_path / "var"), outbox=OutboxSettings(base_delay=0.05, poll_interval=0.05)
    )
    bot = make_bot(TOKEN, standin.base_url)
    media = MediaStore(settings.media_root, max_bytes=settings.media.max_bytes)
    return (
        GatewayBuilder(settings).store(store).nlu(nlu).media(media)
        .channels(TelegramInput(bot, media, webhook_secret=secret)).senders(TelegramOutput(bot)).build()
    )  # fmt: skip
