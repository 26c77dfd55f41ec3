"""The customer's own after-sales requests: how one is doing, taking one back, changing one.

"退款到哪一步了", "价保批了没", "那补发的那个呢" ask about a request the customer already has;
"我是要取消退货", "cancel my price protection request" take one back; "把退货改成换货 换43码",
"换货的尺码改成44" change one in place. The request is the one the message names — by its id, its
kind, its order or its item — or the one the conversation is about; with two candidates the
customer chooses. Withdrawing and changing are confirmed first, naming the request, and only
requests nothing irreversible has happened to can be withdrawn or changed (the customer is told
why otherwise). A question about a request never opens a second one.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, ClassVar, Literal

import textpatterns
from backoffice.routing.pickups import ExchangeDelivery, PickupRequest, PickupStatus
from dialogue import guard
from dialogue.flows.base import Flow
from dialogue.flows.returns import DEFAULT_PARCEL, pickup_time, spec_in
from dialogue.replies import register
from dialogue.targets import mentioned_items, refers_back, request_id_in, request_types_in, requests_named
from dialogue.turn import Turn
from shop import Order
from shop.aftersales import GOODS_BACK, WITHDRAWABLE_STEPS, AfterSalesRequest, RequestConflict, RequestType, Step

Mode = Literal["status", "withdraw", "change", "reschedule"]

_WITHDRAW = textpatterns.compile(
    r"撤回|撤销|撤銷|撤掉|撤咗|撤了|撤单|撤單|"
    r"取消.{0,10}?(?:申请|申請|退货|退貨|换货|換貨|补发|補發|价保|價保|售后|售後)|"
    r"不退了|唔退|不换了|不換了|唔換|唔换|不用补发了|不要补发了|"
    r"(?:补发|補發|补寄|補寄|退货|退貨|换货|換貨|价保|價保|发票|發票)\S{0,3}(?:不用了|不要了|不需要了|唔使了?|唔要了|免了)|"
    r"\bwithdraw|\bcancel\b.{0,40}\b(?:request|return|exchange|claim)|"
    r"(?:don'?t|no longer) (?:want|need) (?:to )?(?:return|exchange)",
    textpatterns.IGNORECASE,
)
_CHANGE = textpatterns.compile(
    r"(?:改成|改为|改為|换成|換成)\s*(?:换货|換貨|退货|退貨|退款)|(?:改成|改为|改為)\s*[换換](?:个|個|成)?|"
    r"(?:尺码|尺碼|码数|碼數|size).{0,8}(?:改成|改为|改為|改到|换成|換成)|"
    r"(?:改成|改为|改為|换成|換成)\s*\d{2}(?:\.5)?\s*(?:码|碼|号|號)|"
    r"rather (?:exchange|return|swap)|instead of (?:a |the )?(?:return|refund|exchange)|"
    r"change (?:it|the request|my request|the size)|switch (?:it )?to an? (?:exchange|return)",
    textpatterns.IGNORECASE,
)
_CHANGE_TO = textpatterns.compile(
    r"(?:改成|改为|改為|换成|換成|rather|instead|switch (?:it )?to an?)\s*"
    r"(换货|換貨|exchange|swap|退货|退貨|return|退款|refund)",
    textpatterns.IGNORECASE,
)
_RESCHEDULE = textpatterns.compile(
    r"(?:上门取件|上门取货|上门|取件|取货|收件|揾件|pick[- ]?up|collection)\S{0,8}?(?:时间|時間|辰光|日子|time|slot)?"
    r".{0,10}?(?:改|换|換|推迟|推遲|延后|延後|挪|调|調|change|move|reschedule)|"
    r"(?:改|换|換|change|move|reschedule).{0,10}?(?:上门取件|取件时间|取件時間|取件|pick[- ]?up)",
    textpatterns.IGNORECASE,
)
"""Another time for the courier to collect a return or exchange ("上门取件辰光要改到礼拜六下半天")."""
_STATUS = textpatterns.compile(
    r"进度|進度|进展|進展|到哪一步|到哪步|到哪了|怎么样了|怎麼樣了|咋样了|咋樣了|如何了|点样|點樣|"
    r"批了|批下来|批下來|审核|審核|通过没|通過沒|结果|結果|"
    r"开出来|開出來|开了没|開了沒|开没开|開沒開|开好了|"
    r"发出来|發出來|发了没|發了沒|寄出|到账|到賬|到帐|还没到|還沒到|咋还没|哪能还没|仲未|"
    r"申请.{0,4}了[吗嗎没沒]|申請.{0,4}了[吗嗎没沒]|有没有申请|几天到|幾天到|多久到|"
    r"退了[吗嗎伐没沒]|退咗[未冇吗嗎]|到[账賬帐]了[吗嗎没沒伐]|退(?:返|回|到)?去(?:边|邊|哪)|退到哪|钱去哪|錢去邊|"
    r"几耐|幾耐|几时到|幾時到|多久(?:能|可以)?到|"
    r"\bstatus\b|\bprogress\b|\bupdate on\b|approved yet|\byet\s*[?？]?\s*$|\b(?:sent|shipped) (?:out|it|them)\b|"
    r"\bwhere is (?:my|the) (?:refund|money)|\bwhen (?:will|do) i get\b|"
    r"\b(?:has|have)n'?t (?:come|got|gone|arrived|been)|\bstill (?:not|no|hasn'?t|haven'?t)\b|"
    r"\b(?:need|have) to (?:apply|ask|request) (?:for (?:it|the \w+) )?again\b|"
    r"呢\s*[？?]?\s*$",
    textpatterns.IGNORECASE,
)
_EXCHANGE_WORDS = ("换货", "換貨", "exchange", "swap")
_RETURN_WORDS = ("退货", "退貨", "return", "退款", "refund")

register(
    {
        "request_status": {
            "zh": "售后单 {request_id}（订单 {order_id}{item}的{type}）：{stages}。{next}",
            "en": "Request {request_id} ({type}, order {order_id}{item}): {stages}. {next}",
        },
        "status_item": {"zh": " {item} ", "en": ", {item}"},
        "status_next_review": {
            "zh": "申请提交后 {hours} 小时内审核，专员会在 {deadline} 前审核完，结果会在这里通知您。",
            "en": "Requests are reviewed within {hours} hours: a reviewer decides by {deadline}; you'll be told here.",
        },
        "status_next_pickup": {
            "zh": "快递员 {pickup} 上门取件，商家收到后{after}。",
            "en": "The courier collects it on {pickup}; once it arrives we {after_en}.",
        },
        "status_after_refund": {"zh": "退款原路退回", "en": "refund you"},
        "status_after_exchange": {"zh": "寄出新的商品", "en": "send the replacement"},
        "status_next_return": {
            "zh": "请把商品寄回（退货码 {code}），商家收到后{after}。",
            "en": "Please send it back (return code {code}); once it arrives we {after_en}.",
        },
        "status_next_goods": {
            "zh": "仓库已收到退回的商品，验货后处理。",
            "en": "The warehouse has it and is checking it.",
        },
        "status_next_payment": {
            "zh": "支付中心处理中，一般 {days} 个工作日内原路到账。",
            "en": "The payment centre is processing it; it usually arrives within {days} working days.",
        },
        "status_next_resend": {
            "zh": "补发包裹会在 {days} 天内发出，发出后会通知您物流单号。",
            "en": "The replacement leaves within {days} days; you'll get the tracking number.",
        },
        "status_next_invoice": {
            "zh": "电子发票一般 1–3 个工作日内开具，开好后发送到 {email}。",
            "en": "E-invoices are issued within 1–3 working days and sent to {email}.",
        },
        "status_next_credit": {
            "zh": "补偿 ¥{amount:.2f} 已作为无门槛券发放到您的账户。",
            "en": "¥{amount:.2f} store credit is in your account.",
        },
        "status_next_done": {"zh": "已办结。", "en": "It is complete."},
        "status_next_closed": {"zh": "该申请已结束。", "en": "This request is closed."},
        "which_request": {
            "zh": "您有几个售后申请，请问是哪一个？\n{choices}",
            "en": "You have several requests. Which one?\n{choices}",
        },
        "request_choice": {"zh": "{summary}", "en": "{summary}"},
        "request_line": {
            "zh": "{request_id} 订单 {order_id}{item}的{type}（{status}）",
            "en": "{request_id} {type}, order {order_id}{item} ({status})",
        },
        "no_open_request": {
            "zh": "没有找到您可以撤回或修改的售后申请。请问是哪个订单、哪件商品？",
            "en": "I couldn't find a request of yours that can still be withdrawn or changed. Which order and item?",
        },
        "confirm_withdraw": {
            "zh": "请确认：撤回售后单 {request_id}（订单 {order_id}{item}的{type}，当前：{status}）？{consequence}"
            "确认请回复“确认”，不撤回请回复“取消”。",
            "en": "Please confirm: withdraw request {request_id} ({type}, order {order_id}{item}; now {status})? "
            '{consequence}Reply "yes" to withdraw or "no" to keep it.',
        },
        "what_withdraw": {
            "zh": "撤回售后单 {request_id}（订单 {order_id}{item}的{type}）",
            "en": "withdraw request {request_id} ({type}, order {order_id}{item})",
        },
        "withdraw_pickup_note": {
            "zh": "撤回后 {pickup} 的上门取件也会取消。",
            "en": "The pick-up on {pickup} will be cancelled too. ",
        },
        "withdrawn": {
            "zh": "已撤回售后单 {request_id}（{type}）。{pickup}以后如需办理，随时告诉我。",
            "en": "Request {request_id} ({type}) is withdrawn. {pickup}If you need it again, just tell me.",
        },
        "withdrawn_pickup": {
            "zh": "上门取件已取消，不会有快递员上门。",
            "en": "The pick-up is cancelled; no courier will come. ",
        },
        "cannot_withdraw": {
            "zh": "售后单 {request_id}（{type}）已经是“{status}”，无法再撤回或修改。如有疑问可以转人工客服。",
            "en": "Request {request_id} ({type}) is already {status}, so it can't be withdrawn or changed. "
            "An agent can help if something is wrong.",
        },
        "confirm_change": {
            "zh": "请确认：把售后单 {request_id}（订单 {order_id}{item}的{type}）改为{to}？"
            "确认请回复“确认”，不改请回复“取消”。",
            "en": 'Please confirm: change request {request_id} ({type}, order {order_id}{item}) to {to}? Reply "yes" '
            'or "no".',
        },
        "what_change": {
            "zh": "把售后单 {request_id}（订单 {order_id}{item}的{type}）改为{to}",
            "en": "change request {request_id} ({type}, order {order_id}{item}) to {to}",
        },
        "change_to_exchange": {"zh": "换货（换成 {spec}）", "en": "an exchange for {spec}"},
        "change_to_same": {"zh": "换货（同款同规格）", "en": "an exchange for the same item"},
        "change_to_return": {"zh": "退货退款", "en": "a return and refund"},
        "change_spec": {"zh": "换成 {spec}", "en": "size {spec}"},
        "ask_change_spec": {
            "zh": "请问要换成什么尺码或规格？",
            "en": "Which size would you like instead?",
        },
        "changed": {
            "zh": "已改好：售后单 {request_id} 现在是{now}。{pickup}",
            "en": "Done: request {request_id} is now {now}. {pickup}",
        },
        "ask_pickup_time": {
            "zh": "请问改到哪天、哪个时间段？可选时间段：{slots}。",
            "en": "Which day and time would suit you? Slots: {slots}.",
        },
        "confirm_reschedule": {
            "zh": "请确认：把售后单 {request_id}（订单 {order_id}{item}的{type}）的上门取件改到 {pickup}？"
            "回复“确认”或“取消”。",
            "en": "Please confirm: move the pick-up for request {request_id} ({type}, order {order_id}{item}) to "
            '{pickup}? Reply "yes" or "no".',
        },
        "what_reschedule": {
            "zh": "把售后单 {request_id}（订单 {order_id}{item}的{type}）的上门取件改到 {pickup}",
            "en": "move the pick-up for request {request_id} ({type}, order {order_id}{item}) to {pickup}",
        },
        "rescheduled": {
            "zh": "已改好：售后单 {request_id} 的上门取件改到 {pickup}，快递员会在这个时间段到 {address} 取件。",
            "en": "Done: the courier now collects request {request_id} on {pickup} from {address}.",
        },
        "pickup_already_booked": {
            "zh": "售后单 {request_id} 的取件已经和快递公司约好，改时间要由人工客服联系快递处理，我可以帮您转人工。",
            "en": "The pick-up for request {request_id} is already booked with the courier; an agent has to change "
            "it with them. I can put you through.",
        },
        "changed_pickup": {
            "zh": "快递员仍按 {pickup} 上门，取走原商品。",
            "en": "The courier still comes on {pickup} to collect the old item.",
        },
    }
)


class RequestsFlow(Flow):
    name: ClassVar[str] = "requests"
    intents: ClassVar[tuple[str, ...]] = ("withdraw_request",)
    needs_order: ClassVar[bool] = False
    informational: ClassVar[bool] = True

    # -- is this message about a request the customer has? ------------------------------------

    @staticmethod
    def mode_of(turn: Turn) -> Mode | None:
        """What the message would do to an existing request, from its words alone."""
        text = turn.text_now
        if _WITHDRAW.search(text):
            return "withdraw"
        if _RESCHEDULE.search(text):
            return "reschedule"
        if _CHANGE.search(text):
            return "change"
        if _STATUS.search(text) and (
            request_types_in(text) or request_id_in(text) or "售后" in text or turn.focus.get("request_id")
        ):
            return "status"  # "钞票退了伐": a question about a refund, whatever the classifier made of 退
        if turn.intent == "withdraw_request":
            return "withdraw"
        return None

    @staticmethod
    def changes_one(text: str) -> bool:
        """Whether the words turn a request into another kind or size ("退货改成换货 换 L 号")."""
        return bool(_CHANGE.search(text) or _CHANGE_TO.search(text))

    @staticmethod
    def names_a_withdrawal(turn: Turn) -> bool:
        """Whether the words themselves take back or change a request (撤回, 不退了, 改成换货)."""
        return bool(_WITHDRAW.search(turn.text_now) or _CHANGE.search(turn.text_now))

    async def claims(self, turn: Turn) -> tuple[Mode, list[AfterSalesRequest]] | None:
        """The mode and the customer's requests the message is about, or None when it is not
        about one (then it is a new request, a status question about an order, …)."""
        mode = self.mode_of(turn)
        if mode is None or self.context.aftersales is None:
            return None
        everything = await self.context.aftersales.for_customer(turn.input.customer_id)
        if mode == "status":
            candidates = [r for r in everything if r.open] or everything
        elif mode == "reschedule":
            candidates = [r for r in everything if r.open and r.type in GOODS_BACK]
        else:
            candidates = [r for r in everything if r.open]
        if not candidates:
            return None
        named = await self._named(turn, candidates)
        if named:
            return mode, named
        if mode == "status":
            return None  # a question naming none of their requests is about an order
        focus = turn.focus.get("request_id")
        if focus and any(r.id == focus for r in candidates) and not request_types_in(turn.text_now):
            return mode, [r for r in candidates if r.id == focus]
        if mode == "reschedule" and len(candidates) == 1:
            return mode, candidates  # their one return or exchange: the only pick-up there is to move
        if turn.intent == "withdraw_request" or request_types_in(turn.text_now):
            kinds = request_types_in(turn.text_now)
            fitting = [r for r in candidates if not kinds or r.type in kinds]
            return mode, fitting  # one: that one; several: the customer chooses; none: told so
        return None

    async def _named(self, turn: Turn, requests: list[AfterSalesRequest]) -> list[AfterSalesRequest]:
        """The requests the message names by id, kind, order or item; [] when it names none of them."""
        text = turn.text_now
        request_id = request_id_in(text)
        if request_id is not None:
            return [r for r in requests if r.id.upper() == request_id]
        chosen = list(requests)
        order_id = turn.entity("order_id")
        if order_id:
            chosen = [r for r in chosen if r.order_id == str(order_id)]
        kinds = request_types_in(text)
        if kinds:
            chosen = [r for r in chosen if r.type in kinds]
        orders = await self.customer_orders(turn)
        items = mentioned_items(text, orders)
        if items:
            named_orders = {m.order.order_id for m in items}
            skus = {m.item.sku for m in items}
            on_orders = [r for r in chosen if r.order_id in named_orders]
            on_items = [r for r in on_orders if any(i.get("sku") in skus for i in r.items)]
            chosen = on_items or on_orders
        if not (kinds or order_id or items):
            return []
        focus_request = turn.focus.get("request_id")
        if len(chosen) > 1 and focus_request and refers_back(text):
            chosen = [r for r in chosen if r.id == focus_request] or chosen
        return chosen

    # -- serving it ---------------------------------------------------------------------------

    async def proceed(self, turn: Turn, order: Order | None) -> None:
        claim = await self.claims(turn)
        if claim is None:
            turn.finish()
            turn.say("no_open_request")
            turn.act("ask", slot="request")
            return
        await self.serve(turn, *claim)

    async def serve(self, turn: Turn, mode: Mode, requests: list[AfterSalesRequest]) -> None:
        if mode == "status":
            turn.finish()
            for request in requests[:3]:
                await self.tell_status(turn, request)
            return
        if not requests:
            turn.finish()
            turn.say("no_open_request")
            turn.act("ask", slot="request")
            return
        if len(requests) > 1:
            await self._ask_which(turn, mode, requests)
            return
        await self._act_on(turn, mode, requests[0])

    async def _ask_which(self, turn: Turn, mode: Mode, requests: list[AfterSalesRequest]) -> None:
        form = turn.begin(self.name, "which", mode=mode, options=[r.id for r in requests[:6]])
        lines, choices = [], []
        for n, request in enumerate(requests[:6], start=1):
            line = await self._line(turn, request)
            lines.append(f"{n}. {line}")
            choices.append(turn.choice("request_choice", payload=request.id, summary=line))
        form["data"]["mode"] = mode
        turn.asked("request")
        turn.say("which_request", quick_replies=tuple(choices), choices="\n".join(lines))
        turn.act("ask", slot="request")

    async def on_step(self, turn: Turn, step: str, data: dict[str, Any], order: Order | None) -> bool:
        aftersales = self.context.aftersales
        assert aftersales is not None
        if step == "which":
            options = [r for r in [await aftersales.get(i) for i in data.get("options", [])] if r is not None]
            text = turn.text_now.strip()
            chosen = [r for r in options if r.id == text or r.id in text]
            if not chosen:
                chosen = requests_named(text, options, await self.customer_orders(turn))
                if len(chosen) == len(options):
                    return False  # nothing in the answer narrowed it
            if len(chosen) != 1:
                return False
            await self._act_on(turn, data["mode"], chosen[0])
            return True
        if step == "when":
            request = await aftersales.get(data["request_id"])
            when = pickup_time(turn, self.today(), self.policy.pickup_slots)
            if request is None or when is None:
                return False
            await self._confirm_reschedule(turn, request, data, when)
            return True
        if step == "spec":
            request = await aftersales.get(data["request_id"])
            spec = spec_in(turn.text_now, bare=True)
            if request is None or spec is None:
                return False
            data["spec"] = spec
            await self._confirm_change(turn, request, data)
            return True
        if step == "confirm":
            request = await aftersales.get(data["request_id"])
            if request is None:
                turn.finish()
                return False
            if data["mode"] == "withdraw":
                return await self.answer_confirmation(turn, lambda: self._withdraw(turn, request))
            if data["mode"] == "reschedule":
                return await self.answer_confirmation(turn, lambda: self._reschedule(turn, request, data))
            return await self.answer_confirmation(turn, lambda: self._change(turn, request, data))
        return False

    async def _act_on(self, turn: Turn, mode: Mode, request: AfterSalesRequest) -> None:
        if request.status not in WITHDRAWABLE_STEPS:
            turn.finish()
            self._past_changing(turn, request)
            return
        item = await self._item(turn, request)
        form = turn.begin(self.name, "confirm", mode=mode, request_id=request.id, order_id=request.order_id)
        if mode == "withdraw":
            pickup = request.details.get("pickup") or {}
            consequence = (
                turn.text("withdraw_pickup_note", pickup=f"{pickup.get('date', '')} {pickup.get('slot', '')}".strip())
                if pickup
                else ""
            )
            values = dict(request_id=request.id, order_id=request.order_id, item=item,
                          type=request.type_label(turn.language))  # fmt: skip
            order = await self.orders.get(request.order_id)
            assert order is not None
            self.ask_to_confirm(
                turn, "confirm_withdraw", "withdraw", order, request=request,
                what=turn.text("what_withdraw", **values), status=request.customer_status(turn.language),
                consequence=consequence, **values,
            )  # fmt: skip
            return
        if mode == "reschedule":
            when = pickup_time(turn, self.today(), self.policy.pickup_slots)
            if when is None:
                turn.step("when")
                turn.asked("slot", slot="pickup")
                turn.say("ask_pickup_time", slots="、".join(self.policy.pickup_slots))
                turn.act("ask", order=request.order_id, request=request.id, slot="pickup")
                return
            await self._confirm_reschedule(turn, request, form["data"], when)
            return
        spec = spec_in(turn.text_now)
        target = _change_target(turn.text_now, request.type, spec)
        if target is None:
            target = request.type
        form["data"]["to"] = target.value
        if spec:
            form["data"]["spec"] = spec
        if target is RequestType.EXCHANGE and not spec:
            turn.step("spec")
            turn.asked("slot", slot="size")
            turn.say("ask_change_spec")
            turn.act("ask", order=request.order_id, request=request.id, slot="size")
            return
        await self._confirm_change(turn, request, form["data"])

    async def _confirm_change(self, turn: Turn, request: AfterSalesRequest, data: dict[str, Any]) -> None:
        target = RequestType(data["to"])
        order = await self.orders.get(request.order_id)
        assert order is not None
        to = self._to_text(turn, target, data.get("spec"), request)
        item = await self._item(turn, request)
        values = dict(request_id=request.id, order_id=request.order_id, item=item,
                      type=request.type_label(turn.language), to=to)  # fmt: skip
        turn.step("confirm")
        self.ask_to_confirm(
            turn, "confirm_change", "change_request", order, request=request,
            what=turn.text("what_change", **values), **values,
        )  # fmt: skip

    @staticmethod
    def _to_text(turn: Turn, target: RequestType, spec: str | None, request: AfterSalesRequest) -> str:
        if target is RequestType.EXCHANGE:
            if request.type is RequestType.EXCHANGE and spec:
                return turn.text("change_spec", spec=spec)
            if spec and spec != "same":
                return turn.text("change_to_exchange", spec=spec)
            return turn.text("change_to_same")
        return turn.text("change_to_return")

    async def _confirm_reschedule(
        self, turn: Turn, request: AfterSalesRequest, data: dict[str, Any], when: tuple[str, str]
    ) -> None:
        data["pickup_date"], data["pickup_slot"] = when
        order = await self.orders.get(request.order_id)
        assert order is not None
        values = dict(request_id=request.id, order_id=request.order_id, item=await self._item(turn, request),
                      type=request.type_label(turn.language), pickup=f"{when[0]} {when[1]}")  # fmt: skip
        turn.step("confirm")
        self.ask_to_confirm(
            turn, "confirm_reschedule", "change_request", order, request=request,
            what=turn.text("what_reschedule", **values), **values,
        )  # fmt: skip

    async def _reschedule(self, turn: Turn, request: AfterSalesRequest, data: dict[str, Any]) -> None:
        """Move the courier's visit: a pick-up not yet booked with the courier gets the new day and
        slot (the dispatcher books that); a request without one gets one; a booked one is a
        person's job (the courier's booking must be changed with the courier)."""
        aftersales, pickups = self.context.aftersales, self.context.pickups
        assert aftersales is not None
        guard.authorise(turn, "change_request", request.order_id, request_id=request.id)
        turn.finish()
        day, slot = data["pickup_date"], data["pickup_slot"]
        start, end = slot.split("-")
        order = await self.orders.get(request.order_id)
        assert order is not None
        if pickups is not None:
            booked = await pickups.get(request.id)
            if booked is None:
                sku = next((str(i.get("sku")) for i in request.items if i.get("sku")), None)
                exchange = request.type is RequestType.EXCHANGE
                await pickups.request_pickup(
                    PickupRequest(
                        pickup_id=request.id, order_id=order.order_id, kind="exchange" if exchange else "return",
                        customer_name=order.customer.name, phone=order.customer.phone, address=order.address,
                        date=day, window_start=start, window_end=end, parcels=DEFAULT_PARCEL,
                        exchange=ExchangeDelivery(sku=sku, count=1, weight_kg=1.0, volume_l=6.0) if exchange else None,
                    )
                )  # fmt: skip
            elif booked.courier is not None or not await pickups.update(
                request.id, {"date": day, "window_start": start, "window_end": end},
                expect_status=[PickupStatus.REQUESTED.value],
            ):  # fmt: skip
                turn.say("pickup_already_booked", request_id=request.id, quick_replies=(turn.choice("quick_human"),))
                turn.act("refused", order=request.order_id, request=request.id, request_type=request.type.value)
                return
        try:
            await aftersales.change(
                request.id, actor="customer", details={"pickup": {"date": day, "slot": slot}},
                note=f"客户把上门取件改到 {day} {slot}",
            )  # fmt: skip
        except RequestConflict:
            self._past_changing(turn, await aftersales.get(request.id) or request)
            return
        turn.say("rescheduled", request_id=request.id, pickup=f"{day} {slot}", address=order.address)
        turn.act("changed", order=request.order_id, request=request.id, request_type=request.type.value)
        turn.event("pickup_rescheduled", request_id=request.id, date=day, slot=slot)

    @staticmethod
    def _past_changing(turn: Turn, request: AfterSalesRequest) -> None:
        """The request (as it is now) has gone past the point where it can be taken back or changed."""
        turn.say("cannot_withdraw", request_id=request.id, type=request.type_label(turn.language),
                 status=request.customer_status(turn.language))  # fmt: skip
        turn.act("refused", order=request.order_id, request=request.id, request_type=request.type.value)

    async def _withdraw(self, turn: Turn, request: AfterSalesRequest) -> None:
        aftersales = self.context.aftersales
        assert aftersales is not None
        guard.authorise(turn, "withdraw", request.order_id, request_id=request.id)
        turn.finish()
        try:
            request = await aftersales.withdraw(request.id, actor="customer", note="客户在对话中撤回申请")
        except RequestConflict:
            self._past_changing(turn, await aftersales.get(request.id) or request)
            return
        cancelled = False
        if self.context.pickups is not None:
            cancelled = await self.context.pickups.cancel(request.id)
        if request.ticket_id and self.context.tickets is not None:
            await self.context.tickets.request_withdrawn(request.ticket_id, request.id)
        turn.say("withdrawn", request_id=request.id, type=request.type_label(turn.language),
                 pickup=turn.text("withdrawn_pickup") if cancelled else "")  # fmt: skip
        turn.act("withdrawn", order=request.order_id, request=request.id, request_type=request.type.value)
        turn.event("request_withdrawn", request_id=request.id, type=request.type.value, pickup_cancelled=cancelled)

    async def _change(self, turn: Turn, request: AfterSalesRequest, data: dict[str, Any]) -> None:
        aftersales = self.context.aftersales
        assert aftersales is not None
        guard.authorise(turn, "change_request", request.order_id, request_id=request.id)
        turn.finish()
        target = RequestType(data["to"])
        spec = data.get("spec")
        note = f"客户将{request.type_label('zh')}改为{target.value}" + (f"（{spec}）" if spec else "")
        try:
            changed = await aftersales.change(
                request.id, actor="customer", type=target, details={"spec": spec} if spec else None, note=note
            )
        except RequestConflict:
            self._past_changing(turn, await aftersales.get(request.id) or request)
            return
        pickup = request.details.get("pickup") or {}
        if target is RequestType.EXCHANGE and request.type is not RequestType.EXCHANGE and self.context.pickups:
            sku = next((str(i.get("sku")) for i in request.items if i.get("sku")), None)
            await self.context.pickups.become_exchange(
                request.id, ExchangeDelivery(sku=sku, count=1, weight_kg=1.0, volume_l=6.0)
            )
        now = self._to_text(turn, target, spec, request)
        turn.say(
            "changed", request_id=changed.id, now=now,
            pickup=turn.text("changed_pickup", pickup=f"{pickup.get('date', '')} {pickup.get('slot', '')}".strip())
            if pickup else "",
        )  # fmt: skip
        turn.act("changed", order=request.order_id, request=request.id, request_type=target.value)
        turn.event("request_changed", request_id=request.id, from_type=request.type.value, to_type=target.value)

    # -- how it is doing ------------------------------------------------------------------------

    async def tell_status(self, turn: Turn, request: AfterSalesRequest) -> None:
        zone = self.zone()
        stages = " → ".join(
            f"{s.label} {s.at.astimezone(zone):%m-%d %H:%M}" for s in request.customer_timeline(turn.language)
        )
        turn.say(
            "request_status",
            request_id=request.id,
            order_id=request.order_id,
            item=turn.text("status_item", item=(await self._item(turn, request)).strip()) if request.items else "",
            type=request.type_label(turn.language),
            stages=stages,
            next=self.next_step(turn, request),
        )
        turn.act("answer", order=request.order_id, request=request.id, request_type=request.type.value)
        turn.slots["last_order_id"] = request.order_id

    def next_step(self, turn: Turn, request: AfterSalesRequest) -> str:
        """What happens next and by when, from the request's state and the policy (no new promise)."""
        status, policy = request.status, self.policy
        days = policy.refund_days.replace("-", "–")
        after = "status_after_exchange" if request.type is RequestType.EXCHANGE else "status_after_refund"
        after_en = turn.text(after) if turn.language == "en" else ""
        if request.type is RequestType.INVOICE:
            if status is Step.COMPLETED:
                return turn.text("status_next_done")
            email = str(request.details.get("email") or "-")
            return turn.text("status_next_invoice", email=email)
        if status in (Step.APPLIED, Step.REVIEWING):
            deadline = (request.created_at + timedelta(hours=policy.review_hours)).astimezone(self.zone())
            return turn.text("status_next_review", deadline=f"{deadline:%m-%d %H:%M}", hours=policy.review_hours)
        if status in (Step.APPROVED, Step.AWAITING_RETURN) and request.type in (
            RequestType.RETURN_REFUND,
            RequestType.EXCHANGE,
        ):
            pickup = request.details.get("pickup") or {}
            if pickup:
                when = f"{pickup.get('date', '')} {pickup.get('slot', '')}".strip()
                return turn.text("status_next_pickup", pickup=when, after=turn.text(after), after_en=after_en)
            code = str(request.details.get("return_code") or "-")
            return turn.text("status_next_return", code=code, after=turn.text(after), after_en=after_en)
        if status is Step.GOODS_RECEIVED:
            return turn.text("status_next_goods")
        if status is Step.PAYMENT_PROCESSING:
            return turn.text("status_next_payment", days=days)
        if request.type is RequestType.RESEND and status in (Step.APPROVED, Step.RESENDING):
            return turn.text("status_next_resend", days=policy.resend_ship_days.replace("-", "–"))
        if is_store_credit(request) and status in (Step.APPROVED, Step.COMPLETED):
            return turn.text("status_next_credit", amount=request.amount)
        if status is Step.COMPLETED:
            return turn.text("status_next_done")
        if status is Step.APPROVED:
            return turn.text("status_next_payment", days=days)
        return turn.text("status_next_closed")

    async def _item(self, turn: Turn, request: AfterSalesRequest) -> str:
        names = [str(i.get("name")) for i in request.items if i.get("name")]
        return f" {names[0]} " if len(names) == 1 else ""

    async def _line(self, turn: Turn, request: AfterSalesRequest) -> str:
        return turn.text(
            "request_line",
            request_id=request.id,
            order_id=request.order_id,
            item=await self._item(turn, request),
            type=request.type_label(turn.language),
            status=request.customer_status(turn.language),
        )


def is_store_credit(request: AfterSalesRequest) -> bool:
    """Late-delivery compensation is paid as store credit; other compensation goes back as money."""
    if request.type is not RequestType.COMPENSATION:
        return False
    return request.details.get("form") == "store_credit" or request.reason == "配送延迟"


def _change_target(text: str, current: RequestType, spec: str | None) -> RequestType | None:
    """The kind the customer wants the request to become: named ("改成换货", "rather exchange"),
    or an exchange when a return is given a size; the same kind when only the size changes."""
    match = _CHANGE_TO.search(text)
    if match:
        word = match.group(1).lower()
        if word in _EXCHANGE_WORDS:
            return RequestType.EXCHANGE
        if word in _RETURN_WORDS:
            return RequestType.RETURN_REFUND
    if current is RequestType.RETURN_REFUND and spec:
        return RequestType.EXCHANGE
    return current if current is RequestType.EXCHANGE else None
