"""Refund: before picking, cancel and refund at once (闪电退款); on the way, refuse the parcel
or have an agent intercept it; after delivery, return-and-refund or a partial refund (仅退款)
that a reviewer decides.
"""

from __future__ import annotations

from typing import Any, ClassVar

from backoffice import TicketType
from dialogue.flows.base import Flow, is_yes, tell_existing, unfinished
from dialogue.replies import register
from dialogue.turn import Turn
from shop import Order, OrderActionRefused, OrderStatus
from shop.aftersales import RequestType, Step

register(
    {
        "confirm_cancel_refund": {
            "zh": "订单 {order_id} 还未出库，可以立即取消并退款 ¥{amount:.2f}（原路退回）。确认取消订单吗？",
            "en": "Order {order_id} hasn't left the warehouse: I can cancel it now and refund ¥{amount:.2f} "
            "to your original payment. Cancel the order?",
        },
        "lightning_refund_done": {
            "zh": "订单 {order_id} 已取消，退款 ¥{amount:.2f} 已提交支付中心（闪电退款）"
            "，预计 {days} 个工作日内原路退回。售后单号 {request_id}。",
            "en": "Order {order_id} is cancelled and ¥{amount:.2f} is on its way back (express refund), "
            "expected within {days} working days. Request {request_id}.",
        },
        "refund_in_transit": {
            "zh": "订单 {order_id} {status}，已无法直接取消。您可以在快递派送时拒收，商家收到退回包裹后自动退款；"
            "也可以转人工尝试拦截包裹。",
            "en": "Order {order_id} is {status}, so it can't be cancelled directly. You can refuse the parcel "
            "at the door and the refund follows once it's back, or an agent can try to intercept it.",
        },
        "quick_intercept": {"zh": "转人工拦截", "en": "Agent: intercept"},
        "quick_refuse": {"zh": "我会拒收", "en": "I'll refuse it"},
        "refuse_noted": {
            "zh": "好的，派送时请直接拒收，包裹退回后将为您自动退款。还有其他可以帮您的吗？",
            "en": "All right: refuse it at the door and the refund follows automatically. Anything else?",
        },
        "refund_delivered": {
            "zh": "订单 {order_id} 已签收。需要退货的请选择“退货退款”；商品有小问题不想退货的，可以申请“部分退款”。",
            "en": 'Order {order_id} was delivered. Choose "return and refund" to send it back, '
            'or "partial refund" to keep it with part of the money back.',
        },
        "quick_return_refund": {"zh": "退货退款", "en": "Return and refund"},
        "quick_partial_refund": {"zh": "部分退款", "en": "Partial refund"},
        "ask_partial_amount": {
            "zh": "请问希望退款多少金额（订单实付 ¥{amount:.2f}）以及原因？",
            "en": "How much would you like back (you paid ¥{amount:.2f}), and why?",
        },
        "partial_amount_invalid": {
            "zh": "退款金额需在 0 到 ¥{amount:.2f} 之间，请重新告诉我金额。",
            "en": "The amount must be between 0 and ¥{amount:.2f}. How much?",
        },
        "partial_submitted": {
            "zh": "部分退款 ¥{amount:.2f} 的申请已提交审核，售后单号 {request_id}，"
            "工单号 {ticket_id}，{hours} 小时内给您答复。",
            "en": "Your partial refund of ¥{amount:.2f} is submitted for review: request {request_id}, "
            "ticket {ticket_id}. You'll hear back within {hours} hours.",
        },
        "refund_cancelled_order": {
            "zh": "订单 {order_id} 已取消，款项已原路退回，一般 {days} 个工作日到账。",
            "en": "Order {order_id} was cancelled and refunded; it usually arrives within {days} working days.",
        },
    }
)

_PARTIAL = ("部分退款", "仅退款", "partial refund", "partial")


