"""Inbound messages persisted per second, per channel, on the embedded store.

Each channel's real inbound code (REST, Telegram, Twilio SMS with signed requests, app IM
websockets, and the e-mail channel's SMTP listener, which answers 250 only once the mail is
stored) serves on
loopback with an inbound handler that only does what happens before the provider gets its 200:
``accept_inbound`` into nx-27017. No NLU or dialogue: this measures the channel and the store,
not Rasa (``bench/throughput.py`` measures full turns). The load generator runs in the same
process and event loop as the server, so the figures are a lower bound.

    .venv/bin/python bench/channels.py [--messages 300] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import sys
import tempfile
import time
import uuid
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from twilio.request_validator import RequestValidator

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiosmtplib

from channels import RestInput
from channels.app_im import AppImInput, Connections, sign_user
from channels.email import EmailInput
from channels.rest import SESSION_HEADER
from channels.sms import WEBHOOK_PATH as SMS_PATH
from channels.sms import TwilioSmsInput
from channels.telegram import SECRET_HEADER, TelegramInput, make_bot
from channels.telegram import WEBHOOK_PATH as TELEGRAM_PATH
from gateway.runtime import ChannelServices
from store import InboundMessage, Message
from store.embedded import EmbeddedMongo
from store.media import MediaStore
from store.mongo import ConversationStore
from store.sessions import SenderSessions
from supervisor import free_port
from twiliohooks import SIGNATURE_HEADER

SECRET = "bench-secret"
AUTH_TOKEN = "bench-auth-token"
ACCOUNT_SID = "AC" + "0" * 32
TEXT = "帮我查一下订单202611150001到哪了"
UPDATE_IDS = itertools.count(int(time.time()) * 1000)


def requests_for(
    channel: str, base: str, count: int, senders: int, sessions: SenderSessions | None = None
) -> list[tuple[str, dict[str, Any]]]:
    """(url, aiohttp request kwargs) for ``count`` distinct messages from ``senders`` customers
    (REST senders with the session token their first answer would have given them)."""
    run = uuid.uuid4().hex[:6]
    out: list[tuple[str, dict[str, Any]]] = []
    for i in range(count):
        sender = i % senders
        if channel == "rest":
            body = {"sender": f"bench-{run}-{sender}", "message": TEXT, "message_id": f"{i}"}
            assert sessions is not None
            headers = {SESSION_HEADER: sessions.token_for("rest", str(body["sender"]))}
            out.append((f"{base}/webhooks/rest/webhook", {"json": body, "headers": headers}))
        elif channel == "telegram":
            chat = 10_000 + sender
            update = {
                "update_id": next(UPDATE_IDS),
                "message": {
                    "message_id": i,
                    "date": int(time.time()),
                    "chat": {"id": chat, "type": "private"},
                    "from": {"id": chat, "is_bot": False, "first_name": "客户"},
                    "text": TEXT,
                },
            }
            out.append((f"{base}{TELEGRAM_PATH}", {"json": update, "headers": {SECRET_HEADER: SECRET}}))
        else:
            form = {
                "MessageSid": f"SM{run}{i:026d}",
                "AccountSid": ACCOUNT_SID,
                "From": f"+86139{sender:08d}",
                "To": "+15005550006",
                "Body": TEXT,
            }
            signature = RequestValidator(AUTH_TOKEN).compute_signature(f"{base}{SMS_PATH}", form)
            out.append((f"{base}{SMS_PATH}", {"data": form, "headers": {SIGNATURE_HEADER: signature}}))
    return out


async def measure(
    http: aiohttp.ClientSession, requests: list[tuple[str, dict[str, Any]]], concurrency: int
) -> tuple[float, list[float]]:
    queue = list(reversed(requests))
    latencies: list[float] = []

    async def worker() -> None:
        while queue:
            url, kwargs = queue.pop()
            started = time.perf_counter()
            async with http.post(url, **kwargs) as response:
                await response.read()
                if response.status != 200:
                    raise RuntimeError(f"{url}: {response.status} {await response.text()}")
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started, latencies


async def measure_email(port: int, count: int, senders: int, concurrency: int) -> tuple[float, list[float]]:
    """Mails through the real SMTP listener: each is stored before the 250 comes back."""
    run = uuid.uuid4().hex[:6]
    queue = list(range(count))
    latencies: list[float] = []

    async def worker() -> None:
        while queue:
            i = queue.pop()
            mail = EmailMessage()
            mail["From"] = f"customer{i % senders}@bench.example"
            mail["To"] = "service@shop.example"
            mail["Subject"] = "订单查询"
            mail["Message-ID"] = f"<{run}-{i}@bench.example>"
            mail.set_content(TEXT)
            started = time.perf_counter()
            await aiosmtplib.send(mail, hostname="127.0.0.1", port=port, timeout=30)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started, latencies


async def measure_app(
    http: aiohttp.ClientSession, base: str, count: int, senders: int, concurrency: int
) -> tuple[float, list[float]]:
    """Frames over app IM websockets (one per customer): the latency is message frame → ack,
    and the ack is sent only once the message is stored."""
    run = uuid.uuid4().hex[:6]
    expires = int(time.time()) + 3600
    queue = list(range(count))
    latencies: list[float] = []
    per_worker = max(1, senders // concurrency)

    async def worker(w: int) -> None:
        sockets = []
        for k in range(per_worker):
            user = f"bench-{run}-{w}-{k}"
            url = f"{base}/webhooks/app/ws?user={user}&expires={expires}&token={sign_user(SECRET, user, expires)}"
            sockets.append(await http.ws_connect(url))
        try:
            n = 0
            while queue:
                i = queue.pop()
                socket = sockets[n % len(sockets)]
                n += 1
                started = time.perf_counter()
                await socket.send_json({"type": "message", "client_id": f"c{i}", "text": TEXT})
                while True:
                    frame = await socket.receive_json()
                    if frame.get("type") == "ack" and frame.get("client_id") == f"c{i}":
                        break
                    if frame.get("type") == "error":
                        raise RuntimeError(f"app IM error: {frame}")
                latencies.append(time.perf_counter() - started)
        finally:
            for socket in sockets:
                await socket.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    return time.perf_counter() - started, latencies


async def main(messages: int, concurrency: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-channels-") as tmp:
        mongo = EmbeddedMongo(Path(tmp) / "mongo")
        await mongo.start()
        store = ConversationStore.from_uri(mongo.uri, database=f"bench_{uuid.uuid4().hex[:8]}")
        await store.ensure_indexes()

        async def persist(message: InboundMessage) -> list[Message]:
            await store.accept_inbound(message)
            return []

        bot = make_bot("1:bench", "http://127.0.0.1:9")  # never called for text updates
        feed = ChannelServices(MediaStore(Path(tmp) / "media"))
        feed.store = store
        feed.sender_sessions = sessions = await SenderSessions.open(store.db)
        channels = [
            RestInput(sessions=feed),
            AppImInput(SECRET, Connections(), MediaStore(Path(tmp) / "media"), feed),
            TelegramInput(bot, MediaStore(Path(tmp) / "media"), webhook_secret=SECRET),
            TwilioSmsInput(AUTH_TOKEN, ACCOUNT_SID),
        ]
        app = web.Application()
        for channel in channels:
            app.router.add_routes(channel.routes(persist))
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        base = f"http://127.0.0.1:{port}"
        email = EmailInput(["service@shop.example"], MediaStore(Path(tmp) / "media"), listen=("127.0.0.1", 0))
        await email.start(persist)
        try:
            print(f"{messages} messages per channel, {concurrency} concurrent, 50 customers, embedded nx-27017")
            print(f"{'channel':<10} {'msg/s':>8} {'p50 ms':>8} {'p95 ms':>8}")
            async with aiohttp.ClientSession() as http:
                for name in ("rest", "telegram", "sms"):
                    await measure(http, requests_for(name, base, 20, 50, sessions), concurrency)  # warm-up
                    elapsed, latencies = await measure(
                        http, requests_for(name, base, messages, 50, sessions), concurrency
                    )
                    quantiles = statistics.quantiles(latencies, n=20)
                    print(
                        f"{name:<10} {messages / elapsed:>8.0f} {statistics.median(latencies) * 1000:>8.1f}"
                        f" {quantiles[18] * 1000:>8.1f}"
                    )
            async with aiohttp.ClientSession() as http:
                await measure_app(http, base, 20, 48, concurrency)  # warm-up
                elapsed, latencies = await measure_app(http, base, messages, 48, concurrency)
            quantiles = statistics.quantiles(latencies, n=20)
            print(
                f"{'app IM':<10} {messages / elapsed:>8.0f} {statistics.median(latencies) * 1000:>8.1f}"
                f" {quantiles[18] * 1000:>8.1f}"
            )
            assert email.port is not None
            await measure_email(email.port, 20, 50, concurrency)  # warm-up
            elapsed, latencies = await measure_email(email.port, messages, 50, concurrency)
            quantiles = statistics.quantiles(latencies, n=20)
            print(
                f"{'email':<10} {messages / elapsed:>8.0f} {statistics.median(latencies) * 1000:>8.1f}"
                f" {quantiles[18] * 1000:>8.1f}"
            )
            stored = await store.count_messages(direction="in")
            print(f"stored {stored} inbound messages ({5 * (messages + 20)} sent)")
        finally:
            await email.stop()
            await runner.cleanup()
            await store.client.drop_database(store.db.name)
            await store.close()
            await mongo.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    asyncio.run(main(args.messages, args.concurrency))
