"""Promotion-peak load and soak: thousands of customers on four channels against real gateway
processes, then a check that every message was stored once and every reply arrived once.

Starts its own infrastructure on loopback: one nx-27017 store, ``--rasa-servers`` Rasa servers,
the Telegram Bot API stand-in, an SMTP sink for the replies, and ``--gateways`` ``run.py serve``
processes sharing the store and the Rasa servers (``RASA_URL=url1,url2``). Customers are spread
over the gateways round-robin and write over REST, app IM websockets (signed tokens), Telegram
webhooks (replies seen at the stand-in) and e-mail (SMTP to the gateway's listener, replies seen
at the sink): mixed intents in Chinese (with dialect phrasings) and English, 2–4 turns each; about
10 % ask for a person and simulated agents claim, answer and close those over the agent API.

Turn latency is customer message sent → first reply to it observed on its channel. Replies are
attributed to the message they answer by what each channel carries (REST: the response; e-mail:
``In-Reply-To``; app IM: the frame's ``in_reply_to``; Telegram: the Bot API message id, which
the store keeps as ``provider_message_id``), so a late reply is never counted for the next turn.

Checks afterwards, from the store: every message a client sent is stored exactly once (distinct
``channel_message_id`` == total == sent), every turn was processed, every reply the store
recorded for a push channel was received exactly once (duplicates are found by message id at
the stand-in, the sink and the websockets), agent replies delivered. Exits 1 if anything was
lost or duplicated. Finally runs ``run.py report peak`` over the run's days and prints it.

    .venv/bin/python bench/peak.py [--quick] [--customers 2000] [--gateways 2] [--rasa-servers 2]
                                   [--concurrency 64] [--agents 8] [--json FILE]

Knows the gateway only by its wire formats, its settings (environment) and its store's
collections (for the checks); it does not import the gateway's runtime.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import random
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import aiosmtplib
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.rest_sessions import RestSessions
from channels.app_im import sign_user
from channels.telegram import SECRET_HEADER
from channels.telegram import WEBHOOK_PATH as TELEGRAM_PATH
from errors import OperationalError
from gateway.cluster import GatewayProcess
from nlu.project import NluProject
from nlu.server import EmbeddedRasaServer
from quality.metrics import percentile
from quality.peak import format_text
from standins import TOKEN, BotApiStandIn, Delivery, ReceivedMail, SmtpSink
from store.embedded import EmbeddedMongo
from store.mongo import ConversationStore
from supervisor import ChildStartError, free_port

REPO_ROOT = Path(__file__).resolve().parent.parent
DEMO_ORDERS = REPO_ROOT / "shop" / "demo_orders.json"
APP_SECRET = "peak-app-secret"
WEBHOOK_SECRET = "peak-telegram-secret"
AGENT_TOKEN = "peak-agent-token"
SERVICE_ADDRESS = "service@shop.example"
DATABASE = "aftersales_peak"
CHANNEL_WEIGHTS = {"rest": 30, "app": 25, "telegram": 25, "email": 20}
PUSH_CHANNELS = ("app", "telegram", "email")
"""Channels whose replies leave through the outbox (REST answers in the response)."""
ESCALATION_SHARE = 0.10

# Scripts: each a list of turns; {demo} is a demo order id, {own}/{phone} the customer's own order.
DEMO_IDS = ("202611150001", "202611180002", "202611020003", "202611190006", "202611100005")
SCRIPTS: dict[str, list[list[str]]] = {
    "order_lookup": [
        ["帮我查一下订单{demo}到哪了", "好的谢谢"],
        ["我嘅單{demo}去到邊度啦", "唔該晒"],
        ["阿拉订单{demo}到啥地方了", "谢谢侬"],
        ["俺的订单{demo}咋还没到嘞", "中，谢谢"],
        ["where is my order {demo}", "thanks"],
    ],
    "logistics": [
        ["我的快递怎么还没到", "{demo}", "好的"],
        ["物流信息好几天没更新了", "{demo}", "谢谢"],
        ["my parcel has not arrived yet", "{demo}", "ok thanks"],
    ],
    "refund": [["订单{own}还没发货，帮我取消订单退款", "{phone}", "确认"]],
    "return": [["订单{own}这个杯子不想要了，我要退货", "{phone}", "明天 09:00-12:00", "确认"]],
    "address_change": [["订单{own}要改地址", "{phone}", "广东省深圳市南山区科技园路1号", "确认"]],
    "invoice": [
        ["发票怎么开", "好的谢谢"],
        ["订单{demo}能开电子发票吗", "好的"],
        ["how do I get an invoice", "thanks"],
    ],
    "policy": [
        ["七天无理由退货怎么算", "退货运费谁出"],
        ["what is your return policy", "ok"],
        ["生鲜可以退吗", "好的"],
    ],
    "complaint": [["我要投诉，快递员态度很差一直推脱", "你们到底管不管"], ["客服太慢了，非常不满意", "算了"]],
}
INTENT_WEIGHTS = {
    "order_lookup": 25, "logistics": 15, "refund": 12, "return": 10, "address_change": 8,
    "invoice": 10, "policy": 12, "complaint": 8,
}  # fmt: skip
ESCALATION_OPENINGS = ["你好", "订单{demo}物流不动了", "我想问下退货的事", "hello"]
ESCALATION_ASKS = ["转人工", "人工客服", "我要找人工", "human agent please"]


def now() -> float:
    return time.monotonic()


# -- the simulated population --------------------------------------------------------------


@dataclass
class Customer:
    number: int
    channel: str
    gateway: int
    intent: str
    texts: list[str]
    escalates: bool
    address: str
    """The customer's id on the channel: REST sender, app user, Telegram chat id, e-mail address."""
    replies_seen: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def saw_reply(self) -> None:
        self.replies_seen += 1
        self.changed.set()


