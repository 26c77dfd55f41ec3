"""Helpers for backoffice tests: the backoffice over a test database with the demo orders, a
clock the test moves, customers with conversations, staff accounts."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from backoffice import Backoffice
from backoffice.audit import AuditLog
from backoffice.permissions import Role
from backoffice.staff import StaffMember
from media_ocr.store import OcrResultStore
from shop import MongoOrderService, load_orders_file
from shop.aftersales import AfterSalesService
from store import InboundMessage
from store.mongo import ConversationStore
from tests.conftest import DEMO_ORDERS

# Tuesday 1 December 2026, 10:00 in Shanghai: inside business hours.
START = datetime(2026, 12, 1, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai")).astimezone(UTC)
ZHANG_PHONE = "13800138000"
ZHANG_DELIVERED = "202611020003"


class Clock:
    def __init__(self, start: datetime = START) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@dataclass
class Contact:
    customer_id: str
    conversation_id: str
    channel: str
    sender_id: str


async def make_backoffice(store: ConversationStore, clock: Clock) -> Backoffice:
    orders = MongoOrderService(store.db)
    await orders.ensure_indexes()
    await orders.upsert(load_orders_file(DEMO_ORDERS))
    audit = AuditLog(store.db)
    aftersales = AfterSalesService(store.db, auditor=audit.request_steps)
    await aftersales.ensure_indexes()
    ocr = OcrResultStore(store.db)
    await ocr.ensure_indexes()
    backoffice = Backoffice(
        store, orders=orders, aftersales=aftersales, audit=audit, conversation_ocr=ocr.ids_for_conversation
    )
    await backoffice.ensure_indexes()
    backoffice.desk.clock = clock
    return backoffice


async def contact(
    store: ConversationStore, text: str = "你好", *, phone: str | None = None, channel: str = "sms"
) -> Contact:
    """A customer who wrote once on a channel, so notices have a conversation to go to."""
    sender = phone or f"1{uuid.uuid4().int % 10**10:010d}"
    receipt = await store.accept_inbound(
        InboundMessage(
            channel=channel,
            sender_id=sender,
            channel_message_id=uuid.uuid4().hex,
            text=text,
            profile={"phone": sender},
        )
    )
    await store.mark_processed(receipt.message.id)
    return Contact(receipt.customer.id, receipt.conversation.id, channel, sender)


async def staff(
    backoffice: Backoffice, staff_id: str, *roles: Role, skills: tuple[str, ...] = (), capacity: int = 10,
    online: bool = True,
) -> tuple[StaffMember, str]:  # fmt: skip
    return await backoffice.staff.create(
        staff_id, name=staff_id, roles=list(roles), skill_groups=list(skills), capacity=capacity, online=online
    )


async def outbox_texts(store: ConversationStore, conversation_id: str) -> list[str]:
    return [m.text for m in await store.history(conversation_id, limit=200) if m.direction.value == "out"]
