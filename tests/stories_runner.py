"""Runs the conversation stories of ``tests/stories/`` (format: ``tests/stories/FORMAT.md``) through
a real gateway: the customer's channel, the real NLU, the real store. Each step's expectations are
checked against what the dialogue recorded for the turn (``acted`` on the customer's message: the
actions it took and what each was about) and against the store (what was written); a failing
story raises with the whole transcript."""

from __future__ import annotations

import itertools
import os
import random
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import opencc
import yaml
from aiohttp.test_utils import TestClient

from channels.base import text_with_choices
from gateway import Gateway
from shop import Order
from shop.aftersales import RequestType, Step
from store import InboundMessage
from tests.helpers import Chat

STORIES = Path(__file__).resolve().parent / "stories"
ACTIONS = frozenset(
    {"greet", "goodbye", "thank", "answer", "ask_order", "ask_item", "ask", "verify", "confirm", "submitted",
     "refused", "existing", "withdrawn", "changed", "urged", "inquiry", "complaint", "handoff", "clarify",
     "cancelled"}
)  # fmt: skip
SLOTS = frozenset(
    {"address", "delivery_time", "pickup", "size", "reason", "photo", "invoice_title", "tax_id", "email", "amount",
     "request"}
)  # fmt: skip
VARIETIES = frozenset({"zh-Hans", "zh-Hant-TW", "zh-Hant-HK", "en"})
CHANNELS = frozenset({"rest", "app", "telegram", "sms", "email"})
STEPS_TO = {
    "applied": (),
    "reviewing": (Step.REVIEWING,),
    "approved": (Step.APPROVED,),
    "awaiting_return": (Step.APPROVED, Step.AWAITING_RETURN),
    "payment_processing": (Step.APPROVED, Step.PAYMENT_PROCESSING),
    "completed": (Step.APPROVED, Step.COMPLETED),
    "rejected": (Step.REVIEWING, Step.REJECTED),
    "cancelled": (Step.CANCELLED,),
}
_serial = itertools.count(1)
_to_simplified = opencc.OpenCC("t2s")
_to_traditional = opencc.OpenCC("s2t")


class StoryError(AssertionError):
    pass


def load_stories(*, backlog: bool | None = None) -> list[dict[str, Any]]:
    """The stories the bot must pass; with ``backlog`` (or ``STORIES_BACKLOG=1``) also those in
    ``stories/backlog/``: goals written by someone who had not seen the dialogue code, that the
    bot does not pass yet (the open work, kept runnable)."""
    if backlog is None:
        backlog = os.environ.get("STORIES_BACKLOG", "") not in ("", "0")
    stories = []
    paths = sorted(STORIES.glob("*.yml")) + (sorted((STORIES / "backlog").glob("*.yml")) if backlog else [])
    for path in paths:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        for number, story in enumerate(document["stories"], start=1):
            story["_where"] = f"{path.name}#{number}"
            validate(story)
            stories.append(story)
    return stories


def validate(story: dict[str, Any]) -> None:
    """The format's rules (FORMAT.md): a malformed story is an error of the story, said plainly."""
    where = f"{story['_where']} {story.get('story')!r}"
    orders = set(story.get("orders") or {})
    requests = set(story.get("requests") or {})
    channel = (story.get("customer") or {}).get("channel", "rest")
    problems = []
    if channel not in CHANNELS:
        problems.append(f"unknown channel {channel}")
    for n, step in enumerate(story.get("steps") or [], start=1):
        if "user" not in step or "expect" not in step:
            problems.append(f"step {n} needs user and expect")
            continue
        expect = step["expect"] or {}
        for action in expect.get("actions", []):
            if action not in ACTIONS:
                problems.append(f"step {n}: unknown action {action}")
        if expect.get("slot") is not None and expect["slot"] not in SLOTS:
            problems.append(f"step {n}: unknown slot {expect['slot']}")
        if expect.get("variety") is not None and expect["variety"] not in VARIETIES:
            problems.append(f"step {n}: unknown variety {expect['variety']}")
        about = expect.get("about") or {}
        if about.get("order") is not None and about["order"] not in orders:
            problems.append(f"step {n}: about names unknown order {about['order']}")
        if step.get("channel") is not None and step["channel"] not in CHANNELS:
            problems.append(f"step {n}: unknown channel {step['channel']}")
    records = story.get("records") or {}
    for name in records.get("untouched", []):
        if name not in orders:
            problems.append(f"untouched names unknown order {name}")
    for request in records.get("requests", []):
        if request.get("order") not in orders:
            problems.append(f"records.requests names unknown order {request.get('order')}")
    for spec in (story.get("requests") or {}).values():
        if spec.get("order") not in orders:
            problems.append(f"requests fixture names unknown order {spec.get('order')}")
    if not story.get("steps"):
        problems.append("no steps")
    if requests & orders:
        problems.append("an order and a request share a name")
    if problems:
        raise StoryError(f"{where}: " + "; ".join(problems))