@dataclass
class SentTurn:
    channel: str
    channel_message_id: str
    customer: int
    index: int
    sent_at: float
    escalation: bool
    answered_at: float | None = None
    """REST only: when the response with the replies came back."""
    rest_replies: int = 0


def own_order(number: int, status: str) -> dict[str, Any]:
    """An order of the customer's own (unique phone), so refunds and returns are theirs to ask."""
    at = datetime.now(UTC)
    delivered = status == "delivered"
    logistics = []
    if delivered:
        logistics.append({"time": (at - timedelta(days=3)).isoformat(), "description": "【杭州】商家已发货"})
        logistics.append({"time": (at - timedelta(days=2)).isoformat(), "description": "已签收"})
    return {
        "order_id": f"2027{number:08d}",
        "status": status,
        "customer": {"name": f"顾客{number}", "phone": f"15{number:09d}", "email": f"c{number}@peak.example"},
        "items": [{"sku": "SKU-CUP-02", "name": "保温杯 480ml", "quantity": 1, "price": 89.0}],
        "amount": 89.0,
        "address": "浙江省杭州市西湖区文三路 398 号 5 幢 1201",
        "delivery_slot": None,
        "paid_at": (at - timedelta(days=4)).isoformat(),
        "delivered_at": (at - timedelta(days=2)).isoformat() if delivered else None,
        "logistics": logistics,
    }


def population(
    count: int, gateways: int, seed: int, only: str | None = None
) -> tuple[list[Customer], list[dict[str, Any]]]:
    """The customers and the orders of their own (for refunds, returns and address changes)."""
    rng = random.Random(seed)
    mix = {only: 1} if only else CHANNEL_WEIGHTS
    channels, weights = list(mix), list(mix.values())
    intents, intent_weights = list(INTENT_WEIGHTS), list(INTENT_WEIGHTS.values())
    push_share = sum(mix.get(c, 0) for c in PUSH_CHANNELS) / sum(weights) or 1
    run = uuid.uuid4().hex[:6]
    customers: list[Customer] = []
    orders: list[dict[str, Any]] = []
    for number in range(count):
        channel = rng.choices(channels, weights)[0]
        # Agents' replies need a push channel (REST answers only in the response).
        escalates = channel in PUSH_CHANNELS and rng.random() < ESCALATION_SHARE / push_share
        intent = rng.choices(intents, intent_weights)[0]
        demo = rng.choice(DEMO_IDS)
        own, phone = f"2027{number:08d}", f"15{number:09d}"
        if escalates:
            intent = "escalation"
            texts = [rng.choice(ESCALATION_OPENINGS), rng.choice(ESCALATION_ASKS)]
        else:
            texts = list(rng.choice(SCRIPTS[intent]))
            if intent in ("refund", "address_change"):
                orders.append(own_order(number, "paid"))
            elif intent == "return":
                orders.append(own_order(number, "delivered"))
        texts = [t.format(demo=demo, own=own, phone=phone) for t in texts]
        address = {
            "rest": f"peak-{run}-{number}",
            "app": f"peak-{run}-{number}",
            "telegram": str(7_000_000 + number),
            "email": f"c{number}.{run}@peak.example",
        }[channel]
        customers.append(Customer(number, channel, number % gateways, intent, texts, escalates, address))
    return customers, orders


# -- infrastructure ------------------------------------------------------------------------


class BenchGateway(GatewayProcess):
    """A gateway of the bench (``gateway.cluster.GatewayProcess``), with its own SMTP listener."""

    def __init__(self, index: int, env: dict[str, str], port: int, smtp_port: int, log: Path) -> None:
        super().__init__(index, port, env, [], log)
        self.smtp_port = smtp_port

    async def start_serving(self, seed_orders: Path | None) -> None:
        self.args = ["--seed-orders", str(seed_orders)] if seed_orders else []
        try:
            await self.start(timeout=180)
        except ChildStartError as exc:
            raise SystemExit(f"gateway {self.index}: {exc}") from exc

    def log_problems(self) -> Counter[str]:
        """ERROR and WARNING lines of the gateway's log, by logger and the start of the message."""
        found: Counter[str] = Counter()
        for line in self.log.read_text(errors="replace").splitlines():
            for level in (" ERROR ", " WARNING "):
                if level in line:
                    found[(level.strip() + " " + line.split(level, 1)[1])[:110]] += 1
        return found


# -- what the customers' channels observe ---------------------------------------------------


class Observed:
    """Every reply each channel's client side saw, with when."""

    def __init__(self, customers: list[Customer]) -> None:
        self.by_address = {(c.channel, c.address): c for c in customers}
        self.app_frames: list[tuple[str, str, str | None, float]] = []
        """(user, message id, in_reply_to, at)"""
        self.telegram: list[Delivery] = []
        self.mails: list[ReceivedMail] = []

    def on_telegram(self, delivery: Delivery) -> None:
        self.telegram.append(delivery)
        customer = self.by_address.get(("telegram", delivery.chat_id))
        if customer is not None:
            customer.saw_reply()

    def on_mail(self, mail: ReceivedMail) -> None:
        self.mails.append(mail)
        for recipient in mail.recipients:
            customer = self.by_address.get(("email", recipient))
            if customer is not None:
                customer.saw_reply()


