"""After-sales tickets (售后工单): what self-service hands to people for a decision.

Owns the ticket record, its priority (computed, with the reasons shown to agents) and its
de-duplication: while a ticket of one type is open for a customer's order, the same problem
raised again (on any channel) joins that ticket instead of opening a second one.

Knows nothing of dialogue wording or channels; the dialogue asks for tickets through
:meth:`TicketDesk.open`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field
from pymongo import ASCENDING, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError


class TicketType(StrEnum):
    REFUND = "refund"
    RETURN_REFUND = "return_refund"
    EXCHANGE = "exchange"
    RESEND = "resend"
    COMPENSATION = "compensation"
    COMPLAINT = "complaint"
    INVOICE = "invoice"
    ORDER_CHANGE = "order_change"
    GENERAL = "general"


class Priority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


HIGH_VALUE_AMOUNT = 1000.0


def _now() -> datetime:
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


class TicketEntry(BaseModel):
    status: str
    at: datetime
    actor: str
    note: str | None = None


class Ticket(BaseModel):
    id: str
    type: TicketType
    status: str = "new"
    priority: Priority
    priority_reasons: list[str] = Field(default_factory=list)
    customer_id: str
    order_id: str | None = None
    conversation_ids: list[str] = Field(default_factory=list)
    channels: list[str] = Field(default_factory=list)
    request_id: str | None = None
    summary: str
    reason: str | None = None
    evidence: list[str] = Field(default_factory=list)
    contacts: int = Field(default=1, description="how many times the customer raised it")
    timeline: list[TicketEntry]
    created_at: datetime
    updated_at: datetime


def assess_priority(
    *, amount: float = 0.0, food_safety: bool = False, repeat: bool = False, urgent: bool = False
) -> tuple[Priority, list[str]]:
    """Priority and the reasons for it, for the agent to see."""
    reasons: list[str] = []
    level = Priority.NORMAL
    if amount >= HIGH_VALUE_AMOUNT:
        level = Priority.HIGH
        reasons.append(f"high value order ({amount:.2f})")
    if repeat:
        level = Priority.HIGH
        reasons.append("repeat contact on the same problem")
    if urgent:
        level = Priority.HIGH
        reasons.append("customer urged")
    if food_safety:
        level = Priority.URGENT
        reasons.append("food safety")
    return level, reasons or ["standard"]


class TicketDesk:
    """Tickets in the ``tickets`` collection."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.tickets = db["tickets"]
        self.counters = db["counters"]

    async def ensure_indexes(self) -> None:
        await self.tickets.create_index(
            "open_key", unique=True, partialFilterExpression={"open_key": {"$exists": True}}
        )
        await self.tickets.create_index([("customer_id", ASCENDING)])
        await self.tickets.create_index([("status", ASCENDING)])

    async def open(
        self,
        *,
        type: TicketType,
        customer_id: str,
        summary: str,
        conversation_id: str,
        channel: str,
        order_id: str | None = None,
        request_id: str | None = None,
        reason: str | None = None,
        evidence: list[str] | None = None,
        amount: float = 0.0,
        food_safety: bool = False,
        actor: str = "system:self_service",
    ) -> tuple[Ticket, bool]:
        """A new ticket, or the customer's open one for the same order and type (and ``False``).

        Joining an open ticket counts the contact, adds the conversation and channel, and raises
        the priority as a repeat contact.
        """
        open_key = f"{customer_id}:{order_id or '-'}:{type.value}"
        existing = await self.tickets.find_one({"open_key": open_key})
        if existing is not None:
            return await self._join(existing, conversation_id, channel, evidence or []), False
        repeat = (
            type is TicketType.COMPLAINT
            and await self.tickets.count_documents({"customer_id": customer_id, "type": TicketType.COMPLAINT.value}) > 0
        )
        priority, reasons = assess_priority(amount=amount, food_safety=food_safety, repeat=repeat)
        now = _now()
        counter = await self.counters.find_one_and_update(
            {"_id": "ticket"}, {"$inc": {"value": 1}}, upsert=True, return_document=ReturnDocument.AFTER
        )
        assert counter is not None
        ticket = Ticket(
            id=f"T{now:%Y%m%d}{int(counter['value']):06d}",
            type=type,
            priority=priority,
            priority_reasons=reasons,
            customer_id=customer_id,
            order_id=order_id,
            conversation_ids=[conversation_id],
            channels=[channel],
            request_id=request_id,
            summary=summary,
            reason=reason,
            evidence=evidence or [],
            timeline=[TicketEntry(status="new", at=now, actor=actor, note=summary)],
            created_at=now,
            updated_at=now,
        )
        doc = ticket.model_dump(mode="json")
        doc.update(_id=ticket.id, open_key=open_key)
        try:
            await self.tickets.insert_one(doc)
        except DuplicateKeyError:
            existing = await self.tickets.find_one({"open_key": open_key})
            if existing is None:
                raise
            return await self._join(existing, conversation_id, channel, evidence or []), False
        return ticket, True

    async def _join(self, doc: dict[str, Any], conversation_id: str, channel: str, evidence: list[str]) -> Ticket:
        ticket = Ticket.model_validate(doc)
        reasons = list(ticket.priority_reasons)
        priority = ticket.priority
        if "repeat contact on the same problem" not in reasons:
            reasons = [r for r in reasons if r != "standard"] + ["repeat contact on the same problem"]
            if priority in (Priority.LOW, Priority.NORMAL):
                priority = Priority.HIGH
        await self.tickets.update_one(
            {"_id": ticket.id},
            {
                "$set": {
                    "conversation_ids": list(dict.fromkeys([*ticket.conversation_ids, conversation_id])),
                    "channels": list(dict.fromkeys([*ticket.channels, channel])),
                    "evidence": list(dict.fromkeys([*ticket.evidence, *evidence])),
                    "priority": priority.value,
                    "priority_reasons": reasons,
                    "updated_at": _now().isoformat(),
                },
                "$inc": {"contacts": 1},
            },
        )
        fresh = await self.get(ticket.id)
        assert fresh is not None
        return fresh

    async def record_urge(self, ticket_id: str) -> Ticket | None:
        """The customer chased it: it moves up (at least high) and the reason is shown."""
        ticket = await self.get(ticket_id)
        if ticket is None:
            return None
        reasons = [r for r in ticket.priority_reasons if r != "standard"]
        if "customer urged" not in reasons:
            reasons.append("customer urged")
        priority = Priority.HIGH if ticket.priority in (Priority.LOW, Priority.NORMAL) else ticket.priority
        await self.tickets.update_one(
            {"_id": ticket_id},
            {
                "$set": {"priority": priority.value, "priority_reasons": reasons, "updated_at": _now().isoformat()},
                "$inc": {"contacts": 1},
            },
        )
        return await self.get(ticket_id)

    async def get(self, ticket_id: str) -> Ticket | None:
        doc = await self.tickets.find_one({"_id": ticket_id})
        return Ticket.model_validate(doc) if doc else None

    async def for_customer(self, customer_id: str) -> list[Ticket]:
        cursor = self.tickets.find({"customer_id": customer_id}).sort("created_at", ASCENDING)
        return [Ticket.model_validate(d) async for d in cursor]
