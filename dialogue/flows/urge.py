"""Urging (催单/催进度): hurry exactly what the customer means — the order they name, the parcel on
its way, the request they name ("催下我那个换货") — never "the newest open thing".

Every urge is a promise with a record behind it: a follow-up task for the warehouse (an order not
yet shipped), the courier (a parcel on its way) or the request's handler, with the time it is due,
which the reply states. Urges are counted per order across conversations and channels: the second
one on the same order goes to an agent instead of a second empty promise.
"""

from __future__ import annotations

from typing import Any, ClassVar

import textpatterns
from backoffice.classify import FOOD_SAFETY
from backoffice.followups import DUE_WITHIN, FollowUpKind
from dialogue import guard
from dialogue.emotion import detect_emotion
from dialogue.flows.base import Flow
from dialogue.flows.order_status import STALLED_AFTER
from dialogue.replies import register, status_label
from dialogue.targets import refers_back, request_types_in, requests_named
from dialogue.turn import Turn
from shop import Order, OrderStatus
from shop.aftersales import GOODS_BACK, AfterSalesRequest, RequestType, Step

register(
    {
        "urge_recorded": {
            "zh": "已为您催促{what}，{next}",
            "en": "I've chased {what}. {next}",
        },
        "urge_what_request": {
            "zh": "售后单 {request_id}（{type}，当前：{status}）",
            "en": "request {request_id} ({type}, now {status})",
        },
        "urge_what_order": {"zh": "订单 {order_id}（{status}）", "en": "order {order_id} ({status})"},
        "urge_nothing_left": {
            "zh": "订单 {order_id}（{items}）已经{status}，没有需要催的了。如果商品有问题，告诉我是什么问题，"
            "可以为您办理退货、换货、补发或投诉。",
            "en": "Order {order_id} ({items}) is already {status}, so there is nothing to hurry. If something is "
            "wrong with it, tell me what, and I can arrange a return, exchange, resend or complaint.",
        },
        "urge_cancelled": {
            "zh": "订单 {order_id}（{items}）已取消，不会再发货，所以没有登记催单。需要的话可以问我退款进度。",
            "en": "Order {order_id} ({items}) was cancelled and will not ship, so no chase was logged. "
            "Ask me about the refund if you like.",
        },
        "next_warehouse": {
            "zh": "已给仓库下了加急单，要求 {due} 前发出，发货后会通知您物流单号。",
            "en": "The warehouse has an expedite request to ship it by {due}; you'll get the tracking number.",
        },
        "next_courier": {
            "zh": "已向快递公司提交加急派送，{due} 前会有回复。最新物流：{latest}",
            "en": "The courier has an expedite request and will answer by {due}. Latest: {latest}",
        },
        "next_review": {
            "zh": "已请审核专员加急，{deadline} 前会有结果，结果会第一时间通知您。",
            "en": "The reviewer has been asked to hurry; you'll have the decision by {deadline}.",
        },
        "next_pickup": {
            "zh": "快递员会在 {pickup} 上门取件，请保持电话畅通。",
            "en": "The courier comes on {pickup}; please keep your phone on.",
        },
        "next_goods": {
            "zh": "已请仓库加急验收，{due} 前处理退款或换新。",
            "en": "The warehouse has been asked to check it by {due} and then refund or exchange.",
        },
        "next_payment": {
            "zh": "退款已在支付中心处理，预计 {days} 个工作日内原路到账。",
            "en": "The payment centre is processing it; expect it within {days} working days.",
        },
        "next_resend": {
            "zh": "已请仓库加急，补发包裹 {due} 前发出，发出后会通知您。",
            "en": "The warehouse has been asked to send it by {due}; you'll be told when it leaves.",
        },
        "next_issuing": {
            "zh": "已转财务同事加急开具，开具后会发送到您的邮箱。",
            "en": "Finance has been asked to hurry it; it will go to your e-mail once issued.",
        },
        "next_parcel": {
            "zh": "包裹已在路上（运单 {tracking}），已向快递公司提交加急，{due} 前会有回复，回复会第一时间告诉您。",
            "en": "The parcel is on its way (waybill {tracking}); the courier was asked to hurry it and answers by "
            "{due}; you'll hear their answer.",
        },
        "next_return": {
            "zh": "商家还在等您寄回商品（退货码 {code}），收到并质检后会尽快为您处理。",
            "en": "We are still waiting for your parcel (return code {code}); once it arrives and is checked, we act "
            "at once.",
        },
        "next_return_plain": {
            "zh": "商家还在等您寄回商品，收到并质检后会尽快为您处理。",
            "en": "We are still waiting for your parcel; once it arrives and is checked, we act at once.",
        },
        "next_intercept": {
            "zh": "已请仓库加急拦截包裹，{due} 前会有结果；拦截成功后退款立即提交支付中心。",
            "en": "The warehouse was asked to hurry the intercept (result by {due}); once it is stopped the refund "
            "goes to the payment centre.",
        },
        "nothing_to_urge": {
            "zh": "您目前没有处理中的订单或售后申请。请问要催哪个订单？可以发送订单号。",
            "en": "You have nothing in progress. Which order is it? You can send its number.",
        },
        "which_to_urge": {
            "zh": "请问要催促哪一个？\n{choices}",
            "en": "Which one shall I chase?\n{choices}",
        },
    }
)

