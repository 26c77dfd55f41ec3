"""Telling people about tickets: the customer hears of status changes on their own channel
(through the outbox, once per change), agents get alerts (new ticket in their queue, a ticket
assigned to them, an SLA reminder or breach, a customer who wrote again).

Customer notices are keyed by the change they report, so a retried change sends nothing twice.
Alerts are keyed the same way and read by audience: ``staff:<id>``, ``queue:<name>``,
``role:<role>``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field
from pymongo import DESCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from backoffice.permissions import Actor
from store import Message, OutboundMessage, QuickReply
from store.mongo import ConversationStore, array_indexes_work

NOTICES: dict[str, dict[str, str]] = {
    "accepted": {
        "zh": "您的售后工单 {ticket_id}（{type}）已由专员受理，我们会尽快为您处理。",
        "en": "Your after-sales ticket {ticket_id} ({type}) is now with a specialist; we'll handle it shortly.",
    },
    "pending_customer": {
        "zh": "关于工单 {ticket_id}，还需要您补充：{note}。请直接回复本消息。",
        "en": "About ticket {ticket_id}, we need a little more from you: {note}. Just reply to this message.",
    },
    "approved": {
        "zh": "您的{type}申请（工单 {ticket_id}）已审核通过。{next}",
        "en": "Your {type} request (ticket {ticket_id}) is approved. {next}",
    },
    "rejected": {
        "zh": "很抱歉，您的{type}申请（工单 {ticket_id}）未通过审核：{note}。如有疑问请直接回复。",
        "en": "Sorry, your {type} request (ticket {ticket_id}) was not approved: {note}. Reply if you have questions.",
    },
    "resolved": {
        "zh": "您的工单 {ticket_id} 已处理完成。{note}",
        "en": "Your ticket {ticket_id} is resolved. {note}",
    },
    "reopened": {
        "zh": "您的工单 {ticket_id} 已重新打开，专员会继续跟进。",
        "en": "Your ticket {ticket_id} is open again; a specialist will follow it up.",
    },
    "auto_rule": {"zh": "（按「{rule}」规则自动审核）", "en": "(Decided automatically: {rule}.) "},
    "next_refund": {
        "zh": "¥{amount:.2f} 将原路退回，一般 1-3 个工作日到账。",
        "en": "¥{amount:.2f} goes back to your original payment method, usually within 1–3 working days.",
    },
    "next_return": {
        "zh": "请按退货码 {return_code} 寄回商品，我们收到后尽快处理。",
        "en": "Please send the item back with return code {return_code}; we'll process it on arrival.",
    },
    "next_resend": {"zh": "补发商品将尽快发出。", "en": "The replacement will be sent shortly."},
    "next_compensation": {
        "zh": "赔付 ¥{amount:.2f} 将尽快到账。",
        "en": "The compensation of ¥{amount:.2f} will reach you shortly.",
    },
    "next_other": {"zh": "我们会继续为您处理。", "en": "We'll carry on with it."},
}


def notice(key: str, language: str, **values: Any) -> str:
    templates = NOTICES[key]
    return templates.get(language, templates["zh"]).format(**values).strip()


class CustomerNotifier:
    """Puts a notice in the outbox of the customer's conversation."""

    def __init__(
        self,
        store: ConversationStore,
        on_queued: Callable[[str], None] | None = None,
        relay: dict[str, str] | None = None,
    ) -> None:
        self.store = store
        self.on_queued = on_queued
        self.relay = relay or {}
        """Channels that cannot carry a later message, and the one that reaches the same identity:
        ``{"voice": "sms"}`` tells a caller by SMS (the call is long over)."""

    async def language_of(self, conversation_id: str | None) -> str:
        conversation = await self.store.get_conversation(conversation_id) if conversation_id else None
        return conversation.language if conversation else "zh"

    async def send(
        self,
        conversation_id: str | None,
        text: str | Callable[[str], str],
        *,
        key: str,
        quick_replies: Sequence[QuickReply] = (),
        author: str = "system:backoffice",
    ) -> Message | None:
        """``text`` may be a function of the conversation's language. None when there is no
        conversation to write to (a ticket submitted without one)."""
        conversation = await self.store.get_conversation(conversation_id) if conversation_id else None
        if conversation is None:
            return None
        relayed = self.relay.get(conversation.channel)
        customer = await self.store.get_customer(conversation.customer_id) if relayed else None
        if relayed and customer is not None:
            language = conversation.language
            conversation = await self.store.open_conversation(customer, relayed, conversation.sender_id)
            conversation = conversation.model_copy(update={"language": language})
        body = text(conversation.language) if callable(text) else text
        message = await self.store.record_outbound(
            OutboundMessage(
                channel=conversation.channel,
                recipient_id=conversation.sender_id,
                conversation_id=conversation.id,
                text=body,
                quick_replies=list(quick_replies),
                author=author,
            ),
            customer_id=conversation.customer_id,
            sequence=0,
            key=key,
        )
        if self.on_queued is not None:
            self.on_queued(conversation.channel)
        return message