_CJK_RUN = re.compile(r"[\u4e00-\u9fff]{2,}")


def variety_of(text: str, quoted: frozenset[str] = frozenset()) -> str:
    """The written variety of a reply: English, Simplified, or Traditional (HK or TW wording is not
    told apart here beyond the script). ``quoted`` are Chinese names the reply may repeat whatever
    its language (products, addresses, company names the customer gave): they are not counted."""
    for name in sorted(quoted, key=len, reverse=True):
        text = text.replace(name, " ")
    letters = sum(ch.isascii() and ch.isalpha() for ch in text)
    han = sum("\u4e00" <= ch <= "\u9fff" for ch in text)
    if letters > 2 * han:
        return "en"
    simplified_only = sum(a != b for a, b in zip(text, _to_traditional.convert(text), strict=False))
    traditional_only = sum(a != b for a, b in zip(text, _to_simplified.convert(text), strict=False))
    if traditional_only > simplified_only:
        return "zh-Hant"
    if simplified_only > traditional_only:
        return "zh-Hans"
    return "zh"  # nothing that tells the scripts apart


@dataclass
class Transcript:
    lines: list[str] = field(default_factory=list)

    def add(self, who: str, text: str) -> None:
        self.lines.append(f"{who}: {text}")

    def __str__(self) -> str:
        return "\n".join(self.lines)