class RefundFlow(Flow):
    name: ClassVar[str] = "refund"
    intents: ClassVar[tuple[str, ...]] = ("refund",)

    async def proceed(self, turn: Turn, order: Order | None) -> None:
        assert order is not None
        aftersales = self.context.aftersales
        if aftersales is not None:
            for request in await aftersales.for_order(order.order_id):
                if request.type is RequestType.REFUND and unfinished(request, turn) and not request.details:
                    await self._lightning_refund(turn, order)  # finish what an interrupted turn began
                    return
                if request.open and request.type in (RequestType.REFUND, RequestType.RETURN_REFUND):
                    turn.finish()
                    tell_existing(turn, request, self.context.channel_labels)
                    return
        from dialogue.replies import status_label

        status = status_label(order.status.value, turn.language)
        if order.status is OrderStatus.PAID:
            turn.step("confirm_cancel")
            turn.say(
                "confirm_cancel_refund",
                quick_replies=self.confirm_choices(turn),
                order_id=order.order_id,
                amount=order.amount,
            )
        elif order.status in (OrderStatus.PICKING, OrderStatus.SHIPPED):
            turn.step("in_transit")
            turn.say(
                "refund_in_transit",
                quick_replies=(turn.choice("quick_refuse"), turn.choice("quick_intercept")),
                order_id=order.order_id,
                status=status,
            )
        elif order.status is OrderStatus.DELIVERED:
            turn.step("delivered")
            turn.say(
                "refund_delivered",
                quick_replies=(turn.choice("quick_return_refund"), turn.choice("quick_partial_refund")),
                order_id=order.order_id,
            )
        else:
            turn.finish()
            turn.say("refund_cancelled_order", order_id=order.order_id, days=self.policy.refund_days)

    async def on_step(self, turn: Turn, step: str, data: dict[str, Any], order: Order | None) -> bool:
        if order is None:
            return False
        text = turn.input.text.strip()
        if step == "confirm_cancel":
            return await self.answer_confirmation(turn, lambda: self._lightning_refund(turn, order))
        if step == "in_transit":
            if text == turn.text("quick_intercept") or turn.intent == "human_handoff":
                turn.finish()
                turn.request_handoff("order_intercept", order_id=order.order_id)
                return True
            if text == turn.text("quick_refuse") or is_yes(turn):
                turn.finish()
                turn.say("refuse_noted")
                turn.event("self_service_completed", flow=self.name, order_id=order.order_id, outcome="refuse")
                return True
            return False
        if step == "delivered":
            if any(p in text.lower() for p in _PARTIAL):
                turn.step("partial_amount")
                turn.say("ask_partial_amount", amount=order.amount)
                return True
            return False  # "退货退款" is understood as that intent and starts its own flow
        if step == "partial_amount":
            amount = turn.entity("amount")
            if amount is None:
                if turn.confidence >= 0.8 and turn.intent not in ("inform", "refund"):
                    return False
                turn.say("partial_amount_invalid", amount=order.amount)
                return True
            value = float(amount)
            if not 0 < value <= order.amount:
                turn.say("partial_amount_invalid", amount=order.amount)
                return True
            await self._partial(turn, order, value, str(turn.entity("reason") or text[:100]))
            return True
        return False

    async def _lightning_refund(self, turn: Turn, order: Order) -> None:
        aftersales = self.context.aftersales
        assert aftersales is not None
        request = await self.new_request(
            turn,
            order,
            RequestType.REFUND,
            items=[i.model_dump(include={"sku", "name", "quantity", "price"}) for i in order.items],
            amount=order.amount,
            reason="未发货取消订单",
        )
        if request is None:
            return
        current = await self.orders.get(order.order_id) or order
        already = current.status is OrderStatus.CANCELLED and any(request.id in (c.new or "") for c in current.changes)
        try:
            if not already:  # an earlier, interrupted try may have cancelled it for this request
                await self.orders.cancel(order.order_id, actor=f"customer:{turn.input.customer_id}", reason=request.id)
        except OrderActionRefused as exc:
            # The warehouse picked it meanwhile: the request goes nowhere, the customer hears why.
            await aftersales.advance(request.id, Step.CANCELLED, actor="system:lightning_refund", note=exc.reason)
            fresh = await self.orders.get(order.order_id)
            turn.begin(self.name, "start", order_id=order.order_id)
            await self.proceed(turn, fresh or order)
            return
        request = await aftersales.advance(
            request.id,
            Step.APPROVED,
            actor="system:lightning_refund",
            decided_by="system:lightning_refund",
            note="未出库订单，闪电退款",
        )
        request = await aftersales.advance(request.id, Step.PAYMENT_PROCESSING, actor="payment_centre")
        turn.say(
            "lightning_refund_done",
            order_id=order.order_id,
            amount=order.amount,
            days=self.policy.refund_days,
            request_id=request.id,
        )
        turn.event("self_service_completed", flow=self.name, order_id=order.order_id, request_id=request.id)

    async def _partial(self, turn: Turn, order: Order, amount: float, reason: str) -> None:
        request = await self.new_request(
            turn, order, RequestType.REFUND, amount=amount, reason=reason, details={"partial": True}
        )
        if request is None:
            return
        summary = f"部分退款 ¥{amount:.2f}（实付 ¥{order.amount:.2f}）：{reason}"
        ticket = await self.to_review(turn, order, request, TicketType.REFUND, summary, amount=amount)
        if ticket is None:
            return
        turn.say(
            "partial_submitted",
            amount=amount,
            request_id=request.id,
            ticket_id=ticket.id,
            hours=self.policy.review_hours,
        )
