"""Refund: before picking, cancel and refund at once (闪电退款); on the way, refuse the parcel
or have an agent intercept it; after delivery, return-and-refund or a partial refund (仅退款)
that a reviewer decides.
"""

from __future__ import annotations

from typing import Any, ClassVar

from backoffice import TicketType
from dialogue import guard
from dialogue.flows.base import Flow, tell_existing, unfinished
from dialogue.replies import register, status_label
from dialogue.turn import Turn
from shop import Order, OrderActionRefused, OrderStatus
from shop.aftersales import AfterSalesRequest, RequestType, Step

register(
    {
        "confirm_cancel_refund": {
            "zh": "订单 {order_id}（{items}）还未出库，"
            "可以立即取消并退款 ¥{amount:.2f}（原路退回）。确认取消这个订单吗？",
            "en": "Order {order_id} ({items}) hasn't left the warehouse: I can cancel it now and refund "
            "¥{amount:.2f} to your original payment. Cancel this order?",
        },
        "lightning_refund_done": {
            "zh": "订单 {order_id} 已取消，退款 ¥{amount:.2f} 已提交支付中心（闪电退款）"
            "，预计 {days} 个工作日内原路退回。售后单号 {request_id}。",
            "en": "Order {order_id} is cancelled and ¥{amount:.2f} is on its way back (express refund), "
            "expected within {days} working days. Request {request_id}.",
        },
        "refund_in_transit": {
            "zh": "订单 {order_id} {status}，已无法直接取消。"
            "您可以在快递派送时拒收，包裹退回仓库后 {days} 个工作日内原路退款；"
            "也可以签收后申请七天无理由退货，或转人工尝试拦截包裹。",
            "en": "Order {order_id} is {status}, so it can't be cancelled directly. You can refuse the parcel "
            "at the door (the refund follows within {days} working days of it being back), return it within 7 days "
            "of delivery, or an agent can try to intercept it.",
        },
        "what_cancel": {
            "zh": "取消订单 {order_id}（{items}）并退款 ¥{amount:.2f}",
            "en": "cancel order {order_id} ({items}) and refund ¥{amount:.2f}",
        },
        "what_partial": {
            "zh": "为订单 {order_id} 申请部分退款 ¥{amount:.2f}",
            "en": "ask for a partial refund of ¥{amount:.2f} on order {order_id}",
        },
        "confirm_partial": {
            "zh": "为订单 {order_id} 申请部分退款 ¥{amount:.2f}，提交专员审核。确认吗？",
            "en": "Ask for a partial refund of ¥{amount:.2f} on order {order_id} (a reviewer decides)? Confirm?",
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
_RETURN_REASONS = ("七天无理由", "破损", "过期变质", "质量问题", "描述不符", "发错货")
_RETURN_WORDS = ("退货", "退貨", "寄回", "退回去", "return", "send it back")


class RefundFlow(Flow):
    name: ClassVar[str] = "refund"
    intents: ClassVar[tuple[str, ...]] = ("refund",)

    def order_is_candidate(self, order: Order) -> bool:
        return order.status in (OrderStatus.PAID, OrderStatus.PICKING)

    async def proceed(self, turn: Turn, order: Order | None) -> None:
        assert order is not None
        aftersales = self.context.aftersales
        if aftersales is not None:
            for request in await aftersales.for_order(order.order_id):
                if request.type is RequestType.REFUND and unfinished(request, turn) and not request.details:
                    turn.confirmed = guard.subject("refund", order.order_id)  # an interrupted turn's, confirmed then
                    await self._lightning_refund(turn, order, request)  # finish what an interrupted turn began
                    return
                if request.open and request.type in (RequestType.REFUND, RequestType.RETURN_REFUND):
                    turn.finish()
                    tell_existing(turn, request, self.context.channel_labels)
                    return
        status = status_label(order.status.value, turn.language)
        if order.status in (OrderStatus.PAID, OrderStatus.PICKING):
            items = (
                "、".join(i.name for i in order.items)
                if turn.language == "zh"
                else ", ".join(i.name for i in order.items)
            )
            what = turn.text("what_cancel", order_id=order.order_id, items=items, amount=order.amount)
            self.ask_to_confirm(
                turn, "confirm_cancel_refund", "refund", order, what=what,
                order_id=order.order_id, items=items, amount=order.amount,
            )  # fmt: skip
        elif order.status is OrderStatus.SHIPPED:
            turn.finish()
            turn.say(
                "refund_in_transit",
                quick_replies=(turn.choice("quick_refuse"), turn.choice("quick_intercept")),
                order_id=order.order_id,
                status=status,
                days=self.policy.refund_days,
            )
            turn.begin(self.name, "in_transit", order_id=order.order_id)
            turn.asked("in_transit", order_id=order.order_id)
            turn.act("refused", order=order.order_id)
        elif order.status is OrderStatus.DELIVERED:
            turn.finish()
            self._delivered(turn, order)
        else:
            turn.finish()
            turn.say("refund_cancelled_order", order_id=order.order_id, days=self.policy.refund_days)
            turn.act("answer", order=order.order_id)

    def _delivered(self, turn: Turn, order: Order) -> None:
        """After delivery the money comes back with the goods (a return), or in part while the
        customer keeps them (a partial refund a reviewer decides): what they said, or they choose."""
        text = turn.text_now.lower()
        if any(p in text for p in _PARTIAL):
            turn.begin(self.name, "partial_amount", order_id=order.order_id)
            turn.asked("slot", slot="amount")
            turn.say("ask_partial_amount", amount=order.amount)
            turn.act("ask", order=order.order_id, slot="amount")
            return
        # Goods that came damaged, spoilt or faulty go back (or are judged on a photo) through the
        # return flow, which knows each category's rules; "要退款" alone does not decide that.
        if any(w in text for w in _RETURN_WORDS) or turn.entity("reason") in _RETURN_REASONS:
            turn.redirect = "return_refund"
            turn.slots["redirect_order"] = order.order_id
            return
        turn.begin(self.name, "delivered_choice", order_id=order.order_id)
        turn.asked("request", order_id=order.order_id)
        choices = (turn.choice("quick_return_refund"), turn.choice("quick_partial_refund"))
        turn.say("refund_delivered", quick_replies=choices, order_id=order.order_id)
        turn.act("ask", order=order.order_id, slot="request")

    async def on_step(self, turn: Turn, step: str, data: dict[str, Any], order: Order | None) -> bool:
        if order is None:
            return False
        text = turn.text_now.strip()
        if step == "delivered_choice":
            lowered = text.lower()
            if text == turn.text("quick_partial_refund") or any(p in lowered for p in _PARTIAL):
                turn.finish()
                self._delivered(turn, order)
                return True
            if text == turn.text("quick_return_refund") or any(w in lowered for w in _RETURN_WORDS):
                turn.finish()
                turn.redirect = "return_refund"
                turn.slots["redirect_order"] = order.order_id
                return True
            return False
        if step == "confirm":
            return await self.answer_confirmation(turn, lambda: self._lightning_refund(turn, order))
        if step == "in_transit":
            if text == turn.text("quick_intercept") or turn.intent == "human_handoff":
                turn.finish()
                turn.request_handoff("order_intercept", order_id=order.order_id)
                return True
            if text == turn.text("quick_refuse"):
                turn.finish()
                turn.say("refuse_noted")
                turn.act("answer", order=order.order_id)
                turn.event("self_service_completed", flow=self.name, order_id=order.order_id, outcome="refuse")
                return True
            return False
        if step == "partial_amount":
            amount = turn.entity("amount")
            if amount is None:
                return False
            value = float(amount)
            if not 0 < value <= order.amount:
                turn.say("partial_amount_invalid", amount=order.amount)
                turn.asked("slot", slot="amount")
                turn.act("ask", order=order.order_id, slot="amount")
                return True
            data["amount"] = value
            data["reason"] = str(turn.entity("reason") or text[:100])
            what = turn.text("what_partial", order_id=order.order_id, amount=value)
            self.ask_to_confirm(turn, "confirm_partial", "refund", order, what=what, order_id=order.order_id,
                                amount=value)  # fmt: skip
            data["partial"] = True
            return True
        return False

    async def _lightning_refund(self, turn: Turn, order: Order, begun: AfterSalesRequest | None = None) -> None:
        form = turn.form
        if form is not None and form["data"].get("partial"):
            await self._partial(turn, order, float(form["data"]["amount"]), str(form["data"].get("reason") or ""))
            return
        aftersales = self.context.aftersales
        assert aftersales is not None
        if begun is not None:
            guard.authorise(turn, "refund", order.order_id)
            turn.finish()
            request: AfterSalesRequest | None = begun
        else:
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
            # The warehouse shipped it meanwhile: the request goes nowhere, the customer hears why.
            await aftersales.advance(request.id, Step.CANCELLED, actor="system:lightning_refund", note=exc.reason)
            fresh = await self.orders.get(order.order_id)
            turn.acted = [a for a in turn.acted if a["action"] != "submitted"]
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