class StoryRun:
    """One story against one gateway."""

    def __init__(self, story: dict[str, Any], http: TestClient[object, object], gateway: Gateway) -> None:
        self.story = story
        self.http = http
        self.gateway = gateway
        customer = story.get("customer") or {}
        self.channel = customer.get("channel", "rest")
        self.signed_in = customer.get("signed_in", True)
        self.phone = "139" + f"{random.randrange(10**8):08d}"
        self.email = f"story-{uuid.uuid4().hex[:8]}@example.com"
        self.orders: dict[str, Order] = {}
        self.request_ids: dict[str, str] = {}
        self.transcript = Transcript()
        self.chats: dict[str, Chat] = {}
        self.senders = {name: f"{name}-{uuid.uuid4().hex[:10]}" for name in CHANNELS}
        # Not signed in: the customer writes from an identity the orders do not name.
        self.stranger_phone = "138" + f"{random.randrange(10**8):08d}"

    # -- fixtures -----------------------------------------------------------------------------

    async def set_up(self) -> None:
        assert self.gateway.orders is not None
        for name, spec in (self.story.get("orders") or {}).items():
            order = self._order(spec)
            self.orders[name] = order
        await self.gateway.orders.upsert(list(self.orders.values()))
        for name, spec in (self.story.get("requests") or {}).items():
            self.request_ids[name] = await self._request(spec)
        self.initial = await self.writes()

    def _order(self, spec: dict[str, Any]) -> Order:
        now = datetime.now(UTC)
        order_id = f"2026{random.randrange(10**4):04d}{next(_serial):04d}"
        items = [
            {"quantity": 1, **{k: v for k, v in item.items() if k in ("sku", "name", "price", "quantity", "category",
                                                                       "opened")}}
            for item in spec["items"]
        ]  # fmt: skip
        paid = now - timedelta(days=float(spec.get("paid_days_ago", 3)))
        logistics = []
        shipped = spec.get("shipped_days_ago")
        delivered = spec.get("delivered_days_ago")
        if shipped is None and spec["status"] in ("shipped", "delivered"):
            shipped = max(float(spec.get("paid_days_ago", 3)) - 0.5, (delivered or 0) + 0.5)
        if shipped is not None:
            logistics.append(
                {"time": (now - timedelta(days=float(shipped))).isoformat(), "description": "【杭州】商家已发货"}
            )
        if spec.get("last_scan"):
            scan = spec["last_scan"]
            logistics.append(
                {"time": (now - timedelta(hours=float(scan["hours_ago"]))).isoformat(), "description": scan["place"]}
            )
        if delivered is not None:
            logistics.append({"time": (now - timedelta(days=float(delivered))).isoformat(), "description": "已签收"})
        return Order.model_validate(
            {
                "order_id": order_id,
                "status": spec["status"],
                "customer": {"name": "故事顾客", "phone": self.phone, "email": self.email},
                "items": items,
                "amount": spec.get("amount", sum(i["price"] * i["quantity"] for i in items)),
                "address": spec.get("address", "浙江省杭州市西湖区文三路 398 号 5 幢 1201"),
                "delivery_slot": None,
                "paid_at": paid.isoformat(),
                "delivered_at": (now - timedelta(days=float(delivered))).isoformat() if delivered is not None else None,
                "logistics": logistics,
                "picking_since": (now - timedelta(days=float(spec["picking_days_ago"]))).isoformat()
                if spec.get("picking_days_ago") is not None
                else None,
            }
        )

    async def _request(self, spec: dict[str, Any]) -> str:
        aftersales = self.gateway.aftersales
        assert aftersales is not None
        order = self.orders[spec["order"]]
        item = order.item(spec["sku"]) if spec.get("sku") else None
        customer_id = await self._customer_id()
        request, _ = await aftersales.create(
            type=RequestType(spec["type"]),
            order_id=order.order_id,
            customer_id=customer_id,
            actor="customer",
            channel=spec.get("channel", self.channel),
            items=[item.model_dump(include={"sku", "name", "quantity", "price"})] if item else [],
            amount=item.price if item else order.amount,
            reason=spec.get("reason"),
        )
        steps = STEPS_TO[spec.get("status", "applied")]
        if steps:
            await aftersales.advance(request.id, *steps, actor="system:story")
        return request.id

    async def _customer_id(self) -> str:
        """The customer's id, making the customer (as their channel would) if they have not written yet."""
        store = self.gateway.store
        assert store is not None
        kind, value = ("phone", self.phone) if self.signed_in else (self.channel, self.senders[self.channel])
        doc = await store.customers.find_one({f"identities.{kind}": value})
        if doc is None:
            customer = await store.resolve_customer(
                self.channel, self.senders[self.channel], self._profile(self.channel)
            )
            return customer.id
        return str(doc["_id"])

    def _profile(self, channel: str) -> dict[str, str]:
        if not self.signed_in:
            return {}
        if channel == "email":
            return {"email": self.email}
        return {"phone": self.phone}

    # -- turns --------------------------------------------------------------------------------

    def substitute(self, text: str) -> str:
        for name, order in self.orders.items():
            text = text.replace(f"{{{name}}}", order.order_id)
        for name, request_id in self.request_ids.items():
            text = text.replace(f"{{{name}}}", request_id)
        return text

    async def send(self, channel: str, text: str) -> tuple[list[str], str]:
        """The replies' texts (buttons as numbered lines) and the customer message's store id."""
        store = self.gateway.store
        assert store is not None
        if channel == "rest":
            chat = self.chats.get("rest")
            if chat is None:
                identities = {"phone": self.phone} if self.signed_in else {}
                chat = self.chats["rest"] = Chat(self.http, self.senders["rest"], **identities)
            message_id = uuid.uuid4().hex
            replies = await chat.send(text, message_id=message_id)
            texts = []
            for reply in replies:
                lines = [str(reply.get("text", ""))]
                for n, button in enumerate(reply.get("buttons", []) or [], start=1):  # type: ignore[arg-type]
                    lines.append(f"{n}. {button['title']}")
                texts.append("\n".join(lines))
            doc = await store.messages.find_one({"channel_message_id": f"{chat.sender}:{message_id}"})
            assert doc is not None
            return texts, str(doc["_id"])
        assert self.gateway.turns is not None
        sender = self.senders[channel] if self.signed_in or channel != "sms" else self.stranger_phone
        if channel == "sms" and self.signed_in:
            sender = f"+86{self.phone}"
        if channel == "email":
            sender = self.email if self.signed_in else f"stranger-{uuid.uuid4().hex[:6]}@example.com"
        channel_message_id = f"{channel}-{uuid.uuid4().hex}"
        messages = await self.gateway.turns(
            InboundMessage(
                channel=channel,
                sender_id=sender,
                channel_message_id=channel_message_id,
                text=text,
                profile=self._profile(channel),
            )
        )
        doc = await store.messages.find_one({"channel_message_id": channel_message_id})
        assert doc is not None
        return [text_with_choices(message) for message in messages], str(doc["_id"])

    def quoted(self) -> frozenset[str]:
        """Chinese names an English reply may repeat: the orders' items and addresses, and what
        the customer wrote (an address, a company name)."""
        runs: set[str] = set()
        for order in self.orders.values():
            for text in [order.address, *(i.name for i in order.items)]:
                runs.update(_CJK_RUN.findall(text))
        if self.english_story():
            for step in self.story.get("steps") or []:
                runs.update(_CJK_RUN.findall(str(step.get("user", ""))))
        return frozenset(runs)

    def english_story(self) -> bool:
        return any((step.get("expect") or {}).get("variety") == "en" for step in self.story.get("steps") or [])

    # -- the store's view -----------------------------------------------------------------------

    async def writes(self) -> dict[str, Any]:
        """Everything the customer's actions can write, per order: a snapshot to compare."""
        assert self.gateway.store is not None and self.gateway.orders is not None
        db = self.gateway.store.db
        snapshot: dict[str, Any] = {}
        for name, order in self.orders.items():
            fresh = await self.gateway.orders.get(order.order_id)
            requests = [
                (d["_id"], d["status"], d.get("urges", 0), len(d.get("timeline", [])))
                async for d in db["aftersales_requests"].find({"order_id": order.order_id})
            ]
            tickets = [
                (d["_id"], d.get("status"), d.get("contacts", 0))
                async for d in db["tickets"].find({"order_id": order.order_id})
            ]
            followups = [d["_id"] async for d in db["followups"].find({"order_id": order.order_id})]
            snapshot[name] = {
                "changes": len(fresh.changes) if fresh else 0,
                "status": fresh.status.value if fresh else None,
                "requests": sorted(requests),
                "tickets": sorted(tickets),
                "followups": sorted(followups),
            }
        return snapshot

    async def acted(self, message_id: str) -> list[dict[str, Any]]:
        assert self.gateway.store is not None
        doc = await self.gateway.store.messages.find_one({"_id": message_id})
        return list((doc or {}).get("acted") or [])

    # -- running ---------------------------------------------------------------------------------

    async def run(self) -> None:
        await self.set_up()
        for number, step in enumerate(self.story["steps"], start=1):
            channel = step.get("channel", self.channel)
            text = self.substitute(str(step["user"]))
            before = await self.writes()
            self.transcript.add(f"[{number}] customer ({channel})", text)
            replies, message_id = await self.send(channel, text)
            for reply in replies:
                self.transcript.add("    bot", reply.replace("\n", "\n         "))
            acted = await self.acted(message_id)
            self.transcript.add("    acted", ", ".join(_acted_text(a) for a in acted) or "(nothing)")
            after = await self.writes()
            problems = self.check_step(step.get("expect") or {}, replies, acted, before, after)
            if problems:
                self.fail(f"step {number}: " + "; ".join(problems))
        problems = await self.check_records(self.story.get("records") or {})
        if problems:
            self.fail("records: " + "; ".join(problems))

    def fail(self, why: str) -> None:
        raise StoryError(
            f"{self.story['_where']} {self.story['story']!r}\n{why}\n--- transcript ---\n{self.transcript}"
        )

    def check_step(
        self,
        expect: dict[str, Any],
        replies: list[str],
        acted: list[dict[str, Any]],
        before: dict[str, Any],
        after: dict[str, Any],
    ) -> list[str]:
        problems = []
        text = "\n".join(replies)
        done = [a["action"] for a in acted]
        for action in expect.get("actions", []):
            if action not in done:
                problems.append(f"expected action {action}, got {done}")
        if expect.get("slot") and not any(a.get("slot") == expect["slot"] for a in acted if a["action"] == "ask"):
            problems.append(f"expected to ask for {expect['slot']}")
        about = expect.get("about") or {}
        changed = [name for name in self.orders if before[name] != after[name]]
        if about:
            order = self.orders[about["order"]].order_id if about.get("order") else None
            matching = [
                a
                for a in acted
                if (order is None or a.get("order") == order)
                and (about.get("sku") is None or a.get("sku") == about["sku"])
                and (about.get("request_type") is None or a.get("request_type") == about["request_type"])
                and (about.get("request") is None or a.get("request") == self.request_ids.get(about["request"]))
            ]
            if not matching:
                problems.append(f"no action about {about} (acted: {[_acted_text(a) for a in acted]})")
            if about.get("order"):
                wrong = [name for name in changed if name != about["order"]]
                if wrong:
                    problems.append(f"wrote on {wrong}, not only {about['order']}")
        if expect.get("no_write") and changed:
            problems.append(f"wrote on {changed} in a turn that must write nothing")
        for wanted in expect.get("says", []):
            wanted = self.substitute(str(wanted))
            if wanted not in text and _to_simplified.convert(wanted) not in _to_simplified.convert(text):
                problems.append(f"replies do not say {wanted!r}")
        for unwanted in expect.get("not_says", []):
            unwanted = self.substitute(str(unwanted))
            if unwanted in text or _to_simplified.convert(unwanted) in _to_simplified.convert(text):
                problems.append(f"replies say {unwanted!r}")
        variety = expect.get("variety")
        if variety and text.strip():
            found = variety_of(text, self.quoted())
            wanted_script = "zh-Hant" if variety.startswith("zh-Hant") else variety
            if found != wanted_script and not (found == "zh" and wanted_script.startswith("zh")):
                problems.append(f"replies are in {found}, not {variety}")
        return problems

    async def check_records(self, records: dict[str, Any]) -> list[str]:
        assert self.gateway.aftersales is not None and self.gateway.store is not None
        problems = []
        customer_ids = await self._all_customer_ids()
        requests = [r for cid in customer_ids for r in await self.gateway.aftersales.for_customer(cid)]
        for wanted in records.get("requests", []):
            order = self.orders[wanted["order"]].order_id
            found = [
                r
                for r in requests
                if r.type.value == wanted["type"]
                and r.order_id == order
                and (wanted.get("sku") is None or any(i.get("sku") == wanted["sku"] for i in r.items))
                and (wanted.get("status_in") is None or r.status.value in wanted["status_in"])
                and (not wanted.get("withdrawn") or r.status is Step.CANCELLED)
                and (wanted.get("urges") is None or r.urges >= int(wanted["urges"]))
            ]
            if not found:
                problems.append(
                    f"no request {wanted} (have {[(r.type.value, r.order_id, r.status.value) for r in requests]})"
                )
        if "requests_count" in records and len(requests) != records["requests_count"]:
            problems.append(f"{len(requests)} requests, not {records['requests_count']}")
        db = self.gateway.store.db
        for wanted in records.get("order_changes", []):
            order = (
                await self.gateway.orders.get(self.orders[wanted["order"]].order_id) if self.gateway.orders else None
            )
            matching = [
                c
                for c in (order.changes if order else [])
                if c.field == wanted["field"] and (not wanted.get("contains") or wanted["contains"] in (c.new or ""))
            ]
            if not matching:
                problems.append(f"no order change {wanted}")
        tickets = [t async for t in db["tickets"].find({"customer_id": {"$in": customer_ids}})]
        for wanted in records.get("tickets", []):
            order = self.orders[wanted["order"]].order_id if wanted.get("order") else None
            if not any(
                (order is None or t.get("order_id") == order)
                and (not wanted.get("type") or t.get("type") == wanted["type"])
                for t in tickets
            ):
                problems.append(f"no ticket {wanted}")
        if "tickets_count" in records and len(tickets) != records["tickets_count"]:
            problems.append(f"{len(tickets)} tickets, not {records['tickets_count']}")
        for wanted in records.get("followups", []):
            order = self.orders[wanted["order"]].order_id
            found = [f async for f in db["followups"].find({"order_id": order, "kind": wanted["kind"]})]
            if not found:
                problems.append(f"no follow-up {wanted}")
            elif wanted.get("due_within_hours") is not None:
                horizon = datetime.now(UTC) + timedelta(hours=float(wanted["due_within_hours"]))
                if not any(_aware(f["due_at"]) <= horizon for f in found):
                    problems.append(f"follow-up {wanted} is due later than promised")
        final = await self.writes()
        for name in records.get("untouched", []):
            # Requests the story started with are no writes; anything new or changed on the order is.
            for key, before in self.initial[name].items():
                if final[name][key] != before:
                    problems.append(f"untouched order {name}: {key} changed from {before} to {final[name][key]}")
        if "handed_off" in records or "priority_handoff" in records:
            states = [c async for c in db["conversations"].find({"customer_id": {"$in": customer_ids}})]
            waiting = [c for c in states if c.get("state") in ("waiting_agent", "agent")]
            if "handed_off" in records and bool(waiting) != bool(records["handed_off"]):
                problems.append(f"handed off: {bool(waiting)}, expected {records['handed_off']}")
            if records.get("priority_handoff") and not any(int(c.get("priority", 0)) > 0 for c in waiting):
                problems.append("not handed off with priority")
        return problems

    async def _all_customer_ids(self) -> list[str]:
        """Every customer in the story's database (each story has a database of its own)."""
        assert self.gateway.store is not None
        await self._customer_id()
        return [str(d["_id"]) async for d in self.gateway.store.customers.find({})]


def _acted_text(acted: dict[str, Any]) -> str:
    about = ", ".join(f"{k}={v}" for k, v in acted.items() if k != "action" and v is not None)
    return f"{acted['action']}({about})" if about else str(acted["action"])


def _aware(value: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)