def mail_store_id(message_id: str) -> str:
    """The store id the gateway put in its reply's Message-ID (``make_msgid(idstring=id)``)."""
    local = message_id.strip("<>").split("@", 1)[0]
    parts = local.split(".", 3)
    return parts[3] if len(parts) == 4 else local


class Errors(Counter[str]):
    def note(self, kind: str, detail: object = "") -> None:
        self[kind] += 1
        if self[kind] <= 3:
            tqdm.write(f"  {kind}: {str(detail)[:200]}", file=sys.stderr)


# -- customers ---------------------------------------------------------------------------


class Load:
    def __init__(
        self,
        gateways: list[BenchGateway],
        observed: Observed,
        http: aiohttp.ClientSession,
        sockets_http: aiohttp.ClientSession,
        *,
        reply_timeout: float,
        think: float,
        seed: int,
    ) -> None:
        self.gateways = gateways
        self.observed = observed
        self.http = http
        self.rest_sessions = RestSessions()
        self.sockets_http = sockets_http
        """Websockets stay open to the end: on a session of their own, so they never use up the
        connection pool the customers' HTTP requests and the agents need."""
        self.reply_timeout = reply_timeout
        self.think = think
        self.rng = random.Random(seed + 1)
        self.turns: list[SentTurn] = []
        self.by_key: dict[tuple[str, str], SentTurn] = {}
        self.errors = Errors()
        self.update_ids = itertools.count(int(time.time()) * 1000)
        self.sockets: list[aiohttp.ClientWebSocketResponse] = []
        self.readers: list[asyncio.Task[None]] = []
        self.acks: dict[str, asyncio.Event] = {}
        self.escalated: dict[tuple[str, str], float] = {}
        """(channel, address) → when the customer asked for a person."""

    async def pause(self) -> None:
        await asyncio.sleep(self.think * self.rng.uniform(0.5, 1.5))

    async def customer(self, customer: Customer) -> None:
        gateway = self.gateways[customer.gateway]
        socket = await self._app_socket(customer, gateway) if customer.channel == "app" else None
        if customer.channel == "app" and socket is None:
            return
        for index, text in enumerate(customer.texts):
            escalation = customer.escalates and index == len(customer.texts) - 1
            seen = customer.replies_seen
            customer.changed.clear()
            turn = await self._send(customer, gateway, index, text, socket)
            if turn is None:
                continue
            turn.escalation = escalation
            if escalation:
                self.escalated[(customer.channel, customer.address)] = turn.sent_at
            if customer.channel != "rest":
                await self._wait_reply(customer, seen)
            await self.pause()

    async def _wait_reply(self, customer: Customer, seen: int) -> None:
        deadline = now() + self.reply_timeout
        while customer.replies_seen <= seen:
            remaining = deadline - now()
            if remaining <= 0:
                self.errors.note(f"no_reply_in_{self.reply_timeout:.0f}s:{customer.channel}", customer.address)
                return
            customer.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(customer.changed.wait(), remaining)

    async def _send(
        self,
        customer: Customer,
        gateway: BenchGateway,
        index: int,
        text: str,
        socket: aiohttp.ClientWebSocketResponse | None,
    ) -> SentTurn | None:
        update_id = next(self.update_ids)
        for attempt in range(3):  # a retry carries the same id, as the providers' retries do
            try:
                if customer.channel == "rest":
                    return await self._rest(customer, gateway, index, text)
                if customer.channel == "app":
                    assert socket is not None
                    return await self._app(customer, socket, index, text)
                if customer.channel == "telegram":
                    return await self._telegram(customer, gateway, index, text, update_id)
                return await self._email(customer, gateway, index, text)
            except (aiohttp.ClientError, aiosmtplib.SMTPException, OSError, TimeoutError, Retry) as exc:
                self.errors.note(f"{customer.channel}:{type(exc).__name__}", exc)
                await asyncio.sleep(1 + attempt)
        self.errors.note(f"{customer.channel}:gave_up", customer.address)
        return None

    def _record(self, customer: Customer, channel_message_id: str, index: int) -> SentTurn:
        """The turn as first sent (a retry keeps the first send time)."""
        key = (customer.channel, channel_message_id)
        if key not in self.by_key:
            self.by_key[key] = SentTurn(customer.channel, channel_message_id, customer.number, index, now(), False)
            self.turns.append(self.by_key[key])
        return self.by_key[key]

    async def _rest(self, customer: Customer, gateway: BenchGateway, index: int, text: str) -> SentTurn:
        body = {"sender": customer.address, "message": text, "message_id": f"m{index}"}
        turn = self._record(customer, f"{customer.address}:m{index}", index)
        headers = self.rest_sessions.headers(customer.address)
        async with self.http.post(f"{gateway.url}/webhooks/rest/webhook", json=body, headers=headers) as response:
            if response.status != 200:
                raise Retry(f"REST {response.status}: {(await response.text())[:200]}")
            self.rest_sessions.keep(customer.address, response.headers)
            replies = await response.json()
        turn.answered_at, turn.rest_replies = now(), len(replies)
        return turn

    async def _telegram(
        self, customer: Customer, gateway: BenchGateway, index: int, text: str, update_id: int
    ) -> SentTurn:
        chat = int(customer.address)
        update = {
            "update_id": update_id,
            "message": {
                "message_id": index + 1, "date": int(time.time()), "text": text,
                "chat": {"id": chat, "type": "private", "first_name": "顾客"},
                "from": {"id": chat, "is_bot": False, "first_name": "顾客", "language_code": "zh-hans"},
            },
        }  # fmt: skip
        turn = self._record(customer, str(update_id), index)
        headers = {SECRET_HEADER: WEBHOOK_SECRET}
        async with self.http.post(f"{gateway.url}{TELEGRAM_PATH}", json=update, headers=headers) as response:
            if response.status != 200:
                raise Retry(f"Telegram webhook {response.status}: {(await response.text())[:200]}")
        return turn

    async def _email(self, customer: Customer, gateway: BenchGateway, index: int, text: str) -> SentTurn:
        message_id = f"peak-{customer.number}-{index}@peak.example"
        mail = EmailMessage()
        mail["From"] = customer.address
        mail["To"] = SERVICE_ADDRESS
        mail["Subject"] = "售后咨询" if index == 0 else "Re: 售后咨询"
        mail["Message-ID"] = f"<{message_id}>"
        mail.set_content(text)
        turn = self._record(customer, message_id, index)
        await aiosmtplib.send(mail, hostname="127.0.0.1", port=gateway.smtp_port, timeout=60)
        return turn

    async def _app_socket(self, customer: Customer, gateway: BenchGateway) -> aiohttp.ClientWebSocketResponse | None:
        expires = int(time.time()) + 6 * 3600
        token = sign_user(APP_SECRET, customer.address, expires)
        url = f"{gateway.url}/webhooks/app/ws?user={customer.address}&expires={expires}&token={token}"
        try:
            socket = await self.sockets_http.ws_connect(url, heartbeat=None)
        except (aiohttp.ClientError, OSError) as exc:
            self.errors.note("app:connect", exc)
            return None
        self.sockets.append(socket)  # open until the end: agents' replies arrive later
        self.readers.append(asyncio.create_task(self._read(customer, socket)))
        return socket

    async def _read(self, customer: Customer, socket: aiohttp.ClientWebSocketResponse) -> None:
        async for frame in socket:
            if frame.type != aiohttp.WSMsgType.TEXT:
                continue
            data = json.loads(frame.data)
            kind = data.get("type")
            if kind == "message" and data.get("direction") == "out":
                self.observed.app_frames.append((customer.address, data["id"], data.get("in_reply_to"), now()))
                customer.saw_reply()
            elif kind == "ack":
                self.acks.setdefault(f"{customer.address}:{data.get('client_id')}", asyncio.Event()).set()
            elif kind == "error":
                self.errors.note(f"app:error_frame:{data.get('error')}", data.get("detail"))

    async def _app(
        self, customer: Customer, socket: aiohttp.ClientWebSocketResponse, index: int, text: str
    ) -> SentTurn:
        client_id = f"c{index}"
        channel_message_id = f"{customer.address}:{client_id}"
        turn = self._record(customer, channel_message_id, index)
        acked = self.acks.setdefault(channel_message_id, asyncio.Event())
        await socket.send_json({"type": "message", "client_id": client_id, "text": text})
        try:
            await asyncio.wait_for(acked.wait(), self.reply_timeout)
        except TimeoutError:
            raise Retry(f"no ack for {channel_message_id}") from None
        return turn

    async def close(self) -> None:
        for socket in self.sockets:
            await socket.close()
        for reader in self.readers:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader


