"""Support for the self-service scenario tests: a customer with their own orders, dated relative
to now (the return window is about "days since delivery"), and readers for the records the
flows write."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp.test_utils import TestClient

from gateway import Gateway
from shop import Order
from shop.aftersales import AfterSalesRequest
from store import InboundMessage, Message
from store.models import Attachment
from store.mongo import ConversationStore
from tests.helpers import Chat, unique_sender

_serial = itertools.count(1)


def new_phone() -> str:
    return "139" + f"{random.randrange(10**8):08d}"


def new_order_id() -> str:
    return f"2026{random.randrange(10**6):06d}{next(_serial):04d}"


def make_order(
    phone: str,
    status: str,
    *,
    delivered_days_ago: float | None = None,
    paid_days_ago: float = 3,
    items: list[dict[str, Any]] | None = None,
    email: str | None = None,
    last_scan_hours_ago: float = 6,
) -> Order:
    """An order of the customer's; a parcel on its way was last scanned ``last_scan_hours_ago``
    (over 48 hours: stalled)."""
    now = datetime.now(UTC)
    items = items or [{"sku": "SKU-CUP-02", "name": "保温杯 480ml", "quantity": 1, "price": 89.0}]
    logistics = []
    if status in ("shipped", "delivered"):
        logistics.append(
            {"time": (now - timedelta(days=paid_days_ago - 0.5)).isoformat(), "description": "【杭州】商家已发货"}
        )
    if status == "shipped" and last_scan_hours_ago < (paid_days_ago - 0.5) * 24:
        scanned = now - timedelta(hours=last_scan_hours_ago)
        logistics.append({"time": scanned.isoformat(), "description": "【杭州转运中心】已发出"})
    if delivered_days_ago is not None:
        logistics.append({"time": (now - timedelta(days=delivered_days_ago)).isoformat(), "description": "已签收"})
    return Order.model_validate(
        {
            "order_id": new_order_id(),
            "status": status,
            "customer": {"name": "测试顾客", "phone": phone, "email": email},
            "items": items,
            "amount": sum(i["price"] * i["quantity"] for i in items),
            "address": "浙江省杭州市西湖区文三路 398 号 5 幢 1201",
            "delivery_slot": None,
            "paid_at": (now - timedelta(days=paid_days_ago)).isoformat(),
            "delivered_at": (now - timedelta(days=delivered_days_ago)).isoformat() if delivered_days_ago else None,
            "logistics": logistics,
        }
    )


class Customer:
    """A signed-in shop customer on the REST channel, with orders of their own."""

    def __init__(self, http: TestClient[object, object], gateway: Gateway, phone: str | None = None) -> None:
        self.phone = phone or new_phone()
        self.gateway = gateway
        self.chat = Chat(http, unique_sender(), phone=self.phone)

    async def order(self, status: str, **kwargs: Any) -> Order:
        order = make_order(self.phone, status, **kwargs)
        assert self.gateway.orders is not None
        await self.gateway.orders.upsert([order])
        return order

    async def say(self, text: str) -> str:
        """All replies of the turn joined, quick replies as numbered lines (as on SMS)."""
        replies = await self.chat.send(text)
        lines: list[str] = []
        for reply in replies:
            lines.append(str(reply.get("text", "")))
            for n, button in enumerate(reply.get("buttons", []) or [], start=1):  # type: ignore[arg-type]
                lines.append(f"{n}. {button['title']}")
        return "\n".join(lines)

    async def on_channel(
        self,
        channel: str,
        text: str,
        *,
        sender: str | None = None,
        attachments: list[Attachment] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> list[Message]:
        """A message on another channel, through the same pipeline a channel adapter feeds."""
        assert self.gateway.turns is not None
        return await self.gateway.turns(
            InboundMessage(
                channel=channel,
                sender_id=sender or f"+86{self.phone}",
                channel_message_id=f"{channel}-{random.randrange(10**12)}",
                text=text,
                attachments=attachments or [],
                profile={"phone": self.phone},
                metadata=metadata or {},
            )
        )

    async def requests(self) -> list[AfterSalesRequest]:
        assert self.gateway.aftersales is not None
        customer_id = await self.customer_id()
        return await self.gateway.aftersales.for_customer(customer_id)

    async def customer_id(self) -> str:
        store = self.gateway.store
        assert store is not None
        doc = await store.customers.find_one({"identities.phone": self.phone})
        assert doc is not None, "the customer has not written yet"
        return str(doc["_id"])

    async def fresh(self, order: Order) -> Order:
        assert self.gateway.orders is not None
        found = await self.gateway.orders.get(order.order_id)
        assert found is not None
        return found


async def events(store: ConversationStore, name: str, **match: Any) -> list[dict[str, Any]]:
    query: dict[str, Any] = {"name": name, **{f"data.{k}": v for k, v in match.items()}}
    return [e async for e in store.events.find(query, {"_id": 0})]
