"""Urging (催单/催进度): record the urge against the request or order, say what happens next and
when; the second urge on the same thing goes to an agent."""

from __future__ import annotations

from datetime import timedelta
from typing import ClassVar

from dialogue.flows.base import Flow
from dialogue.replies import register, status_label
from dialogue.turn import Turn
from shop import Order, OrderStatus
from shop.aftersales import AfterSalesRequest, Step

register(
    {
        "urge_recorded": {
            "zh": "已为您催促{what}（第 {count} 次），{next}",
            "en": "I've chased {what} (time {count}). {next}",
        },
        "urge_what_request": {
            "zh": "售后单 {request_id}（{type}，当前：{status}）",
            "en": "request {request_id} ({type}, now {status})",
        },
        "urge_what_order": {"zh": "订单 {order_id}（{status}）", "en": "order {order_id} ({status})"},
        "next_review": {
            "zh": "审核专员会在 {deadline} 前完成审核，结果会第一时间通知您。",
            "en": "A reviewer will decide by {deadline} and you'll be told straight away.",
        },
        "next_pickup": {
            "zh": "快递员会在 {pickup} 上门取件，请保持电话畅通。",
            "en": "The courier comes on {pickup}; please keep your phone on.",
        },
        "next_goods": {
            "zh": "商家收货后 24 小时内发起退款/换新。",
            "en": "Once the goods arrive we act within 24 hours.",
        },
        "next_payment": {
            "zh": "退款已在支付中心处理，预计 {days} 个工作日内原路到账。",
            "en": "The payment centre is processing it; expect it within {days} working days.",
        },
        "next_resend": {"zh": "补发包裹 1–2 天内发出，发出后会通知您。", "en": "The parcel leaves within 1–2 days."},
        "next_issuing": {
            "zh": "发票 1–3 个工作日内开具并发送到您的邮箱。",
            "en": "The invoice is issued within 1–3 working days.",
        },
        "next_shipping": {
            "zh": "已通知快递加急派送，最新物流：{latest}",
            "en": "The courier has been asked to hurry. Latest: {latest}",
        },
        "next_warehouse": {
            "zh": "已通知仓库优先处理，一般 24 小时内发货。",
            "en": "The warehouse has been asked to prioritise it; it usually ships within 24 hours.",
        },
        "nothing_to_urge": {
            "zh": "您目前没有处理中的订单或售后申请。请问要催哪个订单？可以发送订单号。",
            "en": "You have nothing in progress. Which order is it? You can send its number.",
        },
    }
)


class UrgeFlow(Flow):
    name: ClassVar[str] = "urge"
    intents: ClassVar[tuple[str, ...]] = ("urge",)
    needs_order: ClassVar[bool] = False

    async def proceed(self, turn: Turn, order: Order | None) -> None:
        turn.finish()
        order_id = turn.entity("order_id")
        request = await self._open_request(turn, str(order_id) if order_id else None)
        if request is not None:
            await self._urge_request(turn, request)
            return
        order = (
            await self.orders.get(str(order_id or turn.slots.get("last_order_id") or ""))
            if (order_id or turn.slots.get("last_order_id"))
            else None
        )
        if order is None:
            identities = turn.input.identities
            recent = await self.orders.recent_for_customer(phone=identities.get("phone"), email=identities.get("email"))
            order = next(
                (o for o in recent if o.status in (OrderStatus.PAID, OrderStatus.PICKING, OrderStatus.SHIPPED)), None
            )
        if order is None or order.status not in (OrderStatus.PAID, OrderStatus.PICKING, OrderStatus.SHIPPED):
            turn.begin(self.name, "order")
            turn.say("nothing_to_urge")
            return
        urged = dict(turn.slots.get("urged_orders", {}))
        count = int(urged.get(order.order_id, 0)) + 1
        urged[order.order_id] = count
        turn.slots["urged_orders"] = urged
        turn.slots["last_order_id"] = order.order_id
        turn.event("urged", order_id=order.order_id, count=count)
        if count >= self.policy.urges_before_handoff:
            turn.request_handoff("repeated_urge", order_id=order.order_id, urges=count)
            return
        if order.status is OrderStatus.SHIPPED:
            latest = order.latest_logistics(1)
            next_text = turn.text("next_shipping", latest=latest[0].description if latest else "-")
        else:
            next_text = turn.text("next_warehouse")
        what = turn.text(
            "urge_what_order", order_id=order.order_id, status=status_label(order.status.value, turn.language)
        )
        turn.say("urge_recorded", what=what, count=count, next=next_text)
        turn.event("self_service_completed", flow=self.name, order_id=order.order_id)

    async def on_step(self, turn: Turn, step: str, data: dict[str, object], order: Order | None) -> bool:
        if step != "order" or not turn.entity("order_id"):
            return False
        await self.proceed(turn, None)
        return True

    async def _open_request(self, turn: Turn, order_id: str | None) -> AfterSalesRequest | None:
        aftersales = self.context.aftersales
        if aftersales is None:
            return None
        if order_id:
            candidates = await aftersales.for_order(order_id)
            candidates = [r for r in candidates if r.customer_id == turn.input.customer_id]
        else:
            candidates = await aftersales.for_customer(turn.input.customer_id)
        open_ones = [r for r in candidates if r.open]
        return open_ones[-1] if open_ones else None

    async def _urge_request(self, turn: Turn, request: AfterSalesRequest) -> None:
        aftersales = self.context.aftersales
        assert aftersales is not None
        request = await aftersales.record_urge(request.id)
        turn.slots["last_order_id"] = request.order_id
        turn.event("urged", request_id=request.id, order_id=request.order_id, count=request.urges)
        if request.ticket_id and self.context.tickets is not None:
            await self.context.tickets.record_urge(request.ticket_id)
        if request.urges >= self.policy.urges_before_handoff:
            turn.request_handoff("repeated_urge", request_id=request.id, urges=request.urges)
            return
        what = turn.text(
            "urge_what_request",
            request_id=request.id,
            type=request.type_label(turn.language),
            status=request.customer_status(turn.language),
        )
        turn.say("urge_recorded", what=what, count=request.urges, next=self._next(turn, request))
        turn.event("self_service_completed", flow=self.name, request_id=request.id)

    def _next(self, turn: Turn, request: AfterSalesRequest) -> str:
        status = request.status
        if status in (Step.APPLIED, Step.REVIEWING):
            deadline = request.created_at + timedelta(hours=self.policy.review_hours)
            local = deadline.astimezone(self.zone())
            return turn.text("next_review", deadline=f"{local:%m-%d %H:%M}")
        if status in (Step.APPROVED, Step.AWAITING_RETURN):
            pickup = request.details.get("pickup") or {}
            return turn.text("next_pickup", pickup=f"{pickup.get('date', '')} {pickup.get('slot', '')}".strip())
        if status is Step.GOODS_RECEIVED:
            return turn.text("next_goods")
        if status is Step.PAYMENT_PROCESSING:
            return turn.text("next_payment", days=self.policy.refund_days)
        if status is Step.RESENDING:
            return turn.text("next_resend")
        return turn.text("next_issuing")