class Retry(OperationalError):
    """The gateway did not take the message (not 200 / no ack): the client sends it again."""

    code = "not_taken"


# -- agents ------------------------------------------------------------------------------


@dataclass
class AgentStats:
    claimed: int = 0
    conflicts: int = 0
    answered: int = 0
    closed: int = 0
    errors: Errors = field(default_factory=Errors)


async def agent(
    name: str,
    gateway: BenchGateway,
    http: aiohttp.ClientSession,
    stats: AgentStats,
    done: asyncio.Event,
    rng: random.Random,
) -> None:
    """Claims waiting conversations, answers each once and closes it, until the customers are done
    and the queue stays empty."""
    headers = {"Authorization": f"Bearer {AGENT_TOKEN}"}
    base = f"{gateway.url}/api/agent"

    async def post(path: str, body: dict[str, Any], ok: int) -> int:
        """POST, retried on a timeout or a dropped connection; a retry answered 409 had succeeded."""
        for attempt in range(3):
            try:
                async with http.post(f"{base}/conversations/{path}", json=body, headers=headers) as response:
                    if response.status not in (ok, 409):
                        stats.errors.note(f"agent:{path.rsplit('/', 1)[-1]}_{response.status}", await response.text())
                    return ok if attempt and response.status == 409 else response.status
            except (aiohttp.ClientError, TimeoutError) as exc:
                stats.errors.note(f"agent:{type(exc).__name__}", exc)
                await asyncio.sleep(1)
        return 0

    idle = 0
    while idle < 3:
        try:
            async with http.get(f"{base}/queue", headers=headers) as response:
                if response.status != 200:
                    stats.errors.note(f"agent:queue_{response.status}", await response.text())
                    await asyncio.sleep(1)
                    continue
                waiting = (await response.json())["waiting"]
        except (aiohttp.ClientError, TimeoutError) as exc:
            stats.errors.note(f"agent:queue_{type(exc).__name__}", exc)
            await asyncio.sleep(1)
            continue
        if not waiting:
            idle = idle + 1 if done.is_set() else 0
            await asyncio.sleep(0.5)
            continue
        idle = 0
        conversation = rng.choice(waiting[:5])["conversation_id"]
        status = await post(f"{conversation}/claim", {"agent": name}, 200)
        if status == 409:
            stats.conflicts += 1  # a colleague was quicker: expected
            continue
        if status != 200:
            continue
        stats.claimed += 1
        await asyncio.sleep(rng.uniform(0.2, 0.8))  # reads the summary, types
        text = f"您好，我是客服{name}，已为您查看，马上处理。"
        reply = {"agent": name, "text": text, "client_message_id": uuid.uuid4().hex}  # a retry is stored once
        if await post(f"{conversation}/messages", reply, 201) != 201:
            continue
        stats.answered += 1
        await asyncio.sleep(rng.uniform(0.2, 0.8))
        if await post(f"{conversation}/close", {"agent": name, "resolution": "peak-bench"}, 200) == 200:
            stats.closed += 1


