"""Loopback stand-ins of the providers' APIs the gateway talks to (Telegram's Bot API), for the
tests and the benchmarks. They speak the providers' HTTP protocol on 127.0.0.1 and record what
they were sent; they must not know the gateway's internals (only its wire formats)."""

from standins.loopback import LoopbackServer
from standins.telegram_bot_api import BOT_USER, TOKEN, BotApiStandIn, callback_update, private_update

__all__ = ["BOT_USER", "TOKEN", "BotApiStandIn", "LoopbackServer", "callback_update", "private_update"]
