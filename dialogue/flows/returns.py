"""Return-and-refund and exchange: choose the item, the reason, evidence where needed, then
either approve automatically (极速审核: in the window and not an excluded category) with a
return code and a courier pick-up, or submit the case to a reviewer as a ticket.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, ClassVar

from backoffice import TicketType
from backoffice.routing.pickups import ExchangeDelivery, Parcels, PickupRequest
from dialogue.flows.base import Flow, is_no
from dialogue.replies import register
from dialogue.turn import Turn
from nlu.entities import REASONS
from shop import Order, OrderItem, OrderStatus
from shop.aftersales import AfterSalesRequest, RequestType, Step

register(
    {
        "return_not_delivered": {
            "zh": "订单 {order_id} 还未签收（{status}）。"
            "未发货的订单可以直接取消退款；运输中的包裹可以拒收，拒收后自动退款。",
            "en": "Order {order_id} hasn't been delivered yet ({status}). An order not yet shipped can be cancelled "
            "and refunded; a parcel on its way can be refused at the door and is then refunded.",
        },
        "return_cancelled_order": {
            "zh": "订单 {order_id} 已取消，无需退货。",
            "en": "Order {order_id} was cancelled; there is nothing to return.",
        },
        "which_item": {"zh": "请问是哪件商品？\n{choices}", "en": "Which item is it?\n{choices}"},
        "ask_reason": {"zh": "请问是什么原因呢？", "en": "What is the reason?"},
        "ask_photo": {
            "zh": "请拍照上传商品问题的照片（如破损处、外包装和快递面单），方便我们核实。没有照片请回复“没有照片”。",
            "en": "Please send a photo of the problem (the damage, the box and the label). "
            'If you have none, reply "no photo".',
        },
        "photo_received": {"zh": "照片已收到。", "en": "Photo received."},
        "ask_exchange_spec": {
            "zh": "请问想换成什么规格（如尺码、颜色）？",
            "en": "What would you like instead (size, colour)?",
        },
        "ask_pickup": {
            "zh": "可以为您预约快递上门取件（取件地址：{address}），请选择取件时间：",
            "en": "A courier can collect it from {address}. Please pick a time:",
        },
        "pickup_choice": {"zh": "{day_label} {slot}", "en": "{day_label} {slot}"},
        "tomorrow": {"zh": "明天", "en": "tomorrow"},
        "day_after": {"zh": "后天", "en": "the day after tomorrow"},
        "confirm_return": {
            "zh": "请确认{topic}申请：\n商品：{item}\n原因：{reason}\n{money}上门取件：{pickup}",
            "en": "Please confirm the {topic}:\nitem: {item}\nreason: {reason}\n{money}pick-up: {pickup}",
        },
        "refund_amount_line": {"zh": "退款金额：¥{amount:.2f}\n", "en": "refund: ¥{amount:.2f}\n"},
        "exchange_spec_line": {"zh": "换成：{spec}\n", "en": "replacement: {spec}\n"},
        "return_approved": {
            "zh": "{topic}已审核通过（极速审核），售后单号 {request_id}，退货码 {return_code}。\n"
            "快递员将于 {pickup} 上门取件，请将商品及配件、赠品放回原包装，在包裹上写上退货码。"
            "{after}",
            "en": "Your {topic} is approved (express review): request {request_id}, return code {return_code}.\n"
            "A courier will collect it on {pickup}. Please pack the item with its accessories and gifts in the "
            "original box and write the return code on the parcel. {after}",
        },
        "after_return_refund": {
            "zh": "商家收货验货后，¥{amount:.2f} 将在 {days} 个工作日内原路退回。",
            "en": "Once the warehouse has checked it, ¥{amount:.2f} goes back to your original payment "
            "in {days} working days.",
        },
        "after_exchange": {
            "zh": "商家收到退回商品后，将为您寄出新的商品。",
            "en": "Once we receive it, we'll send the replacement.",
        },
        "return_review": {
            "zh": "{why}已为您提交售后审核，售后单号 {request_id}，工单号 {ticket_id}。"
            "审核结果将在 {hours} 小时内通知您。",
            "en": "{why}I've submitted it for review: request {request_id}, ticket {ticket_id}. "
            "You'll hear back within {hours} hours.",
        },
        "why_window": {
            "zh": "该商品签收已超过 {days} 天，不能自动审核。",
            "en": "It was delivered more than {days} days ago, so it can't be approved automatically. ",
        },
        "why_excluded": {
            "zh": "{category}不支持自动退换。",
            "en": "{category} can't be returned automatically. ",
        },
        "why_evidence": {"zh": "需要人工核实照片。", "en": "A person needs to check the photos. "},
        "no_photo": {"zh": "没有照片", "en": "no photo"},
    }
)

_NO_PHOTO = ("没有照片", "没照片", "冇相", "没有图", "no photo", "none")
DEFAULT_PARCEL = Parcels(count=1, weight_kg=1.0, volume_l=6.0)


class _GoodsFlow(Flow):
    """Shared steps of flows about delivered goods: the item, the reason and photo evidence."""

    request_type: ClassVar[RequestType]
    approval_rule: ClassVar[str]
    """The rule named as the decider when the request is approved without review."""

    def order_is_candidate(self, order: Order) -> bool:
        return order.status is OrderStatus.DELIVERED

    def remember(self, turn: Turn, data: dict[str, Any]) -> None:
        if turn.entity("reason"):
            data.setdefault("reason", str(turn.entity("reason")))
        if evidence := turn.evidence():
            data.setdefault("evidence", evidence)

    def window_days(self, data: dict[str, Any]) -> int:
        """Days after delivery within which the request may be approved without review."""
        return self.policy.return_window_days

    async def proceed(self, turn: Turn, order: Order | None) -> None:
        assert order is not None
        if await self.told_open_request(turn, order, self.request_type):
            return
        if order.status is OrderStatus.CANCELLED:
            turn.finish()
            turn.say("return_cancelled_order", order_id=order.order_id)
            return
        if order.status is not OrderStatus.DELIVERED:
            await self.not_delivered(turn, order)
            return
        data = turn.form["data"] if turn.form else {}
        if turn.entity("reason"):
            data.setdefault("reason", str(turn.entity("reason")))
        if evidence := turn.evidence():
            data.setdefault("evidence", evidence)
        await self.next_question(turn, order, data)

    async def not_delivered(self, turn: Turn, order: Order) -> None:
        from dialogue.replies import status_label

        turn.finish()
        turn.say(
            "return_not_delivered", order_id=order.order_id, status=status_label(order.status.value, turn.language)
        )

    def returnable_items(self, order: Order) -> list[OrderItem]:
        return [i for i in order.items if i.price > 0] or list(order.items)

    async def next_question(self, turn: Turn, order: Order, data: dict[str, Any]) -> None:
        items = self.returnable_items(order)
        if "sku" not in data:
            if len(items) == 1:
                data["sku"] = items[0].sku
            else:
                turn.step("item")
                lines = "\n".join(f"{n}. {i.name}" for n, i in enumerate(items, start=1))
                turn.say(
                    "which_item",
                    quick_replies=tuple(turn.choice("order_choice", payload=i.sku, summary=i.name) for i in items),
                    choices=lines,
                )
                return
        if "reason" not in data:
            turn.step("reason")
            turn.say("ask_reason", quick_replies=tuple(turn.choice("order_choice", summary=r) for r in REASONS))
            return
        if self.policy.needs_evidence(data["reason"]) and "evidence" not in data:
            turn.step("photo")
            turn.say("ask_photo", quick_replies=(turn.choice("no_photo"),))
            return
        await self.after_questions(turn, order, data)

    async def on_step(self, turn: Turn, step: str, data: dict[str, Any], order: Order | None) -> bool:
        if order is None:
            return False
        if step == "item":
            text = turn.input.text.strip()
            chosen = next(
                (i for i in self.returnable_items(order) if text in (i.sku, i.name) or turn.entity("sku") == i.sku),
                None,
            )
            if chosen is None:
                return False
            data["sku"] = chosen.sku
        elif step == "reason":
            reason = turn.entity("reason") or (turn.input.text.strip() if turn.input.text.strip() in REASONS else None)
            if reason is None:
                if turn.confidence >= 0.8 and turn.intent not in ("inform", self.name):
                    return False
                reason = turn.input.text.strip()[:100] or None
            if reason is None:
                return False
            data["reason"] = str(reason)
        elif step == "photo":
            if turn.media_ids:
                data["evidence"] = turn.media_ids
                turn.say("photo_received")
            elif turn.input.text.strip().lower() in _NO_PHOTO or is_no(turn):
                data["evidence"] = []
            else:
                turn.say("ask_photo", quick_replies=(turn.choice("no_photo"),))
                return True
        else:
            return await self.on_own_step(turn, step, data, order)
        await self.next_question(turn, order, data)
        return True

    def review_reasons(self, turn: Turn, order: Order, data: dict[str, Any], window_days: int) -> str | None:
        """Why this case cannot be approved automatically (in the customer's words), or None."""
        item = order.item(data["sku"]) or order.items[0]
        category = self.policy.exclusion(item)
        if category is not None:
            return turn.text("why_excluded", category=self.policy.exclusion_label(category, turn.language))
        delivered = order.delivered_at
        if delivered is None or self.now() - delivered > timedelta(days=window_days):
            return turn.text("why_window", days=window_days)
        if self.policy.needs_evidence(data.get("reason")):
            return turn.text("why_evidence")  # photos of damage or defects need a person's eye
        return None

    def request_fields(self, order: Order, data: dict[str, Any]) -> dict[str, Any]:
        item = order.item(data["sku"]) or order.items[0]
        return {
            "items": [item.model_dump(include={"sku", "name", "quantity", "price"})],
            "amount": item.price * item.quantity if self.request_type is RequestType.RETURN_REFUND else 0.0,
            "reason": data.get("reason"),
            "details": {k: v for k, v in data.items() if k in ("spec",)},
            "evidence": list(data.get("evidence", [])),
        }

    async def submit_for_review(self, turn: Turn, order: Order, data: dict[str, Any], why: str) -> None:
        request = await self.new_request(turn, order, self.request_type, **self.request_fields(order, data))
        if request is None:
            return
        item = order.item(data["sku"]) or order.items[0]
        summary = f"{request.type_label('zh')}审核：{item.name}，原因：{data.get('reason')}；{why}"
        ticket = await self.to_review(turn, order, request, TicketType(self.request_type.value), summary, note=why)
        if ticket is None:
            return
        turn.say("return_review", why=why, request_id=request.id, ticket_id=ticket.id, hours=self.policy.review_hours)

    # -- pick-up -------------------------------------------------------------------------

    def ask_pickup(self, turn: Turn, order: Order) -> None:
        turn.step("pickup")
        choices = []
        for key in ("tomorrow", "day_after"):
            for slot in self.policy.pickup_slots[:2] if key == "day_after" else self.policy.pickup_slots:
                label = turn.text("pickup_choice", day_label=turn.text(key), slot=slot)
                choices.append(turn.choice("order_choice", summary=label))
        turn.say("ask_pickup", quick_replies=tuple(choices[:6]), address=order.address)

    def take_pickup(self, turn: Turn, data: dict[str, Any]) -> bool:
        day = turn.entity("date")
        slot = (
            turn.input.parse.entity_values("time_slot")[-1]
            if turn.input.parse and turn.input.parse.entity_values("time_slot")
            else None
        )
        if day is None and slot is None:
            return False
        today = self.today()
        if day is None or str(day) <= today.isoformat():
            day = (today + timedelta(days=1)).isoformat()
        data["pickup_date"] = str(day)
        data["pickup_slot"] = str(slot or self.policy.pickup_slots[0])
        return True

    async def request_pickup(self, turn: Turn, order: Order, request: AfterSalesRequest, data: dict[str, Any]) -> None:
        pickups = self.context.pickups
        if pickups is None:
            return
        start, end = data["pickup_slot"].split("-")
        await pickups.request_pickup(
            PickupRequest(
                pickup_id=request.id,
                order_id=order.order_id,
                kind="exchange" if self.request_type is RequestType.EXCHANGE else "return",
                customer_name=order.customer.name,
                phone=order.customer.phone,
                address=order.address,
                date=data["pickup_date"],
                window_start=start,
                window_end=end,
                parcels=DEFAULT_PARCEL,
                exchange=(
                    ExchangeDelivery(sku=data.get("sku"), count=1, weight_kg=1.0, volume_l=6.0)
                    if self.request_type is RequestType.EXCHANGE
                    else None
                ),
            )
        )

    async def approve(self, turn: Turn, order: Order, data: dict[str, Any]) -> None:
        aftersales = self.context.aftersales
        assert aftersales is not None
        fields = self.request_fields(order, data)
        amount = float(fields["amount"])
        request = await self.new_request(turn, order, self.request_type, **fields)
        if request is None:
            return
        rule = self.approval_rule
        return_code = "RT" + request.id[2:]
        pickup = {"date": data["pickup_date"], "slot": data["pickup_slot"], "address": order.address}
        request = await aftersales.advance(
            request.id,
            Step.APPROVED,
            Step.AWAITING_RETURN,
            actor=f"system:{rule}",
            decided_by=f"system:{rule}",
            note="极速审核",
            details={"return_code": return_code, "pickup": pickup},
        )
        await self.request_pickup(turn, order, request, data)
        after = (
            turn.text("after_return_refund", amount=amount, days=self.policy.refund_days)
            if self.request_type is RequestType.RETURN_REFUND
            else turn.text("after_exchange")
        )
        turn.say(
            "return_approved",
            topic=self.topic(turn),
            request_id=request.id,
            return_code=return_code,
            pickup=f"{pickup['date']} {pickup['slot']}",
            after=after,
        )
        turn.event("self_service_completed", flow=self.name, order_id=order.order_id, request_id=request.id)

    def confirm(self, turn: Turn, order: Order, data: dict[str, Any]) -> None:
        item = order.item(data["sku"]) or order.items[0]
        money = (
            turn.text("refund_amount_line", amount=item.price * item.quantity)
            if self.request_type is RequestType.RETURN_REFUND
            else turn.text("exchange_spec_line", spec=data.get("spec", "-"))
        )
        turn.step("confirm")
        turn.say(
            "confirm_return",
            quick_replies=self.confirm_choices(turn),
            topic=self.topic(turn),
            item=item.name,
            reason=data.get("reason"),
            money=money,
            pickup=f"{data['pickup_date']} {data['pickup_slot']}",
        )

    async def after_questions(self, turn: Turn, order: Order, data: dict[str, Any]) -> None:
        why = self.review_reasons(turn, order, data, self.window_days(data))
        if why is not None:
            await self.submit_for_review(turn, order, data, why)
            return
        if "pickup_date" not in data and not self.take_pickup(turn, data):
            self.ask_pickup(turn, order)
            return
        self.confirm(turn, order, data)

    async def on_own_step(self, turn: Turn, step: str, data: dict[str, Any], order: Order) -> bool:
        if step == "pickup":
            if not self.take_pickup(turn, data):
                return False
            self.confirm(turn, order, data)
            return True
        if step == "confirm":
            return await self.answer_confirmation(turn, lambda: self.approve(turn, order, data))
        return False


class ReturnRefundFlow(_GoodsFlow):
    name: ClassVar[str] = "return_refund"
    intents: ClassVar[tuple[str, ...]] = ("return_refund",)
    request_type: ClassVar[RequestType] = RequestType.RETURN_REFUND
    approval_rule: ClassVar[str] = "seven_day_return"

    async def not_delivered(self, turn: Turn, order: Order) -> None:
        if order.status is OrderStatus.PAID:
            turn.finish()
            turn.redirect = "refund"  # not shipped: cancelling is the refund
            return
        await super().not_delivered(turn, order)


class ExchangeFlow(_GoodsFlow):
    name: ClassVar[str] = "exchange"
    intents: ClassVar[tuple[str, ...]] = ("exchange",)
    request_type: ClassVar[RequestType] = RequestType.EXCHANGE
    approval_rule: ClassVar[str] = "quality_exchange"

    def window_days(self, data: dict[str, Any]) -> int:
        # Quality problems may be exchanged for longer than a change of mind.
        quality = self.policy.needs_evidence(data.get("reason"))
        return self.policy.exchange_window_days if quality else self.policy.return_window_days

    async def after_questions(self, turn: Turn, order: Order, data: dict[str, Any]) -> None:
        if "spec" not in data:
            turn.step("spec")
            turn.say("ask_exchange_spec")
            return
        await super().after_questions(turn, order, data)

    async def on_own_step(self, turn: Turn, step: str, data: dict[str, Any], order: Order) -> bool:
        if step == "spec":
            spec = turn.input.text.strip()
            if not spec:
                return False
            data["spec"] = spec[:100]
            await self.after_questions(turn, order, data)
            return True
        return await super().on_own_step(turn, step, data, order)