class Alert(BaseModel):
    id: str
    kind: str
    """new_ticket, assigned, sla_warning, sla_breached, escalated, customer_replied"""
    ticket_id: str
    audience: list[str]
    text: dict[str, str]
    created_at: datetime
    read_by: list[str] = Field(default_factory=list)


def audiences(actor: Actor) -> list[str]:
    return [f"staff:{actor.id}", *(f"queue:{q}" for q in actor.skill_groups), *(f"role:{r.value}" for r in actor.roles)]


class StaffAlerts:
    """Alerts for agents in ``staff_alerts``; the console shows them live."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.db = db
        self.alerts = db["staff_alerts"]
        self.listeners: list[Callable[[Alert], None]] = []
        """Called for every new alert (the console's live updates subscribe here)."""

    async def ensure_indexes(self, *, array_indexes: bool | None = None) -> None:
        """``array_indexes``: whether the server can index array fields (asked when not given)."""
        if array_indexes is None:
            array_indexes = await array_indexes_work(self.db)
        if array_indexes:
            await self.alerts.create_index("audience")
        await self.alerts.create_index("ticket_id")

    async def raise_alert(
        self, key: str, *, kind: str, ticket_id: str, audience: Sequence[str], text: dict[str, str]
    ) -> bool:
        """True when new; the same key again is ignored."""
        now = datetime.now(UTC)
        alert = Alert(
            id=key,
            kind=kind,
            ticket_id=ticket_id,
            audience=list(dict.fromkeys(audience)),
            text=text,
            created_at=now.replace(microsecond=now.microsecond // 1000 * 1000),
        )
        doc = alert.model_dump(mode="json")
        doc["_id"] = doc.pop("id")
        try:
            await self.alerts.insert_one(doc)
        except DuplicateKeyError:
            return False
        for listener in self.listeners:
            listener(alert)
        return True

    async def for_actor(self, actor: Actor, *, unread_only: bool = False, limit: int = 100) -> list[Alert]:
        cursor = self.alerts.find({"audience": {"$in": audiences(actor)}}).sort("created_at", DESCENDING).limit(limit)
        found = [
            Alert.model_validate({"id": d["_id"], **{k: v for k, v in d.items() if k != "_id"}}) async for d in cursor
        ]
        return [a for a in found if actor.id not in a.read_by] if unread_only else found

    async def for_ticket(self, ticket_id: str) -> list[Alert]:
        cursor = self.alerts.find({"ticket_id": ticket_id}).sort("created_at", DESCENDING)
        return [
            Alert.model_validate({"id": d["_id"], **{k: v for k, v in d.items() if k != "_id"}}) async for d in cursor
        ]

    async def mark_read(self, alert_id: str, actor: Actor) -> bool:
        doc = await self.alerts.find_one({"_id": alert_id})
        if doc is None or not set(doc.get("audience", [])) & set(audiences(actor)):
            return False
        if actor.id not in doc.get("read_by", []):
            await self.alerts.update_one({"_id": alert_id}, {"$set": {"read_by": [*doc.get("read_by", []), actor.id]}})
        return True
