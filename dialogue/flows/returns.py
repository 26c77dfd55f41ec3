"""Return-and-refund and exchange: the item, the reason, a photo where the reason needs one, the
new size (exchanges) and a pick-up time — each asked only if the customer has not said it — then
one confirmation naming order, item and action; on yes either approved at once (极速审核: in the
window and not an excluded category) with a return code and a courier pick-up, or submitted to a
reviewer as a ticket with the answer time. A change of mind after the window is refused with the
rule; an item already being returned, exchanged or resent is not put into a second request.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any, ClassVar

import textpatterns
from backoffice import TicketType
from backoffice.routing.pickups import ExchangeDelivery, Parcels, PickupRequest
from dialogue.flows.base import Flow, is_no, item_named, tell_existing
from dialogue.replies import register
from dialogue.turn import Turn
from nlu.entities import REASONS
from shop import Order, OrderItem, OrderStatus
from shop.aftersales import GOODS_TYPES, AfterSalesRequest, RequestType, Step

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
            "zh": "请确认：为订单 {order_id} 的{item}申请{topic}\n原因：{reason}\n{money}{pickup}{review}确认提交吗？",
            "en": "Please confirm: {topic} of {item} from order {order_id}\nreason: {reason}\n{money}{pickup}{review}"
            "Shall I submit it?",
        },
        "pickup_line": {"zh": "上门取件：{pickup}\n", "en": "pick-up: {pickup}\n"},
        "review_line": {
            "zh": "（{why}需专员审核，{hours} 小时内答复）\n",
            "en": "({why}a reviewer decides within {hours} hours)\n",
        },
        "what_return": {
            "zh": "为订单 {order_id} 的{item}申请{topic}",
            "en": "{topic} of {item} from order {order_id}",
        },
        "outside_window": {
            "zh": "订单 {order_id} 的{item}签收已经 {days} 天，超过了 {window} 天无理由退货的期限，不能再无理由退货。"
            "如果商品有质量问题，签收 {exchange_window} 天内可以拍照申请换货或退货，也可以转人工客服帮您看看。",
            "en": "{item} from order {order_id} was delivered {days} days ago, past the {window}-day no-reason return "
            "window. If it has a quality problem, you can still ask for an exchange or return within "
            "{exchange_window} days with a photo, or talk to an agent.",
        },
        "goods_in_other_request": {
            "zh": "订单 {order_id} 的{item}已有{type}申请在办（售后单号 {request_id}，当前：{status}），"
            "同一件商品不能同时{wanted}。如需改成{wanted}，可以说“把{type}改成{wanted}”；不需要了可以撤回原申请。",
            "en": "{item} from order {order_id} already has a {type} request under way ({request_id}, now {status}); "
            "the same item can't also be {wanted_en}. You can ask to change that request, or withdraw it.",
        },
        "can_return_yes": {
            "zh": "可以退：{item}于 {date} 签收，还在 {window} 天无理由退货期内（还剩 {left} 天）。",
            "en": "Yes: {item} was delivered on {date}, within the {window}-day return window ({left} days left).",
        },
        "can_return_excluded": {
            "zh": "{item}属于{category}，不支持七天无理由退货；可以提交申请由专员审核（{hours} 小时内答复），"
            "有质量问题请附照片。",
            "en": "{item} is {category}, which has no no-reason return; you can still apply and a reviewer decides "
            "within {hours} hours (with a photo if it is faulty).",
        },
        "can_return_late": {
            "zh": "{item}签收已经 {days} 天，超过了 {window} 天无理由退货期；"
            "如果有质量问题，签收 {exchange_window} 天内"
            "可以拍照申请换货或退货。",
            "en": "{item} was delivered {days} days ago, past the {window}-day return window; a quality problem can "
            "still be exchanged or returned within {exchange_window} days with a photo.",
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
        "same_spec": {"zh": "同款同规格", "en": "the same"},
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

_NO_PHOTO = ("没有照片", "没照片", "沒有照片", "冇相", "没有图", "拍不了", "没法拍", "no photo", "none", "don't have")
DEFAULT_PARCEL = Parcels(count=1, weight_kg=1.0, volume_l=6.0)
_SIZE = textpatterns.compile(
    r"(?:换|換|改成|要|size)\s*(?:成|个|個|到)?\s*(\d{2}(?:\.5)?)\s*(?:码|碼|号|號|的|吧|pls)?"
    r"|(\d{2}(?:\.5)?)\s*(?:码|碼)"
    r"|(?:size|尺码|尺碼|号|號)\s*([2-5]?XL|XXL|XS|S|M|L)\b"
    r"|(?<![A-Za-z])([2-5]?XL|XXL|XS|S|M|L)\s*(?:号|號|码|碼|size)"
    r"|(?:换|換|change|swap)[^\d]{0,6}?(?<![A-Za-z])([2-5]?XL|XXL|XS|S|M|L)(?![A-Za-z])",
    textpatterns.IGNORECASE,
)
_ENGLISH_SIZE = textpatterns.compile(
    r"(?:for|to|in)\s+(?:a\s+|an\s+)?(?:size\s+)?(\d{2}(?:\.5)?|XXL|XL|XS|S|M|L)\b(?!\s*(?:days?|hours?|yuan|%|am|pm))",
    textpatterns.IGNORECASE,
)
_SAME = textpatterns.compile(
    r"一样的|一樣的|同款|同样的|同樣的|新的|same one|same item|a new one|换个好的", textpatterns.IGNORECASE
)
_BARE_SIZE = textpatterns.compile(
    r"^\s*(\d{2}(?:\.5)?|[2-5]?XL|XXL|XS|S|M|L)\s*(?:码|碼|号|號|的|吧|pls|please)?\s*$", textpatterns.IGNORECASE
)
_CHANGE_OF_MIND = ("七天无理由", "尺码不符")
CAN_RETURN = textpatterns.compile(
    r"能退[吗嗎不么麼没沒]|能不能退|可以退[吗嗎不么麼]|可不可以退|退得了|退唔退得|还能退|還能退|仲退唔退得|退得[不吗嗎]|"
    r"能换[吗嗎不么麼]|能不能换|可以换[吗嗎不么麼]|还能换|還能換|换得了|"
    r"还能return|能return|can i (?:still )?(?:return|send (?:it|them) back|exchange|swap)|is it (?:still )?returnable",
    textpatterns.IGNORECASE,
)
"""A question whether the item can go back ("还能退不", "can I still send it back?")."""


REASON_LABELS_EN = {
    "破损": "damaged",
    "质量问题": "faulty",
    "尺码不符": "wrong size",
    "发错货": "wrong item sent",
    "少件": "something missing",
    "七天无理由": "changed my mind (7-day return)",
    "描述不符": "not as described",
    "过期变质": "expired or spoiled",
}


def reason_label(reason: str | None, language: str) -> str:
    """A preset reason as the customer reads it (the stored value stays the preset's Chinese name)."""
    if reason is None:
        return "-"
    return REASON_LABELS_EN.get(reason, reason) if language == "en" else reason


def spec_in(text: str, *, bare: bool = False) -> str | None:
    """The size (or "the same") the customer wants instead: 43码, L 號, size M, 换个一样的."""
    if bare and (match := _BARE_SIZE.match(text)):
        return match.group(1).upper()
    if match := _SIZE.search(text):
        return next(g for g in match.groups() if g).upper()
    if match := _ENGLISH_SIZE.search(text):
        return match.group(1).upper()
    if _SAME.search(text):
        return "same"
    return None


def pickup_time(turn: Turn, today: date, slots: Sequence[str]) -> tuple[str, str] | None:
    """The pick-up day and slot the message gives ("后天上午", "礼拜六下半天"), fitted to the
    courier's slots (a day not after today means tomorrow), or None when it gives neither."""
    day = turn.entity("date")
    said = turn.entity_values("time_slot")
    slot = str(said[-1]) if said else None
    if day is None and slot is None:
        return None
    if day is None or str(day) <= today.isoformat():
        day = (today + timedelta(days=1)).isoformat()
    if slot is not None and slot not in slots:
        start = slot.split("-")[0]
        slot = next((s for s in slots if s.split("-")[0] <= start < s.split("-")[1]), slots[0])
    return str(day), str(slot or slots[0])


class GoodsFlow(Flow):
    """Shared steps of flows about delivered goods: the item, the reason, evidence, pick-up, confirmation."""

    request_type: ClassVar[RequestType]
    approval_rule: ClassVar[str]
    """The rule named as the decider when the request is approved without review."""

    def order_is_candidate(self, order: Order) -> bool:
        return order.status is OrderStatus.DELIVERED

    def remember(self, turn: Turn, data: dict[str, Any]) -> None:
        if turn.entity("reason"):
            data.setdefault("reason", str(turn.entity("reason")))
        dropped = turn.dropped or {}
        if data.get("order_id") and dropped.get("order_id") == data["order_id"] and dropped.get("sku"):
            # "哎算了 不换了 直接退了吧": the same shoes, for the same reason, collected the same way.
            data.setdefault("sku", dropped["sku"])
            if dropped.get("sku") == data["sku"]:
                for key in ("reason", "evidence", "pickup_date", "pickup_slot"):
                    if key in dropped:
                        data.setdefault(key, dropped[key])
        if evidence := turn.evidence():
            data.setdefault("evidence", evidence)
        elif any(w in turn.text_now.lower() for w in _NO_PHOTO):
            data.setdefault("evidence", [])
        self._take_pickup(turn, data)

    def window_days(self, data: dict[str, Any]) -> int:
        """Days after delivery within which the request may be approved without review."""
        return self.policy.return_window_days

    async def proceed(self, turn: Turn, order: Order | None) -> None:
        assert order is not None
        if order.status is OrderStatus.CANCELLED:
            turn.finish()
            turn.say("return_cancelled_order", order_id=order.order_id)
            turn.act("refused", order=order.order_id)
            return
        if order.status is not OrderStatus.DELIVERED:
            await self.not_delivered(turn, order)
            return
        data = turn.form["data"] if turn.form else {}
        self.remember(turn, data)
        await self.next_question(turn, order, data)

    async def not_delivered(self, turn: Turn, order: Order) -> None:
        from dialogue.replies import status_label

        turn.finish()
        turn.say(
            "return_not_delivered", order_id=order.order_id, status=status_label(order.status.value, turn.language)
        )
        turn.act("refused", order=order.order_id)

    def returnable_items(self, order: Order) -> list[OrderItem]:
        return [i for i in order.items if i.price > 0] or list(order.items)

    async def _clashes(self, turn: Turn, order: Order, item: OrderItem) -> bool:
        """One item, one goods request: an open return, exchange or resend of it is explained, not doubled."""
        for request in await self.open_requests(order, *GOODS_TYPES):
            skus = {str(i.get("sku")) for i in request.items if i.get("sku")}
            if skus and item.sku not in skus:
                continue
            turn.finish()
            if request.type is self.request_type:
                tell_existing(turn, request, self.context.channel_labels, item.name)
                return True
            turn.say(
                "goods_in_other_request",
                order_id=order.order_id,
                item=item.name,
                type=request.type_label(turn.language),
                request_id=request.id,
                status=request.customer_status(turn.language),
                wanted=self.topic(turn),
                wanted_en=self.topic(turn) + "ed" if turn.language == "en" else "",
            )
            turn.act("existing", order=order.order_id, sku=item.sku, request=request.id,
                     request_type=request.type.value)  # fmt: skip
            turn.slots["focus"] = {"order_id": order.order_id, "sku": item.sku, "request_id": request.id,
                                   "turn": turn.number}  # fmt: skip
            return True
        return False

    async def next_question(self, turn: Turn, order: Order, data: dict[str, Any]) -> None:
        items = self.returnable_items(order)
        if "sku" not in data:
            named = item_named(turn, order, self.context.embed)
            if named is not None:
                data["sku"] = named.sku
            elif len(items) == 1:
                data["sku"] = items[0].sku
            else:
                turn.step("item")
                turn.asked("item", order_id=order.order_id)
                lines = "\n".join(f"{n}. {i.name}" for n, i in enumerate(items, start=1))
                turn.say(
                    "which_item",
                    quick_replies=tuple(turn.choice("order_choice", payload=i.sku, summary=i.name) for i in items),
                    choices=lines,
                )
                turn.act("ask_item", order=order.order_id)
                return
        item = order.item(data["sku"]) or items[0]
        if await self._clashes(turn, order, item):
            return
        if CAN_RETURN.search(turn.text_now) and not data.get("told_eligibility"):
            data["told_eligibility"] = True
            if not self.tell_eligibility(turn, order, item):
                return
        refusal = self.refusal(turn, order, item, data)
        if refusal is not None:
            turn.finish()
            turn.say_text(refusal)
            turn.act("refused", order=order.order_id, sku=item.sku)
            turn.slots["focus"] = {"order_id": order.order_id, "sku": item.sku, "turn": turn.number}
            return
        for question in self.questions(order, item, data):
            if question == "reason":
                turn.step("reason")
                turn.asked("slot", slot="reason")
                choices = tuple(
                    turn.choice("order_choice", payload=r, summary=reason_label(r, turn.language)) for r in REASONS
                )
                turn.say("ask_reason", quick_replies=choices)
                turn.act("ask", order=order.order_id, sku=item.sku, slot="reason")
                return
            if question == "photo":
                turn.step("photo")
                turn.asked("slot", slot="photo")
                turn.say("ask_photo", quick_replies=(turn.choice("no_photo"),))
                turn.act("ask", order=order.order_id, sku=item.sku, slot="photo")
                return
            if question == "size":
                turn.step("spec")
                turn.asked("slot", slot="size")
                turn.say("ask_exchange_spec")
                turn.act("ask", order=order.order_id, sku=item.sku, slot="size")
                return
            if question == "pickup":
                self.ask_pickup(turn, order, item)
                return
        self.confirm(turn, order, data)

    def tell_eligibility(self, turn: Turn, order: Order, item: OrderItem) -> bool:
        """Answer "can I return it?" for this item; False when it cannot go back at all (the form ends)."""
        category = self.policy.exclusion(item)
        delivered = order.delivered_at
        if category is not None:
            label = self.policy.exclusion_label(category, turn.language)
            turn.say("can_return_excluded", item=item.name, category=label, hours=self.policy.review_hours)
            turn.act("answer", order=order.order_id, sku=item.sku)
            return True
        if delivered is None:
            return True
        days = (self.now() - delivered).days
        window = self.policy.return_window_days
        if days <= window:
            turn.say("can_return_yes", item=item.name, date=f"{delivered.astimezone(self.zone()):%m-%d}",
                     window=window, left=max(window - days, 0))  # fmt: skip
            turn.act("answer", order=order.order_id, sku=item.sku)
            return True
        turn.finish()
        turn.say("can_return_late", item=item.name, days=days, window=window,
                 exchange_window=self.policy.exchange_window_days)  # fmt: skip
        turn.act("refused", order=order.order_id, sku=item.sku)
        turn.slots["focus"] = {"order_id": order.order_id, "sku": item.sku, "turn": turn.number}
        return False

    def questions(self, order: Order, item: OrderItem, data: dict[str, Any]) -> list[str]:
        """What is still missing, in the order it is asked."""
        missing = []
        if "reason" not in data:
            missing.append("reason")
        if self.policy.needs_evidence(data.get("reason")) and "evidence" not in data:
            missing.append("photo")
        if self.needs_pickup(item, data) and "pickup_date" not in data:
            missing.append("pickup")
        return missing

    def needs_pickup(self, item: OrderItem, data: dict[str, Any]) -> bool:
        """Perishables that went bad are not collected: a photo proves them."""
        return not (item.category == "fresh" and data.get("reason") in ("过期变质", "破损"))

    def refusal(self, turn: Turn, order: Order, item: OrderItem, data: dict[str, Any]) -> str | None:
        """Why the bot cannot take this at all (a change of mind after the window), or None."""
        reason = data.get("reason")
        if reason is not None and reason not in _CHANGE_OF_MIND:
            return None
        delivered = order.delivered_at
        if delivered is None or reason is None:
            return None
        days = (self.now() - delivered).days
        if days <= self.policy.return_window_days:
            return None
        return turn.text(
            "outside_window",
            order_id=order.order_id,
            item=item.name,
            days=days,
            window=self.policy.return_window_days,
            exchange_window=self.policy.exchange_window_days,
        )

    async def on_step(self, turn: Turn, step: str, data: dict[str, Any], order: Order | None) -> bool:
        if order is None:
            return False
        text = turn.text_now.strip()
        if step == "item":
            chosen = next(
                (i for i in self.returnable_items(order) if text in (i.sku, i.name) or turn.entity("sku") == i.sku),
                None,
            ) or item_named(turn, order, self.context.embed)
            if chosen is None:
                return False
            data["sku"] = chosen.sku
        elif step == "reason":
            reason = turn.entity("reason") or (text if text in REASONS else None)
            if reason is None:
                if turn.intent not in ("inform", "deny", self.name, None) and turn.confidence >= 0.6:
                    return False
                reason = "七天无理由" if turn.intent in ("deny", "inform") or len(text) <= 8 else text[:100]
            data["reason"] = str(reason)
        elif step == "photo":
            if turn.media_ids:
                data["evidence"] = turn.media_ids
                turn.say("photo_received")
            elif any(w in text.lower() for w in _NO_PHOTO) or is_no(turn):
                data["evidence"] = []
            else:
                return False
        elif step == "pickup":
            if not self._take_pickup(turn, data):
                return False
        elif step == "confirm":
            return await self.answer_confirmation(turn, lambda: self.submit(turn, order, data))
        else:
            return await self.on_own_step(turn, step, data, order)
        await self.next_question(turn, order, data)
        return True

    async def on_own_step(self, turn: Turn, step: str, data: dict[str, Any], order: Order) -> bool:
        return False

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

    # -- pick-up -------------------------------------------------------------------------

    def ask_pickup(self, turn: Turn, order: Order, item: OrderItem) -> None:
        turn.step("pickup")
        turn.asked("slot", slot="pickup")
        choices = []
        for key in ("tomorrow", "day_after"):
            for slot in self.policy.pickup_slots[:2] if key == "day_after" else self.policy.pickup_slots:
                label = turn.text("pickup_choice", day_label=turn.text(key), slot=slot)
                choices.append(turn.choice("order_choice", summary=label))
        turn.say("ask_pickup", quick_replies=tuple(choices[:6]), address=order.address)
        turn.act("ask", order=order.order_id, sku=item.sku, slot="pickup")

    def _take_pickup(self, turn: Turn, data: dict[str, Any]) -> bool:
        when = pickup_time(turn, self.today(), self.policy.pickup_slots)
        if when is None:
            return False
        data["pickup_date"], data["pickup_slot"] = when
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

    # -- confirming and submitting ---------------------------------------------------------

    def confirm(self, turn: Turn, order: Order, data: dict[str, Any]) -> None:
        item = order.item(data["sku"]) or order.items[0]
        money = (
            turn.text("refund_amount_line", amount=item.price * item.quantity)
            if self.request_type is RequestType.RETURN_REFUND
            else turn.text("exchange_spec_line", spec=self.spec_text(turn, data))
        )
        pickup = (
            turn.text("pickup_line", pickup=f"{data['pickup_date']} {data['pickup_slot']}")
            if "pickup_date" in data
            else ""
        )
        why = self.review_reasons(turn, order, data, self.window_days(data))
        review = turn.text("review_line", why=why, hours=self.policy.review_hours) if why else ""
        topic = self.topic(turn)
        what = turn.text("what_return", order_id=order.order_id, item=item.name, topic=topic)
        self.ask_to_confirm(
            turn, "confirm_return", self.request_type.value, order, sku=item.sku, what=what,
            order_id=order.order_id, topic=topic, item=item.name, money=money, pickup=pickup, review=review,
            reason=reason_label(data.get("reason"), turn.language),
        )  # fmt: skip

    def spec_text(self, turn: Turn, data: dict[str, Any]) -> str:
        spec = str(data.get("spec", "-"))
        return turn.text("same_spec") if spec == "same" else spec

    async def submit(self, turn: Turn, order: Order, data: dict[str, Any]) -> None:
        why = self.review_reasons(turn, order, data, self.window_days(data))
        if why is not None:
            await self.submit_for_review(turn, order, data, why)
        else:
            await self.approve(turn, order, data)

    async def submit_for_review(self, turn: Turn, order: Order, data: dict[str, Any], why: str) -> None:
        request = await self.new_request(
            turn, order, self.request_type, sku=data.get("sku"), **self.request_fields(order, data)
        )
        if request is None:
            return
        item = order.item(data["sku"]) or order.items[0]
        summary = f"{request.type_label('zh')}审核：{item.name}，原因：{data.get('reason')}；{why}"
        ticket = await self.to_review(turn, order, request, TicketType(self.request_type.value), summary, note=why)
        if ticket is None:
            return
        turn.say("return_review", why=why, request_id=request.id, ticket_id=ticket.id, hours=self.policy.review_hours)

    async def approve(self, turn: Turn, order: Order, data: dict[str, Any]) -> None:
        aftersales = self.context.aftersales
        assert aftersales is not None
        fields = self.request_fields(order, data)
        amount = float(fields["amount"])
        request = await self.new_request(turn, order, self.request_type, sku=data.get("sku"), **fields)
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


class ReturnRefundFlow(GoodsFlow):
    name: ClassVar[str] = "return_refund"
    intents: ClassVar[tuple[str, ...]] = ("return_refund",)
    request_type: ClassVar[RequestType] = RequestType.RETURN_REFUND
    approval_rule: ClassVar[str] = "seven_day_return"

    def order_is_candidate(self, order: Order) -> bool:
        return order.status in (OrderStatus.DELIVERED, OrderStatus.PAID)

    async def not_delivered(self, turn: Turn, order: Order) -> None:
        if order.status in (OrderStatus.PAID, OrderStatus.PICKING):
            turn.finish()
            turn.redirect = "refund"  # not shipped: cancelling is the refund
            turn.slots["redirect_order"] = order.order_id
            return
        await super().not_delivered(turn, order)


class ExchangeFlow(GoodsFlow):
    name: ClassVar[str] = "exchange"
    intents: ClassVar[tuple[str, ...]] = ("exchange",)
    request_type: ClassVar[RequestType] = RequestType.EXCHANGE
    approval_rule: ClassVar[str] = "quality_exchange"

    def window_days(self, data: dict[str, Any]) -> int:
        # Quality problems may be exchanged for longer than a change of mind.
        quality = self.policy.needs_evidence(data.get("reason"))
        return self.policy.exchange_window_days if quality else self.policy.return_window_days

    def remember(self, turn: Turn, data: dict[str, Any]) -> None:
        if spec := spec_in(turn.text_now, bare=turn.form is not None and turn.form.get("step") == "spec"):
            data.setdefault("spec", spec)
        super().remember(turn, data)
        if "spec" in data and "reason" not in data:
            data["reason"] = "尺码不符" if data["spec"] != "same" else "质量问题"

    def questions(self, order: Order, item: OrderItem, data: dict[str, Any]) -> list[str]:
        missing = super().questions(order, item, data)
        if "spec" not in data:
            missing = [q for q in missing if q != "reason"]
            missing.insert(0, "size")
        return missing

    async def on_own_step(self, turn: Turn, step: str, data: dict[str, Any], order: Order) -> bool:
        if step == "spec":
            spec = spec_in(turn.text_now, bare=True)
            if spec is None:
                return False
            data["spec"] = spec
            if "reason" not in data:
                data["reason"] = "尺码不符" if spec != "same" else "质量问题"
            await self.next_question(turn, order, data)
            return True
        return False
