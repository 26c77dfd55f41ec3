"""Resend of missing items or gifts, compensation (damage kept, late delivery) and price protection.

Each is confirmed first, naming the order and the item; on yes, small resends and late-delivery
compensation within the policy's limits are approved at once, and anything needing judgement
(damage photos, price protection, larger amounts) becomes a request in review with a ticket and
the answer time. Price protection and late-delivery compensation are different requests: one
open does not make the other a duplicate.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, ClassVar

import textpatterns
from backoffice import Ticket, TicketType
from dialogue.flows.base import Flow, is_no, item_named, tell_existing
from dialogue.replies import register, say, status_label
from dialogue.targets import GIFT_WORDS, is_gift, item_core, mentioned_items, names_order_by
from dialogue.turn import Turn
from shop import Order, OrderItem, OrderStatus
from shop.aftersales import GOODS_TYPES, AfterSalesRequest, RequestType, Step

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
            "zh": "已为您安排补发 {item} ×{quantity}，售后单号 {request_id}，预计 {days} 天内发出，发出后会通知您。",
            "en": "I've arranged a resend of {item} ×{quantity} (request {request_id}); it leaves within {days} days "
            "and you'll be told when it does.",
        },
        "claim_review": {
            "zh": "已为您提交{topic}审核，售后单号 {request_id}，工单号 {ticket_id}，{hours} 小时内给您答复。",
            "en": "I've submitted your {topic} for review: request {request_id}, ticket {ticket_id}. "
            "You'll hear back within {hours} hours.",
        },
        "which_compensation": {"zh": "请问是哪种情况？", "en": "What happened?"},
        "topic_price_protection": {"zh": "价保", "en": "price protection"},
        "goods_busy": {
            "zh": "订单 {order_id} 的{item}已有{type}申请在办（售后单号 {request_id}，当前：{status}），不再另开申请。",
            "en": "{item} from order {order_id} already has a {type} request under way ({request_id}, now {status}).",
        },
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
            "zh": "订单 {order_id} 从付款到{until}用了 {took} 天，在承诺时效（{days} 天）内，不满足延迟补偿的条件。"
            "如果还有其他问题，可以转人工客服。",
            "en": "Order {order_id} took {took} days from payment to {until_en}, within the promised {days} days, "
            "so there is no late-delivery compensation. An agent can look at anything else.",
        },
        "until_delivered": {"zh": "签收", "en": "delivery"},
        "until_now": {"zh": "现在", "en": "now"},
        "confirm_resend": {
            "zh": "确认为订单 {order_id} 补发{item} ×{quantity}吗？{review}",
            "en": "Resend {item} ×{quantity} for order {order_id}?{review}",
        },
        "what_resend": {"zh": "为订单 {order_id} 补发{item}", "en": "resend {item} for order {order_id}"},
        "resend_review_note": {
            "zh": "（价值超过 ¥{limit:g}，需专员审核，{hours} 小时内答复）",
            "en": " (worth more than ¥{limit:g}: a reviewer decides within {hours} hours)",
        },
        "confirm_late": {
            "zh": "订单 {order_id} 从付款到{until}用了 {took} 天，超过了 {days} 天的承诺时效，"
            "可以补偿您 ¥{amount:.2f} 无门槛券。确认申请吗？",
            "en": "Order {order_id} took {took} days from payment to {until_en}, more than the promised {days} days: "
            "you can have ¥{amount:.2f} store credit. Shall I claim it?",
        },
        "what_late": {
            "zh": "为订单 {order_id} 申请延迟补偿 ¥{amount:.2f}",
            "en": "claim ¥{amount:.2f} late-delivery credit on order {order_id}",
        },
        "confirm_damage": {
            "zh": "为订单 {order_id} 的{item}申请破损/质量问题赔付，提交专员审核（{hours} 小时内答复）。确认吗？",
            "en": "Claim compensation for {item} from order {order_id} (a reviewer decides within {hours} hours)?",
        },
        "what_damage": {
            "zh": "为订单 {order_id} 的{item}申请赔付",
            "en": "claim compensation for {item} on order {order_id}",
        },
        "ask_new_price": {
            "zh": "请问订单 {order_id} 的{item}现在的售价是多少？",
            "en": "What is the price of {item} (order {order_id}) now?",
        },
        "confirm_price_protection": {
            "zh": "为订单 {order_id} 的{item}申请价保：购买价 ¥{paid:.2f}，现价 ¥{now:.2f}，差价 ¥{diff:.2f}，"
            "提交专员审核（{hours} 小时内答复）。确认吗？",
            "en": "Price protection for {item} from order {order_id}: paid ¥{paid:.2f}, now ¥{now:.2f}, "
            "difference ¥{diff:.2f} (a reviewer decides within {hours} hours). Submit it?",
        },
        "what_price_protection": {
            "zh": "为订单 {order_id} 的{item}申请价保（现价 ¥{now:.2f}）",
            "en": "price protection for {item} on order {order_id} (now ¥{now:.2f})",
        },
        "price_not_lower": {
            "zh": "现价 ¥{now:.2f} 不低于您的购买价 ¥{paid:.2f}，没有差价可退。",
            "en": "¥{now:.2f} is not below the ¥{paid:.2f} you paid, so there is no difference to refund.",
        },
    }
)

LATE = textpatterns.compile(
    r"(延迟|延遲|迟到|太慢|好慢|贼慢|慢得|这么慢|這麼慢|咁慢|慢死|慢吞吞|超时|晚到|这么久|几天了|好几天|好多天|还没到|"
    r"没动|沒動|不动了|太拖|拖了|拖拖拉拉|拖这么久|才发货|才發貨|一个礼拜|一個禮拜|一周|一週|"
    r"late|delay|slow|took a week|took ages|to even ship)",
    textpatterns.IGNORECASE,
)
PRICE_DROP = textpatterns.compile(
    r"(降价|降價|落价|落價|价保|價保|保价|价格保护|價格保護|便宜了|差价|差價|补差|(?:降|跌)到\s*\d|"
    r"price (drop|protection)|cheaper)",
    textpatterns.IGNORECASE,
)
_ONLY_GOT = textpatterns.compile(r"(?:只到了|只收到|只来了|只有|只寄了|only (?:got|received))\s*(\S{1,12})")


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


def missing_item(turn: Turn, order: Order, embed: Any = None) -> OrderItem | None:
    """The item the customer says did not come: the gift when they say 赠品, the one named (not the
    one that names the order: "保温杯那单杯套没给"), or ("只到了蜂蜜") the one that was not."""
    text = turn.text_now
    gifts = [i for i in order.items if is_gift(i)]
    if len(gifts) == 1 and any(w in text.lower() for w in GIFT_WORDS):
        return gifts[0]
    named = [m.item for m in mentioned_items(text, [order], embed)]
    if len(named) > 1:
        named = [i for i in named if not names_order_by(text, i)] or named
    if len(named) == 1:
        return named[0]
    if len(named) > 1 and (arrived := _ONLY_GOT.search(turn.text_now)):
        came = {m.item.sku for m in mentioned_items(arrived.group(1), [order], embed)}  # "蜂蜜" names 土蜂蜜 500g
        rest = [i for i in named if i.sku not in came and item_core(i.name) not in arrived.group(1)]
        if len(rest) == 1:
            return rest[0]
    return None


class ResendFlow(_ClaimFlow):
    name: ClassVar[str] = "resend"
    intents: ClassVar[tuple[str, ...]] = ("resend",)

    async def proceed(self, turn: Turn, order: Order | None) -> None:
        assert order is not None
        if order.status not in (OrderStatus.SHIPPED, OrderStatus.DELIVERED):
            turn.finish()
            turn.say(
                "resend_not_shipped", order_id=order.order_id, status=status_label(order.status.value, turn.language)
            )
            turn.act("refused", order=order.order_id)
            return
        data = turn.form["data"] if turn.form else {}
        item = missing_item(turn, order, self.context.embed) or (order.item(data["sku"]) if data.get("sku") else None)
        if item is None and len(order.items) == 1:
            item = order.items[0]
        if item is None:
            turn.step("item")
            turn.asked("item", order_id=order.order_id)
            lines = "\n".join(f"{n}. {i.name}" for n, i in enumerate(order.items, start=1))
            turn.say(
                "which_missing",
                quick_replies=tuple(turn.choice("order_choice", payload=i.sku, summary=i.name) for i in order.items),
                choices=lines,
            )
            turn.act("ask_item", order=order.order_id)
            return
        await self._confirm(turn, order, item)

    async def on_step(self, turn: Turn, step: str, data: dict[str, Any], order: Order | None) -> bool:
        if order is None:
            return False
        if step == "confirm":
            chosen = order.item(str(data.get("sku")))
            if chosen is None:
                return False
            return await self.answer_confirmation(turn, lambda: self._decide(turn, order, chosen, data))
        if step != "item":
            return False
        text = turn.text_now.strip()
        item = next((i for i in order.items if text in (i.sku, i.name)), None) or missing_item(
            turn, order, self.context.embed
        )
        if item is None:
            return False
        await self._confirm(turn, order, item)
        return True

    async def _confirm(self, turn: Turn, order: Order, item: OrderItem) -> None:
        for request in await self.open_requests(order, *GOODS_TYPES):
            skus = {str(i.get("sku")) for i in request.items if i.get("sku")}
            if not skus or item.sku in skus:
                turn.finish()
                if request.type is RequestType.RESEND:
                    tell_existing(turn, request, self.context.channel_labels, item.name)
                else:
                    turn.say(
                        "goods_busy", order_id=order.order_id, item=item.name, type=request.type_label(turn.language),
                        request_id=request.id, status=request.customer_status(turn.language),
                    )  # fmt: skip
                    turn.act("existing", order=order.order_id, sku=item.sku, request=request.id,
                             request_type=request.type.value)  # fmt: skip
                    turn.slots["focus"] = {"order_id": order.order_id, "sku": item.sku, "request_id": request.id,
                                           "turn": turn.number}  # fmt: skip
                return
        quantity = min(int(turn.entity("quantity") or 1), item.quantity)
        value = item.price * quantity
        review = (
            turn.text("resend_review_note", limit=self.policy.auto_resend_max_amount, hours=self.policy.review_hours)
            if value > self.policy.auto_resend_max_amount
            else ""
        )
        if turn.form is None:
            turn.begin(self.name, "confirm", order_id=order.order_id)
        turn.step("confirm", sku=item.sku, quantity=quantity)
        what = turn.text("what_resend", order_id=order.order_id, item=item.name)
        self.ask_to_confirm(turn, "confirm_resend", "resend", order, sku=item.sku, what=what,
                            order_id=order.order_id, item=item.name, quantity=quantity, review=review)  # fmt: skip

    async def _decide(self, turn: Turn, order: Order, item: OrderItem, data: dict[str, Any]) -> None:
        aftersales = self.context.aftersales
        assert aftersales is not None
        quantity = int(data.get("quantity", 1))
        value = item.price * quantity
        request = await self.new_request(
            turn,
            order,
            RequestType.RESEND,
            sku=item.sku,
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
            turn.say("resend_approved", item=item.name, quantity=quantity, request_id=request.id,
                     days=self.policy.resend_ship_days.replace("-", "–"))  # fmt: skip
            turn.event("self_service_completed", flow=self.name, order_id=order.order_id, request_id=request.id)
            return
        ticket = await self.to_review(turn, order, request, TicketType.RESEND, f"少件补发 {item.name} ×{quantity}")
        if ticket is not None:
            self._say_review(turn, request, ticket)


class CompensationFlow(_ClaimFlow):
    name: ClassVar[str] = "compensation"
    intents: ClassVar[tuple[str, ...]] = ("compensation",)

    async def start(self, turn: Turn, *, order_id: str | None = None) -> None:
        if PRICE_DROP.search(turn.text_now) and not LATE.search(turn.text_now):
            turn.finish()
            turn.redirect = "price_protection"  # a price drop is its own request
            return
        await super().start(turn, order_id=order_id)

    def remember(self, turn: Turn, data: dict[str, Any]) -> None:
        kind = _kind(turn)
        if kind is not None:
            data.setdefault("kind", kind)
        if evidence := turn.evidence():
            data.setdefault("evidence", evidence)

    async def proceed(self, turn: Turn, order: Order | None) -> None:
        assert order is not None
        data = turn.form["data"] if turn.form else {}
        self.remember(turn, data)
        kind = data.get("kind")
        if kind == "price_drop":
            turn.finish()
            turn.redirect = "price_protection"
            return
        if kind is None:
            turn.step("kind")
            turn.asked("kind", order_id=order.order_id)
            turn.say(
                "which_compensation",
                quick_replies=(turn.choice("quick_damage"), turn.choice("quick_late"), turn.choice("quick_price_drop")),
            )
            turn.act("ask", order=order.order_id, slot="reason")
            return
        await self._continue(turn, order, data)

    async def on_step(self, turn: Turn, step: str, data: dict[str, Any], order: Order | None) -> bool:
        if order is None:
            return False
        if step == "kind":
            kind = _kind(turn)
            if kind is None:
                return False
            data["kind"] = kind
            if kind == "price_drop":
                turn.finish()
                turn.redirect = "price_protection"
                return True
        elif step == "photo":
            if turn.media_ids:
                data["evidence"] = turn.media_ids
                turn.say("photo_received")
            elif is_no(turn) or any(w in turn.text_now.lower() for w in ("没有照片", "没照片", "no photo")):
                data["evidence"] = []
            else:
                return False
        elif step == "confirm":
            return await self.answer_confirmation(turn, lambda: self._submit(turn, order, data))
        else:
            return False
        await self._continue(turn, order, data)
        return True

    async def _continue(self, turn: Turn, order: Order, data: dict[str, Any]) -> None:
        kind = data["kind"]
        if kind == "late":
            await self._late(turn, order, data)
            return
        if "evidence" not in data:
            turn.step("photo")
            turn.asked("slot", slot="photo")
            turn.say("ask_photo", quick_replies=(turn.choice("no_photo"),))
            turn.act("ask", order=order.order_id, slot="photo")
            return
        item = item_named(turn, order, self.context.embed) or order.items[0]
        data["sku"] = item.sku
        what = turn.text("what_damage", order_id=order.order_id, item=item.name)
        self.ask_to_confirm(turn, "confirm_damage", "compensation", order, what=what, order_id=order.order_id,
                            item=item.name, hours=self.policy.review_hours)  # fmt: skip

    def _delay(self, order: Order) -> tuple[int, bool]:
        """Days from payment to delivery (or now), and whether that is later than the promise."""
        limit = timedelta(days=self.policy.late_delivery_after_days)
        started = order.paid_at or self.now()
        arrived = order.delivered_at or self.now()
        return (arrived - started).days, arrived - started > limit

    async def _late(self, turn: Turn, order: Order, data: dict[str, Any]) -> None:
        took, late = self._delay(order)
        until = turn.text("until_delivered" if order.delivered_at else "until_now")
        until_en = say("until_delivered" if order.delivered_at else "until_now", "en")
        if not late:
            turn.finish()
            turn.say("not_late", order_id=order.order_id, days=self.policy.late_delivery_after_days, took=took,
                     until=until, until_en=until_en)  # fmt: skip
            turn.act("refused", order=order.order_id)
            turn.slots["focus"] = {"order_id": order.order_id, "turn": turn.number}
            turn.event("self_service_completed", flow=self.name, order_id=order.order_id, outcome="not_late")
            return
        if await self.told_open_request(turn, order, RequestType.COMPENSATION):
            return
        amount = self.policy.late_delivery_compensation
        what = turn.text("what_late", order_id=order.order_id, amount=amount)
        self.ask_to_confirm(
            turn, "confirm_late", "compensation", order, what=what, order_id=order.order_id, took=took,
            until=until, until_en=until_en, days=self.policy.late_delivery_after_days, amount=amount,
        )  # fmt: skip

    async def _submit(self, turn: Turn, order: Order, data: dict[str, Any]) -> None:
        if data.get("kind") == "late":
            await self._pay_late(turn, order)
            return
        reason = str(data.get("reason") or turn.entity("reason") or "破损")
        request = await self.new_request(
            turn,
            order,
            RequestType.COMPENSATION,
            reason=reason,
            details={"kind": "damage", "sku": data.get("sku")},
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

    async def _pay_late(self, turn: Turn, order: Order) -> None:
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


class PriceProtectionFlow(_ClaimFlow):
    """Price protection (价保): the item's price fell after purchase; a reviewer refunds the difference."""

    name: ClassVar[str] = "price_protection"
    intents: ClassVar[tuple[str, ...]] = ()

    def topic(self, turn: Turn) -> str:
        return turn.text("topic_price_protection")

    def order_is_candidate(self, order: Order) -> bool:
        return order.status is not OrderStatus.CANCELLED

    def remember(self, turn: Turn, data: dict[str, Any]) -> None:
        amounts = turn.entity_values("amount")
        if amounts:
            data.setdefault("new_price", float(amounts[-1]))

    async def proceed(self, turn: Turn, order: Order | None) -> None:
        assert order is not None
        data = turn.form["data"] if turn.form else {}
        self.remember(turn, data)
        item = order.item(str(data["sku"])) if data.get("sku") else item_named(turn, order, self.context.embed)
        item = item or (order.items[0] if len(order.items) == 1 else None)
        if item is None:
            turn.step("item")
            turn.asked("item", order_id=order.order_id)
            lines = "\n".join(f"{n}. {i.name}" for n, i in enumerate(order.items, start=1))
            turn.say("which_item", quick_replies=tuple(turn.choice("order_choice", payload=i.sku, summary=i.name)
                                                        for i in order.items), choices=lines)  # fmt: skip
            turn.act("ask_item", order=order.order_id)
            return
        data["sku"] = item.sku
        if await self.told_open_request(turn, order, RequestType.PRICE_PROTECTION, sku=item.sku):
            return
        if "new_price" not in data:
            turn.step("price")
            turn.asked("slot", slot="amount")
            turn.say("ask_new_price", order_id=order.order_id, item=item.name)
            turn.act("ask", order=order.order_id, sku=item.sku, slot="amount")
            return
        now = float(data["new_price"])
        if now >= item.price:
            turn.finish()
            turn.say("price_not_lower", now=now, paid=item.price)
            turn.act("refused", order=order.order_id, sku=item.sku)
            return
        what = turn.text("what_price_protection", order_id=order.order_id, item=item.name, now=now)
        self.ask_to_confirm(
            turn, "confirm_price_protection", "price_protection", order, sku=item.sku, what=what,
            order_id=order.order_id, item=item.name, paid=item.price, now=now, diff=item.price - now,
            hours=self.policy.review_hours,
        )  # fmt: skip

    async def on_step(self, turn: Turn, step: str, data: dict[str, Any], order: Order | None) -> bool:
        if order is None:
            return False
        if step == "confirm":
            return await self.answer_confirmation(turn, lambda: self._submit(turn, order, data))
        if step == "item":
            item = item_named(turn, order, self.context.embed) or next(
                (i for i in order.items if turn.text_now.strip() in (i.sku, i.name)), None
            )
            if item is None:
                return False
            data["sku"] = item.sku
        elif step == "price":
            amounts = turn.entity_values("amount") or [
                float(n) for n in _NUMBER.findall(turn.text_now) if 0 < float(n) < 100000
            ]
            if not amounts:
                return False
            data["new_price"] = float(amounts[-1])
        else:
            return False
        await self.proceed(turn, order)
        return True

    async def _submit(self, turn: Turn, order: Order, data: dict[str, Any]) -> None:
        item = order.item(str(data["sku"])) or order.items[0]
        now = float(data["new_price"])
        request = await self.new_request(
            turn,
            order,
            RequestType.PRICE_PROTECTION,
            sku=item.sku,
            items=[item.model_dump(include={"sku", "name", "quantity", "price"})],
            amount=round(item.price - now, 2),
            reason="降价补差",
            details={"paid": item.price, "now": now},
        )
        if request is None:
            return
        summary = f"价保：{item.name} 购买价 ¥{item.price:.2f}，现价 ¥{now:.2f}"
        ticket = await self.to_review(turn, order, request, TicketType.COMPENSATION, summary,
                                      amount=item.price - now)  # fmt: skip
        if ticket is not None:
            self._say_review(turn, request, ticket)


_NUMBER = textpatterns.compile(r"\d+(?:\.\d{1,2})?")


def _kind(turn: Turn) -> str | None:
    text = turn.text_now
    if text == turn.text("quick_late") or LATE.search(text):
        return "late"
    if text == turn.text("quick_price_drop") or PRICE_DROP.search(text):
        return "price_drop"
    if text == turn.text("quick_damage") or turn.entity("reason") or turn.media_ids:
        return "damage"
    return None