_PARCEL_WORDS = ("快递", "包裹", "物流", "派送", "发货", "發貨", "寄", "到货", "parcel", "delivery", "ship", "courier")
_PRODUCT_PROBLEM = textpatterns.compile(
    r"假货|假的|山寨|破了|坏了|碎了|漏了|不能用|用不了|有问题|质量差|质量问题|次品|二手|"
    r"\b(?:fake|broken|damaged|defective|faulty|counterfeit)\b",
    textpatterns.IGNORECASE,
)
"""What came is wrong: the customer is not waiting for anything, they are complaining."""
_WAITING = (OrderStatus.PAID, OrderStatus.PICKING, OrderStatus.SHIPPED)


class UrgeFlow(Flow):
    name: ClassVar[str] = "urge"
    intents: ClassVar[tuple[str, ...]] = ("urge",)
    needs_order: ClassVar[bool] = False

    async def proceed(self, turn: Turn, order: Order | None) -> None:
        target = await self._target(turn)
        if isinstance(target, list):
            self._ask_which(turn, target)
            return
        turn.finish()
        if target is None:
            turn.begin(self.name, "order")
            turn.asked("order")
            turn.say("nothing_to_urge")
            turn.act("ask_order")
        elif isinstance(target, Order):
            await self._urge_order(turn, target)
        else:
            await self._urge_request(turn, target)

    async def on_step(self, turn: Turn, step: str, data: dict[str, Any], order: Order | None) -> bool:
        if step not in ("order", "which"):
            return False
        options = data.get("options") or []
        chosen = turn.text_now.strip()
        if chosen in options or turn.entity("order_id") or self.orders_meant(turn, await self.customer_orders(turn)):
            await self.proceed(turn, None)
            return True
        return False

    async def _target(self, turn: Turn) -> Order | AfterSalesRequest | list[Order | AfterSalesRequest] | None:
        """What the customer wants hurried: a named request, a named order, the order in focus, or the
        one thing in progress the words fit ("催一下快递": the parcel on its way)."""
        text = turn.text_now
        customer_orders = await self.customer_orders(turn)
        requests = []
        if self.context.aftersales is not None:
            requests = await self.context.aftersales.for_customer(turn.input.customer_id, open_only=True)
        kinds = request_types_in(text)
        if requests and (kinds or "售后" in text or "申请" in text):
            named = requests_named(text, requests, customer_orders)
            if len(named) == 1:
                return named[0]
            if len(named) > 1:
                return list(named)
        order_id = turn.entity("order_id")
        if order_id and (order := await self.orders.get(str(order_id))) is not None:
            return order
        named_orders = self.orders_meant(turn, customer_orders, text)
        if len(named_orders) == 1:
            return named_orders[0]
        focus = turn.focus
        if not named_orders and focus.get("order_id") and (refers_back(text) or not kinds):
            focused = await self.orders.get(str(focus["order_id"]))
            if focused is not None and focused.status in _WAITING:
                return focused
        waiting = [o for o in (named_orders or customer_orders) if o.status in _WAITING]
        if any(w in text.lower() for w in _PARCEL_WORDS):
            on_the_way = [o for o in waiting if o.status is OrderStatus.SHIPPED]
            if "发货" in text or "發貨" in text or "寄" in text or "ship" in text.lower():
                on_the_way = [o for o in waiting if o.status is not OrderStatus.SHIPPED] or on_the_way
            if len(on_the_way) == 1:
                return on_the_way[0]
        if len(waiting) == 1 and not requests:
            return waiting[0]
        options: list[Order | AfterSalesRequest] = [*waiting, *requests]
        if len(options) == 1:
            return options[0]
        return options or None

    def _ask_which(self, turn: Turn, options: list[Order | AfterSalesRequest]) -> None:
        form = turn.begin(self.name, "which")
        lines, payloads = [], []
        for n, option in enumerate(options[:6], start=1):
            if isinstance(option, Order):
                label = turn.text("urge_what_order", order_id=option.order_id,
                                  status=status_label(option.status.value, turn.language))  # fmt: skip
                payloads.append(option.order_id)
            else:
                label = turn.text("urge_what_request", request_id=option.id, type=option.type_label(turn.language),
                                  status=option.customer_status(turn.language))  # fmt: skip
                payloads.append(option.id)
            lines.append(f"{n}. {label}")
        form["data"]["options"] = payloads
        turn.asked("which")
        turn.say(
            "which_to_urge",
            quick_replies=tuple(turn.choice("order_choice", payload=p, summary=p) for p in payloads),
            choices="\n".join(lines),
        )
        turn.act("ask_order")

    async def _urge_order(self, turn: Turn, order: Order) -> None:
        followups = self.context.followups
        assert followups is not None
        turn.slots["last_order_id"] = order.order_id
        if order.status not in _WAITING:
            text = turn.input.text
            if order.status is not OrderStatus.CANCELLED and (
                FOOD_SAFETY.search(text) or _PRODUCT_PROBLEM.search(text) or detect_emotion(text).level == "angry"
            ):
                # "奶粉是过期的！！你们怎么卖东西的": nothing to hurry — a complaint about what came.
                turn.redirect = "complaint"
                turn.slots["redirect_order"] = order.order_id
                return
            template = "urge_cancelled" if order.status is OrderStatus.CANCELLED else "urge_nothing_left"
            items = "、".join(i.name for i in order.items[:2]) if turn.language == "zh" else order.items[0].name
            turn.say(template, order_id=order.order_id, items=items,
                     status=status_label(order.status.value, turn.language))  # fmt: skip
            turn.act("answer", order=order.order_id)
            return
        latest = order.latest_logistics(1)
        if order.status is OrderStatus.SHIPPED and latest and self.now() - latest[0].time > STALLED_AFTER:
            # A parcel with no scan for days is not hurried but looked for: the status with the
            # stall said plainly, and a courier inquiry (查件), as a status question gets.
            turn.redirect = "order_status"
            turn.slots["redirect_order"] = order.order_id
            return
        earlier = await followups.urges(order.order_id)
        if earlier + 1 >= self.policy.urges_before_handoff:
            turn.event("urged", order_id=order.order_id, count=earlier + 1)
            turn.act("urged", order=order.order_id)
            turn.request_handoff("repeated_urge", order_id=order.order_id, urges=earlier + 1)
            return
        kind = FollowUpKind.COURIER_EXPEDITE if order.status is OrderStatus.SHIPPED else FollowUpKind.WAREHOUSE_EXPEDITE
        guard.authorise(turn, "urge", order.order_id, named=True)
        task, _ = await followups.create(
            kind, order.order_id, customer_id=turn.input.customer_id, conversation_id=turn.input.conversation_id,
            channel=turn.input.channel, note="客户催促",
        )  # fmt: skip
        due = f"{task.due_at.astimezone(self.zone()):%m-%d %H:%M}"
        if kind is FollowUpKind.COURIER_EXPEDITE:
            latest = order.latest_logistics(1)
            next_text = turn.text("next_courier", due=due, latest=latest[0].description if latest else "-")
        else:
            next_text = turn.text("next_warehouse", due=due)
        what = turn.text("urge_what_order", order_id=order.order_id,
                         status=status_label(order.status.value, turn.language))  # fmt: skip
        turn.say("urge_recorded", what=what, next=next_text)
        turn.act("urged", order=order.order_id)
        turn.event("urged", order_id=order.order_id, count=earlier + 1, followup_id=task.id)
        turn.event("self_service_completed", flow=self.name, order_id=order.order_id)

    async def _urge_request(self, turn: Turn, request: AfterSalesRequest) -> None:
        aftersales, followups = self.context.aftersales, self.context.followups
        assert aftersales is not None and followups is not None
        turn.slots["last_order_id"] = request.order_id
        earlier = await followups.urges(request.order_id)
        request = await aftersales.record_urge(request.id)
        if request.ticket_id and self.context.tickets is not None:
            await self.context.tickets.record_urge(request.ticket_id)
        if earlier + 1 >= self.policy.urges_before_handoff:
            turn.act("urged", order=request.order_id, request=request.id, request_type=request.type.value)
            turn.request_handoff("repeated_urge", request_id=request.id, urges=earlier + 1)
            return
        guard.authorise(turn, "urge", request.order_id, named=True)
        task, _ = await followups.create(
            FollowUpKind.REQUEST_EXPEDITE, request.order_id, request_id=request.id,
            customer_id=turn.input.customer_id, conversation_id=turn.input.conversation_id,
            channel=turn.input.channel, note="客户催促售后进度",
        )  # fmt: skip
        what = turn.text(
            "urge_what_request",
            request_id=request.id,
            type=request.type_label(turn.language),
            status=request.customer_status(turn.language),
        )
        turn.say("urge_recorded", what=what, next=self._next(turn, request, task.due_at))
        turn.act("urged", order=request.order_id, request=request.id, request_type=request.type.value)
        turn.event("urged", request_id=request.id, order_id=request.order_id, count=earlier + 1)
        turn.event("self_service_completed", flow=self.name, request_id=request.id)

    def _next(self, turn: Turn, request: AfterSalesRequest, due_at: Any) -> str:
        """What happens to the urge — the same choice the downstream dispatcher makes with its task."""
        status = request.status
        due = f"{due_at.astimezone(self.zone()):%m-%d %H:%M}"
        if status in (Step.APPLIED, Step.REVIEWING):
            return turn.text("next_review", deadline=due)
        if waybill := request.parcel_on_its_way():
            return turn.text("next_parcel", tracking=waybill, due=due)
        if status in (Step.APPROVED, Step.AWAITING_RETURN) and request.type in GOODS_BACK:
            pickup = request.details.get("pickup") or {}
            if pickup:
                return turn.text("next_pickup", pickup=f"{pickup.get('date', '')} {pickup.get('slot', '')}".strip())
            code = request.details.get("return_code")
            return turn.text("next_return", code=code) if code else turn.text("next_return_plain")
        if status is Step.APPROVED and request.details.get("intercept"):
            return turn.text("next_intercept", due=due)
        if status is Step.GOODS_RECEIVED:
            return turn.text("next_goods", due=due)
        if status in (Step.APPROVED, Step.RESENDING) and request.type is RequestType.RESEND:
            return turn.text("next_resend", due=due)
        if status is Step.ISSUING:
            return turn.text("next_issuing")
        return turn.text("next_payment", days=self.policy.refund_days)

    @staticmethod
    def hours(kind: FollowUpKind) -> int:
        return int(DUE_WITHIN[kind].total_seconds() // 3600)
