"""The hand-off desk: conversations the bot gives up on wait here for an agent, with a summary.

The summary is what an agent reads before answering: who the customer is, their recent orders,
what they asked for so far (intents across all their conversations, on any channel), the slots
the bot collected, their after-sales requests and tickets, and why the bot handed off.

Knows nothing of dialogue wording or channels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from backoffice.tickets import TicketDesk
from shop import OrderLookup
from shop.aftersales import AfterSalesService
from store import ConversationStore, Event

EARLIER_CONVERSATIONS = 5
INTENTS_SHOWN = 20
_INTERNAL_SLOTS = frozenset({"failed_turns", "choices"})


@dataclass(frozen=True, slots=True)
class QueuePlace:
    ticket: int
    position: int


class HandoffDesk:
    """Moves conversations to ``waiting_agent`` and tells the customer their place in line."""

    def __init__(
        self,
        store: ConversationStore,
        orders: OrderLookup | None = None,
        aftersales: AfterSalesService | None = None,
        tickets: TicketDesk | None = None,
    ) -> None:
        self.store = store
        self.orders = orders
        self.aftersales = aftersales
        self.tickets = tickets

    async def enqueue(
        self,
        conversation_id: str,
        *,
        reason: str,
        channel: str,
        customer_id: str,
        intent: str | None = None,
        slots: dict[str, Any] | None = None,
        details: dict[str, Any] | None = None,
    ) -> QueuePlace:
        summary = await self.summarise(
            conversation_id, customer_id=customer_id, reason=reason, intent=intent, slots=slots, details=details
        )
        await self.store.set_handoff_summary(conversation_id, summary)
        ticket = await self.store.hand_to_queue(conversation_id, reason)
        position = await self.store.queue_position(conversation_id) or 1
        await self.store.log_event(
            Event(
                name="handed_off",
                conversation_id=conversation_id,
                customer_id=customer_id,
                channel=channel,
                data={"reason": reason, "intent": intent, "queue_ticket": ticket, "position": position},
            )
        )
        return QueuePlace(ticket=ticket, position=position)

    async def summarise(
        self,
        conversation_id: str,
        *,
        customer_id: str,
        reason: str,
        intent: str | None = None,
        slots: dict[str, Any] | None = None,
        details: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        customer = await self.store.get_customer(customer_id)
        conversations = await self.store.customer_conversations(customer_id, limit=EARLIER_CONVERSATIONS + 1)
        intents: list[dict[str, Any]] = []
        earlier: list[dict[str, Any]] = []
        for conversation in conversations:
            history = await self.store.history(conversation.id, limit=200)
            for message in history:
                understood = message.understanding or {}
                if understood.get("intent"):
                    intents.append(
                        {
                            "intent": understood["intent"],
                            "text": message.text[:200],
                            "channel": message.channel,
                            "at": message.created_at.isoformat(),
                        }
                    )
            if conversation.id != conversation_id:
                last = history[-1] if history else None
                earlier.append(
                    {
                        "conversation_id": conversation.id,
                        "channel": conversation.channel,
                        "state": conversation.state.value,
                        "messages": len(history),
                        "last_message": last.text[:200] if last else None,
                        "updated_at": conversation.updated_at.isoformat(),
                    }
                )
        intents.sort(key=lambda i: str(i["at"]))
        identities = customer.identities if customer else {}
        orders: list[dict[str, Any]] = []
        if self.orders is not None and (identities.get("phone") or identities.get("email")):
            for order in await self.orders.recent_for_customer(
                phone=identities.get("phone"), email=identities.get("email"), limit=5
            ):
                orders.append(
                    {
                        "order_id": order.order_id,
                        "status": order.status.value,
                        "amount": order.amount,
                        "items": [i.name for i in order.items],
                    }
                )
        requests: list[dict[str, Any]] = []
        if self.aftersales is not None:
            for request in await self.aftersales.for_customer(customer_id):
                requests.append(
                    {
                        "id": request.id,
                        "type": request.type.value,
                        "order_id": request.order_id,
                        "status": request.status.value,
                        "amount": request.amount,
                        "reason": request.reason,
                        "urges": request.urges,
                    }
                )
        tickets: list[dict[str, Any]] = []
        if self.tickets is not None:
            for ticket in await self.tickets.for_customer(customer_id):
                tickets.append(
                    {"id": ticket.id, "type": ticket.type.value, "status": ticket.status, "priority": ticket.priority}
                )
        return {
            "reason": reason,
            "intent": intent,
            "details": details or {},
            "customer": {
                "id": customer_id,
                "name": customer.name if customer else None,
                "identities": identities,
            },
            "orders": orders,
            "intents": intents[-INTENTS_SHOWN:],
            "slots": {k: v for k, v in (slots or {}).items() if k not in _INTERNAL_SLOTS},
            "aftersales_requests": requests,
            "tickets": tickets,
            "earlier_conversations": earlier[:EARLIER_CONVERSATIONS],
        }
