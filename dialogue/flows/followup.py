"""Follow-up questions about what the conversation is about: "那啥时候能到", "钱好久退回来",
"那好久审得完", "Is it lost?", "旧的怎么寄回去 运费谁出", "那好久有人联系我".

The question names no order; it asks about the one just talked about (the conversation's focus:
the order, and the request, the bot last acted on) or the order whose item it names. The answer is
read from that thing's state — its request's step, its logistics, the follow-up tasks opened for it
(an inquiry due by a time, a warehouse expedite) — and from the after-sales policy; it states what
happens next and by when, and promises nothing that no record stands behind.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import ClassVar, Literal

import textpatterns
from backoffice.followups import FollowUp, FollowUpKind
from dialogue.flows.base import Flow
from dialogue.flows.order_status import STALLED_AFTER
from dialogue.flows.requests import RequestsFlow, is_store_credit
from dialogue.flows.returns import CAN_RETURN
from dialogue.replies import register, status_label
from dialogue.turn import Turn
from shop import Order, OrderStatus
from shop.aftersales import GOODS_BACK, AfterSalesRequest, RequestType, Step

Question = Literal["lost", "return_shipping", "what_form", "contact", "when"]

_QUESTIONS: tuple[tuple[Question, textpatterns.Pattern], ...] = (
    (
        "lost",
        textpatterns.compile(
            r"丢|丟|唔見|唔见|遗失|遺失|不见了|不見了|\blost\b|go(?:ne)? missing", textpatterns.IGNORECASE
        ),
    ),
    (
        "return_shipping",
        textpatterns.compile(
            r"寄回|退回去|运费|運費|谁出|誰出|上门|上門|取件|攞|拒收|"
            r"收到(?:之后|之後|以后|以後|后|後)?.{0,3}(?:怎么退|怎麼退|點退|点退|咋退)|"
            r"pick(?:\s|-)?up|collect|courier .{0,20}come|shipping (?:fee|cost)|who pays|"
            r"\b(?:send|sending|post|posting|mail|ship|shipping|return|returning)\b.{0,20}\bback\b|postage|"
            r"return shipping",
            textpatterns.IGNORECASE,
        ),
    ),
    (
        "what_form",
        textpatterns.compile(
            r"给钱还是|給錢還是|还是给券|還是給券|现金还是|現金還是|券还是|cash or|coupon or|voucher or",
            textpatterns.IGNORECASE,
        ),
    ),
    (
        "contact",
        textpatterns.compile(
            r"联系我|聯繫我|聯絡我|有人联系|有人聯繫|打电话给我|打電話給我|contact me|call me|get back to me|hear from",
            textpatterns.IGNORECASE,
        ),
    ),
    (
        "when",
        textpatterns.compile(
            r"啥时候|啥時候|什么时候|什麼時候|几时|幾時|多久|多长时间|多長時間|好久|(?<![十二三四五六七八九两兩几幾好])(?:几|幾)天(?![了没沒])|哪天|几耐|幾耐|"
            r"\bwhen\b|how long|how soon|by when",
            textpatterns.IGNORECASE,
        ),
    ),
)
ACTION_WORDS = textpatterns.compile(
    r"催|帮我(?:退|换|補|补|申请|取消|改)|幫我(?:退|換|補|申請|取消|改)|申请|申請|投诉|投訴|转人工|轉人工|"
    r"不想要|唔想要|唔要|不要了|要退|想退|退了吧|退咗|退吧|要换|要換|想换|想換|换个|換個|换\d|換\d|补一个|補一個|"
    r"开发票|開發票|开票|開票|改成|改地址|改到|"
    r"\bhurry\b|\bchase\b|\bcomplain|\bi(?:'d| would) like to\b|\bplease (?:return|exchange|cancel|change)|"
    r"\bexchange\b|\bswap\b|\bsize\b|too (?:small|big|tight|loose)",
    textpatterns.IGNORECASE | textpatterns.ASCII,  # \b between 想 and exchange too: "想exchange成L"
)
_QUESTION = textpatterns.compile(
    r"[吗嗎嘛呢？?]|怎么|怎麼|咋|点样|點樣|点退|點退|几|幾|多久|啥|什么|什麼|会不会|會唔會|会唔会|有冇|有没有|谁|誰|哪|"
    r"\b(?:how|when|will|is it|are they|what|who|where|does|do i|can i)\b",
    textpatterns.IGNORECASE,
)
_WORDS = textpatterns.compile(r"[\u4e00-\u9fff]|[A-Za-z]+")
_LONG_QUESTION = 28
"""Longer messages (Chinese characters and English words) say more than a follow-up; the NLU's
reading of them is used instead."""
_GENERAL = textpatterns.compile(r"一般|通常|平时|平時|usually|normally|in general", textpatterns.IGNORECASE)
_ABOUT_MONEY = textpatterns.compile(r"钱|錢|退款|到账|到賬|到帐|money|refund|paid back", textpatterns.IGNORECASE)
_ABOUT_REVIEW = textpatterns.compile(r"审|審|批|结果|結果|approve|decision|decide", textpatterns.IGNORECASE)

register(
    {
        "when_shipped": {
            "zh": "订单 {order_id} 已发货，最新物流：{latest}。一般发货后 {transit} 天送达{estimate}。",
            "en": "Order {order_id} is on its way; latest: {latest}. Parcels usually take {transit} days{estimate}.",
        },
        "estimate_by": {"zh": "，预计 {date} 前后送到", "en": ", so around {date}"},
        "when_inquiry": {
            "zh": "订单 {order_id} 的包裹正在查件（最后停留：{latest}），{due} 前会有结果，查到后第一时间通知您。",
            "en": "The courier inquiry for order {order_id} is under way (last seen: {latest}); you'll hear by {due}.",
        },
        "when_waiting": {
            "zh": "订单 {order_id} 还在仓库{status}，现货一般付款后 {hours} 小时内发出，发出后 {transit} 天送达。",
            "en": "Order {order_id} is still in the warehouse ({status}); stock items leave within {hours} hours of "
            "payment and then take {transit} days.",
        },
        "when_waiting_late": {
            "zh": "订单 {order_id} 付款已经 {waited}，还在仓库{status}，比平时（{hours} 小时内发出）慢了。"
            "需要的话我可以帮您催仓库。",
            "en": "Order {order_id} was paid {waited_en} ago and is still in the warehouse ({status}), slower than the "
            "usual {hours} hours. I can chase the warehouse if you like.",
        },
        "when_expedited": {
            "zh": "订单 {order_id} 已给仓库下了加急单，要求 {due} 前发出，"
            "发出后 {transit} 天送达，发货后会通知您物流单号。",
            "en": "Order {order_id} has a warehouse expedite to ship by {due}; it then takes {transit} days, and "
            "you'll get the tracking number.",
        },
        "when_courier_expedited": {
            "zh": "已请快递加急派送订单 {order_id}，{due} 前会有回复。最新物流：{latest}。",
            "en": "The courier was asked to hurry order {order_id} and answers by {due}. Latest: {latest}.",
        },
        "when_delivered": {
            "zh": "订单 {order_id} 已于 {date} 签收。如果没有收到，请告诉我，我帮您核实。",
            "en": "Order {order_id} was delivered on {date}. If you didn't get it, tell me and I'll look into it.",
        },
        "resend_arrival": {
            "zh": "补发包裹发出后一般 {transit} 天送达。",
            "en": "Once it leaves, it usually takes {transit} days.",
        },
        "lost_inquiry": {
            "zh": "现在还不能确定丢件：查件正在进行，{due} 前会有结果。"
            "如果确认丢失，会为您补发或全额退款，不需要您另外申请。",
            "en": "It isn't known to be lost yet: the courier inquiry answers by {due}. If it is lost, we'll resend it "
            "or refund you in full; you won't need to apply again.",
        },
        "lost_moving": {
            "zh": "包裹在正常运输中，最新物流：{latest}，没有丢件的迹象。超过 48 小时没有更新的话，我会帮您查件。",
            "en": "It is moving normally (latest: {latest}); nothing suggests it is lost. If it stops for more than "
            "48 hours, I'll open an inquiry.",
        },
        "lost_not_shipped": {
            "zh": "订单 {order_id} 当前{status}，不在运输中。",
            "en": "Order {order_id} is {status}, not in transit.",
        },
        "withdrawn_nothing_comes": {
            "zh": "售后单 {request_id} 已撤回，{pickup}商品留给您，不需要寄回。",
            "en": "Request {request_id} is withdrawn, {pickup_en}you keep the item and send nothing back.",
        },
        "pickup_cancelled": {
            "zh": "上门取件已取消，不会有快递员上门，",
            "en": "the pick-up is cancelled and no courier will come; ",
        },
        "pickup_booked": {
            "zh": "快递员会在 {pickup} 到 {address} 上门取件，{fee}",
            "en": "A courier collects it on {pickup} from {address}. {fee}",
        },
        "pickup_after_review": {
            "zh": "审核通过后会为您预约快递上门取件（可选 {slots}），取走原商品。{fee}",
            "en": "Once it is approved, a courier is booked to collect the old item (slots: {slots}). {fee}",
        },
        "fee_seller": {
            "zh": "质量问题的来回运费由商家承担。",
            "en": "As it is a quality problem, we pay the shipping.",
        },
        "fee_buyer": {
            "zh": "无理由退换的运费由您承担；买了运费险的由运费险理赔，退款成功后自动到账。",
            "en": "For a no-reason return the shipping is yours; return-shipping insurance, if you bought it, "
            "pays it back after the refund.",
        },
        "refuse_or_return": {
            "zh": "订单 {order_id} 已在路上：派送时可以直接拒收，包裹退回仓库后自动退款，{days} 个工作日原路到账；"
            "也可以签收后 {window} 天内申请无理由退货。",
            "en": "Order {order_id} is on its way: you can refuse it at the door and the refund follows automatically "
            "once it is back ({days} working days), or return it within {window} days of delivery.",
        },
        "return_after_delivery": {
            "zh": "订单 {order_id} 签收后 {window} 天内可以申请无理由退货，告诉我商品和上门取件时间就能办。",
            "en": "Within {window} days of delivery you can return it; tell me the item and a pick-up time.",
        },
        "form_credit": {
            "zh": "延迟补偿是 ¥{amount:.2f} 无门槛券（不是现金），{state}",
            "en": "Late-delivery compensation is ¥{amount:.2f} store credit (not cash); {state}",
        },
        "credit_given": {"zh": "已发放到您的账户。", "en": "it is in your account."},
        "credit_pending": {"zh": "审核通过后发放到您的账户。", "en": "it is added once approved."},
        "form_money": {
            "zh": "{type}的钱会原路退回到您的付款账户，{days} 个工作日到账。",
            "en": "The {type} money goes back to how you paid, within {days} working days.",
        },
        "contact_ticket": {
            "zh": "专员会在 {hours} 小时内联系您（工单 {ticket_id}），会在这里或通过您留的电话联系。",
            "en": "A specialist contacts you within {hours} hours (ticket {ticket_id}), here or by phone.",
        },
    }
)


class FollowUpFlow(Flow):
    name: ClassVar[str] = "follow_up"
    intents: ClassVar[tuple[str, ...]] = ()
    needs_order: ClassVar[bool] = False
    informational: ClassVar[bool] = True

    @staticmethod
    def question_of(turn: Turn) -> Question | None:
        """The kind of follow-up question the message asks, or None (not one, or it asks for an action)."""
        text = turn.text_now
        if len(_WORDS.findall(text)) > _LONG_QUESTION or ACTION_WORDS.search(text) or not _QUESTION.search(text):
            return None
        if CAN_RETURN.search(text):
            return None  # "can I still return it?": the return flow answers, and can go on
        if _GENERAL.search(text):
            return None  # "退款一般几天到账": a policy question, not about this order
        return next((kind for kind, pattern in _QUESTIONS if pattern.search(text)), None)

    async def target(self, turn: Turn) -> tuple[Order, AfterSalesRequest | None] | None:
        """The order (and request) the question is about: the one it names, else the focus."""
        order_id = turn.entity("order_id")
        request: AfterSalesRequest | None = None
        if order_id:
            order = await self.orders.get(str(order_id))
            return (order, None) if order is not None else None
        named = self.orders_meant(turn, await self.customer_orders(turn))
        if len(named) == 1:
            return named[0], await self._open_request_on(turn, named[0])
        if named:
            return None
        focus = turn.focus
        if not focus.get("order_id"):
            return None
        order = await self.orders.get(str(focus["order_id"]))
        if order is None:
            return None
        if focus.get("request_id") and self.context.aftersales is not None:
            request = await self.context.aftersales.get(str(focus["request_id"]))
        return order, request

    async def _open_request_on(self, turn: Turn, order: Order) -> AfterSalesRequest | None:
        if self.context.aftersales is None:
            return None
        open_ = [r for r in await self.context.aftersales.for_order(order.order_id) if r.open]
        return open_[0] if len(open_) == 1 else None

    async def answer(self, turn: Turn, question: Question, order: Order, request: AfterSalesRequest | None) -> bool:
        """Answer it; False when there is nothing true to say about this (the engine goes on)."""
        tasks = await self.context.followups.for_order(order.order_id) if self.context.followups else []
        open_tasks = [t for t in tasks if t.status == "open"]
        said = False
        if question == "lost":
            said = self._lost(turn, order, open_tasks)
        elif question == "return_shipping":
            said = await self._return_shipping(turn, order, request)
        elif question == "what_form":
            said = self._what_form(turn, request)
        elif question == "contact":
            said = self._contact(turn)
        else:
            said = self._when(turn, order, request, open_tasks)
        if said:
            turn.act("answer", order=order.order_id, request=request.id if request else None,
                     request_type=request.type.value if request else None)  # fmt: skip
            turn.event("follow_up_answered", question=question, order_id=order.order_id)
        return said

    async def proceed(self, turn: Turn, order: Order | None) -> None:
        turn.finish()
        question = self.question_of(turn)
        target = await self.target(turn)
        if question is None or target is None or not await self.answer(turn, question, *target):
            turn.say("policy_unknown", quick_replies=(turn.choice("quick_human"),))
            turn.act("clarify")

    # -- the answers -----------------------------------------------------------------------------

    def _when(self, turn: Turn, order: Order, request: AfterSalesRequest | None, tasks: list[FollowUp]) -> bool:
        transit = self.policy.transit_days.replace("-", "–")
        requests_flow = RequestsFlow(self.context)
        text = turn.text_now
        about_request = _ABOUT_MONEY.search(text) or _ABOUT_REVIEW.search(text)
        if about_request and (request is None or request.type is RequestType.INVOICE):
            return False  # money and decisions belong to a request: without one, it is a policy question
        if request is not None and (request.open or request.status is Step.COMPLETED):
            turn.say_text(requests_flow.next_step(turn, request))
            if request.type is RequestType.RESEND and request.status in (Step.APPLIED, Step.REVIEWING, Step.APPROVED):
                turn.say("resend_arrival", transit=transit)
            return True
        inquiry = _task(tasks, FollowUpKind.COURIER_INQUIRY)
        latest = order.latest_logistics(1)
        latest_text = latest[0].description if latest else "-"
        if inquiry is not None and order.status is OrderStatus.SHIPPED:
            turn.say("when_inquiry", order_id=order.order_id, latest=latest_text, due=self._at(inquiry.due_at))
            return True
        courier = _task(tasks, FollowUpKind.COURIER_EXPEDITE)
        if courier is not None and order.status is OrderStatus.SHIPPED:
            turn.say(
                "when_courier_expedited", order_id=order.order_id, due=self._at(courier.due_at), latest=latest_text
            )
            return True
        if order.status is OrderStatus.SHIPPED and latest and self.now() - latest[0].time > STALLED_AFTER:
            return False  # stalled and nobody is finding it yet: the order-status flow opens an inquiry
        if order.status is OrderStatus.SHIPPED:
            shipped = order.logistics[0].time if order.logistics else None
            estimate = ""
            if shipped is not None:
                last_day = int(self.policy.transit_days.split("-")[-1])
                by = (shipped + timedelta(days=last_day)).astimezone(self.zone())
                if by > self.now():
                    estimate = turn.text("estimate_by", date=f"{by:%m-%d}")
            turn.say("when_shipped", order_id=order.order_id, latest=latest_text, transit=transit, estimate=estimate)
            return True
        if order.status in (OrderStatus.PAID, OrderStatus.PICKING):
            expedite = _task(tasks, FollowUpKind.WAREHOUSE_EXPEDITE)
            status = status_label(order.status.value, turn.language)
            if expedite is not None:
                turn.say("when_expedited", order_id=order.order_id, due=self._at(expedite.due_at), transit=transit)
                return True
            hours = self.policy.ship_within_hours
            waited = self.now() - order.paid_at if order.paid_at else timedelta(0)
            if waited > timedelta(hours=hours):
                days, hours_waited = waited.days, int(waited.total_seconds() // 3600)
                turn.say(
                    "when_waiting_late",
                    order_id=order.order_id,
                    status=status,
                    hours=hours,
                    waited=f"{days} 天" if days else f"{hours_waited} 小时",
                    waited_en=f"{days} days" if days else f"{hours_waited} hours",
                )
                return True
            turn.say("when_waiting", order_id=order.order_id, status=status, hours=hours, transit=transit)
            return True
        if order.status is OrderStatus.DELIVERED and order.delivered_at is not None:
            turn.say("when_delivered", order_id=order.order_id, date=self._at(order.delivered_at))
            return True
        return False

    def _lost(self, turn: Turn, order: Order, tasks: list[FollowUp]) -> bool:
        if order.status is not OrderStatus.SHIPPED:
            turn.say(
                "lost_not_shipped", order_id=order.order_id, status=status_label(order.status.value, turn.language)
            )
            return True
        inquiry = _task(tasks, FollowUpKind.COURIER_INQUIRY)
        latest = order.latest_logistics(1)
        if inquiry is not None:
            turn.say("lost_inquiry", due=self._at(inquiry.due_at))
            return True
        if latest and self.now() - latest[0].time > STALLED_AFTER:
            return False  # stalled with no inquiry yet: the order-status flow opens one
        turn.say("lost_moving", latest=latest[0].description if latest else "-")
        return True

    async def _return_shipping(self, turn: Turn, order: Order, request: AfterSalesRequest | None) -> bool:
        if request is not None and request.type in GOODS_BACK:
            if request.status is Step.CANCELLED:
                booked = await self.context.pickups.get(request.id) if self.context.pickups else None
                cancelled = booked is not None and booked.status.value == "cancelled"
                turn.say("withdrawn_nothing_comes", request_id=request.id,
                         pickup=turn.text("pickup_cancelled") if cancelled else "",
                         pickup_en=turn.text("pickup_cancelled") if cancelled else "")  # fmt: skip
                return True
            quality = self.policy.needs_evidence(request.reason)
            fee = turn.text("fee_seller" if quality else "fee_buyer")
            pickup = request.details.get("pickup") or {}
            if pickup:
                when = f"{pickup.get('date', '')} {pickup.get('slot', '')}".strip()
                turn.say("pickup_booked", pickup=when, address=pickup.get("address") or order.address, fee=fee)
            else:
                turn.say("pickup_after_review", slots="、".join(self.policy.pickup_slots), fee=fee)
            return True
        days = self.policy.refund_days.replace("-", "–")
        if order.status in (OrderStatus.SHIPPED, OrderStatus.PICKING, OrderStatus.PAID):
            turn.say("refuse_or_return", order_id=order.order_id, days=days, window=self.policy.return_window_days)
            return True
        if order.status is OrderStatus.DELIVERED:
            turn.say("return_after_delivery", order_id=order.order_id, window=self.policy.return_window_days)
            return True
        return False

    def _what_form(self, turn: Turn, request: AfterSalesRequest | None) -> bool:
        if request is None:
            return False
        if is_store_credit(request):
            state = "credit_given" if request.status in (Step.APPROVED, Step.COMPLETED) else "credit_pending"
            turn.say("form_credit", amount=request.amount, state=turn.text(state))
            return True
        turn.say("form_money", type=request.type_label(turn.language), days=self.policy.refund_days.replace("-", "–"))
        return True

    def _contact(self, turn: Turn) -> bool:
        ticket = turn.slots.get("last_ticket")
        if not isinstance(ticket, dict) or not ticket.get("id"):
            return False
        turn.say("contact_ticket", hours=ticket.get("hours", 24), ticket_id=ticket["id"])
        return True

    def _at(self, moment: datetime) -> str:
        return f"{moment.astimezone(self.zone()):%m-%d %H:%M}"


def _task(tasks: list[FollowUp], kind: FollowUpKind) -> FollowUp | None:
    found = [t for t in tasks if t.kind is kind]
    return found[-1] if found else None
