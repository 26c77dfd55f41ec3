"""The hand-off desk: conversations the bot gives up on wait here for an agent, with a summary;
agents take them, answer on the customer's channel, pass them on to a colleague or a skill
group, and hand them back to the bot (with a survey if they like). Every step is logged as an
event (``handed_off``, ``agent_claimed``, ``agent_transferred``, ``agent_closed``) for the
quality figures.

The summary is what an agent reads before answering: who the customer is, their recent orders,
what they asked for so far (intents across all their conversations, on any channel), the slots
the bot collected, their after-sales requests and tickets, and why the bot handed off.

Knows nothing of dialogue wording, channels or HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import intents
from backoffice.surveys import Survey, SurveyDesk
from backoffice.tickets import TicketDesk
from shop import OrderLookup
from shop.aftersales import AfterSalesService
from store import Conversation, ConversationState, ConversationStore, Event, Message, OutboundMessage

EARLIER_CONVERSATIONS = 5
INTENTS_SHOWN = 20
_INTERNAL_SLOTS = frozenset({"failed_turns", "choices"})


KEPT_SLOTS = ("last_order_id", "verified_orders")
"""What the bot still knows when an agent hands a conversation back (it starts afresh otherwise)."""


@dataclass(frozen=True, slots=True)
class QueuePlace:
    ticket: int
    position: int


class AgentActionRefused(Exception):
    """The conversation is not in a state for this agent's action; nothing was changed.

    ``reason``: ``not_found``, ``not_waiting`` (someone else took it), ``not_owner`` (the agent
    does not hold it), ``held_by_another`` (another agent holds it) or ``not_with_agent`` (the
    bot has it)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


class HandoffDesk:
    """Moves conversations to ``waiting_agent`` and tells the customer their place in line."""

    def __init__(
        self,
        store: ConversationStore,
        orders: OrderLookup | None = None,
        aftersales: AfterSalesService | None = None,
        tickets: TicketDesk | None = None,
        surveys: SurveyDesk | None = None,
    ) -> None:
        self.store = store
        self.orders = orders
        self.aftersales = aftersales
        self.tickets = tickets
        self.surveys = surveys

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
        priority: int = 0,
    ) -> QueuePlace:
        """Put the conversation in the agents' queue: ahead of every lower ``priority`` (an angry
        customer, a food-safety complaint), in the skill group of what it is about, with the
        summary the agent reads first. The place returned is the real one."""
        summary = await self.summarise(
            conversation_id, customer_id=customer_id, reason=reason, intent=intent, slots=slots, details=details
        )
        await self.store.set_handoff_summary(conversation_id, summary)
        facts = intents.intent(intent) if intent else None
        queue = facts.skill_group if facts is not None else None
        ticket = await self.store.hand_to_queue(conversation_id, reason, priority=priority, queue=queue)
        position = await self.store.queue_position(conversation_id) or 1
        await self.store.log_event(
            Event(
                name="handed_off",
                conversation_id=conversation_id,
                customer_id=customer_id,
                channel=channel,
                data={
                    "reason": reason,
                    "intent": intent,
                    "queue_ticket": ticket,
                    "position": position,
                    "priority": priority,
                    "queue": queue,
                },
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

    # -- agents ---------------------------------------------------------------------------

    async def _log(self, name: str, conversation: Conversation, **data: Any) -> None:
        await self.store.log_event(
            Event(
                name=name,
                conversation_id=conversation.id,
                customer_id=conversation.customer_id,
                channel=conversation.channel,
                data=data,
            )
        )

    async def claim(self, conversation_id: str, agent: str) -> Conversation:
        """The agent takes a waiting conversation (a retried claim by its holder is fine)."""
        claimed = await self.store.claim_conversation(conversation_id, agent)
        if claimed is None:
            current = await self.store.get_conversation(conversation_id)
            if current is None:
                raise AgentActionRefused("not_found", "no such conversation")
            if current.state is not ConversationState.AGENT or current.agent_id != agent:
                taken = f" by {current.agent_id}" if current.agent_id else ""
                raise AgentActionRefused("not_waiting", f"the conversation is {current.state.value}{taken}")
            claimed = current
        await self._log("agent_claimed", claimed, agent=agent)
        return claimed

    async def answer(
        self, conversation: Conversation, agent: str, text: str, *, client_message_id: str | None = None
    ) -> Message:
        """The agent's reply, queued in the outbox for the customer's channel; a retried
        ``client_message_id`` is stored once."""
        if conversation.state is not ConversationState.AGENT or conversation.agent_id != agent:
            raise AgentActionRefused("not_owner", "claim the conversation before answering it")
        return await self.store.record_outbound(
            OutboundMessage(
                channel=conversation.channel,
                recipient_id=conversation.sender_id,
                conversation_id=conversation.id,
                text=text.strip(),
                author=f"agent:{agent}",
            ),
            customer_id=conversation.customer_id,
            sequence=0,
            key=f"agent:{conversation.id}:{client_message_id}" if client_message_id else None,
        )

    async def transfer(
        self, conversation: Conversation, agent: str, *, to_agent: str | None, queue: str | None, reason: str
    ) -> Conversation:
        """To a colleague (theirs at once) or to a skill group's waiting queue."""
        moved = await self.store.transfer_conversation(conversation.id, agent, to_agent=to_agent, queue=queue)
        if moved is None:
            raise AgentActionRefused("not_owner", "only the agent who holds the conversation can transfer it")
        await self._log("agent_transferred", moved, agent=agent, to_agent=to_agent, queue=queue, reason=reason)
        return moved

    async def hand_back(
        self, conversation: Conversation, agent: str, *, resolution: str = "", survey: bool = False
    ) -> tuple[Conversation, Survey | None]:
        """The bot answers again; with ``survey`` the customer is asked to rate the chat."""
        if conversation.state is ConversationState.AGENT and conversation.agent_id != agent:
            raise AgentActionRefused("held_by_another", "another agent owns this conversation")
        kept = {k: v for k, v in conversation.slots.items() if k in KEPT_SLOTS}
        returned = await self.store.return_to_bot(conversation.id, slots=kept)
        if returned is None:
            raise AgentActionRefused("not_with_agent", f"the conversation is {conversation.state.value}")
        asked = None
        if survey and self.surveys is not None:
            asked = await self.surveys.send_after_chat(
                conversation_id=conversation.id, customer_id=conversation.customer_id, agent=agent,
                queue=conversation.queue,
            )  # fmt: skip
        await self._log("agent_closed", conversation, agent=agent, resolution=resolution[:500],
                        survey=asked.id if asked else None)  # fmt: skip
        return returned, asked
