"""Order lookup: status and the latest logistics, asking for the order when it is not given."""

from __future__ import annotations

import re

from dialogue.replies import say, status_label
from dialogue.turn import Reply, Turn
from shop import Order, OrderService
from store.models import QuickReply

FLOW = "order_status"
MAX_CHOICES = 5
_CHOICE_NUMBER = re.compile(r"^\s*(?:第\s*)?([1-9])\s*(?:个|單|单|号)?\s*$")
_CHINESE_ORDINALS = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5}
_CHINESE_CHOICE = re.compile(r"^\s*第?\s*([一二两三四五])\s*(?:个|單|单)?\s*$")


class OrderStatusFlow:
    def __init__(self, orders: OrderService) -> None:
        self.orders = orders

    @staticmethod
    def is_waiting_for_answer(slots: dict[str, object]) -> bool:
        return slots.get("active_flow") == FLOW and slots.get("requested_slot") == "order_id"

    async def start(self, turn: Turn) -> None:
        order_id = turn.entity("order_id")
        if order_id:
            await self._answer(turn, str(order_id))
            return
        identities = turn.input.identities
        recent = await self.orders.recent_for_customer(
            phone=identities.get("phone"), email=identities.get("email"), limit=MAX_CHOICES
        )
        turn.slots.update(active_flow=FLOW, requested_slot="order_id")
        if len(recent) == 1:
            await self._answer(turn, recent[0].order_id)
        elif recent:
            turn.slots["offered_orders"] = [o.order_id for o in recent]
            lines = "\n".join(f"{i}. {_describe(o)}" for i, o in enumerate(recent, start=1))
            choices = tuple(QuickReply(title=_describe(o), payload=o.order_id) for o in recent)
            turn.say("choose_order", quick_replies=choices, choices=lines)
        else:
            turn.say("ask_order_id")

    async def answer_pending(self, turn: Turn) -> bool:
        """Use this message as the answer to "which order?"; False if it is not one."""
        order_id = turn.entity("order_id") or self._chosen(turn)
        if not order_id:
            return False
        await self._answer(turn, str(order_id))
        return True

    def _chosen(self, turn: Turn) -> str | None:
        offered = list(turn.slots.get("offered_orders") or [])
        text = turn.input.text
        index: int | None = None
        if match := _CHOICE_NUMBER.match(text):
            index = int(match.group(1))
        elif match := _CHINESE_CHOICE.match(text):
            index = _CHINESE_ORDINALS[match.group(1)]
        if index is not None and 1 <= index <= len(offered):
            return str(offered[index - 1])
        return None

    async def _answer(self, turn: Turn, order_id: str) -> None:
        order = await self.orders.get(order_id)
        if order is None:
            turn.slots.update(active_flow=FLOW, requested_slot="order_id")
            turn.say("order_not_found", order_id=order_id)
            turn.event("order_not_found", order_id=order_id)
            return
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
        turn.replies.append(Reply(text))
        turn.say("anything_else")
        for key in ("active_flow", "requested_slot", "offered_orders"):
            turn.slots.pop(key, None)
        turn.slots["last_order_id"] = order.order_id
        turn.event("self_service_completed", flow=FLOW, order_id=order.order_id)


def _item_names(order: Order, language: str) -> str:
    names = [item.name for item in order.items]
    joiner = "、" if language == "zh" else ", "
    shown = joiner.join(names[:2])
    if len(names) > 2:
        shown += f" 等{len(names)}件" if language == "zh" else f" and {len(names) - 2} more"
    return shown


def _describe(order: Order) -> str:
    return f"{order.order_id} {order.items[0].name}"
