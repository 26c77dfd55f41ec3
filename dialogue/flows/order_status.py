"""Order status: the status, the latest logistics, open after-sales requests, and "猜你想问"."""

from __future__ import annotations

from typing import ClassVar

from dialogue.flows.base import Flow
from dialogue.replies import register, say, status_label
from dialogue.turn import Reply, Turn
from shop import Order

register(
    {
        "request_progress": {
            "zh": "售后单 {request_id}（{type}）：{status}",
            "en": "After-sales request {request_id} ({type}): {status}",
        },
        "suggested_questions": {"zh": "猜你想问：", "en": "You might also ask:"},
    }
)


class OrderStatusFlow(Flow):
    name: ClassVar[str] = "order_status"
    intents: ClassVar[tuple[str, ...]] = ("order_status",)
    verify_owner: ClassVar[bool] = False  # the status alone reveals nothing personal
    reuse_last_order: ClassVar[bool] = False
    choose_template: ClassVar[str] = "choose_order"
    ask_template: ClassVar[str] = "ask_order_id"

    async def proceed(self, turn: Turn, order: Order | None) -> None:
        assert order is not None
        language = turn.language
        text = say(
            "order_status",
            language,
            order_id=order.order_id,
            items=_item_names(order, language),
            status=status_label(order.status.value, language),
        )
        events = order.latest_logistics()
        if events:
            timeline = "\n".join(f"{e.time:%Y-%m-%d %H:%M} {e.description}" for e in events)
            text += f"\n{say('logistics_header', language)}\n{timeline}"
        else:
            text += "\n" + say("no_logistics", language)
        if self.context.aftersales is not None and order.belongs_to(turn.input.identities):
            zone = self.zone()
            for request in await self.context.aftersales.for_order(order.order_id):
                if request.open:
                    stages = " → ".join(
                        f"{s.label} {s.at.astimezone(zone):%m-%d %H:%M}" for s in request.customer_timeline(language)
                    )
                    text += "\n" + turn.text(
                        "request_progress", request_id=request.id, type=request.type_label(language), status=stages
                    )
        turn.replies.append(Reply(text))
        suggestions = (
            self.context.knowledge.suggestions(order.status.value, language, limit=3)
            if self.context.knowledge is not None
            else []
        )
        if suggestions:
            turn.say(
                "suggested_questions",
                quick_replies=tuple(turn.choice("order_choice", summary=s.question_in(language)) for s in suggestions),
            )
        else:
            turn.say("anything_else")
        turn.finish()
        turn.slots["last_order_id"] = order.order_id
        turn.event("self_service_completed", flow=self.name, order_id=order.order_id)


def _item_names(order: Order, language: str) -> str:
    names = [item.name for item in order.items]
    joiner = "、" if language == "zh" else ", "
    shown = joiner.join(names[:2])
    if len(names) > 2:
        shown += f" 等{len(names)}件" if language == "zh" else f" and {len(names) - 2} more"
    return shown
