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
from datetime import UTC, datetime
from functools import partial
from typing import Any

import intents
from backoffice.classify import FOOD_SAFETY
from backoffice.notifications import CustomerNotifier
from backoffice.priority import URGENT_WORDS, NeedInputs, PriorityAssessment, assess_need, handoff_waiting_factor
from backoffice.surveys import Survey, SurveyDesk
from backoffice.tickets import TicketDesk
from errors import Conflict
from shop import OrderLookup
from shop.aftersales import AfterSalesService
from store import Conversation, ConversationState, Event, Message, OutboundMessage
from store.mongo import ConversationStore, queue_rank

QUEUE_NOTICE = {
    "zh": "排队更新：您现在排在第 {position} 位，请稍候，专员马上为您服务。",
    "en": "Queue update: you are now number {position} in line; an agent will be with you shortly.",
}
NON_TOPICS = frozenset({"human_handoff", "greet", "goodbye", "affirm", "deny", "thanks", "inform", "out_of_scope",
                        "nlu_fallback"})  # fmt: skip


def _queue_notice(language: str, *, position: int) -> str:
    return QUEUE_NOTICE.get(language, QUEUE_NOTICE["zh"]).format(position=position)


def changed_a_lot(told: int, now: int) -> bool:
    """Worth a message: the place moved by at least 3 and by at least half of what was said."""
    return abs(now - told) >= max(3, told // 2)


EARLIER_CONVERSATIONS = 5
INTENTS_SHOWN = 20
_INTERNAL_SLOTS = frozenset({"failed_turns", "choices"})


KEPT_SLOTS = ("last_order_id", "verified_orders")
"""What the bot still knows when an agent hands a conversation back (it starts afresh otherwise)."""


@dataclass(frozen=True, slots=True)
class QueuePlace:
    ticket: int
    position: int


def _latest_topic(summary: dict[str, Any]) -> str | None:
    """The most recent thing the customer asked about, when the hand-off itself names none."""
    for item in reversed(summary.get("intents", [])):
        name = str(item.get("intent") or "")
        if name and name not in NON_TOPICS:
            return name
    return None


class AgentActionRefused(Conflict):
    """The conversation is not in a state for this agent's action; nothing was changed.

    ``reason`` (its ``code`` too): ``not_found``, ``not_waiting`` (someone else took it),
    ``not_owner`` (the agent does not hold it), ``held_by_another`` (another agent holds it) or
    ``not_with_agent`` (the bot has it). The agent API answers ``not_found`` as a 404 and
    ``held_by_another`` as a 403 ``not_owner``; the others are conflicts (409)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message, code=reason)
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
        notifier: CustomerNotifier | None = None,
        clock_ms: Any = None,
    ) -> None:
        self.notifier = notifier
        """Tells a waiting customer when their place changes a lot."""
        self.clock_ms = clock_ms or (lambda: int(datetime.now(UTC).timestamp() * 1000))
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
        """Put the conversation in the agents' queue, ranked by need (:meth:`need`: the customer's
        emotion — ``priority`` > 0 is the dialogue saying they are upset — stated urgency and urges,
        food safety, order value, their history; waiting time adds while they wait), in the skill
        group of what it is about, with the summary the agent reads first. The place returned is
        the real one, and the customer is told again when it changes a lot."""
        summary = await self.summarise(
            conversation_id, customer_id=customer_id, reason=reason, intent=intent, slots=slots, details=details
        )
        said = [m.text for m in await self.store.history(conversation_id, limit=20) if m.direction.value == "in"]
        assessment = await self.need(summary, upset=priority > 0, texts=said[-5:])
        summary["priority"] = {"score": assessment.score, "level": assessment.level.value,
                               "reasons": assessment.reasons}  # fmt: skip
        await self.store.set_handoff_summary(conversation_id, summary)
        topic = intent if intent and intent not in NON_TOPICS else _latest_topic(summary)
        facts = intents.intent(topic) if topic else None
        queue = facts.skill_group if facts is not None else None
        need = {"score": assessment.score, "factors": [[f.factor, f.points, f.reason] for f in assessment.factors]}
        ticket = await self.store.hand_to_queue(
            conversation_id, reason, priority=assessment.score, queue=queue, need=need
        )
        await self.rerank()
        position = await self.store.queue_position(conversation_id) or 1
        await self.store.set_queue_told(conversation_id, {"position": position, "count": 0})
        await self.store.log_event(
            Event(
                name="handed_off",
                conversation_id=conversation_id,
                customer_id=customer_id,
                channel=channel,
                data={
                    "reason": reason,
                    "intent": intent,
                    "topic": topic,
                    "queue_ticket": ticket,
                    "position": position,
                    "priority": assessment.score,
                    "priority_reasons": assessment.reasons,
                    "queue": queue,
                },
            )
        )
        await self.announce_positions(rerank=False, skip=conversation_id)
        return QueuePlace(ticket=ticket, position=position)

    async def need(
        self, summary: dict[str, Any], *, upset: bool = False, texts: list[str] | None = None
    ) -> PriorityAssessment:
        """How urgently a person is needed, from what the summary shows and the customer's latest words."""
        details = summary.get("details") or {}
        words = texts if texts is not None else [str(i.get("text", "")) for i in summary.get("intents", [])[-5:]]
        said = " ".join(words)[-2000:]
        level = str(details.get("level") or "")
        emotion = level if level in ("angry", "negative") else ("angry" if upset else None)
        requests = summary.get("aftersales_requests", [])
        urges = sum(int(r.get("urges") or 0) for r in requests)
        orders = summary.get("orders", [])
        focus = (summary.get("slots") or {}).get("last_order_id") or details.get("order_id")
        order = next((o for o in orders if o.get("order_id") == focus), orders[0] if orders else None)
        tickets = summary.get("tickets", [])
        earlier = [c for c in summary.get("earlier_conversations", []) if c.get("state") != "bot"]
        return assess_need(
            NeedInputs(
                emotion=emotion,
                complaint_threat=bool(details.get("complaint_threat")),
                urgent_words=bool(URGENT_WORDS.search(said)) or summary.get("intent") == "urge",
                urges=urges,
                food_safety=bool(FOOD_SAFETY.search(said)),
                amount=float(order.get("amount") or 0.0) if order else 0.0,
                customer_tier=order.get("tier") if order else None,
                contacts=1 + len(earlier),
                earlier_complaint=any(t.get("type") == "complaint" for t in tickets),
            )
        )

    async def rerank(self) -> list[dict[str, Any]]:
        """Every waiting conversation's rank from its need plus the minutes it has waited; the queue in order."""
        now = self.clock_ms()
        waiting = await self.store.waiting_documents()
        for doc in waiting:
            base = int((doc.get("queue_need") or {}).get("score", doc.get("priority", 0)) or 0)
            since = int(doc.get("handed_off_ms") or now)
            extra = handoff_waiting_factor((now - since) / 60000)
            rank = queue_rank(int(doc.get("queue_ticket", 0)), base + (extra.points if extra else 0))
            if rank != doc.get("queue_rank"):
                await self.store.set_queue_rank(str(doc["_id"]), rank)
                doc["queue_rank"] = rank
        waiting.sort(key=lambda d: d.get("queue_rank", d.get("queue_ticket", 0)))
        return waiting

    async def announce_positions(self, *, rerank: bool = True, skip: str | None = None) -> int:
        """Tell each waiting customer whose place changed a lot since they were last told; how many were told."""
        waiting = await self.rerank() if rerank else await self.store.waiting_documents()
        told = 0
        for position, doc in enumerate(waiting, start=1):
            last = doc.get("queue_told") or {}
            if str(doc["_id"]) == skip or not last.get("position"):
                continue
            if not changed_a_lot(int(last["position"]), position):
                continue
            count = int(last.get("count", 0)) + 1
            if self.notifier is not None:
                await self.notifier.send(
                    str(doc["_id"]),
                    partial(_queue_notice, position=position),
                    key=f"queue:{doc['_id']}:{doc.get('queue_ticket')}:{count}",
                    author="system:handoff",
                )
            await self.store.set_queue_told(str(doc["_id"]), {"position": position, "count": count})
            told += 1
        return told

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
                        "tier": order.customer.tier,
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
        await self.announce_positions()  # everyone behind moved up
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
        if to_agent is None:
            await self.announce_positions()
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
