"""Loopback stand-ins of the providers the gateway talks to (Telegram's Bot API, WeChat, an SMTP relay),
for the tests and the benchmarks. They speak the providers' protocols on 127.0.0.1 and record
what they were sent and when; they must not know the gateway's internals, only its wire formats."""

from standins.loopback import LoopbackServer
from standins.smtp_sink import ReceivedMail, SmtpSink
from standins.telegram_bot_api import BOT_USER, TOKEN, BotApiStandIn, Delivery, callback_update, private_update
from standins.wechat_api import WeChatStandIn

__all__ = [
    "BOT_USER",
    "TOKEN",
    "BotApiStandIn",
    "Delivery",
    "LoopbackServer",
    "ReceivedMail",
    "SmtpSink",
    "WeChatStandIn",
    "callback_update",
    "private_update",
]
