"""Resend of missing items or gifts, and compensation (damage, late delivery, price drop).

Small resends and late-delivery compensation within the policy's limits are approved at once;
anything needing judgement (damage photos, price protection, larger amounts) becomes a request
in review with a ticket, the photos attached.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, ClassVar

import textpatterns
from backoffice import Ticket, TicketType
from dialogue.flows.base import Flow, is_no
from dialogue.replies import register, status_label
from dialogue.turn import Turn
from shop import Order, OrderItem, OrderStatus
from shop.aftersales import AfterSalesRequest, RequestType, Step

register(
    {
        "resend_not_shipped": {
            "zh": "订单 {order_id} 还未发货（{status}），所有商品会一起发出，不需要补发。",
            "en": "Order {order_id} hasn't shipped yet ({status}); everything will be sent together.",
        },
        "which_missing": {
            "zh": "请问少了哪件商品（含赠品）？\n{choices}",
            "en": "Which item (or gift) is missing?\n{choices}",
        },
        "resend_approved": {
            "zh": "已为您安排补发 {item} ×{quantity}，售后单号 {request_id}，预计 1–2 天内发出，发出后会通知您。",
            "en": "I've arranged a resend of {item} ×{quantity} (request {request_id}); it leaves within 1–2 days "
            "and you'll be told when it does.",
        },
        "claim_review": {
            "zh": "已为您提交{topic}审核，售后单号 {request_id}，工单号 {ticket_id}，{hours} 小时内给您答复。",
            "en": "I've submitted your {topic} for review: request {request_id}, ticket {ticket_id}. "
            "You'll hear back within {hours} hours.",
        },
        "which_compensation": {"zh": "请问是哪种情况？", "en": "What happened?"},
        "quick_damage": {"zh": "商品破损或有质量问题", "en": "Damaged or faulty"},
        "quick_late": {"zh": "配送延迟", "en": "Late delivery"},
        "quick_price_drop": {"zh": "降价补差（价保）", "en": "Price dropped"},
        "late_compensated": {
            "zh": "抱歉让您久等了！订单 {order_id} 配送超时，已为您补偿 "
            "¥{amount:.2f} 无门槛券，已发放到您的账户。售后单号 {request_id}。",
            "en": "Sorry for the wait! Order {order_id} was late, so ¥{amount:.2f} store credit is now in your "
            "account. Request {request_id}.",
        },
        "not_late": {
            "zh": "订单 {order_id} 目前仍在承诺时效内（{days} 天），暂不满足延迟补偿。如超时未到，可以再联系我们。",
            "en": "Order {order_id} is still within the promised {days} days, so no late-delivery compensation yet. "
            "If it doesn't arrive in time, contact us again.",
        },
    }
)

_LATE = textpatterns.compile(
    r"(延迟|迟到|太慢|好慢|超时|晚到|这么久|几天了|还没到|late|delay|slow)", textpatterns.IGNORECASE
)
_PRICE = textpatterns.compile(r"(降价|价保|便宜了|差价|补差|price (drop|protection)|cheaper)", textpatterns.IGNORECASE)


class _ClaimFlow(Flow):
    """Claims about a parcel that has left the warehouse."""

    def order_is_candidate(self, order: Order) -> bool:
        return order.status in (OrderStatus.SHIPPED, OrderStatus.DELIVERED)

    def _say_review(self, turn: Turn, request: AfterSalesRequest, ticket: Ticket) -> None:
        turn.say(
            "claim_review",
            topic=self.topic(turn),
            request_id=request.id,
            ticket_id=ticket.id,
            hours=self.policy.review_hours,
        )


class ResendFlow(_ClaimFlow):
    name: ClassVar[str] = "resend"
    intents: ClassVar[tuple[str, ...]] = ("resend",)

    async def proceed(self, turn: Turn, order: Order | None) -> None:
        assert order is not None
        if await self.told_open_request(turn, order, RequestType.RESEND):
            return
        if order.status not in (OrderStatus.SHIPPED, OrderStatus.DELIVERED):
            turn.finish()
            turn.say(
                "resend_not_shipped", order_id=order.order_id, status=status_label(order.status.value, turn.language)
            )
            return
        item = _mentioned_item(turn, order)
        if item is None and len(order.items) == 1:
            item = order.items[0]
        if item is None:
            turn.step("item")
            lines = "\n".join(f"{n}. {i.name}" for n, i in enumerate(order.items, start=1))
            turn.say(
                "which_missing",
                quick_replies=tuple(turn.choice("order_choice", payload=i.sku, summary=i.name) for i in order.items),
                choices=lines,
            )
            return
        await self._decide(turn, order, item)

    async def on_step(self, turn: Turn, step: str, data: dict[str, Any], order: Order | None) -> bool:
        if order is None or step != "item":
            return False
        item = _mentioned_item(turn, order)
        if item is None:
            return False
        await self._decide(turn, order, item)
        return True

    async def _decide(self, turn: Turn, order: Order, item: OrderItem) -> None:
        aftersales = self.context.aftersales
        assert aftersales is not None
        quantity = min(int(turn.entity("quantity") or 1), item.quantity)
        value = item.price * quantity
        request = await self.new_request(
            turn,
            order,
            RequestType.RESEND,
            items=[{"sku": item.sku, "name": item.name, "quantity": quantity, "price": item.price}],
            amount=value,
            reason="少件",
            evidence=turn.media_ids,
        )
        if request is None:
            return
        if value <= self.policy.auto_resend_max_amount:
            request = await aftersales.advance(
                request.id,
                Step.APPROVED,
                Step.RESENDING,
                actor="system:small_resend",
                decided_by="system:small_resend",
                note=f"≤ ¥{self.policy.auto_resend_max_amount:g}",
            )
            turn.say("resend_approved", item=item.name, quantity=quantity, request_id=request.id)
            turn.event("self_service_completed", flow=self.name, order_id=order.order_id, request_id=request.id)
            return
        ticket = await self.to_review(turn, order, request, TicketType.RESEND, f"少件补发 {item.name} ×{quantity}")
        if ticket is not None:
            self._say_review(turn, request, ticket)


class CompensationFlow(_ClaimFlow):
    name: ClassVar[str] = "compensation"
    intents: ClassVar[tuple[str, ...]] = ("compensation",)

    async def proceed(self, turn: Turn, order: Order | None) -> None:
        assert order is not None
        if await self.told_open_request(turn, order, RequestType.COMPENSATION):
            return
        data = turn.form["data"] if turn.form else {}
        kind = data.get("kind") or _kind(turn)
        if evidence := turn.evidence():
            data["evidence"] = evidence
        if kind is None:
            turn.step("kind")
            turn.say(
                "which_compensation",
                quick_replies=(turn.choice("quick_damage"), turn.choice("quick_late"), turn.choice("quick_price_drop")),
            )
            return
        data["kind"] = kind
        await self._continue(turn, order, data)

    async def on_step(self, turn: Turn, step: str, data: dict[str, Any], order: Order | None) -> bool:
        if order is None:
            return False
        if step == "kind":
            kind = _kind(turn)
            if kind is None:
                return False
            data["kind"] = kind
        elif step == "photo":
            if turn.media_ids:
                data["evidence"] = turn.media_ids
                turn.say("photo_received")
            elif is_no(turn) or turn.input.text.strip().lower() in ("没有照片", "没照片", "no photo"):
                data["evidence"] = []
            else:
                turn.say("ask_photo", quick_replies=(turn.choice("no_photo"),))
                return True
        else:
            return False
        await self._continue(turn, order, data)
        return True

    async def _continue(self, turn: Turn, order: Order, data: dict[str, Any]) -> None:
        kind = data["kind"]
        if kind == "late":
            await self._late(turn, order)
            return
        if kind == "damage" and "evidence" not in data:
            turn.step("photo")
            turn.say("ask_photo", quick_replies=(turn.choice("no_photo"),))
            return
        reason = {"damage": str(turn.entity("reason") or data.get("reason") or "破损"), "price_drop": "降价补差"}[kind]
        request = await self.new_request(
            turn,
            order,
            RequestType.COMPENSATION,
            reason=reason,
            details={"kind": kind},
            evidence=list(data.get("evidence", [])),
        )
        if request is None:
            return
        photos = len(data.get("evidence", []))
        ticket = await self.to_review(
            turn, order, request, TicketType.COMPENSATION, f"赔偿（{reason}），照片 {photos} 张"
        )
        if ticket is not None:
            self._say_review(turn, request, ticket)

    async def _late(self, turn: Turn, order: Order) -> None:
        turn.finish()
        limit = timedelta(days=self.policy.late_delivery_after_days)
        started = order.paid_at
        arrived = order.delivered_at or self.now()
        if started is None or arrived - started <= limit:
            turn.say("not_late", order_id=order.order_id, days=self.policy.late_delivery_after_days)
            turn.event("self_service_completed", flow=self.name, order_id=order.order_id, outcome="not_late")
            return
        aftersales = self.context.aftersales
        assert aftersales is not None
        amount = self.policy.late_delivery_compensation
        request = await self.new_request(
            turn,
            order,
            RequestType.COMPENSATION,
            amount=amount,
            reason="配送延迟",
            details={"kind": "late", "form": "store_credit"},
        )
        if request is None:
            return
        request = await aftersales.advance(
            request.id,
            Step.APPROVED,
            Step.COMPLETED,
            actor="system:late_delivery",
            decided_by="system:late_delivery",
            note=f"超过 {self.policy.late_delivery_after_days} 天，补偿 ¥{amount:g} 无门槛券",
        )
        turn.say("late_compensated", order_id=order.order_id, amount=amount, request_id=request.id)
        turn.event("self_service_completed", flow=self.name, order_id=order.order_id, request_id=request.id)


def _kind(turn: Turn) -> str | None:
    text = turn.input.text
    if text == turn.text("quick_late") or _LATE.search(text):
        return "late"
    if text == turn.text("quick_price_drop") or _PRICE.search(text):
        return "price_drop"
    if text == turn.text("quick_damage") or turn.entity("reason") or turn.media_ids:
        return "damage"
    return None


def _mentioned_item(turn: Turn, order: Order) -> OrderItem | None:
    text = turn.input.text
    sku = turn.entity("sku")
    for item in order.items:
        if sku == item.sku or text.strip() == item.sku or item.name in text:
            return item
    if any(w in text for w in ("赠品", "礼品", "gift")):
        return next((i for i in order.items if i.price == 0 or i.category == "gift"), None)
    return None