# -- checks --------------------------------------------------------------------------------


def quantiles(values: list[float]) -> dict[str, float | int | None]:
    ordered = sorted(values)
    if not ordered:
        return {"n": 0, "p50_ms": None, "p95_ms": None, "p99_ms": None, "max_ms": None}
    return {
        "n": len(ordered),
        "p50_ms": round(percentile(ordered, 0.5) * 1000, 1),
        "p95_ms": round(percentile(ordered, 0.95) * 1000, 1),
        "p99_ms": round(percentile(ordered, 0.99) * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
    }


async def wait_drained(store: ConversationStore, seconds: float) -> int:
    """Wait until the outbox holds no reply that is neither sent nor given up; returns what is left."""
    deadline = now() + seconds
    while True:
        pending = await store.messages.count_documents(
            {"direction": "out", "channel": {"$in": list(PUSH_CHANNELS)}, "delivered": False, "failed": {"$ne": True}}
        )
        if pending == 0 or now() > deadline:
            return pending
        await asyncio.sleep(1)


async def check(store: ConversationStore, load: Load, observed: Observed, customers: list[Customer]) -> dict[str, Any]:
    """Compare what the clients sent and saw with what the store recorded."""
    projection = {"_id": 1, "channel": 1, "channel_message_id": 1, "processed": 1}
    inbound = [d async for d in store.messages.find({"direction": "in"}, projection)]
    fields = ("channel", "in_reply_to", "author", "delivered", "failed", "provider_message_id", "recipient_id")
    outbound = [d async for d in store.messages.find({"direction": "out"}, {"_id": 1, **dict.fromkeys(fields, 1)})]
    sent = {(t.channel, t.channel_message_id): t for t in load.turns}
    stored = Counter((d["channel"], d["channel_message_id"]) for d in inbound)
    inbound_key = {str(d["_id"]): (d["channel"], d["channel_message_id"]) for d in inbound}
    result: dict[str, Any] = {
        "inbound": {
            "sent_by_clients": len(sent),
            "stored_total": len(inbound),
            "stored_distinct": len(stored),
            "lost": len(set(sent) - set(stored)),
            "stored_not_sent": len(set(stored) - set(sent)),
            "stored_twice": sum(1 for n in stored.values() if n > 1),
            "unprocessed": sum(1 for d in inbound if d.get("processed") is False),
        }
    }
    by_id = {str(d["_id"]): d for d in outbound}
    # What each client side received, as store ids (None: nothing in the store sent it).
    received: dict[str, list[tuple[str | None, float]]] = defaultdict(list)
    for _user, message_id, _reply_to, at in observed.app_frames:
        received["app"].append((message_id if message_id in by_id else None, at))
    by_provider = {
        str(d["provider_message_id"]): str(d["_id"])
        for d in outbound
        if d["channel"] == "telegram" and d.get("provider_message_id")
    }
    for delivery in observed.telegram:
        received["telegram"].append((by_provider.get(str(delivery.message_id)), delivery.at))
    mail_batches: dict[str, list[str]] = defaultdict(list)  # a turn's replies go out as one mail
    for d in outbound:
        if d["channel"] == "email":
            mail_batches[str(d.get("in_reply_to") or d["_id"])].append(str(d["_id"]))
    for mail in observed.mails:
        mail_id = mail_store_id(str(mail.mail.get("Message-ID", "")))
        received["email"].append((mail_id if mail_id in by_id else None, mail.at))

    replies: dict[str, Any] = {}
    first_reply: dict[tuple[str, str], float] = {}
    agent_seen: dict[str, float] = {}
    """Agent reply (store id) → seconds from the customer asking for a person to its first arrival."""
    for channel in PUSH_CHANNELS:
        mine = [d for d in outbound if d["channel"] == channel]
        counts = Counter(store_id for store_id, _ in received[channel] if store_id is not None)
        expected_ids = {str(d["_id"]) for d in mine if d.get("delivered")}
        if channel == "email":  # one mail per batch: the batch's first message id is in it
            covered = {m for batch in mail_batches.values() if any(counts.get(i) for i in batch) for m in batch}
            missing = {i for i in expected_ids if i not in covered}
        else:
            missing = {i for i in expected_ids if not counts.get(i)}
        replies[channel] = {
            "recorded": len(mine),
            "recorded_by_agents": sum(1 for d in mine if str(d.get("author", "")).startswith("agent:")),
            "delivered_in_store": len(expected_ids),
            "failed_in_store": sum(1 for d in mine if d.get("failed")),
            "pending_in_store": sum(1 for d in mine if not d.get("delivered") and not d.get("failed")),
            "received_by_clients": len(received[channel]),
            "received_distinct": len(counts),
            "received_twice": sum(n - 1 for n in counts.values() if n > 1),
            "received_unknown_to_store": sum(1 for store_id, _ in received[channel] if store_id is None),
            "delivered_but_not_received": len(missing),
        }
        for store_id, at in received[channel]:
            doc = by_id.get(store_id or "")
            if doc is None:
                continue
            if str(doc.get("author", "")).startswith("agent:"):
                asked = load.escalated.get((channel, str(doc.get("recipient_id"))))
                if asked is not None and store_id is not None:
                    agent_seen[store_id] = min(at - asked, agent_seen.get(store_id, at - asked))
                continue
            key = inbound_key.get(str(doc.get("in_reply_to") or ""))  # a mail's batch shares one in_reply_to
            if key is not None and (key not in first_reply or at < first_reply[key]):
                first_reply[key] = at
    rest_out = [d for d in outbound if d["channel"] == "rest"]
    rest_agent = sum(1 for d in rest_out if str(d.get("author", "")).startswith("agent:"))
    replies["rest"] = {
        "recorded": len(rest_out),
        "recorded_by_agents": rest_agent,
        "received_by_clients": sum(t.rest_replies for t in load.turns if t.channel == "rest"),
        "note": "REST answers in the HTTP response; agents' replies have no way to a REST client",
    }
    latencies: dict[str, list[float]] = defaultdict(list)
    unanswered: Counter[str] = Counter()
    for key, turn in sent.items():
        if turn.channel == "rest":
            if turn.answered_at is not None and turn.rest_replies:
                latencies["rest"].append(turn.answered_at - turn.sent_at)
            else:
                unanswered["rest"] += 1
        elif key in first_reply:
            latencies[turn.channel].append(first_reply[key] - turn.sent_at)
        else:
            unanswered[turn.channel] += 1
    result["replies"] = replies
    result["latency"] = {
        "overall": quantiles([v for values in latencies.values() for v in values]),
        **{channel: quantiles(values) for channel, values in sorted(latencies.items())},
        "agent_reply_after_asking": quantiles(list(agent_seen.values())),
    }
    result["turns_without_a_reply"] = dict(unanswered)
    answered_in_store = {str(d.get("in_reply_to")) for d in outbound if d.get("in_reply_to")}
    result["inbound_without_a_reply_in_store"] = sum(1 for d in inbound if str(d["_id"]) not in answered_in_store)
    events = Counter([d["name"] async for d in store.events.find(
        {"name": {"$in": ["handed_off", "agent_claimed", "agent_closed", "delivery_failed", "nlu_unavailable"]}},
        {"name": 1},
    )])  # fmt: skip
    result["escalations"] = {
        "asked_by_customers": sum(1 for c in customers if c.escalates),
        "handed_off_events": events["handed_off"],
        "agent_claimed_events": events["agent_claimed"],
        "agent_closed_events": events["agent_closed"],
        "still_waiting": await store.conversations.count_documents({"state": "waiting_agent"}),
        "agent_replies_recorded": sum(r["recorded_by_agents"] for r in replies.values()),
        "agent_replies_received": len(agent_seen),
    }
    result["nlu_unavailable_events"] = events["nlu_unavailable"]
    result["delivery_failed_events"] = events["delivery_failed"]
    return result


def problems_of(checks: dict[str, Any]) -> list[str]:
    """Losses and duplicates: any of these fails the run."""
    found = []
    inbound = checks["inbound"]
    for name in ("lost", "stored_not_sent", "stored_twice", "unprocessed"):
        if inbound[name]:
            found.append(f"inbound {name}: {inbound[name]}")
    if not inbound["stored_total"] == inbound["stored_distinct"] == inbound["sent_by_clients"]:
        found.append("inbound: stored != sent")
    for channel in PUSH_CHANNELS:
        row = checks["replies"][channel]
        for name in ("received_twice", "received_unknown_to_store", "delivered_but_not_received", "pending_in_store"):
            if row[name]:
                found.append(f"{channel} replies {name}: {row[name]}")
    rest = checks["replies"]["rest"]
    if rest["received_by_clients"] != rest["recorded"] - rest["recorded_by_agents"]:
        found.append(f"rest replies received {rest['received_by_clients']} != recorded {rest['recorded']}")
    escalations = checks["escalations"]
    push_agent_replies = sum(checks["replies"][c]["recorded_by_agents"] for c in PUSH_CHANNELS)
    if escalations["agent_replies_received"] < push_agent_replies:
        found.append(f"agent replies received {escalations['agent_replies_received']} < recorded {push_agent_replies}")
    return found


# -- the run -------------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> int:
    keep = args.workdir is not None
    work = Path(args.workdir) if keep else Path(tempfile.mkdtemp(prefix="bench-peak-"))
    work.mkdir(parents=True, exist_ok=True)
    customers, own_orders = population(args.customers, args.gateways, args.seed, args.only)
    orders_file = work / "orders.json"
    demo = json.loads(DEMO_ORDERS.read_text(encoding="utf-8"))["orders"]
    orders_file.write_text(json.dumps({"orders": demo + own_orders}, ensure_ascii=False), encoding="utf-8")

    print(f"work dir {work}; starting nx-27017, {args.rasa_servers} Rasa server(s), stand-ins …", file=sys.stderr)
    mongo = EmbeddedMongo(work / "mongo")
    project = NluProject(var_dir=work / "rasa")
    model = project.train()
    token = uuid.uuid4().hex
    rasas = []
    for n in range(args.rasa_servers):
        server = EmbeddedRasaServer(NluProject(var_dir=work / f"rasa-{n}"), model)
        server.token = token  # the gateway has one RASA_TOKEN for all its servers
        rasas.append(server)
    standin, sink = BotApiStandIn(), SmtpSink()
    observed = Observed(customers)
    standin.on_delivery, sink.on_mail = observed.on_telegram, observed.on_mail
    started_infra = now()
    await asyncio.gather(mongo.start(), *(r.start() for r in rasas), standin.start(), sink.start())
    print(f"  infrastructure up in {now() - started_infra:.0f} s", file=sys.stderr)
    gateways = []
    for n in range(args.gateways):
        port, smtp_port = free_port(), free_port()
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO_ROOT),
            "MONGODB_URI": mongo.uri, "MONGODB_DATABASE": DATABASE,
            "RASA_URL": ",".join(r.url for r in rasas), "RASA_TOKEN": token,
            "GATEWAY_PORT": str(port), "GATEWAY_VAR_DIR": str(work / f"gateway-{n}"),
            "TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_WEBHOOK_SECRET": WEBHOOK_SECRET, "TELEGRAM_MODE": "webhook",
            "TELEGRAM_API_BASE_URL": standin.base_url,
            "APP_IM_SECRET": APP_SECRET,
            "EMAIL_ADDRESS": SERVICE_ADDRESS, "EMAIL_SMTP_LISTEN": f"127.0.0.1:{smtp_port}",
            "EMAIL_SMTP_RELAY": f"127.0.0.1:{sink.port}",
            "AGENT_API_TOKEN": AGENT_TOKEN,
        }  # fmt: skip
        gateways.append(BenchGateway(n, env, port, smtp_port, work / f"gateway-{n}.log"))
    store = ConversationStore.from_uri(mongo.uri, DATABASE)
    exit_code = 0
    summary: dict[str, Any] = {}
    connector = aiohttp.TCPConnector(limit=args.concurrency * 2 + args.agents + 8)
    try:
        async with (
            aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=120)) as http,
            aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0), timeout=aiohttp.ClientTimeout(total=None, connect=30)
            ) as sockets_http,
        ):
            await gateways[0].start_serving(orders_file)  # seeds the orders once
            await asyncio.gather(*(g.start_serving(None) for g in gateways[1:]))
            print(
                f"{len(gateways)} gateway(s) healthy; {len(customers)} customers "
                f"({dict(Counter(c.channel for c in customers))}), {sum(c.escalates for c in customers)} will ask "
                f"for a person; concurrency {args.concurrency}, {args.agents} agents",
                file=sys.stderr,
            )
            load = Load(
                gateways,
                observed,
                http,
                sockets_http,
                reply_timeout=args.reply_timeout,
                think=args.think,
                seed=args.seed,
            )
            customers_done = asyncio.Event()
            agent_stats = AgentStats()
            rng = random.Random(args.seed + 2)
            agents = [
                asyncio.create_task(
                    agent(f"agent{n}", gateways[n % len(gateways)], http, agent_stats, customers_done, rng)
                )
                for n in range(args.agents)
            ]
            queue = list(reversed(customers))
            deadline = now() + args.max_seconds
            skipped = 0
            bar = tqdm(
                total=len(customers),
                unit="cust",
                file=sys.stderr,
                smoothing=0.1,
                mininterval=1 if sys.stderr.isatty() else 10,
            )

            async def worker() -> None:
                nonlocal skipped
                while queue:
                    customer = queue.pop()
                    if now() > deadline:
                        skipped += 1
                        continue
                    try:
                        await load.customer(customer)
                    except Exception as exc:  # a bench bug must not stop the other customers
                        load.errors.note(f"bench:{type(exc).__name__}", repr(exc))
                    bar.update()
                    bar.set_postfix(turns=len(load.turns), errors=sum(load.errors.values()), refresh=False)

            started = now()
            await asyncio.gather(*(worker() for _ in range(args.concurrency)))
            load_seconds = now() - started
            bar.close()
            customers_done.set()
            print("customers done; agents finish the queue, outbox drains …", file=sys.stderr)
            await asyncio.wait_for(asyncio.gather(*agents), args.drain_seconds)
            pending = await wait_drained(store, args.drain_seconds)
            await asyncio.sleep(2)  # the last frames and mails in flight
            total_seconds = now() - started
            checks = await check(store, load, observed, customers)
            await load.close()
        checks["errors"] = dict(sorted((load.errors + agent_stats.errors).items()))
        checks["agents"] = {k: v for k, v in agent_stats.__dict__.items() if k != "errors"}
        checks["pending_after_drain"] = pending
        checks["skipped_customers_deadline"] = skipped
        problems = problems_of(checks)
        report = await peak_report_command(mongo.uri)
        if report is not None and report["volumes"]["total"]["messages"] != checks["inbound"]["stored_total"]:
            problems.append("report: customer messages differ from the store's count")
        summary = {
            "config": {k: v for k, v in vars(args).items() if k != "json"},
            "duration_s": round(total_seconds, 1),
            "load_s": round(load_seconds, 1),
            "turns": len(load.turns),
            "turns_per_s": round(len(load.turns) / load_seconds, 1) if load_seconds else None,
            "customers": len(customers) - skipped,
            **checks,
            "gateway_log_problems": {f"gateway-{g.index}": dict(g.log_problems().most_common(8)) for g in gateways},
            "problems": problems,
            "report": report,
        }
        print_summary(summary)
        if report is not None:
            print("\n" + format_text(report))
        if problems:
            print("\nFAILED: " + "; ".join(problems), file=sys.stderr)
            exit_code = 1
        else:
            print("\nOK: every message stored once, every reply received once", file=sys.stderr)
    finally:
        await asyncio.gather(*(g.stop() for g in gateways))
        await store.close()
        await asyncio.gather(*(r.stop() for r in rasas), standin.stop(), sink.stop())
        await mongo.stop()
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
    if args.json:
        await asyncio.to_thread(
            Path(args.json).write_text, json.dumps(summary, ensure_ascii=False, indent=2), encoding="utf-8"
        )
    return exit_code


