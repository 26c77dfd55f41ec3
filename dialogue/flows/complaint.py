"""Complaints: always a ticket. Food-safety cases go first; a repeat complaint raises priority."""

from __future__ import annotations

from typing import Any, ClassVar

from backoffice import TicketType
from backoffice.classify import FOOD_SAFETY
from dialogue import guard
from dialogue.flows.base import Flow
from dialogue.replies import register
from dialogue.targets import refers_back
from dialogue.turn import Turn
from shop import Order

register(
    {
        "ask_complaint": {
            "zh": "非常抱歉给您带来不好的体验。请详细描述一下您遇到的问题（涉及订单请附上订单号），我会立即登记。",
            "en": "I'm very sorry about this. Please tell me what happened (with the order number if there is one) "
            "and I'll log it right away.",
        },
        "complaint_logged": {
            "zh": "您的投诉已登记，投诉单号 {ticket_id}（{priority}），专员将在 {hours} 小时内联系您处理。",
            "en": "Your complaint is logged as {ticket_id} ({priority}); "
            "a specialist will contact you within {hours} hours.",
        },
        "complaint_joined": {
            "zh": "您反映的问题已在处理中（投诉单号 {ticket_id}），已为您补充记录并提高处理优先级。",
            "en": "This is already being handled ({ticket_id}); I've added your message and raised its priority.",
        },
        "priority_urgent": {"zh": "紧急", "en": "urgent"},
        "priority_high": {"zh": "优先处理", "en": "high priority"},
        "priority_normal": {"zh": "普通", "en": "normal"},
        "priority_low": {"zh": "普通", "en": "normal"},
    }
)

_BARE_COMPLAINT = 12
"""A complaint shorter than this says nothing yet ("我要投诉"): ask what happened."""


class ComplaintFlow(Flow):
    name: ClassVar[str] = "complaint"
    intents: ClassVar[tuple[str, ...]] = ("complaint",)
    needs_order: ClassVar[bool] = False

    async def proceed(self, turn: Turn, order: Order | None) -> None:
        if len(turn.input.text) < _BARE_COMPLAINT and not turn.entity("order_id") and not turn.media_ids:
            turn.step("details")
            turn.asked("slot", slot="details")
            turn.say("ask_complaint")
            turn.act("ask")
            return
        await self._log(turn, turn.input.text)

    async def on_step(self, turn: Turn, step: str, data: dict[str, Any], order: Order | None) -> bool:
        if step != "details" or not (turn.input.text or turn.media_ids):
            return False
        await self._log(turn, turn.input.text)
        return True

    async def _target(self, turn: Turn) -> Order | None:
        """The order complained about: named by number or product, handed over by the flow that
        found it (an urge about goods that came wrong), or the one just talked about; never a
        guess. An order that is not the customer's is not attached."""
        order: Order | None = None
        order_id = turn.entity("order_id") or (turn.form or {}).get("data", {}).get("order_id")
        if order_id:
            order = await self.orders.get(str(order_id))
        else:
            named = self.orders_meant(turn, await self.customer_orders(turn), turn.input.text)
            if len(named) == 1:
                order = named[0]
            elif (
                not named and turn.focus.get("order_id") and (refers_back(turn.input.text) or self.follows_focus(turn))
            ):
                order = await self.orders.get(str(turn.focus["order_id"]))
        if order is not None and not order.belongs_to(turn.input.identities):
            return None  # a complaint is taken either way; an unverified order is only mentioned
        return order

    async def _log(self, turn: Turn, details: str) -> None:
        tickets = self.context.tickets
        assert tickets is not None
        order = await self._target(turn)
        food_safety = bool(FOOD_SAFETY.search(details) or FOOD_SAFETY.search(turn.normalized_text)) or (
            order is not None
            and turn.entity("reason") == "过期变质"
            and any(i.category in ("fresh", "food") for i in order.items)
        )
        ticket, created = await tickets.open(
            type=TicketType.COMPLAINT,
            customer_id=turn.input.customer_id,
            summary=details[:500],
            conversation_id=turn.input.conversation_id,
            channel=turn.input.channel,
            order_id=order.order_id if order else None,
            reason="food_safety" if food_safety else None,
            evidence=turn.evidence(),
            amount=order.amount if order else 0.0,
            food_safety=food_safety,
            quiet=True,
        )
        turn.finish()
        if order is not None:
            guard.authorise(turn, "complaint", order.order_id, named=True)
        hours = await tickets.first_response_hours(ticket)
        turn.slots["last_ticket"] = {"id": ticket.id, "hours": hours}
        turn.act("complaint", order=order.order_id if order else None)
        if created:
            turn.say(
                "complaint_logged",
                ticket_id=ticket.id,
                priority=turn.text(f"priority_{ticket.priority.value}"),
                hours=hours,
            )
        else:
            turn.say("complaint_joined", ticket_id=ticket.id)
        turn.event(
            "complaint_logged",
            ticket_id=ticket.id,
            priority=ticket.priority.value,
            food_safety=food_safety,
            repeat=not created or "repeat contact on the same problem" in ticket.priority_reasons,
        )
