"""What every self-service flow shares: the services it acts through, finding the one order (and
item) the customer means, proving it is theirs, and confirming before anything is written.

A flow is a form: it keeps ``{"flow", "step", "data", "asked"}`` in the conversation's slots,
asks for what it lacks one question at a time (taking everything the customer already said), and
always has an exit (the customer stops, or the case goes to a person). Its questions belong to it:
an answer is applied only to the question it answers, while that question is fresh (asked by this
flow, in this conversation, in the bot's previous message); a stale "确认" gets the question again,
naming what it is about. Every change is confirmed first, naming the order, the item and the action
(:mod:`dialogue.guard` refuses any write that was not).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, ClassVar, Protocol
from zoneinfo import ZoneInfo

import intents as intent_registry
import textpatterns
from backoffice import HandoffDesk, Ticket, TicketDesk, TicketType
from backoffice.followups import FollowUps
from backoffice.routing.pickups import PickupStore
from backoffice.surveys import SurveyDesk
from dialogue import guard
from dialogue.replies import register, status_label
from dialogue.targets import Embedder, mentioned_items, orders_meant, points_elsewhere, refers_back
from dialogue.turn import Turn
from shop import Order, OrderItem, OrderService
from shop.aftersales import AfterSalesRequest, AfterSalesService, RequestType, Step
from shop.policy import AfterSalesPolicy

if TYPE_CHECKING:
    from dialogue.knowledge import KnowledgeBase

MAX_ORDER_CHOICES = 5
MAX_VERIFY_ATTEMPTS = 2

_YES_PHRASES = (
    "是的", "是", "对的", "对", "對", "好的", "好", "好滴", "好个", "好的呀", "好额", "好呃", "嗯++(?:呐|哪|那)?",
    "确认", "確認", "确定", "確定", "可以", "行", "没问题", "沒問題", "冇问题", "係", "系啊", "得", "要得", "中", "啱",
    "对头", "對頭", "妥", "妥了", "ok", "okay", "yes", "yep", "yeah", "y", "sure", "confirm", "correct", "go ahead",
    "do it",
)  # fmt: skip
_YES_WORDS = "|".join(sorted(_YES_PHRASES, key=len, reverse=True))
"""Longest first: the groups below are atomic ("好的呀" must not stop at "好的")."""
_YES = textpatterns.compile(
    rf"^\s*+(?>{_YES_WORDS})(?:[\s,，。.!！~]*+(?>{_YES_WORDS}))*+[\s。.!！~]*+$", textpatterns.IGNORECASE
)
_YES_LEAD = textpatterns.compile(rf"^\s*+(?>{_YES_WORDS})(?![不没冇唔])[\s,，。.!！~]", textpatterns.IGNORECASE)
_NO = textpatterns.compile(
    r"^\s*(不|不是|不对|不對|不要|不用|否|算了|算啦|取消|唔系|唔係|唔要|no|n|nope|cancel)[。.!！~]*\s*$",
    textpatterns.IGNORECASE,
)
_CANCEL = textpatterns.compile(
    r"(算了|算啦|不用了|不办了|先不办|先不|不退了|唔退|取消办理|退出|唔使了|冇需要|不要改了|还是不|還是不|照退|都係照|"
    r"never ?mind|forget it|\bstop\b)",
    textpatterns.IGNORECASE,
)
_DIGITS = textpatterns.compile(r"\d+")

register(
    {
        "flow_cancelled": {
            "zh": "好的，已为您取消本次办理，没有做任何修改。还有其他可以帮您的吗？",
            "en": "All right, I've stopped here and changed nothing. Anything else I can help with?",
        },
        "which_order_for": {
            "zh": "请问是哪一个订单要办理{topic}？\n{choices}",
            "en": "Which order is the {topic} for?\n{choices}",
        },
        "ask_order_id_for": {
            "zh": "请提供要办理{topic}的订单号。",
            "en": "Please tell me the order number for the {topic}.",
        },
        "order_not_yours_choice": {
            "zh": "没能对上您说的商品。请问是哪一个订单？\n{choices}",
            "en": "I couldn't match that to one of your orders. Which one is it?\n{choices}",
        },
        "verify_phone": {
            "zh": "为了保护您的订单信息，请提供订单 {order_id} 的收货手机号进行验证。",
            "en": "To protect your order, please send the phone number on order {order_id}.",
        },
        "verify_failed": {
            "zh": "手机号与订单不一致，请核对后重新发送。",
            "en": "That number doesn't match the order. Please check and send it again.",
        },
        "verify_locked": {
            "zh": "该订单的验证已多次未通过，为了保护订单安全，已为您转接人工客服核实身份。",
            "en": "This order could not be verified after several tries; an agent will check who you are.",
        },
        "verify_ok": {"zh": "验证通过。", "en": "Thanks, verified."},
        "lookups_limited": {
            "zh": "您最近查询了较多不属于您的订单号。为保护其他顾客的订单信息，请一小时后再查，"
            "或回复“转人工”由客服核实。您自己的订单可以直接说“查我的订单”。",
            "en": "You have looked up many order numbers that aren't yours. To protect other customers, please "
            'try again in an hour or ask for an agent. Your own orders: just say "my orders".',
        },
        "order_choice": {"zh": "{summary}", "en": "{summary}"},
        "already_requested": {
            "zh": "订单 {order_id}{item}已有{type}申请（售后单号 {request_id}，{channel_note}），当前进度：{status}。"
            "不用再提交，有进展会第一时间通知您。",
            "en": "There is already a {type} request for order {order_id}{item} ({request_id}, {channel_note}); "
            "it is {status}. No need to apply again: you'll hear as soon as it moves.",
        },
        "item_note": {"zh": " 的{item}", "en": " ({item})"},
        "channel_note_same": {"zh": "在本渠道提交", "en": "made here"},
        "channel_note_other": {"zh": "通过{channel}提交", "en": "made via {channel}"},
        "yes_no": {"zh": "请回复“确认”或“取消”。", "en": 'Please reply "yes" or "no".'},
        "confirm_again": {
            "zh": "请确认：{what}？确认请回复“确认”，不办理请回复“取消”。",
            "en": 'Just to be sure: {what}? Reply "yes" to go ahead or "no" to stop.',
        },
        "quick_yes": {"zh": "确认", "en": "Yes"},
        "quick_no": {"zh": "取消", "en": "No"},
    }
)


class VerificationCounts(Protocol):
    """Failed ownership checks per customer and order (the store's ``VerificationAttempts``; the
    dialogue asks through this and never imports the database side)."""

    async def failed(self, customer_id: str, order_id: str) -> int:
        """Count one failure; the failures within the window, this one included."""
        ...

    async def failures(self, customer_id: str, order_id: str) -> int: ...


class LookupCounts(Protocol):
    """Order numbers a customer looked up that are not theirs (the store's ``LookupAttempts``)."""

    async def looked_up(self, customer_id: str) -> int: ...

    async def exhausted(self, customer_id: str) -> bool: ...


@dataclass(slots=True)
class FlowContext:
    """The services flows act through; the dialogue never touches the database directly."""

    orders: OrderService
    handoff: HandoffDesk
    aftersales: AfterSalesService | None = None
    tickets: TicketDesk | None = None
    policy: AfterSalesPolicy = field(default_factory=AfterSalesPolicy)
    knowledge: KnowledgeBase | None = None
    pickups: PickupStore | None = None
    surveys: SurveyDesk | None = None
    followups: FollowUps | None = None
    """Tasks behind the bot's promises (expedite, courier inquiry)."""
    verification: VerificationCounts | None = None
    """Failed ownership checks, counted per customer and order across flows and channels."""
    lookups: LookupCounts | None = None
    """Order numbers a customer looked up that are not theirs: walking through numbers is stopped."""
    embed: Embedder | None = None
    """Sentence vectors for matching products named in another language ("the kettle" → 电热水壶)."""
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    timezone: str = "Asia/Shanghai"
    """The shop's time zone: what "today" and "tomorrow" mean for deliveries and pick-ups."""
    channel_labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    """What each channel is called, per language (the channel registry's labels)."""


def is_yes(turn: Turn) -> bool:
    text = turn.text_now
    return bool(_YES.match(text)) or (turn.intent == "affirm" and not _NO.match(text) and not _CANCEL.search(text))


def leads_with_yes(turn: Turn) -> bool:
    """ "对 洗衣液那单取消退款", "是的 撤销": yes first, then words about the same thing."""
    text = turn.text_now
    return is_yes(turn) or (bool(_YES_LEAD.match(text)) and not _CANCEL.search(text))


def is_no(turn: Turn) -> bool:
    return bool(_NO.match(turn.text_now)) or turn.intent == "deny"


def wants_to_cancel(turn: Turn) -> bool:
    return bool(_CANCEL.search(turn.text_now))


def tell_existing(
    turn: Turn, request: AfterSalesRequest, channel_labels: Mapping[str, Mapping[str, str]], item: str | None = None
) -> None:
    """One problem, one request: the customer hears how the open one is doing instead of a second."""
    if request.channel and request.channel != turn.input.channel:
        names = channel_labels.get(request.channel, {})
        note = turn.text("channel_note_other", channel=names.get(turn.language, request.channel))
    else:
        note = turn.text("channel_note_same")
    turn.say(
        "already_requested",
        order_id=request.order_id,
        item=turn.text("item_note", item=item) if item else "",
        type=request.type_label(turn.language),
        request_id=request.id,
        channel_note=note,
        status=request.customer_status(turn.language),
    )
    turn.act("existing", order=request.order_id, request=request.id, request_type=request.type.value,
             sku=_request_sku(request))  # fmt: skip
    turn.event("duplicate_request", request_id=request.id, type=request.type.value, channel=turn.input.channel)


def _request_sku(request: AfterSalesRequest) -> str | None:
    skus = [str(i.get("sku")) for i in request.items if i.get("sku")]
    return skus[0] if len(skus) == 1 else None


def unfinished(request: AfterSalesRequest, turn: Turn) -> bool:
    """A request this customer's earlier try created but did not take past its first step
    (the gateway stopped mid-turn): finish it instead of calling it a duplicate."""
    return request.status is Step.APPLIED and request.customer_id == turn.input.customer_id


def order_summary(order: Order, language: str) -> str:
    first = order.items[0].name
    more = len(order.items) - 1
    if more:
        first += f" 等{len(order.items)}件" if language == "zh" else f" +{more}"
    return f"{order.order_id} {first}（{status_label(order.status.value, language)}）"


class Flow(ABC):
    """One self-service form. Subclasses name the intents that start them and implement
    :meth:`proceed` (the order is known and verified) and :meth:`on_step` (later answers)."""

    name: ClassVar[str]
    intents: ClassVar[tuple[str, ...]]
    needs_order: ClassVar[bool] = True
    verify_owner: ClassVar[bool] = True
    """Acting on an order (money, goods, address) needs it to be the customer's; a status lookup does not."""
    informational: ClassVar[bool] = False
    """It only answers (status, policy): it does not take over a flow the customer has under way."""
    choose_template: ClassVar[str] = "which_order_for"
    ask_template: ClassVar[str] = "ask_order_id_for"

    def __init__(self, context: FlowContext) -> None:
        self.context = context

    def topic(self, turn: Turn) -> str:
        """The flow's task as customers call it (the intent registry's topic of its first intent)."""
        return intent_registry.topic(self.intents[0], turn.language)

    @property
    def orders(self) -> OrderService:
        return self.context.orders

    @property
    def policy(self) -> AfterSalesPolicy:
        return self.context.policy

    async def start(self, turn: Turn, *, order_id: str | None = None) -> None:
        """Begin the form; ``order_id`` when another flow handed the customer over with their order."""
        form = turn.begin(self.name, "start")
        if order_id:
            form["data"]["order_id"] = order_id
        self.remember(turn, form["data"])
        if not self.needs_order:
            await self.proceed(turn, None)
            return
        order = await self.pick_order(turn)
        if order is not None:
            await self.proceed(turn, order)

    async def resume(self, turn: Turn) -> bool:
        """Take this message as the answer to the flow's question; False when it is not one."""
        form = turn.form
        assert form is not None
        step, data = form["step"], form["data"]
        if step == "order":
            order = await self._answer_which_order(turn, data)
            if order is None:
                return turn.acted_on("ask_order") or turn.acted_on("verify")
            self.remember(turn, data)
            await self.proceed(turn, order)
            return True
        if step == "verify":
            return await self._verify(turn, data)
        order = await self.orders.get(data["order_id"]) if data.get("order_id") else None
        self.remember(turn, data)
        return await self.on_step(turn, step, data, order)

    def remember(self, turn: Turn, data: dict[str, Any]) -> None:  # noqa: B027 (optional hook)
        """Keep what the message said that the flow will need later (a reason, a size, an
        address): nothing the customer gave is asked for again."""

    @abstractmethod
    async def proceed(self, turn: Turn, order: Order | None) -> None:
        """The flow's work once its order is chosen (and verified where it acts on it)."""

    async def on_step(self, turn: Turn, step: str, data: dict[str, Any], order: Order | None) -> bool:
        """Answers to the flow's own questions; False when the message is not an answer."""
        return False

    # -- choosing and verifying the order ------------------------------------------------

    async def customer_orders(self, turn: Turn) -> list[Order]:
        identities = turn.input.identities
        if not (identities.get("phone") or identities.get("email")):
            return []
        return await self.orders.recent_for_customer(
            phone=identities.get("phone"), email=identities.get("email"), limit=MAX_ORDER_CHOICES
        )

    def order_is_candidate(self, order: Order) -> bool:
        """Orders this flow can act on, offered first when the customer has several."""
        return True

    async def pick_order(self, turn: Turn) -> Order | None:
        """The one order the message is about: named by number or by product, the one just talked
        about ("那单", a follow-up), or the only one this task fits. Otherwise the customer is
        asked, with the orders this task fits first — never a guess at the newest."""
        form = turn.form
        assert form is not None
        data = form["data"]
        order_id = data.get("order_id") or turn.entity("order_id")
        if order_id:
            lookups = self.context.lookups
            order = await self.orders.get(str(order_id))
            # Only numbers that are not the customer's count (and cost a read): their own never limit them.
            if lookups is not None and (order is None or not self._owned(turn, order)):
                if await lookups.exhausted(turn.input.customer_id):
                    turn.finish()
                    turn.say("lookups_limited")
                    turn.act("refused")
                    turn.event("order_lookups_limited", order_id=str(order_id))
                    return None
                await lookups.looked_up(turn.input.customer_id)  # someone else's, or nobody's, number
            if order is None:
                data.pop("order_id", None)
                turn.step("order")
                turn.asked("order")
                turn.say("order_not_found", order_id=order_id)
                turn.act("ask_order")
                turn.event("order_not_found", order_id=str(order_id), flow=self.name)
                return None
            return await self._chosen(turn, order, data)
        recent = await self.customer_orders(turn)
        named = self.orders_meant(turn, recent)
        fitting_named = [o for o in named if self.order_is_candidate(o)] or named
        if len(fitting_named) == 1:
            self._note_item(turn, fitting_named[0], data)
            return await self._chosen(turn, fitting_named[0], data)
        focus_id = turn.focus.get("order_id")
        elsewhere = points_elsewhere(turn.text_now)
        if not named and focus_id and not elsewhere and (refers_back(turn.text_now) or self.follows_focus(turn)):
            focused = next((o for o in recent if o.order_id == focus_id), None) or await self.orders.get(focus_id)
            if focused is not None:
                return await self._chosen(turn, focused, data)
        fitting = [o for o in recent if self.order_is_candidate(o)]
        only = fitting if fitting else recent  # their one order, even if the task does not fit it (told why)
        if not named and len(only) == 1 and not (elsewhere and only[0].order_id == focus_id):
            self._note_item(turn, only[0], data)
            return await self._chosen(turn, only[0], data)
        self.ask_which_order(turn, fitting_named or fitting or recent)
        return None

    def orders_meant(self, turn: Turn, orders: Sequence[Order], text: str | None = None) -> list[Order]:
        """The orders the message means by product, nickname, when they were bought or their price."""
        said = turn.text_now if text is None else text
        return orders_meant(said, orders, embed=self.context.embed, today=self.today(), zone=self.zone())

    def follows_focus(self, turn: Turn) -> bool:
        """Whether a message that names no order continues the one in focus: it was what the
        last two messages were about ("地址能改不" right after a question on that order); later,
        only words that point back at it ("那单", "it") do."""
        return int(turn.focus.get("turn", -99)) >= turn.number - 2

    def ask_which_order(self, turn: Turn, orders: list[Order]) -> None:
        turn.step("order")
        turn.asked("order")
        topic = self.topic(turn)
        if orders:
            lines = "\n".join(f"{i}. {order_summary(o, turn.language)}" for i, o in enumerate(orders, start=1))
            choices = tuple(
                turn.choice("order_choice", payload=o.order_id, summary=order_summary(o, turn.language)) for o in orders
            )
            turn.say(self.choose_template, quick_replies=choices, topic=topic, choices=lines)
            turn.slots["offered_orders"] = [o.order_id for o in orders]
        else:
            turn.say(self.ask_template, topic=topic)
        turn.act("ask_order")

    async def _answer_which_order(self, turn: Turn, data: dict[str, Any]) -> Order | None:
        """The answer to "which order?": a number, an order id, a product, "那个"."""
        order_id = turn.entity("order_id")
        if order_id:
            data["order_id"] = str(order_id)
            return await self.pick_order(turn)
        offered_ids = [str(o) for o in turn.slots.get("offered_orders") or []]
        recent = await self.customer_orders(turn)
        offered = [o for o in recent if o.order_id in offered_ids] or recent
        named = self.orders_meant(turn, offered)
        if len(named) == 1:
            self._note_item(turn, named[0], data)
            return await self._chosen(turn, named[0], data)
        if named or self._looks_like_a_choice(turn):
            # Not one of them (or two): the list again, so "2" still works after a miss.
            self.ask_which_order(turn, offered)
        return None

    @staticmethod
    def _looks_like_a_choice(turn: Turn) -> bool:
        return turn.intent in ("inform", None) or len(turn.text_now) <= 12

    def _note_item(self, turn: Turn, order: Order, data: dict[str, Any]) -> None:
        """The item the customer named in the order ("跑步鞋", "赠品"), for flows about one item."""
        items = [m.item for m in mentioned_items(turn.text_now, [order], self.context.embed)]
        if len(items) == 1 and "sku" not in data:
            data["sku"] = items[0].sku

    async def _chosen(self, turn: Turn, order: Order, data: dict[str, Any]) -> Order | None:
        data["order_id"] = order.order_id
        turn.slots["last_order_id"] = order.order_id
        if self.verify_owner and not self._owned(turn, order):
            failures = await self._failures(turn, order)
            if failures >= MAX_VERIFY_ATTEMPTS:
                self._locked(turn, order)
                return None
            turn.step("verify")
            turn.asked("verify", order_id=order.order_id)
            turn.say("verify_phone", order_id=order.order_id)
            turn.act("verify", order=order.order_id)
            return None
        return order

    @staticmethod
    def _owned(turn: Turn, order: Order) -> bool:
        return order.belongs_to(turn.input.identities) or order.order_id in turn.slots.get("verified_orders", [])

    async def _failures(self, turn: Turn, order: Order) -> int:
        if self.context.verification is None:
            return 0
        return await self.context.verification.failures(turn.input.customer_id, order.order_id)

    def _locked(self, turn: Turn, order: Order) -> None:
        turn.finish()
        turn.say("verify_locked")
        turn.request_handoff("verification_failed", order_id=order.order_id)

    async def _verify(self, turn: Turn, data: dict[str, Any]) -> bool:
        order = await self.orders.get(data["order_id"])
        if order is None:
            turn.finish()
            return False
        given = turn.entity("phone") or next(iter(_DIGITS.findall(turn.text_now.replace(" ", ""))), None)
        if given is None:
            if self._owned(turn, order):  # a shared contact card linked the phone this turn
                return await self._verified(turn, order)
            return False
        if order.customer.phone and str(given)[-11:] == order.customer.phone[-11:]:
            return await self._verified(turn, order)
        failures = MAX_VERIFY_ATTEMPTS
        if self.context.verification is not None:
            failures = await self.context.verification.failed(turn.input.customer_id, order.order_id)
        else:
            failures = int(data.get("verify_attempts", 0)) + 1
            data["verify_attempts"] = failures
        turn.event("order_verification_failed", order_id=order.order_id, attempts=failures)
        if failures >= MAX_VERIFY_ATTEMPTS:
            self._locked(turn, order)
            return True
        turn.say("verify_failed")
        turn.asked("verify", order_id=order.order_id)
        turn.act("verify", order=order.order_id)
        return True

    async def _verified(self, turn: Turn, order: Order) -> bool:
        verified = list(turn.slots.get("verified_orders", []))
        turn.slots["verified_orders"] = [*verified, order.order_id]
        turn.say("verify_ok")
        turn.step("start")
        await self.proceed(turn, order)
        return True

    # -- after-sales requests ----------------------------------------------------------

    async def open_requests(self, order: Order, *types: RequestType) -> list[AfterSalesRequest]:
        if self.context.aftersales is None:
            return []
        return [r for r in await self.context.aftersales.for_order(order.order_id) if r.open and r.type in types]

    async def open_request(self, order: Order, *types: RequestType, sku: str | None = None) -> AfterSalesRequest | None:
        """The order's open request of one of these types (for this item, when it names one)."""
        for request in await self.open_requests(order, *types):
            skus = {str(i.get("sku")) for i in request.items if i.get("sku")}
            if sku is None or not skus or sku in skus:
                return request
        return None

    async def told_open_request(self, turn: Turn, order: Order, *types: RequestType, sku: str | None = None) -> bool:
        """True (and the customer told how it is doing, the flow ended) when such a request is open already."""
        request = await self.open_request(order, *types, sku=sku)
        if request is None:
            return False
        turn.finish()
        item = order.item(sku) if sku else None
        tell_existing(turn, request, self.context.channel_labels, item.name if item else None)
        return True

    async def new_request(
        self, turn: Turn, order: Order, type: RequestType, *, sku: str | None = None, **fields: Any
    ) -> AfterSalesRequest | None:
        """Record the confirmed request and end the flow's questions; None when an open request
        for the same thing exists (the customer is told about it instead)."""
        guard.authorise(turn, type.value, order.order_id, sku=sku)
        aftersales = self.context.aftersales
        assert aftersales is not None
        request, created = await aftersales.create(
            type=type,
            order_id=order.order_id,
            customer_id=turn.input.customer_id,
            actor="customer",
            conversation_id=turn.input.conversation_id,
            channel=turn.input.channel,
            **fields,
        )
        turn.finish()
        if not created and not unfinished(request, turn):
            item = order.item(sku) if sku else None
            tell_existing(turn, request, self.context.channel_labels, item.name if item else None)
            return None
        turn.act("submitted", order=order.order_id, sku=sku, request=request.id, request_type=type.value)
        return request

    async def to_review(
        self,
        turn: Turn,
        order: Order,
        request: AfterSalesRequest,
        ticket_type: TicketType,
        summary: str,
        *,
        amount: float | None = None,
        note: str | None = None,
    ) -> Ticket | None:
        """A person decides: the request moves to review with a ticket linked to it. None when a
        backoffice rule decided at once (the customer is told here)."""
        aftersales, tickets = self.context.aftersales, self.context.tickets
        assert aftersales is not None and tickets is not None
        if request.status is Step.APPLIED:
            request = await aftersales.advance(request.id, Step.REVIEWING, actor="system:self_service", note=note)
        ticket, _ = await tickets.open(
            type=ticket_type,
            customer_id=turn.input.customer_id,
            summary=summary,
            conversation_id=turn.input.conversation_id,
            channel=turn.input.channel,
            order_id=order.order_id,
            request_id=request.id,
            reason=request.reason,
            evidence=request.evidence,
            amount=order.amount if amount is None else amount,
            text=turn.normalized_text,
            quiet=True,
        )
        turn.event("aftersales_submitted", flow=self.name, request_id=request.id, ticket_id=ticket.id)
        if ticket.decision is not None and ticket.decision.by.startswith("system:"):
            told = await tickets.decision_notice(ticket, turn.language)
            if told:
                turn.say_text(told)
            decision = ticket.decision
            turn.event("ticket_decided", ticket_id=ticket.id, rule=decision.rule, outcome=decision.outcome)
            if decision.outcome == "approved":
                turn.event("self_service_completed", flow=self.name, order_id=order.order_id, request_id=request.id)
            return None
        return ticket

    # -- confirming ----------------------------------------------------------------------

    @staticmethod
    def confirm_choices(turn: Turn) -> tuple[Any, ...]:
        return (turn.choice("quick_yes"), turn.choice("quick_no"))

    def ask_to_confirm(
        self,
        turn: Turn,
        template: str,
        action: str,
        order: Order,
        *,
        sku: str | None = None,
        request: AfterSalesRequest | None = None,
        what: str,
        **values: Any,
    ) -> None:
        """Ask "confirm?" naming the order, item and action (``what``, one line, in the customer's
        language); the yes is applied only to exactly this subject, only while it is fresh."""
        turn.step("confirm")
        turn.asked(
            "confirm", **guard.subject(action, order.order_id, sku=sku, request_id=request.id if request else None),
            what=what,
        )  # fmt: skip
        turn.say(template, quick_replies=self.confirm_choices(turn), **values)
        request_type = action if action in {t.value for t in RequestType} else None
        turn.act(
            "confirm",
            order=order.order_id,
            sku=sku,
            request=request.id if request else None,
            request_type=request_type or (request.type.value if request else None),
        )

    async def answer_confirmation(self, turn: Turn, on_yes: Callable[[], Awaitable[None]]) -> bool:
        """The answer to "confirm?": a fresh yes acts; a stale yes (other questions came between, or
        another channel) is asked again, naming the subject; no ends the flow unchanged; anything
        else is not an answer (the engine serves it, the question stays)."""
        asked = turn.pending or {}
        if leads_with_yes(turn):
            if not turn.fresh(asked):
                self.confirm_again(turn, asked)
                return True
            turn.confirmed = {k: asked.get(k) for k in ("action", "order_id", "sku", "request_id")}
            await on_yes()
            return True
        if is_no(turn) or wants_to_cancel(turn):
            turn.finish()
            turn.say("flow_cancelled")
            turn.act("cancelled")
            return True
        return False

    def confirm_again(self, turn: Turn, asked: dict[str, Any]) -> None:
        """A "确认" that comes too late: the question again, naming exactly what it confirms."""
        turn.asked("confirm", **{k: v for k, v in asked.items() if k not in ("turn", "conversation", "kind")})
        turn.say("confirm_again", quick_replies=self.confirm_choices(turn), what=asked.get("what", ""))
        turn.act(
            "confirm", order=asked.get("order_id"), sku=asked.get("sku"), request=asked.get("request_id"),
            request_type=asked.get("action") if asked.get("action") in {t.value for t in RequestType} else None,
        )  # fmt: skip

    # -- time --------------------------------------------------------------------------

    def now(self) -> datetime:
        return self.context.clock()

    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.context.timezone)

    def today(self) -> date:
        return self.now().astimezone(self.zone()).date()


def item_named(turn: Turn, order: Order, embed: Embedder | None = None) -> OrderItem | None:
    """The one item of the order the message names, or None (none or several)."""
    items = [m.item for m in mentioned_items(turn.text_now, [order], embed)]
    return items[0] if len(items) == 1 else None