async def peak_report_command(mongo_uri: str) -> dict[str, Any] | None:
    """``run.py report peak --json`` over the run's days, as an operator would run it."""
    zone = ZoneInfo(os.environ.get("SHOP_TIMEZONE", "Asia/Shanghai"))
    today = datetime.now(zone).date()
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "MONGODB_URI": mongo_uri, "MONGODB_DATABASE": DATABASE}
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(REPO_ROOT / "run.py"), "report", "peak", "--from", (today - timedelta(days=1)).isoformat(),
        "--to", today.isoformat(), "--json", env=env, cwd=REPO_ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await process.communicate()
    if process.returncode != 0:
        print(f"run.py report peak failed: {err.decode()[-1000:]}", file=sys.stderr)
        return None
    report: dict[str, Any] = json.loads(out)
    return report


def print_summary(summary: dict[str, Any]) -> None:
    print(
        f"\n{summary['customers']} customers, {summary['turns']} turns in {summary['load_s']} s "
        f"({summary['turns_per_s']} turns/s); {summary['duration_s']} s with agents and drain"
    )
    print(f"{'turn latency':<26} {'n':>6} {'p50 ms':>9} {'p95 ms':>9} {'p99 ms':>9} {'max ms':>9}")
    for name, row in summary["latency"].items():
        cells = [f"{row[k] if row[k] is not None else '—':>9}" for k in ("p50_ms", "p95_ms", "p99_ms", "max_ms")]
        print(f"{name:<26} {row['n']:>6} " + " ".join(cells))
    inbound = summary["inbound"]
    print(
        f"inbound: sent {inbound['sent_by_clients']}, stored {inbound['stored_total']} "
        f"({inbound['stored_distinct']} distinct), lost {inbound['lost']}, twice {inbound['stored_twice']}, "
        f"unprocessed {inbound['unprocessed']}"
    )
    for channel, row in summary["replies"].items():
        print(f"replies {channel:<9} " + ", ".join(f"{k} {v}" for k, v in row.items() if k != "note"))
    print("escalations: " + ", ".join(f"{k} {v}" for k, v in summary["escalations"].items()))
    print("agents: " + ", ".join(f"{k} {v}" for k, v in summary["agents"].items()))
    print(
        f"turns without a reply: {summary['turns_without_a_reply'] or 0} (no reply in the store: "
        f"{summary['inbound_without_a_reply_in_store']}); NLU unavailable events: "
        f"{summary['nlu_unavailable_events']}; delivery_failed events: {summary['delivery_failed_events']}"
    )
    print(f"errors: {summary['errors'] or 0}")
    for name, lines in summary["gateway_log_problems"].items():
        for line, count in lines.items():
            print(f"  {name} log x{count}: {line}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--quick", action="store_true", help="200 customers, for a fast check")
    parser.add_argument("--gateways", type=int, default=2, help="run.py serve processes on one store")
    parser.add_argument("--rasa-servers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=64, help="customers talking at once")
    parser.add_argument("--agents", type=int, default=8)
    parser.add_argument("--think", type=float, default=0.5, help="mean seconds a customer waits between turns")
    parser.add_argument("--reply-timeout", type=float, default=60.0, help="seconds to wait for a turn's first reply")
    parser.add_argument("--max-seconds", type=float, default=1800, help="customers not started by then are skipped")
    parser.add_argument("--drain-seconds", type=float, default=180, help="time for agents and outbox at the end")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--only", choices=list(CHANNEL_WEIGHTS), help="every customer on this channel")
    parser.add_argument("--json", metavar="FILE", help="write the summary as JSON")
    parser.add_argument("--workdir", help="keep the store, logs and orders here (default: a temp dir, removed)")
    args = parser.parse_args()
    if args.quick:
        args.customers = min(args.customers, 200)
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
