"""Changing the delivery address or time: only before the parcel leaves the warehouse (paid or
being picked; the warehouse relabels a parcel it has not shipped).

After shipping, the parcel can only be intercepted or redirected by the courier, which a person
arranges: the customer is told why and offered that hand-off. A new address or time given in the
first message is taken at once; the change is confirmed naming the order before it is written.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, ClassVar

import textpatterns
from dialogue import guard
from dialogue.address import check_address
from dialogue.flows.base import Flow, is_no, is_yes
from dialogue.replies import register, status_label
from dialogue.turn import Turn
from shop import Order, OrderActionRefused, OrderStatus

_NAMES_A_WEEKDAY = textpatterns.compile(
    r"(?<![这這本今])(?:周|週|星期|礼拜|禮拜)[一二三四五六日天]|\b(?:mon|tues|wednes|thurs|fri|satur|sun)day\b",
    textpatterns.IGNORECASE,
)
"""A weekday named by itself (not "这周六", not "今天"): on that very day, the customer means the next one."""
WEEKDAY_NAMES = {
    "zh": ("周一", "周二", "周三", "周四", "周五", "周六", "周日"),
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
}

register(
    {
        "change_too_late": {
            "zh": "订单 {order_id} 当前{status}，仓库已开始处理，无法直接修改{what}。"
            "可以为您转人工联系快递拦截或改派（可能产生费用），需要吗？",
            "en": "Order {order_id} is {status}; the warehouse has it already, so I can't change the {what} myself. "
            "An agent can ask the courier to intercept or redirect it (fees may apply). Shall I put you through?",
        },
        "change_not_possible": {
            "zh": "订单 {order_id} {status}，不能再修改{what}。",
            "en": "Order {order_id} is {status}; its {what} can no longer be changed.",
        },
        "quick_redirect": {"zh": "转人工改派", "en": "Agent: redirect"},
        "ask_new_address": {
            "zh": "订单 {order_id} 当前收货地址：{address}\n请发送新的完整收货地址（省、市、区/县、街道门牌号）。",
            "en": "Order {order_id} is going to: {address}\n"
            "Please send the complete new address (province, city, district, street and number).",
        },
        "address_incomplete": {
            "zh": "地址还缺少：{missing}。请发送完整地址，例如：广东省深圳市南山区科技园路1号。",
            "en": "The address is missing: {missing}. Please send the whole address.",
        },
        "confirm_address": {
            "zh": "请确认修改订单 {order_id}（{items}）的收货地址：\n原地址：{old}\n新地址：{new}\n确认修改吗？",
            "en": "Please confirm the new address for order {order_id} ({items}):\nfrom: {old}\nto: {new}\nChange it?",
        },
        "what_new_address": {
            "zh": "把订单 {order_id}（{items}）的收货地址改为 {new}",
            "en": "send order {order_id} ({items}) to {new}",
        },
        "what_new_slot": {
            "zh": "把订单 {order_id}（{items}）的配送时间改为 {slot}",
            "en": "deliver order {order_id} ({items}) on {slot}",
        },
        "address_changed": {
            "zh": "已为您将订单 {order_id} 的收货地址修改为：{new}。还有其他可以帮您的吗？",
            "en": "Done: order {order_id} will go to {new}. Anything else?",
        },
        "ask_new_slot": {
            "zh": "订单 {order_id} 当前配送时间：{slot}\n请告诉我新的配送日期和时间段，或从下面选择：",
            "en": "Order {order_id} is booked for {slot}\nWhen would you "
            "like it instead? Pick a slot or tell me a date and time:",
        },
        "slot_unknown": {"zh": "未预约", "en": "not booked"},
        "ask_slot_date": {"zh": "请问改到哪一天？", "en": "Which day?"},
        "slot_in_past": {
            "zh": "配送时间需要在今天之后，请换一个日期。",
            "en": "The delivery must be after today; please pick another day.",
        },
        "slot_today_next_week": {
            "zh": "今天已经是{weekday}，当天来不及改了，先按下{weekday}（{day}）给您安排。",
            "en": "Today is already {weekday}, too late to change for today, so I've put next {weekday} ({day}).",
        },
        "confirm_slot": {
            "zh": "请确认将订单 {order_id}（{items}）的配送时间改为 {slot}，确认修改吗？",
            "en": "Please confirm: deliver order {order_id} ({items}) on {slot}?",
        },
        "slot_changed": {
            "zh": "已为您将订单 {order_id} 的配送时间改为 {slot}。还有其他可以帮您的吗？",
            "en": "Done: order {order_id} will be delivered on {slot}. Anything else?",
        },
        "change_lost_race": {
            "zh": "抱歉，订单 {order_id} 刚刚已被仓库处理，无法再修改。可以为您转人工联系快递改派，需要吗？",
            "en": "Sorry, the warehouse has just taken order {order_id}, so it can't be changed now. "
            "Shall I ask an agent to have the courier redirect it?",
        },
        "what_address": {"zh": "收货地址", "en": "address"},
        "what_time": {"zh": "配送时间", "en": "delivery time"},
    }
)


CHANGEABLE = (OrderStatus.PAID, OrderStatus.PICKING)


def _items(order: Order, language: str) -> str:
    return ("、" if language == "zh" else ", ").join(i.name for i in order.items[:2])


class _OrderChangeFlow(Flow):
    what: ClassVar[str]

    def order_is_candidate(self, order: Order) -> bool:
        return order.status in CHANGEABLE

    async def proceed(self, turn: Turn, order: Order | None) -> None:
        assert order is not None
        what = turn.text(self.what)
        status = status_label(order.status.value, turn.language)
        if order.status is OrderStatus.SHIPPED:
            turn.step("offer_redirect")
            turn.asked("offer_redirect", order_id=order.order_id)
            turn.say(
                "change_too_late",
                quick_replies=(turn.choice("quick_redirect"), turn.choice("quick_no")),
                order_id=order.order_id,
                status=status,
                what=what,
            )
            turn.act("refused", order=order.order_id)
            turn.event("order_change_refused", flow=self.name, order_id=order.order_id, status=order.status.value)
            return
        if order.status not in CHANGEABLE:
            turn.finish()
            turn.say("change_not_possible", order_id=order.order_id, status=status, what=what)
            turn.act("refused", order=order.order_id)
            turn.event("order_change_refused", flow=self.name, order_id=order.order_id, status=order.status.value)
            return
        await self.ask(turn, order)

    async def ask(self, turn: Turn, order: Order) -> None:
        raise NotImplementedError

    async def on_step(self, turn: Turn, step: str, data: dict[str, Any], order: Order | None) -> bool:
        if order is None:
            return False
        if step == "offer_redirect":
            if is_yes(turn) or turn.text_now == turn.text("quick_redirect") or turn.intent == "human_handoff":
                turn.finish()
                turn.request_handoff("order_redirect", order_id=order.order_id, change=self.name)
                return True
            if is_no(turn):
                turn.finish()
                turn.say("anything_else")
                turn.act("cancelled")
                return True
            return False
        if step == "confirm":
            if await self.answer_confirmation(turn, lambda: self.apply(turn, order, data)):
                return True
            # A corrected value instead of a yes ("改成…号楼吧"): taken as the new answer.
            return await self.answer(turn, self.ask_step, data, order)
        return await self.answer(turn, step, data, order)

    ask_step: ClassVar[str] = ""

    async def answer(self, turn: Turn, step: str, data: dict[str, Any], order: Order) -> bool:
        raise NotImplementedError

    async def apply(self, turn: Turn, order: Order, data: dict[str, Any]) -> None:
        raise NotImplementedError

    def lost_race(self, turn: Turn, order: Order, exc: OrderActionRefused) -> None:
        turn.step("offer_redirect")
        turn.asked("offer_redirect", order_id=order.order_id)
        turn.say(
            "change_lost_race",
            quick_replies=(turn.choice("quick_redirect"), turn.choice("quick_no")),
            order_id=order.order_id,
        )
        turn.acted = [a for a in turn.acted if a["action"] != "submitted"]
        turn.act("refused", order=order.order_id)
        turn.event("order_change_refused", flow=self.name, order_id=order.order_id, status=exc.reason)


class ChangeAddressFlow(_OrderChangeFlow):
    name: ClassVar[str] = "change_address"
    intents: ClassVar[tuple[str, ...]] = ("change_address",)
    what: ClassVar[str] = "what_address"
    ask_step: ClassVar[str] = "address"

    def remember(self, turn: Turn, data: dict[str, Any]) -> None:
        if address := turn.entity("address"):
            data["given_address"] = str(address)

    async def ask(self, turn: Turn, order: Order) -> None:
        form = turn.form
        given = (form["data"].get("given_address") if form else None) or turn.entity("address")
        if given and await self._take(turn, order, str(given)):
            return
        turn.step("address")
        turn.asked("slot", slot="address")
        turn.say("ask_new_address", order_id=order.order_id, address=order.address)
        turn.act("ask", order=order.order_id, slot="address")

    async def answer(self, turn: Turn, step: str, data: dict[str, Any], order: Order) -> bool:
        if step != "address":
            return False
        found = turn.entity("address")
        if found is None:
            check = check_address(turn.text_now)
            if check.missing and len(check.missing) >= 3:
                return False  # no address in it: something else, for the engine to serve
        return await self._take(turn, order, str(found or turn.text_now))

    async def _take(self, turn: Turn, order: Order, text: str) -> bool:
        check = check_address(text)
        if not check.complete:
            turn.step("address")
            turn.asked("slot", slot="address")
            turn.say("address_incomplete", missing=check.missing_labels(turn.language))
            turn.act("ask", order=order.order_id, slot="address")
            return True
        turn.step("confirm", new_address=check.address)
        items = _items(order, turn.language)
        what = turn.text("what_new_address", order_id=order.order_id, items=items, new=check.address)
        self.ask_to_confirm(
            turn, "confirm_address", "change_address", order, what=what,
            order_id=order.order_id, items=items, old=order.address, new=check.address,
        )  # fmt: skip
        return True

    async def apply(self, turn: Turn, order: Order, data: dict[str, Any]) -> None:
        new = str(data["new_address"])
        guard.authorise(turn, "change_address", order.order_id)
        try:
            await self.orders.change_address(order.order_id, new, actor=f"customer:{turn.input.customer_id}")
        except OrderActionRefused as exc:
            self.lost_race(turn, order, exc)
            return
        turn.finish()
        turn.say("address_changed", order_id=order.order_id, new=new)
        turn.act("submitted", order=order.order_id)
        turn.event("self_service_completed", flow=self.name, order_id=order.order_id)


class ChangeDeliveryTimeFlow(_OrderChangeFlow):
    name: ClassVar[str] = "change_delivery_time"
    intents: ClassVar[tuple[str, ...]] = ("change_delivery_time",)
    what: ClassVar[str] = "what_time"
    ask_step: ClassVar[str] = "slot"

    def remember(self, turn: Turn, data: dict[str, Any]) -> None:
        if day := turn.entity("date"):
            data.setdefault("new_slot_date", str(day))
        if slot := _last_entity(turn, "time_slot"):
            data.setdefault("new_slot_time", slot)

    async def ask(self, turn: Turn, order: Order) -> None:
        form = turn.form
        if await self._take(turn, order, form["data"] if form else {}):
            return
        turn.step("slot")
        turn.asked("slot", slot="delivery_time")
        slots = tuple(turn.choice("order_choice", summary=s) for s in self.policy.pickup_slots)
        turn.say(
            "ask_new_slot",
            quick_replies=slots,
            order_id=order.order_id,
            slot=order.delivery_slot or turn.text("slot_unknown"),
        )
        turn.act("ask", order=order.order_id, slot="delivery_time")

    async def answer(self, turn: Turn, step: str, data: dict[str, Any], order: Order) -> bool:
        if step not in ("slot", "slot_date"):
            return False
        return bool(await self._take(turn, order, data))

    async def _take(self, turn: Turn, order: Order, data: dict[str, Any]) -> bool:
        """Collect date and time slot from this message (either may come first); True once asked or confirmed."""
        day = turn.entity("date") or data.get("new_slot_date")
        slot_time = _last_entity(turn, "time_slot") or data.get("new_slot_time")
        if slot_time is None and turn.text_now.strip() in self.policy.pickup_slots:
            slot_time = turn.text_now.strip()
        if day is None and slot_time is None:
            return False
        today = self.today()
        if day is not None and str(day) == today.isoformat() and _NAMES_A_WEEKDAY.search(turn.text_now):
            # "周六送" said on a Saturday: today is too late to change, so the next one is meant.
            day = (today + timedelta(days=7)).isoformat()
            weekday = WEEKDAY_NAMES[turn.language if turn.language in WEEKDAY_NAMES else "zh"][today.weekday()]
            turn.say("slot_today_next_week", weekday=weekday, day=day)
        if day is not None and str(day) <= today.isoformat():
            turn.step("slot_date", new_slot_time=slot_time)
            turn.asked("slot", slot="delivery_time")
            turn.say("slot_in_past")
            turn.act("ask", order=order.order_id, slot="delivery_time")
            return True
        if day is None:
            turn.step("slot_date", new_slot_time=slot_time)
            turn.asked("slot", slot="delivery_time")
            turn.say("ask_slot_date")
            turn.act("ask", order=order.order_id, slot="delivery_time")
            return True
        slot_time = slot_time or "09:00-21:00"
        new_slot = f"{day} {slot_time}"
        turn.step("confirm", new_slot=new_slot, new_slot_date=day, new_slot_time=slot_time)
        items = _items(order, turn.language)
        what = turn.text("what_new_slot", order_id=order.order_id, items=items, slot=new_slot)
        self.ask_to_confirm(
            turn, "confirm_slot", "change_delivery_time", order, what=what,
            order_id=order.order_id, items=items, slot=new_slot,
        )  # fmt: skip
        return True

    async def apply(self, turn: Turn, order: Order, data: dict[str, Any]) -> None:
        new = str(data["new_slot"])
        guard.authorise(turn, "change_delivery_time", order.order_id)
        try:
            await self.orders.change_delivery_slot(order.order_id, new, actor=f"customer:{turn.input.customer_id}")
        except OrderActionRefused as exc:
            self.lost_race(turn, order, exc)
            return
        turn.finish()
        turn.say("slot_changed", order_id=order.order_id, slot=new)
        turn.act("submitted", order=order.order_id)
        turn.event("self_service_completed", flow=self.name, order_id=order.order_id)


def _last_entity(turn: Turn, name: str) -> str | None:
    """The last value: in "今天下午送不了，改成晚上" the customer means 晚上."""
    values = turn.entity_values(name)
    return str(values[-1]) if values else None
